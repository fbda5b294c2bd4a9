/* The vocabulary's JSON form (the checkpoint's "vocab" metadata). Kept out of
 * core/vocab.c so that the core library builds without cJSON. */
#include "charrnn/vocab_json.h"

#include "charrnn/status.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

char *charrnn_vocab_to_json(const charrnn_vocab *v)
{
    cJSON *arr = cJSON_CreateArray();
    if (!arr)
        return NULL;
    for (size_t i = 0; i < charrnn_vocab_size(v); i++) {
        char u[5] = {0};
        charrnn_utf8_encode(charrnn_vocab_codepoint(v, i), u);
        cJSON *s = cJSON_CreateString(u);
        if (!s || !cJSON_AddItemToArray(arr, s)) {
            cJSON_Delete(s);
            cJSON_Delete(arr);
            return NULL;
        }
    }
    char *out = cJSON_PrintUnformatted(arr);
    cJSON_Delete(arr);
    return out;
}

int charrnn_vocab_from_json(const char *json, charrnn_vocab **out, char *err, size_t errlen)
{
    *out = NULL;
    cJSON *arr = cJSON_Parse(json);
    if (!arr || !cJSON_IsArray(arr)) {
        cJSON_Delete(arr);
        return charrnn_fail(err, errlen, CHARRNN_EFORMAT, "vocab is not a JSON array");
    }
    int n = cJSON_GetArraySize(arr);
    if (n <= 0 || n > CHARRNN_MAX_VOCAB) {
        cJSON_Delete(arr);
        return charrnn_fail(err, errlen, CHARRNN_EFORMAT, "vocab has %d entries", n);
    }
    uint32_t *cps = malloc((size_t)n * sizeof *cps);
    if (!cps) {
        cJSON_Delete(arr);
        return charrnn_fail(err, errlen, CHARRNN_ENOMEM, "out of memory");
    }
    int i = 0, rc = CHARRNN_OK;
    const cJSON *it;
    cJSON_ArrayForEach(it, arr)
    {
        const char *s = cJSON_GetStringValue(it);
        uint32_t cp;
        size_t len = s ? strlen(s) : 0;
        /* cJSON stops strings at NUL: "\u0000" reads back empty. */
        if (s && len == 0) {
            rc = charrnn_fail(err, errlen, CHARRNN_EFORMAT,
                              "vocab entry %d is U+0000 (NUL) or empty: no text may hold NUL", i);
            break;
        } else if (!s || charrnn_utf8_decode((const uint8_t *)s, len, &cp) != (int)len) {
            rc = charrnn_fail(err, errlen, CHARRNN_EFORMAT,
                              "vocab entry %d is not a single-character string", i);
            break;
        }
        cps[i++] = cp;
    }
    cJSON_Delete(arr);
    if (rc == CHARRNN_OK)
        rc = charrnn_vocab_from_codepoints(cps, (size_t)n, out, err, errlen);
    free(cps);
    return rc;
}

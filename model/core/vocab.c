/* UTF-8 decoding and the sorted code-point vocabulary. */
#include "charrnn/vocab.h"

#include "charrnn/status.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct charrnn_vocab {
    size_t size;
    uint32_t *cps;      /* (size) sorted code points */
    int16_t ascii[128]; /* fast path: index of code points < 128, or -1 */
};

int charrnn_utf8_decode(const uint8_t *s, size_t n, uint32_t *cp)
{
    if (n == 0)
        return 0;
    uint8_t c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    int len;
    uint32_t v, min;
    if ((c & 0xE0) == 0xC0) {
        len = 2, v = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
        len = 3, v = c & 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
        len = 4, v = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (n < (size_t)len)
        return 0;
    for (int i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        v = (v << 6) | (s[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    *cp = v;
    return len;
}

int charrnn_utf8_encode(uint32_t cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

size_t charrnn_utf8_bom_len(const uint8_t *s, size_t n)
{
    return (n >= 3 && s[0] == 0xEF && s[1] == 0xBB && s[2] == 0xBF) ? 3 : 0;
}

static int vocab_make(const uint32_t *sorted, size_t n, charrnn_vocab **out)
{
    charrnn_vocab *v = calloc(1, sizeof *v);
    if (!v)
        return CHARRNN_ENOMEM;
    v->cps = malloc((n ? n : 1) * sizeof *v->cps);
    if (!v->cps) {
        free(v);
        return CHARRNN_ENOMEM;
    }
    memcpy(v->cps, sorted, n * sizeof *v->cps);
    v->size = n;
    for (int i = 0; i < 128; i++)
        v->ascii[i] = -1;
    for (size_t i = 0; i < n && sorted[i] < 128; i++)
        v->ascii[sorted[i]] = (int16_t)i;
    *out = v;
    return CHARRNN_OK;
}

/* U+0000 is refused in texts and vocabularies: generated text leaves as C
 * strings (responses, the CLIs), where a NUL would end it while its
 * characters were still counted. */
static int nul_at(size_t offset, char *err, size_t errlen)
{
    return charrnn_fail(err, errlen, CHARRNN_EFORMAT,
                        "U+0000 (NUL) at byte offset %zu: text may not hold NUL characters",
                        offset);
}

int charrnn_vocab_build(const uint8_t *text, size_t n, charrnn_vocab **out, char *err,
                        size_t errlen)
{
    *out = NULL;
    /* One bit per possible code point (17 planes): 136 KiB, scanned once. */
    uint8_t *seen = calloc((0x110000 + 7) / 8, 1);
    if (!seen)
        return charrnn_fail(err, errlen, CHARRNN_ENOMEM, "out of memory");
    size_t i = charrnn_utf8_bom_len(text, n);
    size_t count = 0;
    while (i < n) {
        uint32_t cp;
        if (text[i] == 0) {
            free(seen);
            return nul_at(i, err, errlen);
        }
        if (text[i] < 0x80) {
            cp = text[i++];
        } else {
            int k = charrnn_utf8_decode(text + i, n - i, &cp);
            if (k == 0) {
                free(seen);
                return charrnn_fail(err, errlen, CHARRNN_EFORMAT,
                                    "invalid UTF-8 at byte offset %zu (byte 0x%02X)", i, text[i]);
            }
            i += (size_t)k;
        }
        if (!(seen[cp >> 3] & (1u << (cp & 7)))) {
            seen[cp >> 3] |= (uint8_t)(1u << (cp & 7));
            count++;
        }
    }
    if (count == 0) {
        free(seen);
        return charrnn_fail(err, errlen, CHARRNN_EINVAL, "the text is empty");
    }
    if (count > CHARRNN_MAX_VOCAB) {
        free(seen);
        return charrnn_fail(err, errlen, CHARRNN_ERANGE,
                            "the text has %zu distinct characters (at most %d supported)", count,
                            CHARRNN_MAX_VOCAB);
    }
    uint32_t *cps = malloc(count * sizeof *cps);
    if (!cps) {
        free(seen);
        return charrnn_fail(err, errlen, CHARRNN_ENOMEM, "out of memory");
    }
    size_t k = 0;
    for (uint32_t cp = 0; cp < 0x110000; cp++)
        if (seen[cp >> 3] & (1u << (cp & 7)))
            cps[k++] = cp;
    free(seen);
    int rc = vocab_make(cps, count, out);
    free(cps);
    return rc ? charrnn_fail(err, errlen, rc, "out of memory") : CHARRNN_OK;
}

int charrnn_vocab_from_codepoints(const uint32_t *cps, size_t n, charrnn_vocab **out, char *err,
                                  size_t errlen)
{
    *out = NULL;
    if (n == 0 || n > CHARRNN_MAX_VOCAB)
        return charrnn_fail(err, errlen, CHARRNN_ERANGE, "vocabulary size %zu out of range 1..%d",
                            n, CHARRNN_MAX_VOCAB);
    for (size_t i = 0; i < n; i++) {
        if (cps[i] == 0)
            return charrnn_fail(err, errlen, CHARRNN_EFORMAT,
                                "vocabulary entry %zu is U+0000 (NUL), which no text may hold", i);
        if (cps[i] > 0x10FFFF || (cps[i] >= 0xD800 && cps[i] <= 0xDFFF))
            return charrnn_fail(err, errlen, CHARRNN_EFORMAT,
                                "vocabulary entry %zu is not a Unicode scalar value", i);
        if (i > 0 && cps[i] <= cps[i - 1])
            return charrnn_fail(err, errlen, CHARRNN_EFORMAT,
                                "vocabulary is not strictly increasing at entry %zu", i);
    }
    int rc = vocab_make(cps, n, out);
    return rc ? charrnn_fail(err, errlen, rc, "out of memory") : CHARRNN_OK;
}

int charrnn_vocab_copy(const charrnn_vocab *v, charrnn_vocab **out, char *err, size_t errlen)
{
    *out = NULL;
    int rc = vocab_make(v->cps, v->size, out);
    return rc ? charrnn_fail(err, errlen, rc, "out of memory") : CHARRNN_OK;
}

void charrnn_vocab_free(charrnn_vocab *v)
{
    if (!v)
        return;
    free(v->cps);
    free(v);
}

size_t charrnn_vocab_size(const charrnn_vocab *v)
{
    return v->size;
}

uint32_t charrnn_vocab_codepoint(const charrnn_vocab *v, size_t index)
{
    return v->cps[index];
}

int charrnn_vocab_index(const charrnn_vocab *v, uint32_t cp)
{
    if (cp < 128)
        return v->ascii[cp];
    size_t lo = 0, hi = v->size;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v->cps[mid] < cp)
            lo = mid + 1;
        else
            hi = mid;
    }
    return (lo < v->size && v->cps[lo] == cp) ? (int)lo : -1;
}

/* Appends a printable rendering of cp ("'x'" or U+XXXX) to buf. */
static void describe_cp(char *buf, size_t cap, uint32_t cp)
{
    size_t len = strlen(buf);
    if (len + 16 >= cap)
        return;
    if (cp >= 0x20 && cp != 0x7F && cp != '\'') {
        char u[5] = {0};
        charrnn_utf8_encode(cp, u);
        snprintf(buf + len, cap - len, "%s'%s' (U+%04X)", len ? ", " : "", u, (unsigned)cp);
    } else {
        snprintf(buf + len, cap - len, "%sU+%04X", len ? ", " : "", (unsigned)cp);
    }
}

int charrnn_vocab_encode(const charrnn_vocab *v, const uint8_t *text, size_t n, int skip_bom,
                         uint16_t *out, size_t *count, char *err, size_t errlen)
{
    size_t i = skip_bom ? charrnn_utf8_bom_len(text, n) : 0;
    size_t k = 0;
    char missing[256] = "";
    uint32_t reported[8];
    size_t nmissing = 0, nreported = 0;
    while (i < n) {
        uint32_t cp;
        int idx;
        if (text[i] == 0)
            return nul_at(i, err, errlen);
        if (text[i] < 0x80) {
            cp = text[i++];
            idx = v->ascii[cp];
        } else {
            int len = charrnn_utf8_decode(text + i, n - i, &cp);
            if (len == 0)
                return charrnn_fail(err, errlen, CHARRNN_EFORMAT,
                                    "invalid UTF-8 at byte offset %zu (byte 0x%02X)", i, text[i]);
            i += (size_t)len;
            idx = charrnn_vocab_index(v, cp);
        }
        if (idx < 0) {
            int dup = 0;
            for (size_t r = 0; r < nreported; r++)
                dup |= reported[r] == cp;
            if (!dup) {
                if (nreported < 8) {
                    reported[nreported++] = cp;
                    describe_cp(missing, sizeof missing, cp);
                }
                nmissing++;
            }
            continue;
        }
        out[k++] = (uint16_t)idx;
    }
    *count = k;
    if (nmissing)
        return charrnn_fail(err, errlen, CHARRNN_EVOCAB,
                            "%zu character%s not in the model's vocabulary: %s%s", nmissing,
                            nmissing == 1 ? " is" : "s are", missing, nmissing > 8 ? ", ..." : "");
    return CHARRNN_OK;
}

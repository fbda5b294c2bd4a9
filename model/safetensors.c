/* safetensors: atomic writer and fully validating reader (F32 only). */
#include "charrnn/safetensors.h"

#include "charrnn/status.h"
#include "charrnn/fileio.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "charrnn stores little-endian floats directly; a big-endian port needs byte swaps here"
#endif

struct charrnn_st_file {
    size_t n;
    charrnn_st_tensor *tensors; /* (n) in file order */
    char **names;
    float *data; /* aligned copy of the data buffer */
    size_t n_meta;
    char **meta_keys, **meta_values;
};

/* ---- writing ---------------------------------------------------------- */

static size_t numel_of(const charrnn_st_tensor *t)
{
    size_t n = 1;
    for (int d = 0; d < t->ndim; d++)
        n *= t->shape[d];
    return n;
}

static char *build_header(const charrnn_st_tensor *tensors, size_t nt, const charrnn_st_meta *meta,
                          size_t nm)
{
    cJSON *root = cJSON_CreateObject();
    if (!root)
        return NULL;
    int ok = 1;
    if (nm > 0) {
        cJSON *md = cJSON_AddObjectToObject(root, "__metadata__");
        ok = md != NULL;
        for (size_t i = 0; ok && i < nm; i++)
            ok = cJSON_AddStringToObject(md, meta[i].key, meta[i].value) != NULL;
    }
    size_t off = 0;
    for (size_t i = 0; ok && i < nt; i++) {
        cJSON *t = cJSON_AddObjectToObject(root, tensors[i].name);
        cJSON *shape = t ? cJSON_AddArrayToObject(t, "shape") : NULL;
        ok = t && cJSON_AddStringToObject(t, "dtype", "F32") && shape;
        for (int d = 0; ok && d < tensors[i].ndim; d++)
            ok = cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)tensors[i].shape[d]));
        size_t bytes = numel_of(&tensors[i]) * sizeof(float);
        cJSON *offs = ok ? cJSON_AddArrayToObject(t, "data_offsets") : NULL;
        ok = offs && cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)off)) &&
            cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)(off + bytes)));
        off += bytes;
    }
    char *s = ok ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    return s;
}

typedef struct st_out {
    const char *hdr;
    size_t hlen, padded;
    const charrnn_st_tensor *tensors;
    size_t n;
} st_out;

/* Length, header padded with spaces (data 8-byte aligned), tensors in order. */
static int produce(FILE *f, void *ctx)
{
    const st_out *o = ctx;
    uint8_t le[8];
    for (int i = 0; i < 8; i++)
        le[i] = (uint8_t)((uint64_t)o->padded >> (8 * i));
    int bad = fwrite(le, 1, 8, f) != 8 || fwrite(o->hdr, 1, o->hlen, f) != o->hlen;
    for (size_t i = o->hlen; !bad && i < o->padded; i++)
        bad = fputc(' ', f) == EOF;
    for (size_t i = 0; !bad && i < o->n; i++) {
        size_t k = numel_of(&o->tensors[i]);
        bad = fwrite(o->tensors[i].data, sizeof(float), k, f) != k;
    }
    return bad;
}

int charrnn_st_write(const char *path, const charrnn_st_tensor *tensors, size_t n_tensors,
                     const charrnn_st_meta *meta, size_t n_meta, char *err, size_t errlen)
{
    char *hdr = build_header(tensors, n_tensors, meta, n_meta);
    if (!hdr)
        return charrnn_fail(err, errlen, CHARRNN_ENOMEM, "out of memory building the header");
    size_t hlen = strlen(hdr);
    st_out o = {hdr, hlen, (hlen + 7) & ~(size_t)7, tensors, n_tensors};
    int rc = charrnn_file_write_atomic(path, produce, &o, err, errlen);
    free(hdr);
    return rc;
}

/* ---- reading ---------------------------------------------------------- */

void charrnn_st_free(charrnn_st_file *f)
{
    if (!f)
        return;
    for (size_t i = 0; f->names && i < f->n; i++)
        free(f->names[i]);
    for (size_t i = 0; i < f->n_meta; i++) {
        free(f->meta_keys[i]);
        free(f->meta_values[i]);
    }
    free(f->names), free(f->tensors), free(f->data), free(f->meta_keys), free(f->meta_values);
    free(f);
}

/* A JSON number that is a non-negative integer below 2^53. */
static int json_uint(const cJSON *j, uint64_t *out)
{
    if (!cJSON_IsNumber(j))
        return 0;
    double d = j->valuedouble;
    if (!(d >= 0.0 && d < 9007199254740992.0) || floor(d) != d)
        return 0;
    *out = (uint64_t)d;
    return 1;
}

typedef struct span {
    uint64_t b, e;
    size_t idx;
} span;

static int cmp_span(const void *a, const void *b)
{
    const span *x = a, *y = b;
    return x->b < y->b ? -1 : x->b > y->b ? 1 : (x->e > y->e) - (x->e < y->e);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int parse_tensor(const cJSON *t, charrnn_st_tensor *out, span *sp, uint64_t buflen,
                        char *err, size_t errlen)
{
    const char *name = t->string;
    if (!cJSON_IsObject(t))
        return charrnn_fail(err, errlen, CHARRNN_EFORMAT, "tensor '%s' is not an object", name);
    const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(t, "dtype");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(t, "shape");
    const cJSON *offs = cJSON_GetObjectItemCaseSensitive(t, "data_offsets");
    if (!cJSON_IsString(dtype))
        return charrnn_fail(err, errlen, CHARRNN_EFORMAT, "tensor '%s' has no dtype", name);
    if (strcmp(dtype->valuestring, "F32") != 0)
        return charrnn_fail(err, errlen, CHARRNN_EFORMAT,
                            "tensor '%s' has dtype %.16s (only F32 is supported)", name,
                            dtype->valuestring);
    if (!cJSON_IsArray(shape) || cJSON_GetArraySize(shape) > CHARRNN_ST_MAX_DIMS)
        return charrnn_fail(err, errlen, CHARRNN_EFORMAT, "tensor '%s' has a bad shape", name);
    uint64_t numel = 1;
    int nd = 0;
    const cJSON *d;
    cJSON_ArrayForEach(d, shape)
    {
        uint64_t v;
        if (!json_uint(d, &v))
            return charrnn_fail(err, errlen, CHARRNN_EFORMAT,
                                "tensor '%s' has a non-integer dimension", name);
        if (v != 0 && numel > UINT64_MAX / 8 / v)
            return charrnn_fail(err, errlen, CHARRNN_EFORMAT, "tensor '%s' is too large", name);
        numel *= v;
        out->shape[nd++] = (size_t)v;
    }
    out->ndim = nd;
    uint64_t b, e;
    if (!cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2 ||
        !json_uint(cJSON_GetArrayItem(offs, 0), &b) || !json_uint(cJSON_GetArrayItem(offs, 1), &e))
        return charrnn_fail(err, errlen, CHARRNN_EFORMAT, "tensor '%s' has bad data_offsets", name);
    if (b > e || e > buflen)
        return charrnn_fail(err, errlen, CHARRNN_EFORMAT,
                            "tensor '%s' data_offsets [%llu, %llu] outside the %llu-byte buffer",
                            name, (unsigned long long)b, (unsigned long long)e,
                            (unsigned long long)buflen);
    if (e - b != numel * 4)
        return charrnn_fail(err, errlen, CHARRNN_EFORMAT,
                            "tensor '%s' has %llu bytes but its shape needs %llu", name,
                            (unsigned long long)(e - b), (unsigned long long)(numel * 4));
    sp->b = b, sp->e = e;
    return CHARRNN_OK;
}

int charrnn_st_parse(const void *buf, size_t len, charrnn_st_file **out, char *err, size_t errlen)
{
    *out = NULL;
    const uint8_t *p = buf;
    if (len < 8)
        return charrnn_fail(err, errlen, CHARRNN_EFORMAT,
                            "file is %zu bytes, too short for a safetensors header", len);
    uint64_t hlen = 0;
    for (int i = 0; i < 8; i++)
        hlen |= (uint64_t)p[i] << (8 * i);
    if (hlen < 2 || hlen > CHARRNN_ST_MAX_HEADER || hlen > len - 8)
        return charrnn_fail(err, errlen, CHARRNN_EFORMAT,
                            "header size %llu is impossible for a %zu-byte file (truncated or not "
                            "safetensors)",
                            (unsigned long long)hlen, len);
    if (p[8] != '{')
        return charrnn_fail(err, errlen, CHARRNN_EFORMAT, "header does not start with '{'");
    /* Only the padding spaces the writers add may follow the JSON object. */
    const char *hdr = (const char *)p + 8, *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(hdr, (size_t)hlen, &end, 0);
    while (root && end < hdr + hlen &&
           (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r'))
        end++;
    if (!root || !cJSON_IsObject(root) || end != hdr + hlen) {
        cJSON_Delete(root);
        return charrnn_fail(err, errlen, CHARRNN_EFORMAT, "header is not a valid JSON object");
    }
    const uint64_t buflen = len - 8 - hlen;
    charrnn_st_file *f = calloc(1, sizeof *f);
    int rc = f ? CHARRNN_OK : CHARRNN_ENOMEM;
    size_t nt = 0, nm = 0;
    const cJSON *it, *meta = NULL;
    cJSON_ArrayForEach(it, root)
    {
        if (strcmp(it->string, "__metadata__") == 0) {
            if (meta)
                rc = charrnn_fail(err, errlen, CHARRNN_EFORMAT, "duplicate __metadata__");
            meta = it;
        } else {
            nt++;
        }
    }
    if (rc == CHARRNN_OK && meta) {
        if (!cJSON_IsObject(meta))
            rc = charrnn_fail(err, errlen, CHARRNN_EFORMAT, "__metadata__ is not an object");
        cJSON_ArrayForEach(it, meta)
        {
            if (!cJSON_IsString(it)) {
                rc = charrnn_fail(err, errlen, CHARRNN_EFORMAT,
                                  "metadata value of '%s' is not a string", it->string);
                break;
            }
            nm++;
        }
    }
    span *spans = NULL;
    uint64_t *begins = NULL;
    if (rc == CHARRNN_OK) {
        begins = calloc(nt ? nt : 1, sizeof *begins);
        f->tensors = calloc(nt ? nt : 1, sizeof *f->tensors);
        f->names = calloc(nt ? nt : 1, sizeof *f->names);
        f->meta_keys = calloc(nm ? nm : 1, sizeof(char *));
        f->meta_values = calloc(nm ? nm : 1, sizeof(char *));
        spans = calloc(nt ? nt : 1, sizeof *spans);
        f->data = malloc(buflen ? (size_t)buflen : 4);
        if (!f->tensors || !f->names || !f->meta_keys || !f->meta_values || !spans || !f->data ||
            !begins)
            rc = charrnn_fail(err, errlen, CHARRNN_ENOMEM, "out of memory");
    }
    if (rc == CHARRNN_OK && meta) {
        cJSON_ArrayForEach(it, meta)
        {
            f->meta_keys[f->n_meta] = strdup(it->string);
            f->meta_values[f->n_meta] = strdup(it->valuestring);
            if (!f->meta_keys[f->n_meta++] || !f->meta_values[f->n_meta - 1]) {
                rc = charrnn_fail(err, errlen, CHARRNN_ENOMEM, "out of memory");
                break;
            }
        }
    }
    if (rc == CHARRNN_OK) {
        cJSON_ArrayForEach(it, root)
        {
            if (it == meta)
                continue;
            size_t i = f->n;
            if ((rc = parse_tensor(it, &f->tensors[i], &spans[i], buflen, err, errlen)))
                break;
            spans[i].idx = i;
            begins[i] = spans[i].b;
            if (!(f->names[i] = strdup(it->string))) {
                rc = charrnn_fail(err, errlen, CHARRNN_ENOMEM, "out of memory");
                break;
            }
            f->tensors[i].name = f->names[i];
            f->n++;
        }
    }
    cJSON_Delete(root);
    if (rc == CHARRNN_OK) {
        /* The buffer must be covered exactly: sorted spans contiguous from 0 to the end. */
        qsort(spans, nt, sizeof *spans, cmp_span);
        uint64_t at = 0;
        for (size_t i = 0; i < nt && rc == CHARRNN_OK; i++) {
            if (spans[i].b != at)
                rc = charrnn_fail(
                    err, errlen, CHARRNN_EFORMAT, "tensor '%s' %s at byte %llu of the data buffer",
                    f->names[spans[i].idx], spans[i].b < at ? "overlaps" : "leaves a hole",
                    (unsigned long long)spans[i].b);
            at = spans[i].e;
        }
        if (rc == CHARRNN_OK && at != buflen)
            rc = charrnn_fail(err, errlen, CHARRNN_EFORMAT,
                              "data buffer has %llu bytes but tensors cover %llu",
                              (unsigned long long)buflen, (unsigned long long)at);
    }
    if (rc == CHARRNN_OK && nt > 1) {
        char **sorted = malloc(nt * sizeof *sorted);
        if (!sorted) {
            rc = charrnn_fail(err, errlen, CHARRNN_ENOMEM, "out of memory");
        } else {
            memcpy(sorted, f->names, nt * sizeof *sorted);
            qsort(sorted, nt, sizeof *sorted, cmp_str);
            for (size_t i = 1; i < nt && rc == CHARRNN_OK; i++)
                if (strcmp(sorted[i - 1], sorted[i]) == 0)
                    rc = charrnn_fail(err, errlen, CHARRNN_EFORMAT, "duplicate tensor '%s'",
                                      sorted[i]);
            free(sorted);
        }
    }
    free(spans);
    if (rc == CHARRNN_OK) {
        memcpy(f->data, p + 8 + hlen, (size_t)buflen);
        /* Every begin is a multiple of 4: tensors tile the buffer from 0 in whole floats. */
        for (size_t i = 0; i < f->n; i++)
            f->tensors[i].data = f->data + begins[i] / 4;
    }
    free(begins);
    if (rc != CHARRNN_OK) {
        charrnn_st_free(f);
        return rc == CHARRNN_ENOMEM && !f ? charrnn_fail(err, errlen, rc, "out of memory") : rc;
    }
    *out = f;
    return CHARRNN_OK;
}

int charrnn_st_read(const char *path, charrnn_st_file **out, char *err, size_t errlen)
{
    *out = NULL;
    uint8_t *buf;
    size_t len;
    int rc = charrnn_file_read(path, 0, &buf, &len, NULL, err, errlen);
    if (rc)
        return rc;
    rc = charrnn_st_parse(buf, len, out, err, errlen);
    free(buf);
    return rc ? charrnn_err_prefix(err, errlen, rc, path) : rc;
}

size_t charrnn_st_count(const charrnn_st_file *f)
{
    return f->n;
}

const charrnn_st_tensor *charrnn_st_at(const charrnn_st_file *f, size_t i)
{
    return i < f->n ? &f->tensors[i] : NULL;
}

const charrnn_st_tensor *charrnn_st_get(const charrnn_st_file *f, const char *name)
{
    for (size_t i = 0; i < f->n; i++)
        if (strcmp(f->names[i], name) == 0)
            return &f->tensors[i];
    return NULL;
}

const char *charrnn_st_meta_get(const charrnn_st_file *f, const char *key)
{
    for (size_t i = 0; i < f->n_meta; i++)
        if (strcmp(f->meta_keys[i], key) == 0)
            return f->meta_values[i];
    return NULL;
}

/* safetensors: atomic writer and fully validating reader (F32, BF16, I8). */
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

static const char *const dtype_names[] = {"F32", "BF16", "I8"};

size_t charrnn_st_dtype_size(charrnn_st_dtype dt)
{
    return dt == CHARRNN_ST_BF16 ? 2 : dt == CHARRNN_ST_I8 ? 1 : 4;
}

const char *charrnn_st_dtype_name(charrnn_st_dtype dt)
{
    return dt <= CHARRNN_ST_I8 ? dtype_names[dt] : "?";
}

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
        ok = t && cJSON_AddStringToObject(t, "dtype", charrnn_st_dtype_name(tensors[i].dtype)) &&
            shape;
        for (int d = 0; ok && d < tensors[i].ndim; d++)
            ok = cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)tensors[i].shape[d]));
        size_t bytes = numel_of(&tensors[i]) * charrnn_st_dtype_size(tensors[i].dtype);
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
        const charrnn_st_tensor *t = &o->tensors[i];
        size_t k = numel_of(t);
        bad = fwrite(t->raw ? t->raw : (const void *)t->data, charrnn_st_dtype_size(t->dtype), k,
                     f) != k;
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
    int dt = -1;
    for (int k = 0; k < 3; k++)
        if (strcmp(dtype->valuestring, dtype_names[k]) == 0)
            dt = k;
    if (dt < 0)
        return charrnn_fail(err, errlen, CHARRNN_EFORMAT,
                            "tensor '%s' has dtype %.16s (F32, BF16 and I8 are supported)", name,
                            dtype->valuestring);
    out->dtype = (charrnn_st_dtype)dt;
    const uint64_t esz = charrnn_st_dtype_size(out->dtype);
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
    if (e - b != numel * esz)
        return charrnn_fail(err, errlen, CHARRNN_EFORMAT,
                            "tensor '%s' has %llu bytes but its shape needs %llu", name,
                            (unsigned long long)(e - b), (unsigned long long)(numel * esz));
    /* The data is read in place as its type: each tensor starts at a
     * multiple of its element size (writers order tensors by size). */
    if (b % esz != 0)
        return charrnn_fail(err, errlen, CHARRNN_EFORMAT,
                            "tensor '%s' (%s) starts at byte %llu, not a multiple of %llu", name,
                            dtype_names[dt], (unsigned long long)b, (unsigned long long)esz);
    sp->b = b, sp->e = e;
    return CHARRNN_OK;
}

/* The 8-byte length and the JSON header after it: *root is the parsed object
 * and *hlen its length (padding included). */
static int parse_header(const uint8_t *p, size_t len, cJSON **root, uint64_t *hlen_out, char *err,
                        size_t errlen)
{
    *root = NULL;
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
    cJSON *j = cJSON_ParseWithLengthOpts(hdr, (size_t)hlen, &end, 0);
    while (j && end < hdr + hlen && (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r'))
        end++;
    if (!j || !cJSON_IsObject(j) || end != hdr + hlen) {
        cJSON_Delete(j);
        return charrnn_fail(err, errlen, CHARRNN_EFORMAT, "header is not a valid JSON object");
    }
    *root = j;
    *hlen_out = hlen;
    return CHARRNN_OK;
}

/* Finds __metadata__ (at most one, an object of strings) and counts the
 * tensors (*nt) and metadata entries (*nm). */
static int count_entries(const cJSON *root, const cJSON **meta_out, size_t *nt, size_t *nm,
                         char *err, size_t errlen)
{
    const cJSON *it, *meta = NULL;
    *nt = *nm = 0;
    cJSON_ArrayForEach(it, root)
    {
        if (strcmp(it->string, "__metadata__") != 0) {
            (*nt)++;
            continue;
        }
        if (meta)
            return charrnn_fail(err, errlen, CHARRNN_EFORMAT, "duplicate __metadata__");
        meta = it;
    }
    *meta_out = meta;
    if (!meta)
        return CHARRNN_OK;
    if (!cJSON_IsObject(meta))
        return charrnn_fail(err, errlen, CHARRNN_EFORMAT, "__metadata__ is not an object");
    cJSON_ArrayForEach(it, meta)
    {
        if (!cJSON_IsString(it))
            return charrnn_fail(err, errlen, CHARRNN_EFORMAT,
                                "metadata value of '%s' is not a string", it->string);
        (*nm)++;
    }
    return CHARRNN_OK;
}

/* Tensors in file order, each one's span of the data buffer. */
typedef struct parse_ctx {
    charrnn_st_file *f;
    span *spans;      /* (nt) */
    uint64_t *begins; /* (nt) byte offset of tensor i */
    size_t nt, nm;
    uint64_t buflen;
} parse_ctx;

static int alloc_file(parse_ctx *c, char *err, size_t errlen)
{
    const size_t nt = c->nt ? c->nt : 1, nm = c->nm ? c->nm : 1;
    charrnn_st_file *f = c->f;
    c->begins = calloc(nt, sizeof *c->begins);
    c->spans = calloc(nt, sizeof *c->spans);
    f->tensors = calloc(nt, sizeof *f->tensors);
    f->names = calloc(nt, sizeof *f->names);
    f->meta_keys = calloc(nm, sizeof(char *));
    f->meta_values = calloc(nm, sizeof(char *));
    f->data = malloc(c->buflen ? (size_t)c->buflen : 4);
    if (!f->tensors || !f->names || !f->meta_keys || !f->meta_values || !c->spans || !f->data ||
        !c->begins)
        return charrnn_fail(err, errlen, CHARRNN_ENOMEM, "out of memory");
    return CHARRNN_OK;
}

static int copy_meta(charrnn_st_file *f, const cJSON *meta, char *err, size_t errlen)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, meta)
    {
        f->meta_keys[f->n_meta] = strdup(it->string);
        f->meta_values[f->n_meta] = strdup(it->valuestring);
        if (!f->meta_keys[f->n_meta++] || !f->meta_values[f->n_meta - 1])
            return charrnn_fail(err, errlen, CHARRNN_ENOMEM, "out of memory");
    }
    return CHARRNN_OK;
}

static int parse_tensors(parse_ctx *c, const cJSON *root, const cJSON *meta, char *err,
                         size_t errlen)
{
    charrnn_st_file *f = c->f;
    const cJSON *it;
    cJSON_ArrayForEach(it, root)
    {
        if (it == meta)
            continue;
        size_t i = f->n;
        int rc = parse_tensor(it, &f->tensors[i], &c->spans[i], c->buflen, err, errlen);
        if (rc)
            return rc;
        c->spans[i].idx = i;
        c->begins[i] = c->spans[i].b;
        if (!(f->names[i] = strdup(it->string)))
            return charrnn_fail(err, errlen, CHARRNN_ENOMEM, "out of memory");
        f->tensors[i].name = f->names[i];
        f->n++;
    }
    return CHARRNN_OK;
}

/* The buffer must be covered exactly: sorted spans contiguous from 0 to the end. */
static int check_coverage(parse_ctx *c, char *err, size_t errlen)
{
    qsort(c->spans, c->nt, sizeof *c->spans, cmp_span);
    uint64_t at = 0;
    for (size_t i = 0; i < c->nt; i++) {
        if (c->spans[i].b != at)
            return charrnn_fail(
                err, errlen, CHARRNN_EFORMAT, "tensor '%s' %s at byte %llu of the data buffer",
                c->f->names[c->spans[i].idx], c->spans[i].b < at ? "overlaps" : "leaves a hole",
                (unsigned long long)c->spans[i].b);
        at = c->spans[i].e;
    }
    if (at != c->buflen)
        return charrnn_fail(err, errlen, CHARRNN_EFORMAT,
                            "data buffer has %llu bytes but tensors cover %llu",
                            (unsigned long long)c->buflen, (unsigned long long)at);
    return CHARRNN_OK;
}

static int check_duplicates(const charrnn_st_file *f, char *err, size_t errlen)
{
    if (f->n < 2)
        return CHARRNN_OK;
    char **sorted = malloc(f->n * sizeof *sorted);
    if (!sorted)
        return charrnn_fail(err, errlen, CHARRNN_ENOMEM, "out of memory");
    memcpy(sorted, f->names, f->n * sizeof *sorted);
    qsort(sorted, f->n, sizeof *sorted, cmp_str);
    int rc = CHARRNN_OK;
    for (size_t i = 1; i < f->n && rc == CHARRNN_OK; i++)
        if (strcmp(sorted[i - 1], sorted[i]) == 0)
            rc = charrnn_fail(err, errlen, CHARRNN_EFORMAT, "duplicate tensor '%s'", sorted[i]);
    free(sorted);
    return rc;
}

/* Header, metadata, tensors, then the checks over all tensors; only a file
 * that passes them all gets its data copied. */
int charrnn_st_parse(const void *buf, size_t len, charrnn_st_file **out, char *err, size_t errlen)
{
    *out = NULL;
    const uint8_t *p = buf;
    cJSON *root;
    uint64_t hlen = 0;
    int rc = parse_header(p, len, &root, &hlen, err, errlen);
    if (rc)
        return rc;
    parse_ctx c = {calloc(1, sizeof(charrnn_st_file)), NULL, NULL, 0, 0, len - 8 - hlen};
    const cJSON *meta = NULL;
    rc = c.f ? count_entries(root, &meta, &c.nt, &c.nm, err, errlen)
             : charrnn_fail(err, errlen, CHARRNN_ENOMEM, "out of memory");
    if (rc == CHARRNN_OK)
        rc = alloc_file(&c, err, errlen);
    if (rc == CHARRNN_OK && meta)
        rc = copy_meta(c.f, meta, err, errlen);
    if (rc == CHARRNN_OK)
        rc = parse_tensors(&c, root, meta, err, errlen);
    cJSON_Delete(root);
    if (rc == CHARRNN_OK)
        rc = check_coverage(&c, err, errlen);
    if (rc == CHARRNN_OK)
        rc = check_duplicates(c.f, err, errlen);
    if (rc == CHARRNN_OK) {
        memcpy(c.f->data, p + 8 + hlen, (size_t)c.buflen);
        /* Every begin is a multiple of its element size (parse_tensor). */
        for (size_t i = 0; i < c.f->n; i++) {
            charrnn_st_tensor *t = &c.f->tensors[i];
            t->raw = (const char *)c.f->data + c.begins[i];
            t->data = t->dtype == CHARRNN_ST_F32 ? (const float *)t->raw : NULL;
        }
    }
    free(c.spans);
    free(c.begins);
    if (rc != CHARRNN_OK) {
        charrnn_st_free(c.f);
        return rc;
    }
    *out = c.f;
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

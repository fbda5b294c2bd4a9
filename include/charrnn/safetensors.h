/* safetensors reading and atomic writing (F32, BF16 and I8 tensors, string
 * metadata).
 *
 * Format: 8-byte little-endian header length N, N bytes of JSON header
 * {"name": {"dtype":"F32","shape":[...],"data_offsets":[b,e]}, ...,
 *  "__metadata__": {"k":"v",...}}, then the data buffer. The reader validates
 * everything: header size against the file, JSON syntax, dtype, shape, offsets
 * within the buffer and matching the shape, each tensor aligned to its element
 * size, no overlap, no holes, string-only metadata, duplicate names. A bad
 * file never half-loads. Values are not checked here (NaN, ranges): that is
 * the checkpoint's business. */
#ifndef CHARRNN_SAFETENSORS_H
#define CHARRNN_SAFETENSORS_H

#include <stddef.h>

#define CHARRNN_ST_MAX_HEADER (64u << 20) /* refuse absurd headers */
#define CHARRNN_ST_MAX_DIMS 8

/* Element types (safetensors names "F32", "BF16", "I8"). F32 is 0, so a
 * tensor initialised without a dtype is F32. */
typedef enum charrnn_st_dtype {
    CHARRNN_ST_F32 = 0,
    CHARRNN_ST_BF16, /* the upper 16 bits of an IEEE binary32 */
    CHARRNN_ST_I8
} charrnn_st_dtype;

/* Bytes per element: 4, 2, 1. */
size_t charrnn_st_dtype_size(charrnn_st_dtype dt);
/* "F32", "BF16", "I8". */
const char *charrnn_st_dtype_name(charrnn_st_dtype dt);

typedef struct charrnn_st_tensor {
    const char *name;
    const float *data; /* little-endian F32 data; NULL for other dtypes when read */
    int ndim;
    size_t shape[CHARRNN_ST_MAX_DIMS];
    charrnn_st_dtype dtype;
    const void *raw; /* the data in any dtype (read: always set; write: used when not NULL) */
} charrnn_st_tensor;

typedef struct charrnn_st_meta {
    const char *key;
    const char *value;
} charrnn_st_meta;

/* Writes tensors and metadata to path atomically: a temporary file in the same
 * directory, fsync, rename, fsync of the directory. On failure the previous
 * file at path is untouched and the temporary file is removed. */
int charrnn_st_write(const char *path, const charrnn_st_tensor *tensors, size_t n_tensors,
                     const charrnn_st_meta *meta, size_t n_meta, char *err, size_t errlen);

typedef struct charrnn_st_file charrnn_st_file;

/* Reads and validates a whole file into memory. */
int charrnn_st_read(const char *path, charrnn_st_file **out, char *err, size_t errlen);
/* Same from a memory buffer (copied). */
int charrnn_st_parse(const void *buf, size_t len, charrnn_st_file **out, char *err, size_t errlen);
void charrnn_st_free(charrnn_st_file *f);

size_t charrnn_st_count(const charrnn_st_file *f);
/* i-th tensor in file order (i < count). The data pointer lives as long as f. */
const charrnn_st_tensor *charrnn_st_at(const charrnn_st_file *f, size_t i);
/* Tensor by name, or NULL. */
const charrnn_st_tensor *charrnn_st_get(const charrnn_st_file *f, const char *name);
/* Metadata value, or NULL. */
const char *charrnn_st_meta_get(const charrnn_st_file *f, const char *key);

#endif

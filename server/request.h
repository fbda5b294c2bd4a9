/* POST /sample bodies: strict parsing and validation into sampling parameters. */
#ifndef CHARRNN_SERVE_REQUEST_H
#define CHARRNN_SERVE_REQUEST_H

#include "charrnn/sampler.h"
#include "config.h"

#include <stddef.h>
#include <stdint.h>

/* An error for the client: HTTP status, error type, message and the request
 * field it is about ("" when none). */
typedef struct api_error {
    unsigned status;
    const char *type;
    char message[600];
    char param[32];
} api_error;

/* Fills e and returns -1 (for "return api_fail(...)" chains). */
int api_fail(api_error *e, unsigned status, const char *type, const char *param, const char *fmt,
             ...) __attribute__((format(printf, 5, 6)));

typedef struct sample_request {
    char *model; /* NULL = the default model */
    char *prime; /* never NULL */
    size_t prime_len;
    size_t length;
    float temperature;
    uint64_t seed;
    int has_seed;
    int top_k;
    float top_p;
    char **stop;
    size_t n_stop;
    int stream;
} sample_request;

/* Parses body (len bytes, need not be NUL-terminated). Unknown and duplicate
 * fields, wrong types and out-of-range values are 400 errors naming the field;
 * null means "the default". Returns 0 or -1 with err filled. */
int sample_request_parse(const char *body, size_t len, const serve_config *cfg, sample_request *out,
                         api_error *err);
void sample_request_clear(sample_request *r);

/* The library's view of the request (pointers into r). */
charrnn_sample_params sample_request_params(const sample_request *r);

#endif

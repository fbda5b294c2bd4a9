/* Strict JSON request bodies, the toolkit of every endpoint's parser
 * (sample_request.c, score_request.c, openai_request.c): the error a client
 * gets, one object parsed with its members checked against the endpoint's
 * fields (unknown, duplicate, raw control bytes), typed getters that name the
 * field, and the source-text scanner the seed and the U+0000 checks read. */
#ifndef CHARRNN_SERVE_JSON_BODY_H
#define CHARRNN_SERVE_JSON_BODY_H

#include "charrnn/sampler.h"
#include "config.h"

#include <cjson/cJSON.h>
#include <stdarg.h>
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

/* Fills e and returns -1 (for "return api_fail(...)" chains). The message and
 * param go through echo_text (echo.h): client bytes in them come out as valid
 * UTF-8, and a message too long for its buffer is cut between characters. */
int api_fail(api_error *e, unsigned status, const char *type, const char *param, const char *fmt,
             ...) __attribute__((format(printf, 5, 6)));
void api_failv(api_error *e, unsigned status, const char *type, const char *param, const char *fmt,
               va_list ap) __attribute__((format(printf, 5, 0)));

/* A response's log-probabilities are bounded: chars characters with k
 * alternatives each (plus their own) must stay within --max-logprob-entries,
 * or the request is a 400 naming param. A vocabulary-sized k over a long text
 * would otherwise make one request build hundreds of megabytes of JSON. */
int logprob_budget_check(const serve_config *cfg, size_t chars, int k, const char *param,
                         api_error *err);

/* Helpers for strict JSON bodies (every endpoint that takes one). */
typedef struct span { /* a byte range of the body */
    const char *p;
    size_t n;
} span;
/* Called for each member that is not null, with its source text. Returns 0
 * or -1 with err filled. */
typedef int (*json_member_fn)(void *ctx, const cJSON *v, span src, api_error *err);
/* Parses body (len bytes) as one JSON object whose members must be among
 * fields (at most 64): invalid JSON, trailing data, unknown and duplicate
 * members, and a raw control character (< 0x20) inside any string (which
 * cJSON would keep, cutting the string at a NUL) are 400 errors naming the
 * top-level field. Null members mean "the default" and are skipped. Returns
 * 0 or -1 with err filled. */
int json_object_parse(const char *body, size_t len, const char *const *fields, size_t nfields,
                      json_member_fn fn, void *ctx, api_error *err);
/* An integral number in [lo, hi]. */
int json_get_int(const cJSON *v, const char *name, double lo, double hi, double *out,
                 api_error *err);
/* A sampling number checked against the library's table of limits
 * (charrnn_sample_limit_of); the error's param is the field's name. */
int json_get_sample_number(const cJSON *v, charrnn_sample_field f, double *out, api_error *err);
/* A uint64 seed from a number's source text (exact) or a decimal string. */
int json_get_seed(const cJSON *v, span src, uint64_t *out, api_error *err);
/* 1 if the source text of a string has a \u0000 escape (cJSON would cut it). */
int json_has_nul(span v);
/* Code points in n bytes of valid UTF-8. */
size_t utf8_chars(const char *s, size_t n);

/* A top-level member's source text: the key with its quotes, and the value. */
typedef struct request_member {
    span key, value;
} request_member;
/* The members of the JSON object in s[0..len), in order, at most max; for
 * text cJSON accepts as an object, the same members as cJSON's children (the
 * fuzz harness checks this). Returns how many were found. */
size_t request_members(const char *s, size_t len, request_member *out, size_t max);

#endif

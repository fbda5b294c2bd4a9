/* POST /sample bodies: strict parsing and validation into sampling
 * parameters (json_body.h is the toolkit), and the sampling members /v1
 * shares (the plain numbers, regex). */
#ifndef CHARRNN_SERVE_SAMPLE_REQUEST_H
#define CHARRNN_SERVE_SAMPLE_REQUEST_H

#include "json_body.h"

/* best_of on /sample: candidates of one request at most. */
#define SAMPLE_MAX_BEST_OF 16

typedef struct sample_request {
    char *model; /* NULL = the default model */
    /* The sampling parameters, as the library takes them: the parser writes
     * each field here, and the handler hands them on (one mapping). Their
     * strings (prime, stop, regex) point into the buffers below. */
    charrnn_sample_params p;
    char *prime;  /* never NULL; p.prime */
    char **stop;  /* p.n_stop strings; p.stop */
    char *regex;  /* NULL = no constraint; p.regex */
    int has_seed; /* p.seed was given */
    int stream;
    int logprobs; /* -1 = off; else alternatives per character (sets p.logprobs) */
    int best_of;  /* candidates drawn (seeds seed .. seed + best_of - 1), the best returned */
} sample_request;

/* Parses body (len bytes, need not be NUL-terminated). Unknown and duplicate
 * fields, wrong types and out-of-range values are 400 errors naming the field;
 * null means "the default". Returns 0 or -1 with err filled. */
int sample_request_parse(const char *body, size_t len, const serve_config *cfg, sample_request *out,
                         api_error *err);
void sample_request_clear(sample_request *r);

/* A plain sampling number (temperature, top_k, top_p, min_p and the
 * penalties: repetition, presence, frequency, penalty_window), v being the
 * member, checked against the library's table of limits for f (the error
 * names the field) and stored into its field of p. /sample and /v1 both
 * take them. 0 or -1 with err filled. */
int sample_number_member(const cJSON *v, charrnn_sample_field f, charrnn_sample_params *p,
                         api_error *err);

/* A regex member (named name: "regex", or /v1's alias "guided_regex"): a
 * string without U+0000 (src is its source text) of 1..CHARRNN_REGEX_MAX_LEN
 * bytes, copied into *out (replacing one there). Whether it compiles needs
 * the model: the stream decides (gen_submit's 400 names "regex"). 0 or -1
 * with err naming "regex". */
int sample_regex_member(const cJSON *v, span src, char **out, api_error *err);

/* One row of an endpoint's table of fields (/sample's, /v1's), in the order
 * its unknown-field error lists them. The field is one of: parse (its own
 * function, called with the endpoint's ctx); number (a plain sampling number,
 * sample_number_member into p); else an integer in [lo, hi] (json_get_int)
 * stored into the int at offset int_at of the endpoint's request. no_nul: a
 * \u0000 in the value is a 400 naming the field before anything else (cJSON
 * would cut the string there). */
typedef struct sample_field {
    const char *name;
    json_member_fn parse;
    charrnn_sample_field number;
    double lo, hi;
    size_t int_at;
    int no_nul;
} sample_field;

/* The n rows' names, in order, into names (room for n): json_object_parse's
 * fields. */
void sample_field_names(const sample_field *rows, size_t n, const char **names);
/* Applies member v with its source text src through its row of rows
 * (json_object_parse has checked that it has one): to ctx, p or req as the
 * row says. 0 or -1 with err filled. */
int sample_field_member(const sample_field *rows, void *req, charrnn_sample_params *p, void *ctx,
                        const cJSON *v, span src, api_error *err);

#endif

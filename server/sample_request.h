/* POST /sample bodies: strict parsing and validation into sampling
 * parameters (json_body.h is the toolkit), and the sampling members /v1
 * shares (penalties, regex). */
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

/* A penalty member (repetition_penalty, presence_penalty, frequency_penalty,
 * penalty_window) checked against the library's table into its field of p;
 * /sample and /v1 both take them. 0 or -1 with err naming the field. */
int sample_penalty_member(const cJSON *v, charrnn_sample_params *p, api_error *err);

/* A regex member (named name: "regex", or /v1's alias "guided_regex"): a
 * string without U+0000 (src is its source text) of 1..CHARRNN_REGEX_MAX_LEN
 * bytes, copied into *out (replacing one there). Whether it compiles needs
 * the model: the stream decides (gen_submit's 400 names "regex"). 0 or -1
 * with err naming "regex". */
int sample_regex_member(const cJSON *v, span src, char **out, api_error *err);

#endif

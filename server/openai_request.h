/* POST /v1/completions bodies: OpenAI's legacy completions request, strictly
 * parsed (unknown and duplicate fields, wrong types and out-of-range values
 * are 400 errors naming the field). One token is one character. */
#ifndef CHARRNN_SERVE_OPENAI_REQUEST_H
#define CHARRNN_SERVE_OPENAI_REQUEST_H

#include "config.h"
#include "request.h"

#include <stddef.h>
#include <stdint.h>

#define V1_MAX_PROMPTS 16
#define V1_MAX_N 16
#define V1_MAX_CHOICES 64 /* prompts x n */
#define V1_MAX_STOP 4
#define V1_MAX_LOGPROBS 5

typedef struct completion_request {
    char *model;   /* NULL = the default model */
    char **prompt; /* n_prompt strings (a single string is one prompt) */
    size_t *prompt_len;
    size_t n_prompt;
    size_t max_tokens; /* characters per choice; 0 only with echo */
    float temperature;
    float top_p;
    float min_p; /* vLLM's extension */
    char *regex; /* our extension (vLLM's guided_regex, an alias): NULL = none */
    float presence_penalty, frequency_penalty; /* OpenAI's */
    float repetition_penalty;                  /* vLLM's extension */
    int penalty_window;                        /* charrnn's extension */
    int n;
    int best_of; /* candidates per prompt when more than n (then ranked); 0 = not given */
    int stream;
    int include_usage;
    int logprobs; /* -1 = null; else 0..V1_MAX_LOGPROBS alternatives */
    int echo;
    char **stop;
    size_t n_stop;
    uint64_t seed;
    int has_seed;
    char user[65];
    int *bias_id; /* logit_bias */
    float *bias_val;
    size_t n_bias;
} completion_request;

int completion_request_parse(const char *body, size_t len, const serve_config *cfg,
                             completion_request *out, api_error *err);
void completion_request_clear(completion_request *r);

/* The library's view of prompt i's choice with the given seed (pointers into
 * r): the one mapping of the request's fields onto sampling parameters. */
charrnn_sample_params completion_request_params(const completion_request *r, size_t i,
                                                uint64_t seed);

#endif

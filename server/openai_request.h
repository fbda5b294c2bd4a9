/* POST /v1/completions bodies: OpenAI's legacy completions request, strictly
 * parsed (unknown and duplicate fields, wrong types and out-of-range values
 * are 400 errors naming the field). One token is one character. */
#ifndef CHARRNN_SERVE_OPENAI_REQUEST_H
#define CHARRNN_SERVE_OPENAI_REQUEST_H

#include "config.h"
#include "sample_request.h"

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
    /* The sampling parameters every choice shares, as the library takes them
     * (p.length is max_tokens: characters per choice, 0 only with echo); the
     * parser writes each field here. Their strings (stop, regex, logit_bias)
     * point into the buffers below; completion_choice_params adds a choice's
     * prompt and seed. */
    charrnn_sample_params p;
    char *regex; /* our extension (vLLM's guided_regex, an alias): NULL = none */
    int n;
    int best_of; /* candidates per prompt when more than n (then ranked); 0 = not given */
    int stream;
    int include_usage;
    int logprobs; /* -1 = null; else 0..V1_MAX_LOGPROBS alternatives */
    int echo;
    char **stop; /* p.n_stop strings */
    uint64_t seed;
    int has_seed;
    char user[65];
    int *bias_id; /* logit_bias: p.n_bias of them */
    float *bias_val;
} completion_request;

int completion_request_parse(const char *body, size_t len, const serve_config *cfg,
                             completion_request *out, api_error *err);
void completion_request_clear(completion_request *r);

/* Prompt i's choice with the given seed: r->p with the prompt and the seed
 * (pointers into r). */
charrnn_sample_params completion_choice_params(const completion_request *r, size_t i,
                                               uint64_t seed);

#endif

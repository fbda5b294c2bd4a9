/* POST /score bodies: {model, text, top_logprobs}, strictly parsed
 * (json_body.h): unknown and duplicate fields, wrong types, a text outside
 * 2..--max-score-chars characters and a log-probability budget overrun are
 * 400 errors naming the field. */
#ifndef CHARRNN_SERVE_SCORE_REQUEST_H
#define CHARRNN_SERVE_SCORE_REQUEST_H

#include "config.h"
#include "json_body.h"

#include <stddef.h>

typedef struct score_request {
    char *model; /* NULL = the default model */
    char *text;
    size_t text_len;
    int top_logprobs;
    const serve_config *cfg;
} score_request;

/* Parses body (len bytes). Returns 0, or -1 with err filled (nothing to
 * clear). */
int score_request_parse(const char *body, size_t len, const serve_config *cfg, score_request *r,
                        api_error *err);
void score_request_clear(score_request *r);

#endif

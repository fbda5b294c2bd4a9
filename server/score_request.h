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

/* The members every body that reads a text shares (/score, /inspect), v
 * being the member and src its source text. score_request_model: a model
 * name into *model (strdup). score_request_text: a string without U+0000 of
 * min_chars..--max-score-chars characters into *text (strdup) and *len
 * (bytes); too short is a 400, too long over_status (/score answers 400,
 * /inspect 413); why follows the range in the message ("" for none). Both
 * return 0, or -1 with err filled and nothing allocated. */
int score_request_model(const cJSON *v, char **model, api_error *err);
int score_request_text(const cJSON *v, span src, const serve_config *cfg, size_t min_chars,
                       unsigned over_status, const char *why, char **text, size_t *len,
                       api_error *err);

#endif

/* POST /inspect bodies: {model, text, layer, units, state, find, decimals,
 * match, saturation}, strictly parsed (json_body.h), the model and the text as /score
 * reads them (score_request_model, score_request_text: a text over
 * --max-score-chars is a 413). Wrong types, out-of-range numbers, unknown
 * states and features, more than CHARRNN_INSPECT_MAX_UNITS units and a
 * request that asks for no mode (units, find, match or saturation) are 400
 * errors naming the field. What depends on the model (the layer and the
 * units in range, "cell", a gate or saturation of a model that is not an
 * LSTM) is checked when the recorder is created. */
#ifndef CHARRNN_SERVE_INSPECT_REQUEST_H
#define CHARRNN_SERVE_INSPECT_REQUEST_H

#include "charrnn/inspect.h"
#include "config.h"
#include "json_body.h"

#include <stddef.h>

typedef struct inspect_request {
    char *model; /* NULL = the default model */
    char *text;
    size_t text_len;
    int layer; /* 1-based; 0 = not given */
    int units[CHARRNN_INSPECT_MAX_UNITS];
    int n_units; /* 0 = not given */
    int state;   /* -1 = not given */
    unsigned find;
    int decimals;
    int has_match;
    int saturation; /* the gates' saturation per layer, gate and unit */
    double match_start, match_end, match_threshold;
    const serve_config *cfg;
} inspect_request;

/* Parses body (len bytes). Returns 0, or -1 with err filled (nothing to
 * clear). Defaults: state -1 (the handler picks the model's cell state where
 * there is one), decimals 4. */
int inspect_request_parse(const char *body, size_t len, const serve_config *cfg, inspect_request *r,
                          api_error *err);
void inspect_request_clear(inspect_request *r);

#endif

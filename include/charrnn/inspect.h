/* Inside the model: the state of a layer after each character of a text, and
 * the units whose state follows a feature of the text (discovery).
 *
 * A recorder (charrnn_inspect) is handed to a stream through the sampling
 * parameters (charrnn_sample_params.inspect, with length 0): the stream then
 * reads the whole text from a zero state, through the same prefill and step
 * that sampling and scoring use (there is no second LSTM), and after each
 * character hands the new state of every layer to the recorder. So a bf16 or
 * int8 model reports its own values. The recorder keeps what was asked:
 *
 *   values   one layer's cell (c_t, LSTM only) or hidden (h_t) state, or
 *            (LSTM) one gate's activation, of chosen units, values[k][t]
 *            right after text[t];
 *   find     for every layer, both states (LSTM) and every unit, Pearson's r
 *            between the unit's values and each chosen feature (below), over
 *            the whole text, from running sums: no (T x units) matrix;
 *   saturation  for every layer, sigmoid gate and unit, how often the gate
 *            is saturated (Karpathy, Johnson, Fei-Fei 2015, figure 3).
 *
 * Rounding: with decimals >= 0 every value is rounded to that many decimals
 * (round half away from zero of the float widened to double) before it is
 * kept or summed, so r is the r of exactly the rounded values a front end
 * serves. decimals < 0 keeps the float as computed.
 *
 * The features of position t (t counts code points), defined in the issue:
 *   line_position  characters since the last "\n" at or before t (0 on the
 *                  newline; the text starts as if after a newline, so the
 *                  first character has 1);
 *   word_position  characters since the last non-letter (0 on a non-letter);
 *                  letters are A-Z, a-z and U+00C0..U+024F but U+00D7, U+00F7;
 *   quote          the parity of the number of '"' in text[0..t];
 *   bracket_depth  the running count of ( [ { minus ) ] }, never below 0;
 *   indent         the spaces that open the current line, as read up to t
 *                  (0 on the newline itself).
 *
 * A recorder is reference counted: the stream holds one reference while it
 * exists, the creator another, so either may be freed first (a server can
 * let a cancelled job end on a worker while its handler returns). Each
 * position is written by the one thread that steps the stream. */
#ifndef CHARRNN_INSPECT_H
#define CHARRNN_INSPECT_H

#include "charrnn/model.h"

#include <stddef.h>
#include <stdint.h>

#define CHARRNN_INSPECT_MAX_UNITS 64 /* units of one values request */

/* What is recorded of a layer: its state, or (LSTM only) one of its gates'
 * activations at t, i_t f_t g_t o_t as PyTorch's nn.LSTM names them, exactly
 * the values the cell used (sigmoid, tanh for the cell gate g). */
typedef enum charrnn_state_kind {
    CHARRNN_STATE_CELL = 0,   /* c_t, LSTM only */
    CHARRNN_STATE_HIDDEN = 1, /* h_t */
    CHARRNN_STATE_INPUT_GATE, /* i_t (LSTM) */
    CHARRNN_STATE_FORGET_GATE,
    CHARRNN_STATE_CELL_GATE, /* g_t, in [-1, 1] */
    CHARRNN_STATE_OUTPUT_GATE,
    CHARRNN_STATE_COUNT
} charrnn_state_kind;

/* The sigmoid gates whose saturation is counted (the paper's figure): a
 * gate is left-saturated below 0.1 and right-saturated above 0.9. */
#define CHARRNN_SAT_GATES 3 /* input, forget, output */
#define CHARRNN_SAT_LEFT 0.1
#define CHARRNN_SAT_RIGHT 0.9

typedef enum charrnn_feature {
    CHARRNN_FEAT_LINE_POSITION = 0,
    CHARRNN_FEAT_WORD_POSITION,
    CHARRNN_FEAT_QUOTE,
    CHARRNN_FEAT_BRACKET_DEPTH,
    CHARRNN_FEAT_INDENT,
    CHARRNN_FEAT_COUNT
} charrnn_feature;

/* "line_position", ...; NULL out of range. */
const char *charrnn_feature_name(int f);
/* The feature named name, or -1. */
int charrnn_feature_parse(const char *name);
/* "cell", "hidden", "input_gate", "forget_gate", "cell_gate",
 * "output_gate"; NULL out of range. */
const char *charrnn_state_name(charrnn_state_kind s);
/* The state named name, or -1. */
int charrnn_state_parse(const char *name);
/* The gate of the g-th saturation gate (0..CHARRNN_SAT_GATES-1). */
charrnn_state_kind charrnn_sat_gate(int g);

/* The features of a UTF-8 text of n code points: out[f * n + t] for every
 * feature f < CHARRNN_FEAT_COUNT. The text must be valid UTF-8. */
void charrnn_text_features(const uint8_t *text, size_t len, size_t n, double *out);

typedef struct charrnn_inspect charrnn_inspect;

typedef struct charrnn_inspect_opts {
    /* values: layer (0-based, nearest the input first), state, and units
     * (n_units of them, 1..CHARRNN_INSPECT_MAX_UNITS, each 0..H-1, or
     * n_units = -1 for all H units of the layer, for span matching). */
    int layer;
    charrnn_state_kind state;
    const int *units;
    int n_units;
    /* find: a bit (1 << charrnn_feature) per feature; 0 = no discovery. */
    unsigned find;
    /* saturation (LSTM only): count, for every layer, sigmoid gate and unit,
     * the characters on which the gate is below CHARRNN_SAT_LEFT and above
     * CHARRNN_SAT_RIGHT. With values or find, or alone (layer, units and
     * find unused). */
    int saturation;
    int decimals; /* rounding (above); -1 none; at most 9 */
} charrnn_inspect_opts;

/* A recorder for text (UTF-8, n_chars code points: what the stream will
 * read) on model m. On a bad option: CHARRNN_EINVAL or CHARRNN_ERANGE, a
 * message, and *field set to the option's name ("layer", "units", "state",
 * "find", "text"). */
int charrnn_inspect_create(const charrnn_model *m, const char *text, size_t len,
                           const charrnn_inspect_opts *o, charrnn_inspect **out, const char **field,
                           char *err, size_t errlen);
void charrnn_inspect_retain(charrnn_inspect *r);
/* Drops one reference; the last frees. Accepts NULL. */
void charrnn_inspect_release(charrnn_inspect *r);

/* The text's characters (positions). */
size_t charrnn_inspect_chars(const charrnn_inspect *r);
/* Positions whose state the stream has handed over, for the last layer. */
size_t charrnn_inspect_filled(const charrnn_inspect *r);
/* Values mode: unit k's value after position t (rounded as asked). */
double charrnn_inspect_value(const charrnn_inspect *r, int k, size_t t);

typedef struct charrnn_found {
    int layer; /* 0-based */
    charrnn_state_kind state;
    int unit;
    charrnn_feature feature;
    double r;
} charrnn_found;

/* Find mode: the best `per_feature` units of every chosen feature (largest
 * |r| first; ties by layer, state, unit), all of them sorted by |r|, at most
 * cap into out. A feature that is constant over the text has no r and no
 * unit; neither has a constant unit. Returns how many there are. */
size_t charrnn_inspect_found(const charrnn_inspect *r, int per_feature, charrnn_found *out,
                             size_t cap);

/* Saturation mode: the fractions of the characters read on which layer l's
 * sigmoid gate g (charrnn_sat_gate) of unit j was left- and
 * right-saturated; 0 and 0 before any. */
void charrnn_inspect_saturation(const charrnn_inspect *r, int l, int g, int j, double *left,
                                double *right);

/* Pearson's r of x and y (n each) from the same running sums that find mode
 * keeps; NaN when either is constant. */
double charrnn_pearson(const double *x, const double *y, size_t n);

typedef struct charrnn_span {
    size_t start, end; /* positions [start, end) */
} charrnn_span;

/* LSTMVis's match, in values mode with every unit of the layer (n_units -1):
 * the units above threshold at every position of [start, end) and not
 * above it at start - 1 and at end (where those exist), into units (at most
 * cap_units, *n_units how many matched in all); then the maximal spans where
 * all of them are above threshold together, other than the one that
 * contains [start, end), into spans (cap_spans; *n_spans in all). No unit
 * matched: no span. CHARRNN_EINVAL for a recorder of chosen units or an
 * empty or out-of-range span. */
int charrnn_inspect_match(const charrnn_inspect *r, size_t start, size_t end, double threshold,
                          int *units, size_t cap_units, size_t *n_units, charrnn_span *spans,
                          size_t cap_spans, size_t *n_spans);

/* Reads the text through a stream of m (prefill, then steps) into r, on the
 * calling thread: what charrnn-inspect and the tests do; the server runs the
 * same stream in its engine. */
int charrnn_inspect_run(const charrnn_model *m, const char *text, size_t len, charrnn_inspect *r,
                        char *err, size_t errlen);

#endif

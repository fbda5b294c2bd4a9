/* Inside the model (charrnn/inspect.h): the recorder a stream hands its states
 * to, the text's features, Pearson's r and LSTMVis's span match. The states
 * come from the stream's own prefill and step (prefill.c, sampler.c call
 * charrnn_inspect_put): this file computes no LSTM. */
#include "charrnn/inspect.h"
#include "charrnn/sampler.h"
#include "charrnn/status.h"
#include "charrnn/vocab.h"

#include "stream_impl.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static const char *const feature_names[CHARRNN_FEAT_COUNT] = {"line_position", "word_position",
                                                              "quote", "bracket_depth", "indent"};

struct charrnn_inspect {
    atomic_int refs;
    int L, H, lstm, states; /* states per layer: 2 for LSTM (cell, hidden), else 1 */
    size_t n;
    double scale; /* 10^decimals, 0 = no rounding */
    /* values */
    int layer, n_units;
    charrnn_state_kind state;
    int *units;
    float *values; /* (n_units, n) */
    atomic_size_t filled;
    /* find: per slot ((l * states + s) * H + unit) the sums of x and x^2 and
     * of x * feature for each feature */
    unsigned find;
    double *feat; /* (F, n) */
    double *sx, *sxx, *sxy;
    /* saturation: per ((l * CHARRNN_SAT_GATES + g) * H + unit) the count of
     * left- then right-saturated characters, two numbers each */
    uint32_t *sat;
};

static const char *const state_names[CHARRNN_STATE_COUNT] = {
    "cell", "hidden", "input_gate", "forget_gate", "cell_gate", "output_gate"};

/* The index of name in names[0..n), -1 when it is none of them. */
static int index_of(const char *const *names, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(name, names[i]))
            return i;
    return -1;
}

const char *charrnn_feature_name(int f)
{
    return f >= 0 && f < CHARRNN_FEAT_COUNT ? feature_names[f] : NULL;
}

int charrnn_feature_parse(const char *name)
{
    return index_of(feature_names, CHARRNN_FEAT_COUNT, name);
}

const char *charrnn_state_name(charrnn_state_kind s)
{
    return s >= 0 && s < CHARRNN_STATE_COUNT ? state_names[s] : NULL;
}

int charrnn_state_parse(const char *name)
{
    return index_of(state_names, CHARRNN_STATE_COUNT, name);
}

charrnn_state_kind charrnn_sat_gate(int g)
{
    static const charrnn_state_kind gates[CHARRNN_SAT_GATES] = {
        CHARRNN_STATE_INPUT_GATE, CHARRNN_STATE_FORGET_GATE, CHARRNN_STATE_OUTPUT_GATE};
    return gates[g];
}

/* The activations of gate state s (a gate kind) in the 4H i, f, g, o buffer. */
static const float *gate_row(const float *gates, charrnn_state_kind s, int H)
{
    return gates + (size_t)(s - CHARRNN_STATE_INPUT_GATE) * (size_t)H;
}

static int is_letter(uint32_t c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
        (c >= 0xC0 && c <= 0x24F && c != 0xD7 && c != 0xF7);
}

void charrnn_text_features(const uint8_t *text, size_t len, size_t n, double *out)
{
    double line = 0, word = 0, depth = 0, indent = 0;
    int quote = 0, leading = 1; /* still reading the current line's opening spaces */
    size_t off = 0;
    for (size_t t = 0; t < n; t++) {
        uint32_t c = 0;
        int k = off < len ? charrnn_utf8_decode(text + off, len - off, &c) : 0;
        off += k > 0 ? (size_t)k : 1;
        if (c == '\n')
            line = 0, indent = 0, leading = 1;
        else
            line++;
        word = is_letter(c) ? word + 1 : 0;
        quote ^= c == '"';
        if (c == '(' || c == '[' || c == '{')
            depth++;
        else if ((c == ')' || c == ']' || c == '}') && depth > 0)
            depth--;
        if (c != '\n') {
            if (leading && c == ' ')
                indent++;
            else
                leading = 0;
        }
        double v[CHARRNN_FEAT_COUNT] = {line, word, quote, depth, indent};
        for (int f = 0; f < CHARRNN_FEAT_COUNT; f++)
            out[(size_t)f * n + t] = v[f];
    }
}

/* Code points of a UTF-8 text (an invalid byte counts as one: the stream
 * refuses such a text anyway). */
static size_t utf8_count(const uint8_t *s, size_t len)
{
    size_t n = 0;
    for (size_t off = 0; off < len; n++) {
        uint32_t c;
        int k = charrnn_utf8_decode(s + off, len - off, &c);
        off += k > 0 ? (size_t)k : 1;
    }
    return n;
}

void charrnn_inspect_retain(charrnn_inspect *r)
{
    atomic_fetch_add(&r->refs, 1);
}

void charrnn_inspect_release(charrnn_inspect *r)
{
    if (!r || atomic_fetch_sub(&r->refs, 1) != 1)
        return;
    free(r->units), free(r->values), free(r->feat), free(r->sx), free(r->sxx), free(r->sxy);
    free(r->sat);
    free(r);
}

int charrnn_inspect_create(const charrnn_model *m, const char *text, size_t len,
                           const charrnn_inspect_opts *o, charrnn_inspect **out, const char **field,
                           char *err, size_t errlen)
{
    *out = NULL;
    *field = NULL;
    const int L = m->cfg.num_layers, H = m->cfg.hidden_size;
    const int lstm = m->cfg.cell == CHARRNN_CELL_LSTM;
    if (o->decimals > 9) {
        *field = "decimals";
        return charrnn_fail(err, errlen, CHARRNN_ERANGE, "'decimals' must be at most 9");
    }
    if (o->find >= (1u << CHARRNN_FEAT_COUNT)) {
        *field = "find";
        return charrnn_fail(err, errlen, CHARRNN_EINVAL, "unknown feature");
    }
    if (o->saturation && !lstm) {
        *field = "saturation";
        return charrnn_fail(err, errlen, CHARRNN_EINVAL,
                            "this model's cell has no LSTM gates: no 'saturation'");
    }
    /* values: unless find, or saturation alone */
    const int values = !o->find && !(o->saturation && o->n_units == 0);
    if (values) {
        if (o->layer < 0 || o->layer >= L) {
            *field = "layer";
            return charrnn_fail(err, errlen, CHARRNN_ERANGE,
                                "'layer' must be 1..%d (1 is nearest the input), got %d", L,
                                o->layer + 1);
        }
        if (o->state != CHARRNN_STATE_HIDDEN &&
            (o->state < 0 || o->state >= CHARRNN_STATE_COUNT || !lstm)) {
            *field = "state";
            return charrnn_fail(err, errlen, CHARRNN_EINVAL,
                                lstm ? "'state' must be \"cell\", \"hidden\", \"input_gate\", "
                                       "\"forget_gate\", \"cell_gate\" or \"output_gate\""
                                     : "this model's cell has no cell state or LSTM gates: "
                                       "'state' must be \"hidden\"");
        }
        if (o->n_units != -1 && (o->n_units < 1 || o->n_units > CHARRNN_INSPECT_MAX_UNITS)) {
            *field = "units";
            return charrnn_fail(err, errlen, CHARRNN_ERANGE, "'units' must list 1..%d units",
                                CHARRNN_INSPECT_MAX_UNITS);
        }
        for (int k = 0; k < o->n_units; k++)
            if (o->units[k] < 0 || o->units[k] >= H) {
                *field = "units";
                return charrnn_fail(err, errlen, CHARRNN_ERANGE,
                                    "unit %d is out of range: layer %d has units 0..%d",
                                    o->units[k], o->layer + 1, H - 1);
            }
    }
    size_t n = utf8_count((const uint8_t *)text, len);
    charrnn_inspect *r = calloc(1, sizeof *r);
    if (!r)
        return charrnn_fail(err, errlen, CHARRNN_ENOMEM, "out of memory");
    atomic_init(&r->refs, 1);
    atomic_init(&r->filled, 0);
    r->L = L, r->H = H, r->lstm = lstm, r->states = lstm ? 2 : 1, r->n = n;
    r->scale = o->decimals >= 0 ? pow(10.0, o->decimals) : 0.0;
    r->find = o->find;
    int nomem = 0;
    if (o->saturation) {
        r->sat = calloc((size_t)L * CHARRNN_SAT_GATES * H * 2, sizeof *r->sat);
        nomem = !r->sat;
    }
    if (o->find) {
        size_t slots = (size_t)L * r->states * H;
        r->feat = malloc((size_t)CHARRNN_FEAT_COUNT * (n ? n : 1) * sizeof *r->feat);
        r->sx = calloc(slots, sizeof *r->sx), r->sxx = calloc(slots, sizeof *r->sxx);
        r->sxy = calloc(slots * CHARRNN_FEAT_COUNT, sizeof *r->sxy);
        nomem = nomem || !r->feat || !r->sx || !r->sxx || !r->sxy;
        if (!nomem)
            charrnn_text_features((const uint8_t *)text, len, n, r->feat);
    } else if (values) {
        r->layer = o->layer, r->state = o->state;
        r->n_units = o->n_units == -1 ? H : o->n_units;
        r->units = malloc((size_t)r->n_units * sizeof *r->units);
        r->values = malloc((size_t)r->n_units * (n ? n : 1) * sizeof *r->values);
        nomem = nomem || !r->units || !r->values;
        for (int k = 0; !nomem && k < r->n_units; k++)
            r->units[k] = o->n_units == -1 ? k : o->units[k];
    }
    if (nomem) {
        charrnn_inspect_release(r);
        return charrnn_fail(err, errlen, CHARRNN_ENOMEM, "out of memory");
    }
    *out = r;
    return CHARRNN_OK;
}

size_t charrnn_inspect_chars(const charrnn_inspect *r)
{
    return r->n;
}

size_t charrnn_inspect_filled(const charrnn_inspect *r)
{
    return atomic_load(&r->filled);
}

static double rounded(const charrnn_inspect *r, float v)
{
    return r->scale > 0 ? round((double)v * r->scale) / r->scale : (double)v;
}

double charrnn_inspect_value(const charrnn_inspect *r, int k, size_t t)
{
    return rounded(r, r->values[(size_t)k * r->n + t]);
}

void charrnn_inspect_put(charrnn_inspect *r, int l, size_t t, const float *h, const float *c,
                         const float *gates)
{
    if (t >= r->n)
        return;
    if (r->values && l == r->layer) {
        const float *row = r->state == CHARRNN_STATE_CELL ? c
            : r->state == CHARRNN_STATE_HIDDEN            ? h
                                                          : gate_row(gates, r->state, r->H);
        for (int k = 0; k < r->n_units; k++)
            r->values[(size_t)k * r->n + t] = row[r->units[k]];
    }
    if (r->find) {
        double y[CHARRNN_FEAT_COUNT];
        for (int f = 0; f < CHARRNN_FEAT_COUNT; f++)
            y[f] = r->feat[(size_t)f * r->n + t];
        for (int s = 0; s < r->states; s++) {
            const float *row = r->lstm && s == CHARRNN_STATE_CELL ? c : h;
            size_t slot0 = ((size_t)l * r->states + s) * r->H;
            for (int j = 0; j < r->H; j++) {
                double x = rounded(r, row[j]);
                size_t slot = slot0 + j;
                r->sx[slot] += x, r->sxx[slot] += x * x;
                double *sxy = r->sxy + slot * CHARRNN_FEAT_COUNT;
                for (int f = 0; f < CHARRNN_FEAT_COUNT; f++)
                    sxy[f] += x * y[f];
            }
        }
    }
    if (r->sat)
        for (int g = 0; g < CHARRNN_SAT_GATES; g++) {
            const float *row = gate_row(gates, charrnn_sat_gate(g), r->H);
            uint32_t *n = r->sat + ((size_t)l * CHARRNN_SAT_GATES + g) * r->H * 2;
            for (int j = 0; j < r->H; j++) {
                n[2 * j] += row[j] < CHARRNN_SAT_LEFT;
                n[2 * j + 1] += row[j] > CHARRNN_SAT_RIGHT;
            }
        }
    if (l == r->L - 1)
        atomic_store(&r->filled, t + 1);
}

void charrnn_inspect_saturation(const charrnn_inspect *r, int l, int g, int j, double *left,
                                double *right)
{
    size_t n = charrnn_inspect_filled(r);
    *left = *right = 0.0;
    if (!r->sat || !n)
        return;
    const uint32_t *c = r->sat + (((size_t)l * CHARRNN_SAT_GATES + g) * r->H + j) * 2;
    *left = (double)c[0] / (double)n;
    *right = (double)c[1] / (double)n;
}

/* r from the sums of x, x^2, y, y^2 and x*y over n. */
static double pearson_sums(double n, double sx, double sxx, double sy, double syy, double sxy)
{
    double vx = n * sxx - sx * sx, vy = n * syy - sy * sy;
    if (!(vx > 0) || !(vy > 0))
        return NAN;
    double r = (n * sxy - sx * sy) / sqrt(vx * vy);
    return r > 1 ? 1 : r < -1 ? -1 : r;
}

double charrnn_pearson(const double *x, const double *y, size_t n)
{
    double sx = 0, sxx = 0, sy = 0, syy = 0, sxy = 0;
    for (size_t t = 0; t < n; t++)
        sx += x[t], sxx += x[t] * x[t], sy += y[t], syy += y[t] * y[t], sxy += x[t] * y[t];
    return pearson_sums((double)n, sx, sxx, sy, syy, sxy);
}

static int found_cmp(const void *a, const void *b)
{
    const charrnn_found *x = a, *y = b;
    double ax = fabs(x->r), ay = fabs(y->r);
    if (ax != ay)
        return ax > ay ? -1 : 1;
    if (x->feature != y->feature)
        return x->feature < y->feature ? -1 : 1;
    if (x->layer != y->layer)
        return x->layer < y->layer ? -1 : 1;
    if (x->state != y->state)
        return x->state < y->state ? -1 : 1;
    return x->unit < y->unit ? -1 : x->unit > y->unit;
}

size_t charrnn_inspect_found(const charrnn_inspect *r, int per_feature, charrnn_found *out,
                             size_t cap)
{
    if (!r->find || per_feature < 1)
        return 0;
    const size_t slots = (size_t)r->L * r->states * r->H;
    const double n = (double)r->n;
    charrnn_found *best = malloc((size_t)per_feature * sizeof *best);
    charrnn_found *all = malloc((size_t)per_feature * CHARRNN_FEAT_COUNT * sizeof *all);
    size_t na = 0;
    for (int f = 0; best && all && f < CHARRNN_FEAT_COUNT; f++) {
        if (!(r->find & (1u << f)))
            continue;
        double sy = 0, syy = 0;
        for (size_t t = 0; t < r->n; t++) {
            double y = r->feat[(size_t)f * r->n + t];
            sy += y, syy += y * y;
        }
        int nb = 0;
        for (size_t slot = 0; slot < slots; slot++) {
            double v = pearson_sums(n, r->sx[slot], r->sxx[slot], sy, syy,
                                    r->sxy[slot * CHARRNN_FEAT_COUNT + f]);
            if (isnan(v))
                continue;
            int u = (int)(slot % (size_t)r->H), ls = (int)(slot / (size_t)r->H);
            charrnn_found c = {ls / r->states,
                               r->lstm ? (charrnn_state_kind)(ls % r->states)
                                       : CHARRNN_STATE_HIDDEN,
                               u, (charrnn_feature)f, v};
            /* insertion into the kept best (slots come in order: ties keep the first) */
            int i = nb < per_feature ? nb++ : per_feature;
            if (i == per_feature && fabs(v) <= fabs(best[per_feature - 1].r))
                continue;
            if (i == per_feature)
                i = per_feature - 1;
            while (i > 0 && fabs(best[i - 1].r) < fabs(v)) {
                best[i] = best[i - 1];
                i--;
            }
            best[i] = c;
        }
        memcpy(all + na, best, (size_t)nb * sizeof *best);
        na += (size_t)nb;
    }
    if (all)
        qsort(all, na, sizeof *all, found_cmp);
    size_t k = na < cap ? na : cap;
    if (all && out)
        memcpy(out, all, k * sizeof *out);
    free(best), free(all);
    return na;
}

/* 1 if the unit's (rounded) value at t is above the threshold. */
static int above(const charrnn_inspect *r, int k, size_t t, double th)
{
    return charrnn_inspect_value(r, k, t) > th;
}

int charrnn_inspect_match(const charrnn_inspect *r, size_t start, size_t end, double threshold,
                          int *units, size_t cap_units, size_t *n_units, charrnn_span *spans,
                          size_t cap_spans, size_t *n_spans)
{
    *n_units = 0, *n_spans = 0;
    if (!r->values || r->n_units != r->H || start >= end || end > r->n)
        return CHARRNN_EINVAL;
    int *hit = malloc((size_t)r->H * sizeof *hit);
    if (!hit)
        return CHARRNN_ENOMEM;
    size_t nh = 0;
    for (int k = 0; k < r->H; k++) {
        int ok = (start == 0 || !above(r, k, start - 1, threshold)) &&
            (end == r->n || !above(r, k, end, threshold));
        for (size_t t = start; ok && t < end; t++)
            ok = above(r, k, t, threshold);
        if (ok) {
            if (nh < cap_units)
                units[nh] = k;
            hit[nh++] = k;
        }
    }
    *n_units = nh;
    size_t ns = 0;
    for (size_t t = 0; nh > 0 && t < r->n;) {
        size_t e = t;
        for (;; e++) {
            size_t i = 0;
            while (e < r->n && i < nh && above(r, hit[i], e, threshold))
                i++;
            if (e >= r->n || i < nh)
                break;
        }
        if (e > t) {
            if (!(t <= start && e >= end)) { /* not the span asked about */
                if (ns < cap_spans)
                    spans[ns] = (charrnn_span){t, e};
                ns++;
            }
            t = e;
        } else {
            t++;
        }
    }
    *n_spans = ns;
    free(hit);
    return CHARRNN_OK;
}

int charrnn_inspect_run(const charrnn_model *m, const char *text, size_t len, charrnn_inspect *r,
                        char *err, size_t errlen)
{
    charrnn_sample_params p = charrnn_sample_defaults();
    p.prime = text, p.prime_len = len, p.length = 0, p.inspect = r;
    charrnn_stream *s;
    int rc = charrnn_stream_create(m, &p, &s, err, errlen);
    if (rc)
        return rc;
    charrnn_stream_prefill(m, s, (size_t)-1);
    while (!charrnn_stream_done(s) && rc == CHARRNN_OK)
        rc = charrnn_infer_step(m, 1, &s);
    charrnn_stream_free(s);
    return rc;
}

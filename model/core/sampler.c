/* Sampling streams and the batch-invariant inference step.
 *
 * A step feeds each stream's pending token through the network and samples
 * the next one. Generated characters are emitted when they are fed, so the
 * prime and the generated text follow one path: with prime p1..pn the steps
 * feed p1..pn, g1..gN; without a prime g1 is drawn uniformly at creation.
 * The step that would feed the last character is skipped (its output is not
 * needed). Every dot product has a fixed reduction order, independent of how
 * many streams are stepped together. */
#include "charrnn/sampler.h"

#include "charrnn/logprob.h"
#include "charrnn/rowsplit.h"
#include "charrnn/status.h"

#include "fastmath.h"
#include "rowdot_variants.h"
#include "stream_impl.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* top_k up to this selects with a heap of k (O(V log k)); above it, and for
 * top_p, the whole vocabulary is radix sorted (O(V)). */
#define HEAP_K_MAX 256

charrnn_sample_params charrnn_sample_defaults(void)
{
    charrnn_sample_params p = {0};
    p.length = 200;
    p.temperature = 1.0f;
    p.top_p = 1.0f;
    p.repetition_penalty = 1.0f;
    p.penalty_window = CHARRNN_DEFAULT_PENALTY_WINDOW;
    return p;
}

const char *charrnn_finish_name(charrnn_finish f)
{
    return f == CHARRNN_FINISH_LENGTH ? "length" : f == CHARRNN_FINISH_STOP ? "stop" : "none";
}

void charrnn_stream_free(charrnn_stream *s)
{
    if (!s)
        return;
    free(s->stop_buf), free(s->prime), free(s->h), free(s->c), free(s->gi), free(s->gh);
    free(s->logits), free(s->order), free(s->weight), free(s->keys);
    free(s->bias), free(s->biased);
    free(s->win), free(s->count), free(s->seen), free(s->seen_at);
    free(s->next_top_id), free(s->out_top_id), free(s->next_top_lp), free(s->out_top_lp);
    charrnn_regex_free(s->re);
    charrnn_inspect_release(s->p.inspect);
    free(s);
}

/* Adds tok to the penalty window, dropping the oldest token when it is full. */
static void window_push(charrnn_stream *s, int tok)
{
    const size_t N = (size_t)s->p.penalty_window;
    if (s->win_len == N) {
        int old = s->win[s->win_pos];
        if (--s->count[old] == 0) { /* out of the seen list: the last one takes its place */
            uint16_t last = s->seen[--s->n_seen];
            s->seen[s->seen_at[old]] = last;
            s->seen_at[last] = s->seen_at[old];
        }
    } else {
        s->win_len++;
    }
    s->win[s->win_pos] = (uint16_t)tok;
    s->win_pos = s->win_pos + 1 == N ? 0 : s->win_pos + 1;
    if (s->count[tok]++ == 0) {
        s->seen_at[tok] = (uint16_t)s->n_seen;
        s->seen[s->n_seen++] = (uint16_t)tok;
    }
}

/* Compiles the stream's regex over the model's vocabulary; the start must
 * lead to some non-empty match (a stream generates at least one character). */
static int regex_compile(charrnn_stream *s, const char *pattern, char *err, size_t errlen)
{
    const int V = s->m->cfg.vocab_size;
    uint32_t *cps = malloc((size_t)V * sizeof *cps);
    if (!cps)
        return charrnn_fail(err, errlen, CHARRNN_ENOMEM, "out of memory");
    for (int v = 0; v < V; v++)
        cps[v] = charrnn_vocab_codepoint(s->m->vocab, (size_t)v);
    char why[CHARRNN_ERR_MAX];
    int rc =
        charrnn_regex_compile(pattern, strlen(pattern), cps, (size_t)V, &s->re, why, sizeof why);
    free(cps);
    if (rc == CHARRNN_ENOMEM)
        return charrnn_fail(err, errlen, rc, "out of memory");
    if (rc)
        return charrnn_fail(err, errlen, rc, "regex: %s", why);
    if (!charrnn_regex_live(s->re, 0))
        return charrnn_fail(err, errlen, CHARRNN_ERANGE,
                            "regex: cannot be satisfied: no non-empty text of this model's %d "
                            "characters matches it",
                            V);
    return CHARRNN_OK;
}

/* The unprimed first character: uniform over the vocabulary, or over the
 * characters the regex allows (the k-th allowed one for the same draw). */
static int first_uniform(charrnn_stream *s)
{
    const int V = s->m->cfg.vocab_size;
    int n = V;
    if (s->re) {
        n = 0;
        for (int v = 0; v < V; v++)
            n += charrnn_regex_next(s->re, 0, (size_t)v) >= 0;
    }
    int k = (int)(charrnn_rng_uniform(&s->rng) * n);
    k = k < n ? k : n - 1;
    if (!s->re)
        return k;
    for (int v = 0; v < V; v++)
        if (charrnn_regex_next(s->re, 0, (size_t)v) >= 0 && k-- == 0)
            return v;
    return V - 1; /* not reached: n allowed characters */
}

int charrnn_stream_create(const charrnn_model *m, const charrnn_sample_params *p,
                          charrnn_stream **out, char *err, size_t errlen)
{
    return charrnn_stream_create_field(m, p, out, NULL, err, errlen);
}

int charrnn_stream_create_field(const charrnn_model *m, const charrnn_sample_params *p,
                                charrnn_stream **out, charrnn_sample_field *field, char *err,
                                size_t errlen)
{
    *out = NULL;
    charrnn_sample_field bad_field = CHARRNN_SAMPLE_NONE;
    if (!field)
        field = &bad_field;
    int rc = charrnn_sample_params_check_model(p, m, field, err, errlen);
    if (rc)
        return rc;
    size_t stop_total = 0;
    for (size_t i = 0; i < p->n_stop; i++)
        stop_total += strlen(p->stop[i]) + 1;
    const int H = m->cfg.hidden_size, L = m->cfg.num_layers, V = m->cfg.vocab_size;
    const int GH = charrnn_cell_gates(m->cfg.cell) * H;
    charrnn_stream *s = calloc(1, sizeof *s);
    if (!s)
        return charrnn_fail(err, errlen, CHARRNN_ENOMEM, "out of memory");
    s->m = m;
    s->p = *p;
    if (p->inspect)
        charrnn_inspect_retain(p->inspect); /* released by charrnn_stream_free */
    s->h = charrnn_alloc_floats((size_t)2 * L * H);
    s->c = charrnn_alloc_floats((size_t)2 * L * H);
    s->gi = charrnn_alloc_floats((size_t)GH);
    s->gh = charrnn_alloc_floats((size_t)GH);
    s->logits = charrnn_alloc_floats((size_t)V);
    s->order = malloc((size_t)V * sizeof *s->order);
    s->weight = malloc((size_t)V * sizeof *s->weight);
    int sorts = p->top_p < 1.0f || (p->top_k > HEAP_K_MAX && p->top_k < V) || p->top_k >= V;
    s->keys = sorts ? malloc(2 * (size_t)V * sizeof *s->keys) : NULL;
    s->cap = p->prime_len + 16; /* the prime's characters are at most its bytes */
    s->prime = malloc(s->cap * sizeof *s->prime);
    s->stop_buf = malloc(stop_total ? stop_total : 1);
    int nomem = 0;
    s->penalised = p->repetition_penalty != 1.0f || p->presence_penalty != 0.0f ||
        p->frequency_penalty != 0.0f;
    if (s->penalised) {
        const size_t N = (size_t)p->penalty_window;
        s->win = malloc(N * sizeof *s->win), s->seen = malloc(N * sizeof *s->seen);
        s->count = calloc((size_t)V, sizeof *s->count);
        s->seen_at = calloc((size_t)V, sizeof *s->seen_at);
        nomem |= !s->win || !s->seen || !s->count || !s->seen_at;
    }
    if (p->n_bias > 0 || s->penalised || p->regex) {
        s->biased = malloc((size_t)V * sizeof *s->biased);
        nomem |= !s->biased;
    }
    if (p->n_bias > 0) {
        s->bias = calloc((size_t)V, sizeof *s->bias);
        nomem |= !s->bias;
        for (size_t i = 0; s->bias && i < p->n_bias; i++)
            s->bias[p->bias_id[i]] = p->bias_val[i];
    }
    if (p->logprobs) {
        size_t k = p->top_logprobs > 0 ? (size_t)p->top_logprobs : 1;
        s->k_top = p->top_logprobs;
        s->next_top_id = malloc(k * sizeof(int)), s->out_top_id = malloc(k * sizeof(int));
        s->next_top_lp = malloc(k * sizeof(float)), s->out_top_lp = malloc(k * sizeof(float));
        nomem |= !s->next_top_id || !s->out_top_id || !s->next_top_lp || !s->out_top_lp;
    }
    s->p.bias_id = NULL, s->p.bias_val = NULL;
    if (nomem || !s->h || !s->c || !s->gi || !s->gh || !s->logits || !s->order || !s->weight ||
        (sorts && !s->keys) || !s->prime || !s->stop_buf) {
        charrnn_stream_free(s);
        return charrnn_fail(err, errlen, CHARRNN_ENOMEM, "out of memory");
    }
    char *w = s->stop_buf;
    for (size_t i = 0; i < p->n_stop; i++) {
        size_t len = strlen(p->stop[i]);
        memcpy(w, p->stop[i], len + 1);
        s->stop[i] = w, s->stop_len[i] = len;
        s->max_stop = len > s->max_stop ? len : s->max_stop;
        w += len + 1;
    }
    s->p.stop = NULL, s->p.prime = NULL, s->p.regex = NULL;
    rc = charrnn_vocab_encode(m->vocab, (const uint8_t *)p->prime, p->prime_len, 0, s->prime,
                              &s->n_prime, err, errlen);
    if (rc == CHARRNN_OK && p->regex) {
        rc = regex_compile(s, p->regex, err, errlen);
        *field = rc && rc != CHARRNN_ENOMEM ? CHARRNN_SAMPLE_REGEX : CHARRNN_SAMPLE_NONE;
    } else if (rc) {
        *field = rc == CHARRNN_ENOMEM ? CHARRNN_SAMPLE_NONE : CHARRNN_SAMPLE_PRIME;
    }
    if (rc) {
        charrnn_stream_free(s);
        return rc;
    }
    charrnn_rng_seed(&s->rng, p->seed);
    if (p->length == 0 && s->n_prime <= (p->inspect ? 0u : 1u))
        s->finish = CHARRNN_FINISH_LENGTH; /* nothing to score or inspect */
    if (s->n_prime > 0) {
        s->pending = s->prime[0];
    } else {
        s->pending = first_uniform(s);
        if (s->re)
            s->re_state = charrnn_regex_next(s->re, 0, (size_t)s->pending);
    }
    if (s->penalised) { /* the window starts with the prime's last characters */
        size_t N = (size_t)p->penalty_window;
        for (size_t i = s->n_prime > N ? s->n_prime - N : 0; i < s->n_prime; i++)
            window_push(s, s->prime[i]);
        if (s->n_prime == 0)
            window_push(s, s->pending); /* the first generated character */
    }
    *out = s;
    return CHARRNN_OK;
}

int charrnn_stream_done(const charrnn_stream *s)
{
    return s->finish != CHARRNN_FINISH_NONE;
}
charrnn_finish charrnn_stream_finish_reason(const charrnn_stream *s)
{
    return s->finish;
}
size_t charrnn_stream_prime_chars(const charrnn_stream *s)
{
    return s->n_prime;
}
size_t charrnn_stream_generated_chars(const charrnn_stream *s)
{
    return s->generated;
}

/* Streams stepped together read each weight row once per tile (instead of
 * once per stream): the batching that turns matrix-vector products into a
 * matrix-matrix product. 16 streams of hidden state stay in L1/L2. */
#define TILE CHARRNN_RD_MAX_STREAMS

/* Pre-activations of layer l for a tile of streams: gi = W_ih x + b_ih,
 * gh = W_hh h + b_hh. Layer 0's input is the token (a column of W_ih); a
 * higher layer's is the new h of the layer below. Every (stream, row) dot
 * product is the same fixed-order computation whatever the tile holds
 * (rowdot.h), in whichever build of the kernel runs (rowdot_variants.h). */
static void layer_gates(const charrnn_model *m, charrnn_stream *const *ss, size_t n, int l,
                        charrnn_rowsplit *rs)
{
    const int H = m->cfg.hidden_size, L = m->cfg.num_layers;
    const int GH = charrnn_cell_gates(m->cfg.cell) * H;
    const charrnn_layer_params *p = &m->p.layer[l];
    const float *x[TILE], *xh[TILE];
    float *y[TILE], *yh[TILE];
    charrnn_rd_job jobs[2];
    int nj = 0;
    if (l == 0) {
        for (size_t i = 0; i < n; i++)
            stream_input_column(m, ss[i]->pending, ss[i]->gi);
    } else {
        for (size_t i = 0; i < n; i++)
            x[i] = ss[i]->h + state_new(ss[i], l - 1, L, H), y[i] = ss[i]->gi;
        jobs[nj++] = stream_job(m, &m->w_ih[l], p->b_ih, GH, H, n, x, y);
    }
    for (size_t i = 0; i < n; i++)
        xh[i] = ss[i]->h + state_old(ss[i], l, L, H), yh[i] = ss[i]->gh;
    jobs[nj++] = stream_job(m, &m->w_hh[l], p->b_hh, GH, H, n, xh, yh);
    charrnn_rd_run(rs, jobs, nj);
}

/* Every token in ord[0..V), best first (charrnn_top_k's order, logprob.h): a stable
 * LSD radix sort, 8 bits a pass, on keys that order the floats descending,
 * over tokens in increasing order (so ties stay by lower token). -0 is keyed
 * as +0, which compare equal there. keys holds 2V words of scratch. */
static void radix_order(const float *lg, int V, int *ord, uint32_t *keys)
{
    uint32_t *key = keys, *tmp = keys + V;
    int *src = ord, *dst = (int *)tmp;
    for (int v = 0; v < V; v++) {
        float f = lg[v] == 0.0f ? 0.0f : lg[v];
        uint32_t b;
        memcpy(&b, &f, sizeof b);
        b = b & 0x80000000u ? ~b : b | 0x80000000u; /* increasing with f */
        key[v] = ~b;
        src[v] = v;
    }
    for (int shift = 0; shift < 32; shift += 8) {
        size_t count[257] = {0};
        for (int v = 0; v < V; v++)
            count[((key[v] >> shift) & 0xFF) + 1]++;
        if (count[((key[0] >> shift) & 0xFF) + 1] == (size_t)V)
            continue; /* every key has the same digit here */
        for (int d = 0; d < 256; d++)
            count[d + 1] += count[d];
        for (int i = 0; i < V; i++)
            dst[count[(key[src[i]] >> shift) & 0xFF]++] = src[i];
        int *t = src;
        src = dst, dst = t;
    }
    if (src != ord)
        memcpy(ord, src, (size_t)V * sizeof *ord);
}

/* Picks the next token from the logits with the stream's RNG.
 *
 * The fixed order: logit_bias, the penalties (repetition, then presence and
 * frequency), the regex's mask (-inf: a weight of exactly 0, never drawn, and
 * last in any order), temperature, top_k, top_p, min_p; the
 * weights are exp((logit - max) / T) in double precision, so the most likely
 * candidate's is exactly 1 and min_p compares against the weights directly.
 *
 * The candidates are every token (in token order), or with top_k and/or
 * top_p the best ones in charrnn_top_k's order: the k best by charrnn_top_k
 * for a small top_k, else the whole vocabulary radix sorted. Neither is
 * worse than O(V log HEAP_K_MAX) per character. */
static int sample_logits(charrnn_stream *s)
{
    const int V = s->m->cfg.vocab_size;
    const float *lg = s->logits;
    if (s->biased) {
        if (s->bias)
            for (int v = 0; v < V; v++)
                s->biased[v] = s->logits[v] + s->bias[v];
        else
            memcpy(s->biased, s->logits, (size_t)V * sizeof *s->biased);
        const float rp = s->p.repetition_penalty, pres = s->p.presence_penalty,
                    freq = s->p.frequency_penalty;
        for (size_t i = 0; s->penalised && i < s->n_seen; i++) {
            const int t = s->seen[i];
            float l = s->biased[t];
            if (rp != 1.0f)
                l = l > 0.0f ? l / rp : l * rp;
            s->biased[t] = l - pres - freq * (float)s->count[t];
        }
        if (s->re) { /* the characters that leave no match possible: banned */
            const uint16_t *cls = charrnn_regex_classes(s->re);
            const uint16_t *row = charrnn_regex_row(s->re, s->re_state);
            for (int v = 0; v < V; v++)
                if (row[cls[v]] == CHARRNN_REGEX_DEAD)
                    s->biased[v] = -INFINITY;
        }
        lg = s->biased;
    }
    if (s->p.temperature == 0.0f) {
        int best = 0;
        for (int v = 1; v < V; v++)
            best = lg[v] > lg[best] ? v : best;
        return best;
    }
    const double inv_t = 1.0 / (double)s->p.temperature;
    int *ord = s->order;
    double *w = s->weight; /* by rank */
    int n = V;
    if (s->p.top_k > 0 && s->p.top_k <= HEAP_K_MAX && s->p.top_k < V) {
        n = s->p.top_k;
        charrnn_top_k(lg, V, n, ord);
    } else if (s->p.top_k > 0 || s->p.top_p < 1.0f) {
        radix_order(lg, V, ord, s->keys);
        if (s->p.top_k > 0 && s->p.top_k < V)
            n = s->p.top_k;
    } else {
        for (int v = 0; v < V; v++)
            ord[v] = v;
    }
    double mx = lg[ord[0]];
    for (int i = 1; i < n; i++)
        mx = lg[ord[i]] > mx ? lg[ord[i]] : mx;
    double total = 0.0;
    for (int i = 0; i < n; i++)
        total += (w[i] = exp(((double)lg[ord[i]] - mx) * inv_t));
    if (s->p.top_p < 1.0f) {
        double cum = 0.0, target = (double)s->p.top_p * total;
        int keep = n;
        for (int i = 0; i < n; i++) {
            cum += w[i];
            if (cum >= target) {
                keep = i + 1;
                break;
            }
        }
        n = keep;
        total = 0.0;
        for (int i = 0; i < n; i++)
            total += w[i];
    }
    if (s->p.min_p > 0.0f) {
        /* w is each candidate's probability over the most likely one's (whose
         * w is exp(0) = 1): keep w >= min_p, in the candidates' order. */
        const double floor_w = (double)s->p.min_p;
        int keep = 0;
        total = 0.0;
        for (int i = 0; i < n; i++)
            if (w[i] >= floor_w) {
                ord[keep] = ord[i], w[keep] = w[i];
                total += w[keep++];
            }
        n = keep;
    }
    double u = charrnn_rng_uniform(&s->rng) * total, cum = 0.0;
    for (int i = 0; i < n; i++) {
        cum += w[i];
        if (u < cum)
            return ord[i];
    }
    return ord[n - 1];
}

/* Keeps a generated token that is about to be fed in the context. */
static void context_append(charrnn_stream *s, int tok)
{
    size_t n = s->n_prime + s->gen_fed;
    if (s->ctx_lost)
        return;
    if (n == s->cap) {
        size_t nc = 2 * s->cap;
        uint16_t *p = realloc(s->prime, nc * sizeof *p);
        if (!p) {
            s->ctx_lost = 1;
            return;
        }
        s->prime = p, s->cap = nc;
    }
    s->prime[n] = (uint16_t)tok;
    s->gen_fed++;
}

/* Bookkeeping before a step; returns 0 when the step needs no network pass
 * (the stream's last character is being emitted). */
static int step_begin(charrnn_stream *s)
{
    if (s->finish != CHARRNN_FINISH_NONE)
        return 0;
    if (s->fed_prime == s->n_prime) {
        s->emit_ready = 1, s->emit_tok = s->pending;
        if (s->p.logprobs) {
            s->out_ready = 1, s->out_tok = s->pending, s->out_prime = 0;
            s->out_has_lp = s->next_has_lp, s->out_lp = s->next_lp;
            int *ti = s->out_top_id;
            float *tl = s->out_top_lp;
            s->out_top_id = s->next_top_id, s->out_top_lp = s->next_top_lp;
            s->next_top_id = ti, s->next_top_lp = tl;
        }
        /* the regex's match complete and unextendable: this token is the last */
        s->re_final = s->re && charrnn_regex_accepting(s->re, s->re_state) &&
            !charrnn_regex_live(s->re, s->re_state);
        int feeds = s->generated + 1 < s->p.length && !s->re_final;
        if (feeds)
            context_append(s, s->pending);
        return feeds;
    }
    s->fed_prime++;
    return 1;
}

/* The log-probability of tok and the top alternatives under this step's logits. */
static void record(charrnn_stream *s, int tok, float *lp, int *top_id, float *top_lp)
{
    const int V = s->m->cfg.vocab_size;
    double lse = charrnn_logsumexp(s->logits, V);
    *lp = charrnn_logprob_of(s->logits, lse, tok);
    charrnn_top_logprobs(s->logits, V, lse, s->k_top, top_id, top_lp);
}

/* After the network pass: the next token to feed. */
void charrnn_stream_step_end(charrnn_stream *s)
{
    if (s->fed_prime < s->n_prime) {
        s->pending = s->prime[s->fed_prime];
        if (s->p.logprobs && s->p.score_prime) {
            s->out_ready = 1, s->out_tok = s->pending, s->out_prime = 1, s->out_has_lp = 1;
            record(s, s->pending, &s->out_lp, s->out_top_id, s->out_top_lp);
            if (s->p.length == 0 && s->fed_prime + 1 == s->n_prime)
                s->finish = CHARRNN_FINISH_LENGTH; /* the whole text is scored */
        }
    } else if (s->p.inspect) {
        s->finish = CHARRNN_FINISH_LENGTH; /* every character's state is recorded */
    } else {
        s->pending = sample_logits(s);
        if (s->re)
            s->re_state = charrnn_regex_next(s->re, s->re_state, (size_t)s->pending);
        if (s->penalised)
            window_push(s, s->pending);
        if (s->p.logprobs) {
            s->next_has_lp = 1;
            record(s, s->pending, &s->next_lp, s->next_top_id, s->next_top_lp);
        }
    }
}

static void step_tile(const charrnn_model *m, charrnn_stream *const *ss, size_t n,
                      charrnn_rowsplit *rs)
{
    const int H = m->cfg.hidden_size, L = m->cfg.num_layers, V = m->cfg.vocab_size;
    for (int l = 0; l < L; l++) {
        layer_gates(m, ss, n, l, rs);
        for (size_t i = 0; i < n; i++) {
            charrnn_stream *s = ss[i];
            const size_t o = state_old(s, l, L, H), nw = state_new(s, l, L, H);
            stream_cell(m->cfg.cell, H, s->gi, s->gh, s->h + o, s->c + o, s->h + nw, s->c + nw);
            if (s->p.inspect) {
                const int lstm = m->cfg.cell == CHARRNN_CELL_LSTM;
                charrnn_inspect_put(s->p.inspect, l, s->fed_prime - 1, s->h + nw,
                                    lstm ? s->c + nw : NULL, lstm ? s->gi : NULL);
            }
        }
    }
    const float *x[TILE];
    float *y[TILE];
    for (size_t i = 0; i < n; i++)
        x[i] = ss[i]->h + state_new(ss[i], L - 1, L, H), y[i] = ss[i]->logits;
    charrnn_rd_job dec = stream_job(m, &m->dec_w, m->p.dec_b, V, H, n, x, y);
    charrnn_rd_run(rs, &dec, 1);
    for (size_t i = 0; i < n; i++) {
        ss[i]->cur = 1 - ss[i]->cur;
        charrnn_stream_step_end(ss[i]);
    }
}

int charrnn_infer_step(const charrnn_model *m, size_t n, charrnn_stream *const *streams)
{
    return charrnn_infer_step_split(m, n, streams, NULL);
}

int charrnn_infer_step_split(const charrnn_model *m, size_t n, charrnn_stream *const *streams,
                             charrnn_rowsplit *rs)
{
    for (size_t i = 0; i < n; i++)
        if (streams[i]->m != m)
            return CHARRNN_EINVAL;
    charrnn_stream *tile[TILE];
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (step_begin(streams[i]))
            tile[k++] = streams[i];
        if (k == TILE || (i + 1 == n && k > 0)) {
            step_tile(m, tile, k, rs);
            k = 0;
        }
    }
    return CHARRNN_OK;
}

int charrnn_stream_emit(charrnn_stream *s, char *out)
{
    if (!s->emit_ready)
        return 0;
    s->emit_ready = 0;
    uint32_t cp = charrnn_vocab_codepoint(s->m->vocab, (size_t)s->emit_tok);
    int len = charrnn_utf8_encode(cp, out);
    s->generated++;
    if (s->max_stop > 0) {
        if (s->tail_len + (size_t)len > sizeof s->tail - 4) {
            size_t drop = s->tail_len + (size_t)len - (sizeof s->tail - 4);
            memmove(s->tail, s->tail + drop, s->tail_len - drop);
            s->tail_len -= drop;
        }
        memcpy(s->tail + s->tail_len, out, (size_t)len);
        s->tail_len += (size_t)len;
        for (size_t i = 0; i < s->p.n_stop; i++) {
            size_t k = s->stop_len[i];
            if (k <= s->tail_len && memcmp(s->tail + s->tail_len - k, s->stop[i], k) == 0) {
                s->finish = CHARRNN_FINISH_STOP;
                return len;
            }
        }
    }
    if (s->re_final)
        s->finish = CHARRNN_FINISH_STOP;
    else if (s->generated >= s->p.length)
        s->finish = CHARRNN_FINISH_LENGTH;
    return len;
}

int charrnn_stream_logprob(charrnn_stream *s, charrnn_logprob *out)
{
    if (!s->out_ready)
        return 0;
    s->out_ready = 0;
    out->token = s->out_tok;
    out->is_prime = s->out_prime;
    out->has_logprob = s->out_has_lp;
    out->logprob = s->out_has_lp ? s->out_lp : 0.0f;
    out->n_top = s->out_has_lp ? s->k_top : 0;
    out->top_id = s->out_top_id;
    out->top_lp = s->out_top_lp;
    return 1;
}

int charrnn_sample_run(charrnn_stream *s, const charrnn_model *m,
                       int (*cb)(void *ctx, const char *bytes, size_t len), void *ctx)
{
    return charrnn_sample_run_split(s, m, NULL, cb, ctx);
}

int charrnn_sample_run_split(charrnn_stream *s, const charrnn_model *m, charrnn_rowsplit *rs,
                             int (*cb)(void *ctx, const char *bytes, size_t len), void *ctx)
{
    char buf[4096];
    size_t used = 0;
    if (s->m != m)
        return CHARRNN_EINVAL;
    charrnn_stream_prefill_split(m, s, SIZE_MAX, rs); /* the prime but its last character */
    while (!charrnn_stream_done(s)) {
        int rc = charrnn_infer_step_split(m, 1, &s, rs);
        if (rc)
            return rc;
        char ch[4];
        int k = charrnn_stream_emit(s, ch);
        memcpy(buf + used, ch, (size_t)k);
        used += (size_t)k;
        if (used > sizeof buf - 4 || charrnn_stream_done(s)) {
            if (cb(ctx, buf, used))
                return CHARRNN_OK;
            used = 0;
        }
    }
    return CHARRNN_OK;
}

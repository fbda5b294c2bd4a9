/* A stream's context: snapshots, resume, and the layered prefill of a prime.
 *
 * The step (sampler.c) advances every layer by one position: per position it
 * reads each layer's input matrix and recurrent matrix once. A prime needs
 * no sampling between its characters, so the prefill turns the loops around:
 * for a block of positions, layer by layer, the input products of the whole
 * block run as one batched product (the kernel reads each weight row once
 * for 16 positions, as it does for 16 streams), then the recurrent products
 * run in order, with that layer's recurrent matrix the only one in use.
 * Layer 0's input side is a column of its weights, as in the step.
 *
 * Bit identity with the step rests on two facts: every product row is the
 * kernel's fixed-order dot product, whatever else the call computes (batch
 * invariance, rowdot.h), and the cell is the step's own (stream_cell). The
 * prefill only changes when each product runs, never what it adds. */
#include "charrnn/rowsplit.h"
#include "charrnn/status.h"

#include "rowdot_variants.h"
#include "stream_impl.h"

#include <stdlib.h>
#include <string.h>

/* Positions per block: four tiles of the kernel's 16. The block's input
 * pre-activations (PB x G*H floats, 512 KB at 2x512 LSTM) stay in L2 while
 * the recurrent products consume them. */
#define PB 64

size_t charrnn_snapshot_floats(const charrnn_model *m)
{
    return stream_state_floats(m) + (size_t)m->cfg.vocab_size;
}

const uint16_t *charrnn_stream_context(const charrnn_stream *s, size_t *n)
{
    *n = s->ctx_lost ? 0 : s->fed_prime + s->gen_fed;
    return *n ? s->prime : NULL;
}

const uint16_t *charrnn_stream_prime_tokens(const charrnn_stream *s, size_t *n)
{
    *n = s->n_prime;
    return s->prime;
}

/* The snapshot's layout: h of every layer (L*H), c of every layer (LSTM),
 * then the logits (V). The state is the half the next step reads (cur). */
int charrnn_stream_snapshot(const charrnn_stream *s, float *out)
{
    size_t n;
    if (!charrnn_stream_context(s, &n))
        return CHARRNN_EINVAL;
    const charrnn_model *m = s->m;
    const size_t lh = (size_t)m->cfg.num_layers * (size_t)m->cfg.hidden_size;
    memcpy(out, s->h + (size_t)s->cur * lh, lh * sizeof *out);
    size_t o = lh;
    if (m->cfg.cell == CHARRNN_CELL_LSTM) {
        memcpy(out + o, s->c + (size_t)s->cur * lh, lh * sizeof *out);
        o += lh;
    }
    memcpy(out + o, s->logits, (size_t)m->cfg.vocab_size * sizeof *out);
    return CHARRNN_OK;
}

/* Not stepped yet: no character read, none generated, not ended. */
static int fresh(const charrnn_stream *s)
{
    /* an inspecting stream records every state from zero: it never resumes */
    return s->finish == CHARRNN_FINISH_NONE && s->fed_prime == 0 && s->generated == 0 &&
        !s->p.inspect;
}

static int scores_prime(const charrnn_stream *s)
{
    return s->p.logprobs && s->p.score_prime;
}

int charrnn_stream_resumable(const charrnn_stream *s)
{
    return fresh(s) && s->n_prime > 0 && !scores_prime(s);
}

int charrnn_stream_resumable_scored(const charrnn_stream *s)
{
    return fresh(s) && s->n_prime > 1 && scores_prime(s);
}

/* Takes snap as the state after k prime characters and ends that step. */
static void take_snapshot(charrnn_stream *s, size_t k, const float *snap)
{
    const charrnn_model *m = s->m;
    const size_t lh = (size_t)m->cfg.num_layers * (size_t)m->cfg.hidden_size;
    memcpy(s->h + (size_t)s->cur * lh, snap, lh * sizeof *snap);
    size_t o = lh;
    if (m->cfg.cell == CHARRNN_CELL_LSTM) {
        memcpy(s->c + (size_t)s->cur * lh, snap + o, lh * sizeof *snap);
        o += lh;
    }
    memcpy(s->logits, snap + o, (size_t)m->cfg.vocab_size * sizeof *snap);
    /* As the k-th step leaves it: fed_prime = k and the step's ending. */
    s->fed_prime = k;
    charrnn_stream_step_end(s);
}

int charrnn_stream_resume(charrnn_stream *s, size_t k, const float *snap)
{
    if (!charrnn_stream_resumable(s) || k < 1 || k > s->n_prime)
        return CHARRNN_EINVAL;
    take_snapshot(s, k, snap);
    return CHARRNN_OK;
}

int charrnn_stream_resume_scored(charrnn_stream *s, size_t k, const float *snap)
{
    if (!charrnn_stream_resumable_scored(s) || k < 1 || k >= s->n_prime)
        return CHARRNN_EINVAL;
    take_snapshot(s, k, snap);
    return CHARRNN_OK;
}

typedef struct scratch {
    float *below, *here; /* (PB, H): the block's h of the layer below, of this layer */
    float *gi;           /* (PB, G*H): the block's input pre-activations */
    float *gh;           /* (G*H) */
    float *c[2];         /* (H) each: LSTM's c, alternating (the cell's arrays never overlap) */
    float *logits;       /* (PB, V) when scoring, else NULL */
} scratch;

static void scratch_free(scratch *w)
{
    free(w->below), free(w->here), free(w->gi), free(w->gh), free(w->c[0]), free(w->c[1]);
    free(w->logits);
}

static int scratch_alloc(scratch *w, int H, int GH, int V, int scoring)
{
    memset(w, 0, sizeof *w);
    w->below = charrnn_alloc_floats((size_t)PB * H);
    w->here = charrnn_alloc_floats((size_t)PB * H);
    w->gi = charrnn_alloc_floats((size_t)PB * GH);
    w->gh = charrnn_alloc_floats((size_t)GH);
    w->c[0] = charrnn_alloc_floats((size_t)H);
    w->c[1] = charrnn_alloc_floats((size_t)H);
    w->logits = scoring ? charrnn_alloc_floats((size_t)PB * V) : NULL;
    if (w->below && w->here && w->gi && w->gh && w->c[0] && w->c[1] && (w->logits || !scoring))
        return 0;
    scratch_free(w);
    return -1;
}

/* One matrix times the block's positions, in tiles of the kernel's 16:
 * y[t] = b + W x[t] with x[t] = xb + t*D and y[t] = yb + t*R. */
static void block_product(const charrnn_model *m, const charrnn_matrix *mat, const float *b, int R,
                          int D, int nb, const float *xb, float *yb, charrnn_rowsplit *rs)
{
    enum { TILE = CHARRNN_RD_MAX_STREAMS, NJ = (PB + TILE - 1) / TILE };
    const float *x[PB];
    float *y[PB];
    charrnn_rd_job jobs[NJ];
    int nj = 0;
    for (int t = 0; t < nb; t++)
        x[t] = xb + (size_t)t * D, y[t] = yb + (size_t)t * R;
    for (int t0 = 0; t0 < nb; t0 += TILE) {
        size_t n = (size_t)(nb - t0 < TILE ? nb - t0 : TILE);
        jobs[nj++] = stream_job(m, mat, b, R, D, n, x + t0, y + t0);
    }
    charrnn_rd_run(rs, jobs, nj);
}

/* Input pre-activations of layer l for positions [0, nb) of the block:
 * gi[t] = W_ih x_t + b_ih, x_t the token's column (layer 0) or the layer
 * below's h at t (w->below), in tiles of the kernel's 16 positions. */
static void block_inputs(const charrnn_model *m, const uint16_t *tok, int nb, int l, scratch *w,
                         charrnn_rowsplit *rs)
{
    const int H = m->cfg.hidden_size;
    const int GH = charrnn_cell_gates(m->cfg.cell) * H;
    const charrnn_layer_params *p = &m->p.layer[l];
    if (l == 0) {
        for (int t = 0; t < nb; t++)
            stream_input_column(m, tok[t], w->gi + (size_t)t * GH);
        return;
    }
    block_product(m, &m->w_ih[l], p->b_ih, GH, H, nb, w->below, w->gi, rs);
}

/* Layer l over the block, in order: the recurrent product of each position
 * and the cell. h and c are the layer's state before the block (the
 * stream's), and receive the state after it. With a recorder, each
 * position's new state goes to it (pos0: the block's first position). */
static void block_recurrent(const charrnn_model *m, int nb, int l, float *h, float *c, scratch *w,
                            charrnn_rowsplit *rs, charrnn_inspect *rec, size_t pos0)
{
    const int H = m->cfg.hidden_size;
    const int GH = charrnn_cell_gates(m->cfg.cell) * H;
    const int lstm = m->cfg.cell == CHARRNN_CELL_LSTM;
    const float *c_old = c;
    for (int t = 0; t < nb; t++) {
        const float *h_old = t == 0 ? h : w->here + (size_t)(t - 1) * H;
        float *h_new = w->here + (size_t)t * H, *c_new = w->c[t & 1];
        charrnn_rd_job j = stream_job(m, &m->w_hh[l], m->p.layer[l].b_hh, GH, H, 1, &h_old, &w->gh);
        charrnn_rd_run(rs, &j, 1);
        stream_cell(m->cfg.cell, H, w->gi + (size_t)t * GH, w->gh, h_old, c_old, h_new, c_new);
        if (rec)
            charrnn_inspect_put(rec, l, pos0 + (size_t)t, h_new, lstm ? c_new : NULL,
                                lstm ? w->gi + (size_t)t * GH : NULL);
        c_old = c_new;
    }
    memcpy(h, w->here + (size_t)(nb - 1) * H, (size_t)H * sizeof *h);
    if (m->cfg.cell == CHARRNN_CELL_LSTM)
        memcpy(c, c_old, (size_t)H * sizeof *c);
}

size_t charrnn_stream_prefill(const charrnn_model *m, charrnn_stream *s, size_t max)
{
    return charrnn_stream_prefill_split(m, s, max, NULL);
}

size_t charrnn_stream_prefill_split(const charrnn_model *m, charrnn_stream *s, size_t max,
                                    charrnn_rowsplit *rs)
{
    return charrnn_stream_prefill_scored(m, s, max, rs, NULL, NULL);
}

/* The records of a block's positions for a stream that scores its prime:
 * the decoder over the block's top-layer h (w->below), then each position
 * ended as the step ends it (charrnn_stream_step_end: the record of the next
 * prime character, and the finish after the last). -1 when cb said stop. */
static int block_records(const charrnn_model *m, charrnn_stream *s, size_t first, int nb,
                         scratch *w, charrnn_rowsplit *rs,
                         int (*cb)(void *ctx, const charrnn_logprob *rec), void *ctx)
{
    const int H = m->cfg.hidden_size, V = m->cfg.vocab_size;
    block_product(m, &m->dec_w, m->p.dec_b, V, H, nb, w->below, w->logits, rs);
    for (int t = 0; t < nb; t++) {
        memcpy(s->logits, w->logits + (size_t)t * V, (size_t)V * sizeof *s->logits);
        s->fed_prime = first + (size_t)t + 1;
        charrnn_stream_step_end(s);
        charrnn_logprob rec;
        if (charrnn_stream_logprob(s, &rec) && cb(ctx, &rec) != 0)
            return -1;
    }
    return 0;
}

size_t charrnn_stream_prefill_scored(const charrnn_model *m, charrnn_stream *s, size_t max,
                                     charrnn_rowsplit *rs,
                                     int (*cb)(void *ctx, const charrnn_logprob *rec), void *ctx)
{
    const int scoring = s->p.logprobs && s->p.score_prime;
    if (s->m != m || s->finish != CHARRNN_FINISH_NONE || s->generated != 0 || (scoring && !cb) ||
        s->fed_prime + 1 >= s->n_prime)
        return 0;
    size_t T = s->n_prime - 1 - s->fed_prime;
    T = T < max ? T : max;
    const int H = m->cfg.hidden_size, L = m->cfg.num_layers, V = m->cfg.vocab_size;
    const int GH = charrnn_cell_gates(m->cfg.cell) * H;
    scratch w;
    if (T == 0 || scratch_alloc(&w, H, GH, V, scoring) != 0)
        return 0;
    const size_t f0 = s->fed_prime;
    int quiet = 0; /* cb asked for no more records */
    for (size_t b0 = 0; b0 < T; b0 += PB) {
        int nb = (int)(T - b0 < PB ? T - b0 : PB);
        const uint16_t *tok = s->prime + f0 + b0;
        for (int l = 0; l < L; l++) {
            block_inputs(m, tok, nb, l, &w, rs);
            size_t o = state_old(s, l, L, H);
            block_recurrent(m, nb, l, s->h + o, s->c + o, &w, rs, s->p.inspect, f0 + b0);
            float *t = w.below;
            w.below = w.here, w.here = t; /* below: this layer's h, the next one's input */
        }
        if (scoring && !quiet)
            quiet = block_records(m, s, f0 + b0, nb, &w, rs, cb, ctx) != 0;
    }
    scratch_free(&w);
    if (!scoring) {
        /* The logits after the last position: a snapshot taken now is whole. */
        const float *top = s->h + state_old(s, L - 1, L, H);
        float *lg = s->logits;
        charrnn_rd_job dec = stream_job(m, &m->dec_w, m->p.dec_b, V, H, 1, &top, &lg);
        charrnn_rd_run(rs, &dec, 1);
    }
    s->fed_prime = f0 + T;
    s->pending = s->prime[s->fed_prime];
    return T;
}

/* The inside of a sampling stream, shared by the files that step it:
 * sampler.c (the step, sampling, records) and prefill.c (the layered prefill,
 * snapshots and resume). Private to libcharrnn_core. */
#ifndef CHARRNN_STREAM_IMPL_H
#define CHARRNN_STREAM_IMPL_H

#include "charrnn/inspect.h"
#include "charrnn/regex.h"
#include "charrnn/sampler.h"

#include "cell_math.h"
#include "rowdot_variants.h"

#include <stdint.h>

struct charrnn_stream {
    const charrnn_model *m;
    charrnn_sample_params p;
    char *stop_buf; /* copies of the stop strings, NUL separated */
    const char *stop[CHARRNN_MAX_STOP];
    size_t stop_len[CHARRNN_MAX_STOP], max_stop;
    /* The context: the encoded prime (n_prime), then each generated token as
     * it is fed (gen_fed of them); cap tokens allocated. A failed growth sets
     * ctx_lost: the stream goes on, only its context can no longer be named
     * (charrnn_stream_context). */
    uint16_t *prime;
    size_t n_prime, fed_prime, generated, gen_fed, cap;
    int ctx_lost;
    int pending;    /* next token to feed; generated if fed_prime == n_prime */
    int emit_ready; /* the last step fed a generated token, not emitted yet */
    int emit_tok;
    charrnn_finish finish;
    charrnn_rng rng;
    float *h, *c;   /* (2, L, H) each: the state before and after a step */
    int cur;        /* which half of h and c holds the state; a step writes the other */
    float *gi, *gh; /* (G*H) scratch: input and recurrent pre-activations */
    float *logits;  /* (V) */
    int *order;     /* (V) candidate order for top-k / top-p */
    double *weight; /* (V) their unnormalised probabilities (a VLA of V doubles could be 512 KiB
                       of a worker thread's stack) */
    uint32_t *keys; /* (2V) radix sort scratch, when top_p or a large top_k */
    char tail[CHARRNN_MAX_STOP_LEN + 4]; /* last bytes of the generated text */
    size_t tail_len;
    float *bias;   /* (V) logit bias, or NULL */
    float *biased; /* (V) logits + bias, penalised: what is sampled from */
    /* Penalties (when any is on): the window, a ring of the last
     * penalty_window tokens (win_len of them, the oldest at win_pos once
     * full), each token's count in it, and the tokens with a count > 0
     * (n_seen of them; seen_at[t] is t's index there): a step updates them in
     * O(1) and penalises n_seen <= penalty_window logits. */
    int penalised;
    uint16_t *win, *count, *seen, *seen_at;
    size_t win_len, win_pos, n_seen;
    /* The regex constraint (NULL: none): re_state is the automaton's state
     * after every generated token so far, the pending one included;
     * re_final: the token being emitted completes a match that nothing can
     * extend, so it is the last. */
    charrnn_regex *re;
    int re_state, re_final;
    /* Log-probability records: `next` is the sampled, not yet emitted token's;
     * `out` the one charrnn_stream_logprob returns. */
    int k_top;
    int next_has_lp, out_ready, out_tok, out_prime, out_has_lp;
    float next_lp, out_lp;
    int *next_top_id, *out_top_id; /* (k_top) */
    float *next_top_lp, *out_top_lp;
};

/* Offsets of layer l's state (h, and c for LSTM) before the step and after
 * it: the two halves of h and c. The cell reads one half and writes the
 * other, as training keeps one block per time step, so both call the same
 * cell functions (cell_math.h), whose arrays must not overlap. */
static inline size_t state_old(const charrnn_stream *s, int l, int L, int H)
{
    return ((size_t)s->cur * L + l) * H;
}
static inline size_t state_new(const charrnn_stream *s, int l, int L, int H)
{
    return ((size_t)(1 - s->cur) * L + l) * H;
}

/* The cell of one layer: the new h (and c for LSTM) from the input side gi
 * (overwritten) and the recurrent side gh. The arithmetic is training's
 * (cell_math.h); LSTM and RNN take the sum of both sides, GRU keeps the
 * recurrent side of n apart. The step (sampler.c) and the prefill (prefill.c)
 * both call this one function, so they give the same bits. Cloned per
 * instruction set (fastmath.h) for the sums: in a portable build at 16
 * streams the gate arithmetic was a third of a step. */
CR_CLONES static inline void stream_cell(charrnn_cell cell, int H, float *restrict gi,
                                         const float *restrict gh, const float *h_old,
                                         const float *c_old, float *h_new, float *c_new)
{
    switch (cell) {
    case CHARRNN_CELL_LSTM:
        for (int j = 0; j < 4 * H; j++)
            gi[j] += gh[j];
        cell_lstm_forward(gi, gi + H, gi + 2 * H, gi + 3 * H, c_old, c_new, h_new, H);
        break;
    case CHARRNN_CELL_GRU: cell_gru_forward(gi, gh, gh + 2 * H, h_old, h_new, H); break;
    case CHARRNN_CELL_RNN:
        for (int j = 0; j < H; j++)
            gi[j] += gh[j];
        cell_rnn_forward(gi, h_new, (size_t)H);
        break;
    }
}

/* One product of matrix w (in the model's dtype) for n vectors: y[i] = b + W x[i]. */
static inline charrnn_rd_job stream_job(const charrnn_model *m, const charrnn_matrix *w,
                                        const float *b, int R, int D, size_t n,
                                        const float *const *x, float *const *y)
{
    return (charrnn_rd_job){(int)m->dtype, w->w, w->scale, b, R, D, n, x, y};
}

/* Layer 0's input pre-activations for token tok: b_ih plus column tok of
 * W_ih (a token is a one-hot input). The step and the prefill both call it. */
static inline void stream_input_column(const charrnn_model *m, int tok, float *gi)
{
    const int V = m->cfg.vocab_size, GH = charrnn_cell_gates(m->cfg.cell) * m->cfg.hidden_size;
    const float *b = m->p.layer[0].b_ih, *col = m->p.layer[0].w_ih + tok;
    for (int j = 0; j < GH; j++)
        gi[j] = b[j] + col[(size_t)j * V];
}

/* After a network pass (the state and logits are those after the token just
 * fed): records the scored prime character, or samples the next token
 * (sampler.c). */
void charrnn_stream_step_end(charrnn_stream *s);

/* Hands layer l's new state after prime position t to the stream's recorder
 * (inspect.c); c and gates are NULL but for LSTM, where gates is the 4H
 * activations i, f, g, o that stream_cell leaves in the gate buffer. */
void charrnn_inspect_put(struct charrnn_inspect *r, int l, size_t t, const float *h, const float *c,
                         const float *gates);

/* Floats of one state (h, and c for LSTM, of every layer). */
static inline size_t stream_state_floats(const charrnn_model *m)
{
    size_t lh = (size_t)m->cfg.num_layers * (size_t)m->cfg.hidden_size;
    return m->cfg.cell == CHARRNN_CELL_LSTM ? 2 * lh : lh;
}

#endif

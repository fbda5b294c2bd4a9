/* Forward and backward passes of the network's pieces over a (T, B) window.
 *
 * All activations are time-major: row t*B + b is batch stream b at step t.
 * Backward functions ADD into parameter gradients (call zero_grad once per
 * step). Truncated BPTT: the initial state is an input that receives no
 * gradient, exactly as char-rnn and a detached PyTorch hidden state. */
#ifndef CHARRNN_LAYERS_H
#define CHARRNN_LAYERS_H

#include "charrnn/model.h"

#include <stdint.h>

/* Saved activations of one recurrent layer for one window. */
typedef struct charrnn_layer_acts {
    float *gates; /* (T*B, G*H) post-activation gates (LSTM i,f,g,o; GRU r,z,n; RNN h) */
    float *hn;    /* GRU only (T*B, H): W_hn h_{t-1} + b_hn */
    float *h;     /* ((T+1)*B, H) row block 0 is h0, block t+1 is h_t */
    float *c;     /* LSTM only ((T+1)*B, H) block 0 is c0 */
    float *dg;    /* (T*B, G*H) scratch: gradient of input-side pre-activations */
    float *dg_hh; /* GRU only (T*B, G*H) gradient of recurrent-side pre-activations */
    float *dh;    /* (T*B, H) upstream gradient w.r.t. h_t (consumed by backward) */
    float *dnext; /* (2*B, H) scratch: carried dh (and dc) between steps */
    float *emb;   /* optional, layer 0: (V, G*H) scratch for W_ih^T, so the one-hot
                     gather reads contiguous rows instead of a column with stride V */
    float *demb;  /* optional, layer 0: (V, G*H) scratch for the gradient of W_ih^T */
    float *wpack; /* optional: charrnn_layer_wpack_floats scratch where each pass
                     packs W_hh (forward: also W_ih, when D <= H) once per window
                     instead of per product; the same bits either way */
    /* Optional, both or neither: the layer's products in bf16 (gemm.h; the
     * caller checked that this CPU runs them), W_ih and W_hh rounded and
     * packed into these (charrnn_layer_bf16_words each) once per pass. The
     * one-hot gather of layer 0 and the decoder stay f32; bf16_ih may be
     * NULL there. */
    uint32_t *bf16_ih, *bf16_hh;
} charrnn_layer_acts;

/* Floats of acts->wpack for hidden size H and G gates. */
size_t charrnn_layer_wpack_floats(int G, int H);
/* 32-bit words of acts->bf16_ih (GH = G*H, D the input size) or bf16_hh
 * (D = H). */
size_t charrnn_layer_bf16_words(int GH, int D);

/* Forward of one layer. Input is either tokens (layer 0: x_tok (T*B) indices
 * into the one-hot vocabulary, a column gather of W_ih) or x (T*B, D).
 * acts->h and acts->c must hold h0/c0 in block 0 on entry. */
void charrnn_layer_forward(charrnn_layer_acts *acts, const uint16_t *x_tok, const float *x,
                           const charrnn_layer_params *p, charrnn_cell cell, int T, int B, int D,
                           int H);

/* Backward of one layer. acts->dh holds dL/dh_t on entry (from above).
 * Adds parameter gradients into g; writes dL/dx into dx (T*B, D) when dx is
 * not NULL (layers above 0); layer 0 scatters into g->w_ih by token. */
void charrnn_layer_backward(charrnn_layer_acts *acts, float *dx, charrnn_layer_params *g,
                            const uint16_t *x_tok, const float *x, const charrnn_layer_params *p,
                            charrnn_cell cell, int T, int B, int D, int H);

/* Decoder and mean softmax cross-entropy over N = T*B rows.
 * logits (N, V) on return holds the softmax probabilities; returns the mean
 * loss in nats. */
float charrnn_decoder_forward(float *probs, const float *h, const float *w, const float *b,
                              const uint16_t *targets, int N, int V, int H);
/* Backward: consumes probs (turned into dlogits in place), adds into dw/db,
 * writes dh (N, H). */
void charrnn_decoder_backward(float *dh, float *dw, float *db, float *probs, const float *h,
                              const float *w, const uint16_t *targets, int N, int V, int H);
/* Same with dL/dlogits = (p - onehot) * scale: a shard of a larger batch passes
 * 1 / (rows of the whole batch). */
void charrnn_decoder_backward_scaled(float *dh, float *dw, float *db, float *probs, const float *h,
                                     const float *w, const uint16_t *targets, int N, int V, int H,
                                     float scale);

#endif

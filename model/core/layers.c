/* Recurrent layers (LSTM, GRU, tanh-RNN) and the decoder with softmax
 * cross-entropy, forward and backward over a time-major (T, B) window.
 *
 * The products are the trainer's own GEMM (gemm.h): their bits are defined
 * element by element, the same on every instruction set and BLAS setting.
 * The GEMM structure follows the known fast layout: one GEMM for the input
 * side of all T steps, only the recurrent GEMM inside the time loop, and the
 * weight-gradient GEMMs over all T steps after the loop. The pointwise
 * arithmetic of each cell, with its equations, is in cell_math.h (shared with
 * the inference step in sampler.c). */
#include "charrnn/layers.h"

#include "cell_math.h"
#include "fastmath.h"
#include "gemm.h"

#include <math.h>
#include <string.h>

/* gates (N, GH) = input side of every step, biases included. For GRU the
 * recurrent bias of the n gate stays out: it sits inside r * (W_hn h + b_hn). */
static void input_side(float *gates, const charrnn_layer_acts *a, const uint16_t *x_tok,
                       const float *x, const charrnn_layer_params *p, charrnn_cell cell, int N,
                       int D, int GH, int H)
{
    float *emb = a->emb, *wpack = a->wpack;
    if (x_tok && emb) {
        for (int j = 0; j < GH; j++)
            for (int v = 0; v < D; v++)
                emb[(size_t)v * GH + j] = p->w_ih[(size_t)j * D + v];
        for (int r = 0; r < N; r++)
            memcpy(gates + (size_t)r * GH, emb + (size_t)x_tok[r] * GH, sizeof(float) * GH);
    } else if (x_tok) {
        for (int r = 0; r < N; r++) {
            const float *col = p->w_ih + x_tok[r];
            float *g = gates + (size_t)r * GH;
            for (int j = 0; j < GH; j++)
                g[j] = col[(size_t)j * D];
        }
    } else if (a->bf16_ih) {
        charrnn_gemm_bf16_pack(a->bf16_ih, 1, p->w_ih, D, GH, D);
        charrnn_gemm_bf16_packed(N, GH, D, x, D, a->bf16_ih, 0, gates, GH);
    } else if (wpack && D <= H) {
        charrnn_gemm_pack(wpack, 1, p->w_ih, D, GH, D);
        charrnn_gemm_packed(0, N, GH, D, x, D, wpack, 0, gates, GH);
    } else {
        charrnn_gemm(0, 1, N, GH, D, x, D, p->w_ih, D, 0, gates, GH);
    }
    int hh_bias_end = cell == CHARRNN_CELL_GRU ? 2 * H : GH;
    float bias[GH];
    for (int j = 0; j < GH; j++)
        bias[j] = p->b_ih[j] + (j < hh_bias_end ? p->b_hh[j] : 0.0f);
    for (int r = 0; r < N; r++) {
        float *g = gates + (size_t)r * GH;
        for (int j = 0; j < GH; j++)
            g[j] += bias[j];
    }
}

/* out (B, GH) = [out +] h_prev W_hh^T: in bf16 from a->bf16_hh, else from
 * W_hh packed in wpack, or packed block by block per call when there is no
 * room for it (the same bits). */
static void recurrent(const charrnn_layer_acts *a, int B, int GH, int H, const float *hp,
                      const float *w_hh, int acc, float *out)
{
    const float *wpack = a->wpack;
    if (a->bf16_hh)
        charrnn_gemm_bf16_packed(B, GH, H, hp, H, a->bf16_hh, acc, out, GH);
    else if (wpack)
        charrnn_gemm_packed(0, B, GH, H, hp, H, wpack, acc, out, GH);
    else
        charrnn_gemm(0, 1, B, GH, H, hp, H, w_hh, H, acc, out, GH);
}

/* out (B, H) = [out +] dg W_hh, dg (B, GH): as recurrent, with W_hh packed
 * (not transposed). */
static void recurrent_back(const charrnn_layer_acts *a, int B, int GH, int H, const float *dg,
                           const float *w_hh, int acc, float *out)
{
    const float *wpack = a->wpack;
    if (a->bf16_hh)
        charrnn_gemm_bf16_packed(B, H, GH, dg, GH, a->bf16_hh, acc, out, H);
    else if (wpack)
        charrnn_gemm_packed(0, B, H, GH, dg, GH, wpack, acc, out, H);
    else
        charrnn_gemm(0, 0, B, H, GH, dg, GH, w_hh, H, acc, out, H);
}

void charrnn_layer_forward(charrnn_layer_acts *a, const uint16_t *x_tok, const float *x,
                           const charrnn_layer_params *p, charrnn_cell cell, int T, int B, int D,
                           int H)
{
    const int G = charrnn_cell_gates(cell), GH = G * H, N = T * B;
    input_side(a->gates, a, x_tok, x, p, cell, N, D, GH, H);
    if (a->bf16_hh) /* W_hh^T once for the T steps' products */
        charrnn_gemm_bf16_pack(a->bf16_hh, 1, p->w_hh, H, GH, H);
    else if (a->wpack)
        charrnn_gemm_pack(a->wpack, 1, p->w_hh, H, GH, H);
    for (int t = 0; t < T; t++) {
        float *g = a->gates + (size_t)t * B * GH;
        const float *hp = a->h + (size_t)t * B * H;
        float *h = a->h + (size_t)(t + 1) * B * H;
        if (cell == CHARRNN_CELL_LSTM) {
            recurrent(a, B, GH, H, hp, p->w_hh, 1, g);
            const float *cp = a->c + (size_t)t * B * H;
            float *c = a->c + (size_t)(t + 1) * B * H;
            for (int b = 0; b < B; b++) {
                float *gb = g + (size_t)b * GH;
                size_t o = (size_t)b * H;
                cell_lstm_forward(gb, gb + H, gb + 2 * H, gb + 3 * H, cp + o, c + o, h + o, H);
            }
        } else if (cell == CHARRNN_CELL_GRU) {
            /* dg_hh's block t is free until backward: use it for h_prev @ W_hh^T. */
            float *hh = a->dg_hh + (size_t)t * B * GH;
            recurrent(a, B, GH, H, hp, p->w_hh, 0, hh);
            float *hn = a->hn + (size_t)t * B * H;
            const float *b_hn = p->b_hh + 2 * H;
            for (int b = 0; b < B; b++) {
                float *gb = g + (size_t)b * GH, *hnb = hn + (size_t)b * H;
                const float *hb = hh + (size_t)b * GH;
                size_t o = (size_t)b * H;
                for (int j = 0; j < H; j++)
                    hnb[j] = hb[2 * H + j] + b_hn[j];
                cell_gru_forward(gb, hb, hnb, hp + o, h + o, H);
            }
        } else {
            recurrent(a, B, H, H, hp, p->w_hh, 1, g);
            cell_rnn_forward(g, h, (size_t)B * H);
        }
    }
}

void charrnn_layer_backward(charrnn_layer_acts *a, float *dx, charrnn_layer_params *gr,
                            const uint16_t *x_tok, const float *x, const charrnn_layer_params *p,
                            charrnn_cell cell, int T, int B, int D, int H)
{
    const int G = charrnn_cell_gates(cell), GH = G * H, N = T * B;
    float *dnh = a->dnext;                 /* (B, H) dL/dh_{t-1} carried back */
    float *dnc = a->dnext + (size_t)B * H; /* (B, H) dL/dc_{t-1} (LSTM) */
    float *dg_hh = cell == CHARRNN_CELL_GRU ? a->dg_hh : a->dg;
    memset(a->dnext, 0, sizeof(float) * 2 * (size_t)B * H);
    if (a->bf16_hh) /* W_hh (the forward's W_hh^T is done with) once for the T steps */
        charrnn_gemm_bf16_pack(a->bf16_hh, 0, p->w_hh, H, H, GH);
    else if (a->wpack)
        charrnn_gemm_pack(a->wpack, 0, p->w_hh, H, H, GH);
    for (int t = T - 1; t >= 0; t--) {
        const float *g = a->gates + (size_t)t * B * GH;
        float *dg = a->dg + (size_t)t * B * GH;
        float *dh = a->dh + (size_t)t * B * H;
        for (size_t k = 0; k < (size_t)B * H; k++)
            dh[k] += dnh[k];
        if (cell == CHARRNN_CELL_LSTM) {
            const float *cp = a->c + (size_t)t * B * H, *c = a->c + (size_t)(t + 1) * B * H;
            for (int b = 0; b < B; b++) {
                const float *gb = g + (size_t)b * GH;
                float *db = dg + (size_t)b * GH;
                size_t o = (size_t)b * H;
                cell_lstm_backward(db, db + H, db + 2 * H, db + 3 * H, dnc + o, gb, gb + H,
                                   gb + 2 * H, gb + 3 * H, cp + o, c + o, dh + o, H);
            }
            recurrent_back(a, B, GH, H, dg, p->w_hh, 0, dnh);
        } else if (cell == CHARRNN_CELL_GRU) {
            const float *hp = a->h + (size_t)t * B * H;
            const float *hn = a->hn + (size_t)t * B * H;
            float *dgh = dg_hh + (size_t)t * B * GH;
            for (int b = 0; b < B; b++) {
                const float *gb = g + (size_t)b * GH;
                float *db = dg + (size_t)b * GH, *dbh = dgh + (size_t)b * GH;
                size_t o = (size_t)b * H;
                cell_gru_backward(db, dbh, dnh + o, gb, hn + o, hp + o, dh + o, H);
            }
            recurrent_back(a, B, GH, H, dgh, p->w_hh, 1, dnh);
        } else {
            cell_rnn_backward(dg, g, dh, (size_t)B * H);
            recurrent_back(a, B, H, H, dg, p->w_hh, 0, dnh);
        }
    }
    /* Weight gradients over all steps at once: h block t is h_{t-1} of step t. */
    if (a->bf16_hh)
        charrnn_gemm_bf16(1, GH, H, N, dg_hh, GH, a->h, H, 1, gr->w_hh, H);
    else
        charrnn_gemm(1, 0, GH, H, N, dg_hh, GH, a->h, H, 1, gr->w_hh, H);
    if (x_tok && a->demb) {
        memset(a->demb, 0, sizeof(float) * (size_t)D * GH);
        for (int r = 0; r < N; r++) {
            const float *d = a->dg + (size_t)r * GH;
            float *row = a->demb + (size_t)x_tok[r] * GH;
            for (int j = 0; j < GH; j++)
                row[j] += d[j];
        }
        for (int j = 0; j < GH; j++)
            for (int v = 0; v < D; v++)
                gr->w_ih[(size_t)j * D + v] += a->demb[(size_t)v * GH + j];
    } else if (x_tok) {
        for (int r = 0; r < N; r++) {
            const float *d = a->dg + (size_t)r * GH;
            float *col = gr->w_ih + x_tok[r];
            for (int j = 0; j < GH; j++)
                col[(size_t)j * D] += d[j];
        }
    } else if (a->bf16_ih) {
        charrnn_gemm_bf16(1, GH, D, N, a->dg, GH, x, D, 1, gr->w_ih, D);
    } else {
        charrnn_gemm(1, 0, GH, D, N, a->dg, GH, x, D, 1, gr->w_ih, D);
    }
    for (int r = 0; r < N; r++) {
        const float *d = a->dg + (size_t)r * GH, *dh2 = dg_hh + (size_t)r * GH;
        for (int j = 0; j < GH; j++) {
            gr->b_ih[j] += d[j];
            gr->b_hh[j] += dh2[j];
        }
    }
    if (dx && a->bf16_ih) { /* W_ih (the forward's W_ih^T is done with) */
        charrnn_gemm_bf16_pack(a->bf16_ih, 0, p->w_ih, D, D, GH);
        charrnn_gemm_bf16_packed(N, D, GH, a->dg, GH, a->bf16_ih, 0, dx, D);
    } else if (dx) {
        charrnn_gemm(0, 0, N, D, GH, a->dg, GH, p->w_ih, D, 0, dx, D);
    }
}

float charrnn_decoder_forward(float *probs, const float *h, const float *w, const float *b,
                              const uint16_t *targets, int N, int V, int H)
{
    charrnn_gemm(0, 1, N, V, H, h, H, w, H, 0, probs, V);
    double loss = 0.0;
    for (int r = 0; r < N; r++) {
        float *l = probs + (size_t)r * V;
        float mx = -INFINITY;
        for (int v = 0; v < V; v++) {
            l[v] += b[v];
            mx = l[v] > mx ? l[v] : mx;
        }
        /* log p[target] from the shifted logit, so an underflowing exp cannot give log(0). */
        float lt = l[targets[r]] - mx;
        float sum = 0.0f;
        for (int v = 0; v < V; v++) {
            l[v] = cr_expf(l[v] - mx);
            sum += l[v];
        }
        float inv = 1.0f / sum;
        loss -= (double)lt - log((double)sum);
        for (int v = 0; v < V; v++)
            l[v] *= inv;
    }
    return (float)(loss / N);
}

void charrnn_decoder_backward(float *dh, float *dw, float *db, float *probs, const float *h,
                              const float *w, const uint16_t *targets, int N, int V, int H)
{
    charrnn_decoder_backward_scaled(dh, dw, db, probs, h, w, targets, N, V, H, 1.0f / (float)N);
}

void charrnn_decoder_backward_scaled(float *dh, float *dw, float *db, float *probs, const float *h,
                                     const float *w, const uint16_t *targets, int N, int V, int H,
                                     float scale)
{
    for (int r = 0; r < N; r++) {
        float *d = probs + (size_t)r * V;
        d[targets[r]] -= 1.0f;
        for (int v = 0; v < V; v++) {
            d[v] *= scale;
            db[v] += d[v];
        }
    }
    charrnn_gemm(1, 0, V, H, N, probs, V, h, H, 1, dw, H);
    charrnn_gemm(0, 0, N, H, V, probs, V, w, H, 0, dh, H);
}

size_t charrnn_layer_bf16_words(int GH, int D)
{
    const size_t fwd = charrnn_gemm_bf16_pack_words(GH, D),
                 back = charrnn_gemm_bf16_pack_words(D, GH);
    return fwd > back ? fwd : back;
}

size_t charrnn_layer_wpack_floats(int G, int H)
{
    const size_t fwd = charrnn_gemm_pack_floats(G * H, H),
                 back = charrnn_gemm_pack_floats(H, G * H);
    return fwd > back ? fwd : back;
}

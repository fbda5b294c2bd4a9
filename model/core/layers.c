/* Recurrent layers (LSTM, GRU, tanh-RNN) and the decoder with softmax
 * cross-entropy, forward and backward over a time-major (T, B) window.
 *
 * The GEMM structure follows the known fast layout: one GEMM for the input
 * side of all T steps, only the recurrent GEMM inside the time loop, and the
 * weight-gradient GEMMs over all T steps after the loop. The pointwise
 * arithmetic of each cell, with its equations, is in cell_math.h (shared with
 * the inference step in sampler.c). */
#include "charrnn/layers.h"

#include <cblas.h>
#include "cell_math.h"
#include "fastmath.h"

#include <math.h>
#include <string.h>

/* gates (N, GH) = input side of every step, biases included. For GRU the
 * recurrent bias of the n gate stays out: it sits inside r * (W_hn h + b_hn). */
static void input_side(float *gates, float *emb, const uint16_t *x_tok, const float *x,
                       const charrnn_layer_params *p, charrnn_cell cell, int N, int D, int GH,
                       int H)
{
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
    } else {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, GH, D, 1.0f, x, D, p->w_ih, D, 0.0f,
                    gates, GH);
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

void charrnn_layer_forward(charrnn_layer_acts *a, const uint16_t *x_tok, const float *x,
                           const charrnn_layer_params *p, charrnn_cell cell, int T, int B, int D,
                           int H)
{
    const int G = charrnn_cell_gates(cell), GH = G * H, N = T * B;
    input_side(a->gates, a->emb, x_tok, x, p, cell, N, D, GH, H);
    for (int t = 0; t < T; t++) {
        float *g = a->gates + (size_t)t * B * GH;
        const float *hp = a->h + (size_t)t * B * H;
        float *h = a->h + (size_t)(t + 1) * B * H;
        if (cell == CHARRNN_CELL_LSTM) {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, GH, H, 1.0f, hp, H, p->w_hh, H,
                        1.0f, g, GH);
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
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, GH, H, 1.0f, hp, H, p->w_hh, H,
                        0.0f, hh, GH);
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
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, H, H, 1.0f, hp, H, p->w_hh, H,
                        1.0f, g, H);
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
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, H, GH, 1.0f, dg, GH, p->w_hh,
                        H, 0.0f, dnh, H);
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
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, H, GH, 1.0f, dgh, GH, p->w_hh,
                        H, 1.0f, dnh, H);
        } else {
            cell_rnn_backward(dg, g, dh, (size_t)B * H);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, H, H, 1.0f, dg, H, p->w_hh, H,
                        0.0f, dnh, H);
        }
    }
    /* Weight gradients over all steps at once: h block t is h_{t-1} of step t. */
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, GH, H, N, 1.0f, dg_hh, GH, a->h, H, 1.0f,
                gr->w_hh, H);
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
    } else {
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, GH, D, N, 1.0f, a->dg, GH, x, D, 1.0f,
                    gr->w_ih, D);
    }
    for (int r = 0; r < N; r++) {
        const float *d = a->dg + (size_t)r * GH, *dh2 = dg_hh + (size_t)r * GH;
        for (int j = 0; j < GH; j++) {
            gr->b_ih[j] += d[j];
            gr->b_hh[j] += dh2[j];
        }
    }
    if (dx)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, D, GH, 1.0f, a->dg, GH, p->w_ih,
                    D, 0.0f, dx, D);
}

float charrnn_decoder_forward(float *probs, const float *h, const float *w, const float *b,
                              const uint16_t *targets, int N, int V, int H)
{
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, V, H, 1.0f, h, H, w, H, 0.0f, probs, V);
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
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, V, H, N, 1.0f, probs, V, h, H, 1.0f, dw,
                H);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, H, V, 1.0f, probs, V, w, H, 0.0f, dh,
                H);
}

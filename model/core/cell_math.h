/* The pointwise arithmetic of each recurrent cell, written once: from the
 * gate pre-activations of one row to the new state (forward), and from
 * dL/dh back to the gradients of the pre-activations (backward). Training
 * (layers.c, one row per batch stream and time step) and inference
 * (sampler.c, one row per stream and step) call the same forward functions,
 * so a stream generates from exactly the cell the trainer fitted. The matrix
 * products that produce the pre-activations stay with the callers: they
 * differ (BLAS over a whole window against a fixed-order kernel per stream).
 *
 * Notation, one row of H units, PyTorch's gate order and names:
 *   a_x = W_ix x + b_ix (input side), a_h = W_hx h_prev + b_hx (recurrent
 *   side); every product is elementwise; sigm is the logistic function,
 *   sigm' = sigm (1 - sigm) and tanh' = 1 - tanh^2, taken from the saved
 *   activations (LSTM's tanh(c) excepted).
 *
 * Every function is elementwise over j in [0, H) with one restrict pointer per
 * array, so GCC vectorizes it, and builds it per instruction set (CR_CLONES).
 * The library builds with -ffp-contract=off and the functions fix the order
 * of every operation, so each build, each vector width and both callers give
 * the same bits for the same inputs (unit/fastmath, unit/infer_step).
 * In-place arguments are named "in/out"; no two other pointers may overlap.
 *
 * Adding a cell touches: this file (forward, backward, equations);
 * include/charrnn/model.h (the enum, the gate order) and model.c (gate count,
 * name, parse, check, initialisation); layers.c (the GEMMs around the cell)
 * and layers.h if backward needs more saved activations (as GRU's hn);
 * trainer.c (carried state, activation buffers); stream_impl.h (stream_cell,
 * the stream's state); the --cell help of cli/train_main.c, docs/training.md
 * and the gate order in docs/checkpoint-format.md;
 * the tests: tests/reference/gen_fixtures.py and its fixture, unit/reference,
 * unit/grad, unit/checkpoint, unit/infer_step, interop/torch-interop. The
 * checkpoint format, the server and the CLIs otherwise take the cell by name. */
#ifndef CHARRNN_CELL_MATH_H
#define CHARRNN_CELL_MATH_H

#include "fastmath.h"

#include <stddef.h>

/* LSTM, gates i, f, g, o; a = a_x + a_h summed by the caller:
 *   i = sigm(a_i)   f = sigm(a_f)   g = tanh(a_g)   o = sigm(a_o)
 *   c = f * c_prev + i * g
 *   h = o * tanh(c)
 * ai..ao: (H) each, in: pre-activations, out: i, f, g, o (backward's input).
 * One loop over all four gates: with a pointer per gate GCC vectorizes it
 * whole (over one array with offsets it stayed scalar). */
CR_CLONES static inline void cell_lstm_forward(float *restrict ai, float *restrict af,
                                               float *restrict ag, float *restrict ao,
                                               const float *restrict c_prev, float *restrict c,
                                               float *restrict h, int H)
{
    for (int j = 0; j < H; j++) {
        float i_ = cr_sigmoidf(ai[j]), f_ = cr_sigmoidf(af[j]);
        float g_ = cr_tanhf(ag[j]), o_ = cr_sigmoidf(ao[j]);
        float cn = f_ * c_prev[j] + i_ * g_;
        c[j] = cn;
        h[j] = o_ * cr_tanhf(cn);
        ai[j] = i_, af[j] = f_, ag[j] = g_, ao[j] = o_;
    }
}

/* LSTM backward. dc (in/out) carries dL/dc from step t+1 in and to step t-1
 * out; dh is dL/dh_t from the layer above and from step t+1:
 *   dc  += dh * o * tanh'(c)
 *   da_i = dc * g * sigm'(i)     da_f = dc * c_prev * sigm'(f)
 *   da_g = dc * i * tanh'(g)     da_o = dh * tanh(c) * sigm'(o)
 *   dc_prev = dc * f
 * The same da_* feed both W_ix (and b_ix) and W_hx (and b_hx). */
CR_CLONES static inline void cell_lstm_backward(
    float *restrict dai, float *restrict daf, float *restrict dag, float *restrict dao,
    float *restrict dc, const float *restrict gi, const float *restrict gf,
    const float *restrict gg, const float *restrict go, const float *restrict c_prev,
    const float *restrict c, const float *restrict dh, int H)
{
    for (int j = 0; j < H; j++) {
        float i_ = gi[j], f_ = gf[j], g_ = gg[j], o_ = go[j];
        float tc = cr_tanhf(c[j]);
        float dcj = dc[j] + dh[j] * o_ * (1.0f - tc * tc);
        dai[j] = dcj * g_ * i_ * (1.0f - i_);
        daf[j] = dcj * c_prev[j] * f_ * (1.0f - f_);
        dag[j] = dcj * i_ * (1.0f - g_ * g_);
        dao[j] = dh[j] * tc * o_ * (1.0f - o_);
        dc[j] = dcj * f_;
    }
}

/* GRU, gates r, z, n; the recurrent side of n stays separate because r
 * scales it, bias included:
 *   r = sigm(a_xr + a_hr)   z = sigm(a_xz + a_hz)
 *   n = tanh(a_xn + r * a_hn)   a_hn = W_hn h_prev + b_hn
 *   h = (1 - z) * n + z * h_prev
 * ax: (3H) in: a_x (r, z, n), out: r, z, n. ahrz: (2H) a_h of r and z.
 * ahn: (H) a_hn. A bias may sit on either side of r and z (training puts
 * both into a_x, inference keeps b_h in a_h). */
CR_CLONES static inline void cell_gru_forward(float *restrict ax, const float *restrict ahrz,
                                              const float *restrict ahn,
                                              const float *restrict h_prev, float *restrict h,
                                              int H)
{
    for (int j = 0; j < H; j++) {
        float r_ = cr_sigmoidf(ax[j] + ahrz[j]);
        float z_ = cr_sigmoidf(ax[H + j] + ahrz[H + j]);
        float n_ = cr_tanhf(ax[2 * H + j] + r_ * ahn[j]);
        h[j] = (1.0f - z_) * n_ + z_ * h_prev[j];
        ax[j] = r_, ax[H + j] = z_, ax[2 * H + j] = n_;
    }
}

/* GRU backward. The chain rule through the forward above, with dh the
 * gradient of h (from the layer above and from step t+1):
 *   dn = dh * (1 - z)        dan = dn * tanh'(n)    gradient of a_xn
 *   dz = dh * (h_prev - n)   daz = dz * sigm'(z)    of a_xz and of a_hz
 *   dr = dan * a_hn          dar = dr * sigm'(r)    of a_xr and of a_hr
 *   d(a_hn) = dan * r                               (r scales a_hn)
 *   dh_prev = dh * z + (dar, daz, dan * r) W_hh     (the caller's GEMM adds
 *                                                    the second term)
 * dax (3H) gets (dar, daz, dan), the gradient of a_x (so of b_ih); dah (3H)
 * gets (dar, daz, dan * r), the gradient of a_h (so of b_hh), "dbh" for
 * short. dh_prev (H) gets the direct term dh * z. */
CR_CLONES static inline void cell_gru_backward(float *restrict dax, float *restrict dah,
                                               float *restrict dh_prev, const float *restrict g,
                                               const float *restrict ahn,
                                               const float *restrict h_prev,
                                               const float *restrict dh, int H)
{
    for (int j = 0; j < H; j++) {
        float r_ = g[j], z_ = g[H + j], n_ = g[2 * H + j];
        float dan = dh[j] * (1.0f - z_) * (1.0f - n_ * n_);
        float daz = dh[j] * (h_prev[j] - n_) * z_ * (1.0f - z_);
        float dar = dan * ahn[j] * r_ * (1.0f - r_);
        dax[j] = dah[j] = dar;
        dax[H + j] = dah[H + j] = daz;
        dax[2 * H + j] = dan;
        dah[2 * H + j] = dan * r_;
        dh_prev[j] = dh[j] * z_;
    }
}

/* Elman RNN with tanh, a = a_x + a_h summed by the caller:
 *   h = tanh(a)
 * a: (n) in: pre-activations, out: h (backward's input). n may cover
 * several rows at once (there is nothing per row). */
CR_CLONES static inline void cell_rnn_forward(float *restrict a, float *restrict h, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        a[k] = cr_tanhf(a[k]);
        h[k] = a[k];
    }
}

/* RNN backward: da = dh * tanh'(h); dh_prev = da W_hh (the caller's GEMM). */
CR_CLONES static inline void cell_rnn_backward(float *restrict da, const float *restrict g,
                                               const float *restrict dh, size_t n)
{
    for (size_t k = 0; k < n; k++)
        da[k] = dh[k] * (1.0f - g[k] * g[k]);
}

#endif

/* One continuous stream's loss, window by window with the state carried. */
#include "charrnn/stream_loss.h"

#include "charrnn/layers.h"
#include "charrnn/status.h"

#include <stdlib.h>
#include <string.h>

/* Steps per window: the input side of a window is one GEMM, so longer is
 * cheaper, and the buffers stay small (L * W * 4H floats). */
enum { W = 128 };

int charrnn_stream_loss(const charrnn_model *m, const uint16_t *tok, size_t n, float *loss,
                        char *err, size_t errlen)
{
    if (n < 2)
        return charrnn_fail(err, errlen, CHARRNN_EINVAL,
                            "a stream loss needs at least 2 characters, got %zu", n);
    if (m->dtype != CHARRNN_DTYPE_F32) /* the training forward pass reads f32 views */
        return charrnn_fail(err, errlen, CHARRNN_EINVAL,
                            "a stream loss needs an f32 model (a training checkpoint)");
    const charrnn_config *c = &m->cfg;
    const int L = c->num_layers, H = c->hidden_size, V = c->vocab_size;
    const size_t GH = (size_t)charrnn_cell_gates(c->cell) * (size_t)H;
    charrnn_layer_acts a[CHARRNN_MAX_LAYERS];
    memset(a, 0, sizeof a);
    float *probs = charrnn_alloc_floats((size_t)W * (size_t)V);
    int ok = probs != NULL;
    for (int l = 0; l < L && ok; l++) {
        ok = (a[l].gates = charrnn_alloc_floats(W * GH)) &&
            (a[l].h = charrnn_alloc_floats((W + 1) * (size_t)H));
        if (ok && c->cell == CHARRNN_CELL_LSTM)
            ok = (a[l].c = charrnn_alloc_floats((W + 1) * (size_t)H)) != NULL;
        if (ok && c->cell == CHARRNN_CELL_GRU) /* the forward pass's scratch */
            ok = (a[l].hn = charrnn_alloc_floats(W * (size_t)H)) &&
                (a[l].dg_hh = charrnn_alloc_floats(W * GH));
    }
    double sum = 0.0;
    for (size_t pos = 0; ok && pos + 1 < n; pos += W) {
        const int T = n - 1 - pos < W ? (int)(n - 1 - pos) : W;
        for (int l = 0; l < L; l++) {
            if (l == 0)
                charrnn_layer_forward(&a[0], tok + pos, NULL, &m->p.layer[0], c->cell, T, 1, V, H);
            else
                charrnn_layer_forward(&a[l], NULL, a[l - 1].h + H, &m->p.layer[l], c->cell, T, 1, H,
                                      H);
        }
        sum += (double)charrnn_decoder_forward(probs, a[L - 1].h + H, m->p.dec_w, m->p.dec_b,
                                               tok + pos + 1, T, V, H) *
            T;
        for (int l = 0; l < L; l++) { /* the last state starts the next window */
            memcpy(a[l].h, a[l].h + (size_t)T * H, sizeof(float) * (size_t)H);
            if (a[l].c)
                memcpy(a[l].c, a[l].c + (size_t)T * H, sizeof(float) * (size_t)H);
        }
    }
    for (int l = 0; l < L; l++)
        free(a[l].gates), free(a[l].h), free(a[l].c), free(a[l].hn), free(a[l].dg_hh);
    free(probs);
    if (!ok)
        return charrnn_fail(err, errlen, CHARRNN_ENOMEM, "out of memory for a stream loss");
    *loss = (float)(sum / (double)(n - 1));
    return CHARRNN_OK;
}

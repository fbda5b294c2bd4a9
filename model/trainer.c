/* The network in training: one allocation plan for a (B, T) window, dropout
 * between layers, carried hidden state, gradients and optimizer moments. */
#include "charrnn/trainer.h"

#include "charrnn/layers.h"
#include "charrnn/status.h"

#include <stdlib.h>
#include <string.h>

struct charrnn_trainer {
    charrnn_model *m;
    int B, T;
    float dropout;
    charrnn_optim_config opt;
    uint64_t steps;
    charrnn_rng rng;

    float *grads, *m1, *m2;     /* (num_params) each */
    charrnn_param_views g;      /* views into grads */
    charrnn_layer_acts acts[CHARRNN_MAX_LAYERS];
    float *drop_x[CHARRNN_MAX_LAYERS]; /* (T*B, H) dropped-out input of layer l (l >= 1) */
    uint8_t *drop_mask[CHARRNN_MAX_LAYERS]; /* (T*B*H) kept = 1 */
    float *dx;                  /* (T*B, H) gradient w.r.t. a layer's input */
    float *probs;               /* (T*B, V) */
    float *carry[2];            /* per mode: layers x {h, c} x (B, H) */
    size_t carry_len;
    uint16_t *x, *y;            /* (T*B) last TRAIN window */
    int have_forward;
};

static size_t carry_stride(const charrnn_trainer *tr)
{
    return (size_t)(tr->m->cfg.cell == CHARRNN_CELL_LSTM ? 2 : 1) * tr->B * tr->m->cfg.hidden_size;
}

int charrnn_trainer_create(charrnn_model *m, int batch, int seq, float dropout,
                           const charrnn_optim_config *opt, uint64_t seed, charrnn_trainer **out,
                           char *err, size_t errlen)
{
    *out = NULL;
    if (batch < 1 || seq < 1 || (size_t)batch * seq > (1u << 24))
        return charrnn_fail(err, errlen, CHARRNN_ERANGE, "batch %d x seq %d out of range", batch,
                            seq);
    if (!(dropout >= 0.0f && dropout < 1.0f))
        return charrnn_fail(err, errlen, CHARRNN_ERANGE, "dropout %g not in [0, 1)",
                            (double)dropout);
    charrnn_trainer *tr = calloc(1, sizeof *tr);
    if (!tr)
        return charrnn_fail(err, errlen, CHARRNN_ENOMEM, "out of memory");
    tr->m = m, tr->B = batch, tr->T = seq, tr->dropout = dropout, tr->opt = *opt;
    charrnn_rng_seed(&tr->rng, seed);
    const charrnn_config *c = &m->cfg;
    const size_t N = (size_t)batch * seq, H = (size_t)c->hidden_size, V = (size_t)c->vocab_size;
    const size_t GH = (size_t)charrnn_cell_gates(c->cell) * H, B = (size_t)batch;
    int ok = 1;
#define ALLOC(ptr, n) ok = ok && ((ptr) = charrnn_alloc_floats(n)) != NULL
    ALLOC(tr->grads, m->num_params);
    ALLOC(tr->m1, m->num_params);
    ALLOC(tr->m2, m->num_params);
    ALLOC(tr->dx, N * H);
    ALLOC(tr->probs, N * V);
    tr->carry_len = carry_stride(tr) * c->num_layers;
    ALLOC(tr->carry[0], tr->carry_len);
    ALLOC(tr->carry[1], tr->carry_len);
    for (int l = 0; l < c->num_layers && ok; l++) {
        charrnn_layer_acts *a = &tr->acts[l];
        ALLOC(a->gates, N * GH);
        ALLOC(a->dg, N * GH);
        ALLOC(a->h, N * H + B * H);
        ALLOC(a->dh, N * H);
        ALLOC(a->dnext, 2 * B * H);
        if (c->cell == CHARRNN_CELL_LSTM)
            ALLOC(a->c, N * H + B * H);
        if (c->cell == CHARRNN_CELL_GRU) {
            ALLOC(a->hn, N * H);
            ALLOC(a->dg_hh, N * GH);
        }
        if (l == 0) {
            ALLOC(a->emb, V * GH);
            ALLOC(a->demb, V * GH);
        }
        if (l > 0 && dropout > 0.0f) {
            ALLOC(tr->drop_x[l], N * H);
            ok = ok && (tr->drop_mask[l] = calloc(N * H, 1)) != NULL;
        }
    }
#undef ALLOC
    ok = ok && (tr->x = calloc(N, sizeof *tr->x)) && (tr->y = calloc(N, sizeof *tr->y));
    if (!ok) {
        charrnn_trainer_free(tr);
        return charrnn_fail(err, errlen, CHARRNN_ENOMEM, "out of memory for the activations");
    }
    charrnn_param_views_bind(c, tr->grads, &tr->g);
    *out = tr;
    return CHARRNN_OK;
}

void charrnn_trainer_free(charrnn_trainer *tr)
{
    if (!tr)
        return;
    free(tr->grads), free(tr->m1), free(tr->m2), free(tr->dx), free(tr->probs);
    free(tr->carry[0]), free(tr->carry[1]), free(tr->x), free(tr->y);
    for (int l = 0; l < CHARRNN_MAX_LAYERS; l++) {
        charrnn_layer_acts *a = &tr->acts[l];
        free(a->gates), free(a->dg), free(a->h), free(a->dh), free(a->dnext), free(a->c);
        free(a->hn), free(a->dg_hh), free(a->emb), free(a->demb);
        free(tr->drop_x[l]), free(tr->drop_mask[l]);
    }
    free(tr);
}

/* Input of layer l (>= 1): the output of layer l-1, through dropout in TRAIN mode. */
static const float *layer_input(charrnn_trainer *tr, int l, charrnn_mode mode)
{
    const size_t n = (size_t)tr->B * tr->T * tr->m->cfg.hidden_size;
    const float *h = tr->acts[l - 1].h + (size_t)tr->B * tr->m->cfg.hidden_size;
    if (mode != CHARRNN_MODE_TRAIN || !(tr->dropout > 0.0f))
        return h;
    const float keep = 1.0f - tr->dropout, scale = 1.0f / keep;
    float *x = tr->drop_x[l];
    uint8_t *mask = tr->drop_mask[l];
    for (size_t k = 0; k < n; k++) {
        mask[k] = charrnn_rng_uniform_f(&tr->rng) < keep;
        x[k] = mask[k] ? h[k] * scale : 0.0f;
    }
    return x;
}

float charrnn_trainer_forward(charrnn_trainer *tr, const uint16_t *x, const uint16_t *y,
                              charrnn_mode mode)
{
    const charrnn_config *c = &tr->m->cfg;
    const int B = tr->B, T = tr->T, H = c->hidden_size, V = c->vocab_size, L = c->num_layers;
    const size_t BH = (size_t)B * H, stride = carry_stride(tr);
    float *carry = tr->carry[mode];
    for (int l = 0; l < L; l++) {
        charrnn_layer_acts *a = &tr->acts[l];
        memcpy(a->h, carry + l * stride, BH * sizeof(float));
        if (a->c)
            memcpy(a->c, carry + l * stride + BH, BH * sizeof(float));
        if (l == 0)
            charrnn_layer_forward(a, x, NULL, &tr->m->p.layer[0], c->cell, T, B, V, H);
        else
            charrnn_layer_forward(a, NULL, layer_input(tr, l, mode), &tr->m->p.layer[l], c->cell,
                                  T, B, H, H);
        memcpy(carry + l * stride, a->h + (size_t)T * BH, BH * sizeof(float));
        if (a->c)
            memcpy(carry + l * stride + BH, a->c + (size_t)T * BH, BH * sizeof(float));
    }
    const float *top = tr->acts[L - 1].h + BH;
    float loss = charrnn_decoder_forward(tr->probs, top, tr->m->p.dec_w, tr->m->p.dec_b, y,
                                         T * B, V, H);
    if (mode == CHARRNN_MODE_TRAIN) {
        memcpy(tr->x, x, (size_t)T * B * sizeof *x);
        memcpy(tr->y, y, (size_t)T * B * sizeof *y);
        tr->have_forward = 1;
    } else {
        tr->have_forward = 0;
    }
    return loss;
}

void charrnn_trainer_backward(charrnn_trainer *tr)
{
    if (!tr->have_forward)
        return;
    const charrnn_config *c = &tr->m->cfg;
    const int B = tr->B, T = tr->T, H = c->hidden_size, V = c->vocab_size, L = c->num_layers;
    const size_t BH = (size_t)B * H, n = (size_t)T * BH;
    charrnn_decoder_backward(tr->acts[L - 1].dh, tr->g.dec_w, tr->g.dec_b, tr->probs,
                             tr->acts[L - 1].h + BH, tr->m->p.dec_w, tr->y, T * B, V, H);
    for (int l = L - 1; l >= 0; l--) {
        charrnn_layer_acts *a = &tr->acts[l];
        if (l == 0) {
            charrnn_layer_backward(a, NULL, &tr->g.layer[0], tr->x, NULL, &tr->m->p.layer[0],
                                   c->cell, T, B, V, H);
            break;
        }
        const float *xin = tr->drop_x[l] ? tr->drop_x[l] : tr->acts[l - 1].h + BH;
        charrnn_layer_backward(a, tr->dx, &tr->g.layer[l], NULL, xin, &tr->m->p.layer[l], c->cell,
                               T, B, H, H);
        float *dh_below = tr->acts[l - 1].dh;
        if (tr->drop_x[l]) {
            const float scale = 1.0f / (1.0f - tr->dropout);
            const uint8_t *mask = tr->drop_mask[l];
            for (size_t k = 0; k < n; k++)
                dh_below[k] = mask[k] ? tr->dx[k] * scale : 0.0f;
        } else {
            memcpy(dh_below, tr->dx, n * sizeof(float));
        }
    }
    tr->have_forward = 0;
}

void charrnn_trainer_zero_grad(charrnn_trainer *tr)
{
    memset(tr->grads, 0, tr->m->num_params * sizeof(float));
}

void charrnn_trainer_update(charrnn_trainer *tr, float lr, float grad_clip)
{
    charrnn_clip_grad_value(tr->grads, tr->m->num_params, grad_clip);
    tr->steps++;
    charrnn_optim_update(&tr->opt, tr->m->params, tr->grads, tr->m1, tr->m2, tr->m->num_params,
                         lr, tr->steps);
}

float charrnn_trainer_step(charrnn_trainer *tr, const uint16_t *x, const uint16_t *y, float lr,
                           float grad_clip)
{
    charrnn_trainer_zero_grad(tr);
    float loss = charrnn_trainer_forward(tr, x, y, CHARRNN_MODE_TRAIN);
    charrnn_trainer_backward(tr);
    charrnn_trainer_update(tr, lr, grad_clip);
    return loss;
}

void charrnn_trainer_reset_state(charrnn_trainer *tr, charrnn_mode mode)
{
    memset(tr->carry[mode], 0, tr->carry_len * sizeof(float));
}

float *charrnn_trainer_grads(charrnn_trainer *tr) { return tr->grads; }
float *charrnn_trainer_moment1(charrnn_trainer *tr) { return tr->m1; }
float *charrnn_trainer_moment2(charrnn_trainer *tr) { return tr->m2; }
float *charrnn_trainer_state(charrnn_trainer *tr, size_t *len)
{
    *len = tr->carry_len;
    return tr->carry[CHARRNN_MODE_TRAIN];
}
const float *charrnn_trainer_probs(const charrnn_trainer *tr) { return tr->probs; }
uint64_t *charrnn_trainer_step_count(charrnn_trainer *tr) { return &tr->steps; }
charrnn_rng *charrnn_trainer_rng(charrnn_trainer *tr) { return &tr->rng; }

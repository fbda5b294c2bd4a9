/* Model configuration, parameter layout (PyTorch names) and initialisation. */
#include "charrnn/model.h"

#include "charrnn/status.h"
#include "model_shell.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int charrnn_cell_gates(charrnn_cell cell)
{
    return cell == CHARRNN_CELL_LSTM ? 4 : cell == CHARRNN_CELL_GRU ? 3 : 1;
}

const char *charrnn_cell_name(charrnn_cell cell)
{
    return cell == CHARRNN_CELL_LSTM ? "lstm" : cell == CHARRNN_CELL_GRU ? "gru" : "rnn";
}

int charrnn_cell_parse(const char *name, charrnn_cell *out)
{
    static const charrnn_cell cells[] = {CHARRNN_CELL_LSTM, CHARRNN_CELL_GRU, CHARRNN_CELL_RNN};
    for (size_t i = 0; i < 3; i++)
        if (name && strcmp(name, charrnn_cell_name(cells[i])) == 0) {
            *out = cells[i];
            return CHARRNN_OK;
        }
    return CHARRNN_EINVAL;
}

int charrnn_config_check(const charrnn_config *cfg, char *err, size_t errlen)
{
    if (cfg->cell != CHARRNN_CELL_LSTM && cfg->cell != CHARRNN_CELL_GRU &&
        cfg->cell != CHARRNN_CELL_RNN)
        return charrnn_fail(err, errlen, CHARRNN_EINVAL, "unknown cell type %d", (int)cfg->cell);
    if (cfg->vocab_size < 1 || cfg->vocab_size > CHARRNN_MAX_VOCAB)
        return charrnn_fail(err, errlen, CHARRNN_ERANGE, "vocab_size %d out of range 1..%d",
                            cfg->vocab_size, CHARRNN_MAX_VOCAB);
    if (cfg->hidden_size < 1 || cfg->hidden_size > CHARRNN_MAX_HIDDEN)
        return charrnn_fail(err, errlen, CHARRNN_ERANGE, "hidden_size %d out of range 1..%d",
                            cfg->hidden_size, CHARRNN_MAX_HIDDEN);
    if (cfg->num_layers < 1 || cfg->num_layers > CHARRNN_MAX_LAYERS)
        return charrnn_fail(err, errlen, CHARRNN_ERANGE, "num_layers %d out of range 1..%d",
                            cfg->num_layers, CHARRNN_MAX_LAYERS);
    return CHARRNN_OK;
}

static void add_tensor(charrnn_tensor_info *t, int *k, size_t *off, const char *name, int ndim,
                       size_t d0, size_t d1)
{
    charrnn_tensor_info *ti = &t[(*k)++];
    snprintf(ti->name, sizeof ti->name, "%s", name);
    ti->offset = *off;
    ti->ndim = ndim;
    ti->shape[0] = d0;
    ti->shape[1] = ndim == 2 ? d1 : 0;
    ti->numel = ndim == 2 ? d0 * d1 : d0;
    *off += ti->numel;
}

size_t charrnn_param_layout(const charrnn_config *cfg, charrnn_tensor_info *tensors,
                            int *num_tensors)
{
    size_t G = (size_t)charrnn_cell_gates(cfg->cell), H = (size_t)cfg->hidden_size;
    size_t V = (size_t)cfg->vocab_size, off = 0;
    int k = 0;
    char name[CHARRNN_TENSOR_NAME_MAX];
    for (int l = 0; l < cfg->num_layers; l++) {
        size_t D = l == 0 ? V : H;
        snprintf(name, sizeof name, "rnn.weight_ih_l%d", l);
        add_tensor(tensors, &k, &off, name, 2, G * H, D);
        snprintf(name, sizeof name, "rnn.weight_hh_l%d", l);
        add_tensor(tensors, &k, &off, name, 2, G * H, H);
        snprintf(name, sizeof name, "rnn.bias_ih_l%d", l);
        add_tensor(tensors, &k, &off, name, 1, G * H, 0);
        snprintf(name, sizeof name, "rnn.bias_hh_l%d", l);
        add_tensor(tensors, &k, &off, name, 1, G * H, 0);
    }
    add_tensor(tensors, &k, &off, "decoder.weight", 2, V, H);
    add_tensor(tensors, &k, &off, "decoder.bias", 1, V, 0);
    *num_tensors = k;
    return off;
}

void charrnn_param_views_bind(const charrnn_config *cfg, float *block, charrnn_param_views *v)
{
    charrnn_tensor_info t[CHARRNN_MAX_TENSORS];
    int n;
    charrnn_param_layout(cfg, t, &n);
    memset(v, 0, sizeof *v);
    for (int l = 0; l < cfg->num_layers; l++) {
        v->layer[l].w_ih = block + t[4 * l + 0].offset;
        v->layer[l].w_hh = block + t[4 * l + 1].offset;
        v->layer[l].b_ih = block + t[4 * l + 2].offset;
        v->layer[l].b_hh = block + t[4 * l + 3].offset;
    }
    v->dec_w = block + t[n - 2].offset;
    v->dec_b = block + t[n - 1].offset;
}

float *charrnn_alloc_floats(size_t n)
{
    size_t bytes = (n * sizeof(float) + 63) & ~(size_t)63;
    float *p = aligned_alloc(64, bytes ? bytes : 64);
    if (p)
        memset(p, 0, bytes);
    return p;
}

int charrnn_model_shell(const charrnn_config *cfg, const charrnn_vocab *vocab, charrnn_dtype dt,
                        charrnn_model **out, char *err, size_t errlen)
{
    *out = NULL;
    int rc = charrnn_config_check(cfg, err, errlen);
    if (rc)
        return rc;
    if (!vocab || charrnn_vocab_size(vocab) != (size_t)cfg->vocab_size)
        return charrnn_fail(err, errlen, CHARRNN_EINVAL,
                            "vocabulary size does not match vocab_size %d", cfg->vocab_size);
    charrnn_model *m = calloc(1, sizeof *m);
    if (!m)
        return charrnn_fail(err, errlen, CHARRNN_ENOMEM, "out of memory");
    m->cfg = *cfg;
    m->dtype = dt;
    m->num_params = charrnn_param_layout(cfg, m->tensors, &m->num_tensors);
    *out = m;
    return CHARRNN_OK;
}

int charrnn_model_create(const charrnn_config *cfg, charrnn_vocab *vocab, charrnn_model **out,
                         char *err, size_t errlen)
{
    charrnn_model *m;
    int rc = charrnn_model_shell(cfg, vocab, CHARRNN_DTYPE_F32, &m, err, errlen);
    *out = NULL;
    if (rc)
        return rc;
    m->params = charrnn_alloc_floats(m->num_params);
    if (!m->params) {
        size_t n = m->num_params;
        free(m);
        return charrnn_fail(err, errlen, CHARRNN_ENOMEM, "out of memory for %zu parameters", n);
    }
    charrnn_param_views_bind(cfg, m->params, &m->p);
    for (int l = 0; l < cfg->num_layers; l++) {
        m->w_ih[l] = (charrnn_matrix){m->p.layer[l].w_ih, NULL};
        m->w_hh[l] = (charrnn_matrix){m->p.layer[l].w_hh, NULL};
    }
    m->dec_w = (charrnn_matrix){m->p.dec_w, NULL};
    m->vocab = vocab;
    *out = m;
    return CHARRNN_OK;
}

charrnn_init charrnn_init_defaults(void)
{
    /* Every parameter U(-0.08, 0.08), the LSTM forget-gate bias_ih 0. Chosen
     * by tests/bench/bench_quality.py (docs/benchmarks.md, "Initialisation and
     * training quality"): of the Lua char-rnn's (the same range, forget bias 1), this,
     * and PyTorch's U(+-1/sqrt(H)), it gave the lowest validation loss at
     * equal iterations averaged over 2x128 and 2x256 on two texts of
     * different kinds (and on 3x512, where all three were still close). The
     * forget bias of 1 learned slowest everywhere; PyTorch's range, which
     * shrinks as 1/sqrt(H), won at H = 128 (R = 0.088) and lost at H = 256
     * (R = 0.0625). */
    return (charrnn_init){0.08f, 0.0f};
}

int charrnn_init_check(const charrnn_init *init, char *err, size_t errlen)
{
    if (!(init->range == 0.0f || (init->range > 0.0f && init->range <= 10.0f)))
        return charrnn_fail(err, errlen, CHARRNN_ERANGE,
                            "init range %g is not 0 (1/sqrt(rnn size)) or in (0, 10]",
                            (double)init->range);
    if (!isnan(init->forget_bias) && !(fabsf(init->forget_bias) <= 100.0f))
        return charrnn_fail(err, errlen, CHARRNN_ERANGE, "forget bias %g is not in [-100, 100]",
                            (double)init->forget_bias);
    return CHARRNN_OK;
}

float charrnn_init_range(const charrnn_init *init, int hidden_size)
{
    return init->range > 0.0f ? init->range : 1.0f / sqrtf((float)hidden_size);
}

void charrnn_model_init_with(charrnn_model *m, charrnn_rng *rng, const charrnn_init *init)
{
    const float a = charrnn_init_range(init, m->cfg.hidden_size);
    for (size_t i = 0; i < m->num_params; i++)
        m->params[i] = (charrnn_rng_uniform_f(rng) * 2.0f - 1.0f) * a;
    if (m->cfg.cell == CHARRNN_CELL_LSTM && !isnan(init->forget_bias)) {
        size_t H = (size_t)m->cfg.hidden_size;
        for (int l = 0; l < m->cfg.num_layers; l++)
            for (size_t j = H; j < 2 * H; j++)
                m->p.layer[l].b_ih[j] = init->forget_bias;
    }
}

void charrnn_model_init(charrnn_model *m, charrnn_rng *rng)
{
    const charrnn_init d = charrnn_init_defaults();
    charrnn_model_init_with(m, rng, &d);
}

void charrnn_model_free(charrnn_model *m)
{
    if (!m)
        return;
    charrnn_vocab_free(m->vocab);
    free(m->params);
    free(m->lowp);
    free(m);
}

const charrnn_tensor_info *charrnn_model_tensor(const charrnn_model *m, const char *name)
{
    for (int i = 0; i < m->num_tensors; i++)
        if (strcmp(m->tensors[i].name, name) == 0)
            return &m->tensors[i];
    return NULL;
}

/* Reduced-precision weights (charrnn/lowp.h): conversions, and models whose
 * matrices are stored in bf16 or int8. */
#include "charrnn/lowp.h"

#include "charrnn/status.h"
#include "model_shell.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const names[] = {"f32", "bf16", "int8"};

const char *charrnn_dtype_name(charrnn_dtype dt)
{
    return dt <= CHARRNN_DTYPE_INT8 ? names[dt] : "?";
}

size_t charrnn_dtype_bytes(charrnn_dtype dt)
{
    return dt == CHARRNN_DTYPE_F32 ? 4 : dt == CHARRNN_DTYPE_BF16 ? 2 : 1;
}

int charrnn_dtype_parse(const char *name, charrnn_dtype *out, char *err, size_t errlen)
{
    for (int i = 0; i < 3; i++)
        if (name && strcmp(name, names[i]) == 0) {
            *out = (charrnn_dtype)i;
            return CHARRNN_OK;
        }
    return charrnn_fail(err, errlen, CHARRNN_EINVAL, "unknown dtype '%.32s' (f32, bf16, int8)",
                        name ? name : "");
}

/* Layout indices (charrnn_param_layout): 4l + 0 rnn.weight_ih_l{l}, 4l + 1
 * rnn.weight_hh_l{l}, 4l + 2 and 4l + 3 the biases; then decoder.weight and
 * decoder.bias. */
const charrnn_matrix *charrnn_model_matrix(const charrnn_model *m, int i)
{
    const int L = m->cfg.num_layers;
    if (i == 4 * L)
        return &m->dec_w;
    if (i < 0 || i >= 4 * L)
        return NULL;
    int l = i / 4, k = i % 4;
    return k == 0 && l > 0 ? &m->w_ih[l] : k == 1 ? &m->w_hh[l] : NULL;
}

uint16_t charrnn_bf16_from_f32(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    if (isnan(x))
        return (uint16_t)((u >> 16) | 0x40); /* stays a NaN */
    u += 0x7FFFu + ((u >> 16) & 1u);         /* nearest, ties to even */
    return (uint16_t)(u >> 16);
}

float charrnn_bf16_to_f32(uint16_t b)
{
    uint32_t u = (uint32_t)b << 16;
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

void charrnn_int8_quantize_row(const float *w, size_t n, int8_t *q, float *scale)
{
    float amax = 0.0f;
    for (size_t c = 0; c < n; c++)
        amax = fabsf(w[c]) > amax ? fabsf(w[c]) : amax;
    float s = amax / 127.0f;
    *scale = s;
    for (size_t c = 0; c < n; c++) {
        float v = s > 0.0f ? roundf(w[c] / s) : 0.0f;
        q[c] = (int8_t)(v > 127.0f ? 127 : v < -127.0f ? -127 : v);
    }
}

static size_t align64(size_t n)
{
    return (n + 63) & ~(size_t)63;
}

int charrnn_model_create_lowp(const charrnn_config *cfg, charrnn_vocab *vocab, charrnn_dtype dt,
                              charrnn_model **out, char *err, size_t errlen)
{
    *out = NULL;
    if (dt == CHARRNN_DTYPE_F32)
        return charrnn_model_create(cfg, vocab, out, err, errlen);
    if (dt != CHARRNN_DTYPE_BF16 && dt != CHARRNN_DTYPE_INT8)
        return charrnn_fail(err, errlen, CHARRNN_EINVAL, "unknown dtype %d", (int)dt);
    charrnn_model *m;
    int rc = charrnn_model_shell(cfg, vocab, dt, &m, err, errlen);
    if (rc)
        return rc;
    /* Sizes: the f32 tensors packed in layout order, and the reduced
     * matrices (each 64-byte aligned, int8 scales after its matrix). */
    size_t nf = 0, nb = 0;
    for (int i = 0; i < m->num_tensors; i++) {
        const charrnn_tensor_info *ti = &m->tensors[i];
        if (!charrnn_model_matrix(m, i))
            nf += (ti->numel + 15) & ~(size_t)15;
        else
            nb += align64(ti->numel * charrnn_dtype_bytes(dt)) +
                (dt == CHARRNN_DTYPE_INT8 ? align64(ti->shape[0] * sizeof(float)) : 0);
    }
    m->params = charrnn_alloc_floats(nf);
    m->lowp = aligned_alloc(64, nb ? nb : 64);
    if (!m->params || !m->lowp) {
        free(m->params), free(m->lowp), free(m);
        return charrnn_fail(err, errlen, CHARRNN_ENOMEM, "out of memory for a %s model", names[dt]);
    }
    memset(m->lowp, 0, nb);
    m->lowp_bytes = nb;
    float *fp = m->params;
    char *bp = m->lowp;
    float *view[CHARRNN_MAX_TENSORS] = {0};
    for (int i = 0; i < m->num_tensors; i++) {
        const charrnn_tensor_info *ti = &m->tensors[i];
        charrnn_matrix *mat = (charrnn_matrix *)charrnn_model_matrix(m, i);
        if (!mat) {
            view[i] = fp;
            fp += (ti->numel + 15) & ~(size_t)15;
            continue;
        }
        mat->w = bp;
        bp += align64(ti->numel * charrnn_dtype_bytes(dt));
        if (dt == CHARRNN_DTYPE_INT8) {
            mat->scale = (const float *)bp;
            bp += align64(ti->shape[0] * sizeof(float));
        }
    }
    for (int l = 0; l < cfg->num_layers; l++) {
        m->p.layer[l].w_ih = view[4 * l]; /* NULL above layer 0 */
        m->p.layer[l].w_hh = NULL;
        m->p.layer[l].b_ih = view[4 * l + 2];
        m->p.layer[l].b_hh = view[4 * l + 3];
    }
    m->p.dec_b = view[m->num_tensors - 1];
    m->vocab = vocab;
    *out = m;
    return CHARRNN_OK;
}

static int copy_vocab(const charrnn_vocab *v, charrnn_vocab **out, char *err, size_t errlen)
{
    size_t n = charrnn_vocab_size(v);
    uint32_t *cps = malloc(n * sizeof *cps);
    if (!cps)
        return charrnn_fail(err, errlen, CHARRNN_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++)
        cps[i] = charrnn_vocab_codepoint(v, i);
    int rc = charrnn_vocab_from_codepoints(cps, n, out, err, errlen);
    free(cps);
    return rc;
}

/* The f32 tensor i of m (a bias or rnn.weight_ih_l0), writable. */
static float *f32_tensor(charrnn_model *m, int i)
{
    const int L = m->cfg.num_layers;
    if (i == 4 * L + 1)
        return m->p.dec_b;
    if (i == 4 * L)
        return m->p.dec_w;
    charrnn_layer_params *p = &m->p.layer[i / 4];
    float *const v[4] = {p->w_ih, p->w_hh, p->b_ih, p->b_hh};
    return v[i % 4];
}

int charrnn_model_reduce(const charrnn_model *src, charrnn_dtype dt, charrnn_model **out, char *err,
                         size_t errlen)
{
    *out = NULL;
    if (src->dtype != CHARRNN_DTYPE_F32)
        return charrnn_fail(err, errlen, CHARRNN_EINVAL,
                            "the model is already %s; reduce an f32 model",
                            charrnn_dtype_name(src->dtype));
    charrnn_vocab *v;
    int rc = copy_vocab(src->vocab, &v, err, errlen);
    if (rc)
        return rc;
    charrnn_model *m;
    if ((rc = charrnn_model_create_lowp(&src->cfg, v, dt, &m, err, errlen))) {
        charrnn_vocab_free(v);
        return rc;
    }
    for (int i = 0; i < m->num_tensors; i++) {
        const charrnn_tensor_info *ti = &m->tensors[i];
        const float *w = src->params + ti->offset;
        const charrnn_matrix *mat = charrnn_model_matrix(m, i);
        if (!mat || dt == CHARRNN_DTYPE_F32) {
            memcpy(f32_tensor(m, i), w, ti->numel * sizeof(float));
        } else if (dt == CHARRNN_DTYPE_BF16) {
            uint16_t *q = (uint16_t *)mat->w; /* m's own storage */
            for (size_t k = 0; k < ti->numel; k++) {
                q[k] = charrnn_bf16_from_f32(w[k]);
                if (!isfinite(charrnn_bf16_to_f32(q[k]))) {
                    charrnn_model_free(m);
                    return charrnn_fail(err, errlen, CHARRNN_ERANGE,
                                        "tensor '%s' element %zu (%g) does not fit in bf16",
                                        src->tensors[i].name, k, (double)w[k]);
                }
            }
        } else {
            const size_t R = ti->shape[0], D = ti->shape[1];
            for (size_t r = 0; r < R; r++)
                charrnn_int8_quantize_row(w + r * D, D, (int8_t *)mat->w + r * D,
                                          (float *)mat->scale + r);
        }
    }
    *out = m;
    return CHARRNN_OK;
}

int charrnn_model_widen(const charrnn_model *src, charrnn_model **out, char *err, size_t errlen)
{
    *out = NULL;
    charrnn_vocab *v;
    int rc = copy_vocab(src->vocab, &v, err, errlen);
    if (rc)
        return rc;
    charrnn_model *m;
    if ((rc = charrnn_model_create(&src->cfg, v, &m, err, errlen))) {
        charrnn_vocab_free(v);
        return rc;
    }
    for (int i = 0; i < m->num_tensors; i++) {
        const charrnn_tensor_info *ti = &m->tensors[i];
        float *dst = m->params + ti->offset;
        const charrnn_matrix *mat = charrnn_model_matrix(src, i);
        if (src->dtype == CHARRNN_DTYPE_F32) {
            memcpy(dst, src->params + ti->offset, ti->numel * sizeof(float));
        } else if (!mat) {
            memcpy(dst, f32_tensor((charrnn_model *)src, i), ti->numel * sizeof(float));
        } else if (src->dtype == CHARRNN_DTYPE_BF16) {
            for (size_t k = 0; k < ti->numel; k++)
                dst[k] = charrnn_bf16_to_f32(((const uint16_t *)mat->w)[k]);
        } else {
            const size_t D = ti->shape[1];
            for (size_t k = 0; k < ti->numel; k++)
                dst[k] = (float)((const int8_t *)mat->w)[k] * mat->scale[k / D];
        }
    }
    *out = m;
    return CHARRNN_OK;
}

/* Sum (or max, for max_only) over row r of |tensor i of m| as the step reads
 * it, in double. */
static double row_abs(const charrnn_model *m, int i, size_t r, int max_only)
{
    const size_t D = m->tensors[i].ndim == 2 ? m->tensors[i].shape[1] : 1;
    const charrnn_matrix *mat = charrnn_model_matrix(m, i);
    double acc = 0.0;
    for (size_t c = 0; c < D; c++) {
        double a;
        if (!mat || m->dtype == CHARRNN_DTYPE_F32) {
            const float *w = mat ? (const float *)mat->w : f32_tensor((charrnn_model *)m, i);
            a = fabs((double)w[r * D + c]);
        } else if (m->dtype == CHARRNN_DTYPE_BF16) {
            a = fabs((double)charrnn_bf16_to_f32(((const uint16_t *)mat->w)[r * D + c]));
        } else {
            a = fabs((double)((const int8_t *)mat->w)[r * D + c] * (double)mat->scale[r]);
        }
        acc = max_only ? (a > acc ? a : acc) : acc + a;
    }
    return acc;
}

double charrnn_model_activation_bound(const charrnn_model *m, int *tensor, size_t *row)
{
    const int L = m->cfg.num_layers;
    double worst = -1.0;
    /* Tensor indices of the layout: 4l + 0..3 the layer's w_ih, w_hh, b_ih,
     * b_hh; 4L and 4L + 1 the decoder's weight and bias. */
    for (int l = 0; l <= L; l++) {
        const int w = 4 * l;
        for (size_t r = 0; r < m->tensors[w].shape[0]; r++) {
            double b = l == L ? row_abs(m, w + 1, r, 0) + row_abs(m, w, r, 0)
                              : row_abs(m, w + 2, r, 0) + row_abs(m, w + 3, r, 0) +
                    row_abs(m, w, r, l == 0) + row_abs(m, w + 1, r, 0);
            if (!(b <= worst)) { /* NaN is the worst of all */
                worst = b, *tensor = w, *row = r;
                if (isnan(b))
                    return b;
            }
        }
    }
    return worst;
}

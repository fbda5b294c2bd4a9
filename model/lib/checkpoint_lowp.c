/* bf16 and int8 serving checkpoints: metadata, save order, strict loading
 * (the layout is described in checkpoint_lowp.h and docs/checkpoint-format.md). */
#include "checkpoint_lowp.h"

#include "charrnn/checkpoint.h"
#include "charrnn/lowp.h"
#include "charrnn/status.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

int charrnn_ckpt_dtype(const charrnn_st_file *f, charrnn_dtype *out, char *err, size_t errlen)
{
    const char *version = charrnn_st_meta_get(f, "format_version");
    const char *dtype = charrnn_st_meta_get(f, "dtype");
    if (version && strcmp(version, CHARRNN_FORMAT_VERSION) == 0) {
        if (dtype && strcmp(dtype, "f32") != 0)
            return charrnn_fail(err, errlen, CHARRNN_EFORMAT,
                                "format_version %s holds f32 weights, but metadata dtype is "
                                "'%.32s'",
                                CHARRNN_FORMAT_VERSION, dtype);
        *out = CHARRNN_DTYPE_F32;
        return CHARRNN_OK;
    }
    if (!version || strcmp(version, CHARRNN_FORMAT_VERSION_LOWP) != 0)
        return charrnn_fail(err, errlen, CHARRNN_EFORMAT,
                            "unsupported format_version %.32s (this build reads %s and %s)",
                            version ? version : "(missing)", CHARRNN_FORMAT_VERSION,
                            CHARRNN_FORMAT_VERSION_LOWP);
    if (!dtype || (strcmp(dtype, "bf16") != 0 && strcmp(dtype, "int8") != 0))
        return charrnn_fail(err, errlen, CHARRNN_EFORMAT,
                            "format_version %s needs metadata dtype bf16 or int8, not %s%.32s%s",
                            CHARRNN_FORMAT_VERSION_LOWP, dtype ? "'" : "",
                            dtype ? dtype : "missing", dtype ? "'" : "");
    *out = strcmp(dtype, "bf16") == 0 ? CHARRNN_DTYPE_BF16 : CHARRNN_DTYPE_INT8;
    const char *scales = charrnn_st_meta_get(f, "int8_scale");
    if (*out == CHARRNN_DTYPE_INT8 && (!scales || strcmp(scales, "row") != 0))
        return charrnn_fail(err, errlen, CHARRNN_EFORMAT,
                            "int8 checkpoint needs metadata int8_scale 'row', not %s%.32s%s",
                            scales ? "'" : "", scales ? scales : "missing", scales ? "'" : "");
    if (*out == CHARRNN_DTYPE_BF16 && scales)
        return charrnn_fail(err, errlen, CHARRNN_EFORMAT,
                            "bf16 checkpoint has int8_scale metadata");
    return CHARRNN_OK;
}

/* The f32 tensor i of a reduced model (a bias or rnn.weight_ih_l0). */
static float *f32_of(const charrnn_model *m, int i)
{
    const int L = m->cfg.num_layers;
    if (i == 4 * L + 1)
        return m->p.dec_b;
    const charrnn_layer_params *p = &m->p.layer[i / 4];
    return i % 4 == 0 ? p->w_ih : i % 4 == 2 ? p->b_ih : p->b_hh;
}

size_t charrnn_ckpt_lowp_tensors(const charrnn_model *m, charrnn_st_tensor *t,
                                 char (*names)[CHARRNN_TENSOR_NAME_MAX + 8])
{
    const charrnn_st_dtype sdt = m->dtype == CHARRNN_DTYPE_BF16 ? CHARRNN_ST_BF16 : CHARRNN_ST_I8;
    size_t nt = 0;
    for (int pass = 0; pass < 2; pass++) /* F32 first, then the reduced matrices */
        for (int i = 0; i < m->num_tensors; i++) {
            const charrnn_tensor_info *ti = &m->tensors[i];
            const charrnn_matrix *mat = charrnn_model_matrix(m, i);
            if (pass == 0 && !mat) {
                t[nt++] = (charrnn_st_tensor){.name = ti->name,
                                              .data = f32_of(m, i),
                                              .ndim = ti->ndim,
                                              .shape = {ti->shape[0], ti->shape[1]}};
            } else if (pass == 0 && mat->scale) {
                snprintf(names[i], sizeof names[i], "%s" CHARRNN_SCALE_SUFFIX, ti->name);
                t[nt++] = (charrnn_st_tensor){
                    .name = names[i], .data = mat->scale, .ndim = 1, .shape = {ti->shape[0]}};
            } else if (pass == 1 && mat) {
                t[nt++] = (charrnn_st_tensor){.name = ti->name,
                                              .ndim = 2,
                                              .shape = {ti->shape[0], ti->shape[1]},
                                              .dtype = sdt,
                                              .raw = mat->w};
            }
        }
    return nt;
}

/* Checks a file tensor against the expected dtype and shape. */
static int check_tensor(const charrnn_st_tensor *t, const char *name, charrnn_st_dtype dt, int ndim,
                        const size_t *shape, char *err, size_t errlen)
{
    if (!t)
        return charrnn_fail(err, errlen, CHARRNN_EFORMAT, "tensor '%s' is missing", name);
    if (t->dtype != dt)
        return charrnn_fail(err, errlen, CHARRNN_EFORMAT, "tensor '%s' is %s, expected %s", name,
                            charrnn_st_dtype_name(t->dtype), charrnn_st_dtype_name(dt));
    int same = t->ndim == ndim;
    for (int d = 0; same && d < ndim; d++)
        same = t->shape[d] == shape[d];
    if (!same)
        return ndim == 2
            ? charrnn_fail(err, errlen, CHARRNN_EFORMAT,
                           "tensor '%s' has the wrong shape (expected [%zu, %zu])", name, shape[0],
                           shape[1])
            : charrnn_fail(err, errlen, CHARRNN_EFORMAT,
                           "tensor '%s' has the wrong shape (expected [%zu])", name, shape[0]);
    return CHARRNN_OK;
}

/* Is name a tensor a file of m may hold? (f32 files may add resume state.) */
static int known(const charrnn_model *m, const char *name)
{
    if (m->dtype == CHARRNN_DTYPE_F32 &&
        (strncmp(name, "optim.", 6) == 0 || strncmp(name, "state.", 6) == 0))
        return 1;
    for (int i = 0; i < m->num_tensors; i++) {
        size_t n = strlen(m->tensors[i].name);
        if (strncmp(name, m->tensors[i].name, n) != 0)
            continue;
        if (name[n] == 0)
            return 1;
        if (m->dtype == CHARRNN_DTYPE_INT8 && charrnn_model_matrix(m, i) &&
            strcmp(name + n, CHARRNN_SCALE_SUFFIX) == 0)
            return 1;
    }
    return 0;
}

/* The file dtype tensor i of m is stored in. */
static charrnn_st_dtype file_dtype(const charrnn_model *m, int i)
{
    if (m->dtype == CHARRNN_DTYPE_F32 || !charrnn_model_matrix(m, i))
        return CHARRNN_ST_F32;
    return m->dtype == CHARRNN_DTYPE_INT8 ? CHARRNN_ST_I8 : CHARRNN_ST_BF16;
}

int charrnn_ckpt_check_tensors(const charrnn_st_file *f, const charrnn_config *cfg,
                               charrnn_dtype dt, char *err, size_t errlen)
{
    /* A model without storage: its layout and its dtype's matrix table, enough
     * for known() and file_dtype(). On the stack, so nothing the file says is
     * allocated before the file is known to hold it. */
    charrnn_model shell;
    memset(&shell, 0, sizeof shell);
    shell.cfg = *cfg;
    shell.dtype = dt;
    shell.num_params = charrnn_param_layout(cfg, shell.tensors, &shell.num_tensors);
    for (size_t i = 0; i < charrnn_st_count(f); i++) {
        const charrnn_st_tensor *t = charrnn_st_at(f, i);
        if (dt == CHARRNN_DTYPE_F32 && t->dtype != CHARRNN_ST_F32) /* resume state too */
            return charrnn_fail(err, errlen, CHARRNN_EFORMAT,
                                "tensor '%.64s' is %s in an f32 checkpoint", t->name,
                                charrnn_st_dtype_name(t->dtype));
        if (!known(&shell, t->name))
            return charrnn_fail(err, errlen, CHARRNN_EFORMAT,
                                "unexpected tensor '%.64s' in a %s checkpoint of a %d-layer %s",
                                t->name, charrnn_dtype_name(dt), cfg->num_layers,
                                charrnn_cell_name(cfg->cell));
    }
    for (int i = 0; i < shell.num_tensors; i++) {
        const charrnn_tensor_info *ti = &shell.tensors[i];
        int rc = check_tensor(charrnn_st_get(f, ti->name), ti->name, file_dtype(&shell, i),
                              ti->ndim, ti->shape, err, errlen);
        if (rc)
            return rc;
        if (dt != CHARRNN_DTYPE_INT8 || !charrnn_model_matrix(&shell, i))
            continue;
        char sname[CHARRNN_TENSOR_NAME_MAX + 8];
        snprintf(sname, sizeof sname, "%s" CHARRNN_SCALE_SUFFIX, ti->name);
        if ((rc = check_tensor(charrnn_st_get(f, sname), sname, CHARRNN_ST_F32, 1, ti->shape, err,
                               errlen)))
            return rc;
    }
    return CHARRNN_OK;
}

/* Copies the values of a file that passed charrnn_ckpt_check_tensors into m,
 * checking each one. */
static int load_into(const charrnn_st_file *f, charrnn_model *m, char *err, size_t errlen)
{
    const int int8 = m->dtype == CHARRNN_DTYPE_INT8;
    for (int i = 0; i < m->num_tensors; i++) {
        const charrnn_tensor_info *ti = &m->tensors[i];
        const charrnn_st_tensor *t = charrnn_st_get(f, ti->name);
        const charrnn_matrix *mat = charrnn_model_matrix(m, i);
        if (!mat) {
            int rc = charrnn_ckpt_copy_finite(t, ti->name, f32_of(m, i), err, errlen);
            if (rc)
                return rc;
            continue;
        }
        if (!int8) {
            const uint16_t *b = t->raw;
            for (size_t k = 0; k < ti->numel; k++)
                if ((b[k] & 0x7F80u) == 0x7F80u) /* exponent all ones: Inf or NaN */
                    return charrnn_fail(err, errlen, CHARRNN_EFORMAT,
                                        "tensor '%s' holds a non-finite value at element %zu",
                                        ti->name, k);
            memcpy((void *)mat->w, b, ti->numel * 2); /* m's own storage */
            continue;
        }
        const int8_t *q = t->raw;
        for (size_t k = 0; k < ti->numel; k++)
            if (q[k] == -128)
                return charrnn_fail(err, errlen, CHARRNN_EFORMAT,
                                    "tensor '%s' holds -128 at element %zu (int8 weights are "
                                    "-127..127)",
                                    ti->name, k);
        char sname[CHARRNN_TENSOR_NAME_MAX + 8];
        snprintf(sname, sizeof sname, "%s" CHARRNN_SCALE_SUFFIX, ti->name);
        const charrnn_st_tensor *st = charrnn_st_get(f, sname);
        for (size_t r = 0; r < ti->shape[0]; r++)
            if (!(isfinite(st->data[r]) && st->data[r] >= 0.0f))
                return charrnn_fail(err, errlen, CHARRNN_EFORMAT,
                                    "tensor '%s' holds %g at element %zu (scales are finite "
                                    "and >= 0)",
                                    sname, (double)st->data[r], r);
        memcpy((void *)mat->w, q, ti->numel);
        memcpy((void *)mat->scale, st->data, ti->shape[0] * sizeof(float));
    }
    return CHARRNN_OK;
}

int charrnn_ckpt_copy_finite(const charrnn_st_tensor *t, const char *name, float *dst, char *err,
                             size_t errlen)
{
    size_t n = 1;
    for (int d = 0; d < t->ndim; d++)
        n *= t->shape[d];
    for (size_t k = 0; k < n; k++)
        if (!isfinite(t->data[k]))
            return charrnn_fail(err, errlen, CHARRNN_EFORMAT,
                                "tensor '%s' holds a non-finite value at element %zu", name, k);
    memcpy(dst, t->data, n * sizeof(float));
    return CHARRNN_OK;
}

int charrnn_ckpt_lowp_model(const charrnn_st_file *f, const charrnn_config *cfg,
                            charrnn_vocab *vocab, charrnn_dtype dt, charrnn_model **out, char *err,
                            size_t errlen)
{
    *out = NULL;
    charrnn_model *m;
    int rc = charrnn_model_create_lowp(cfg, vocab, dt, &m, err, errlen);
    if (rc)
        return rc;
    if ((rc = load_into(f, m, err, errlen))) {
        m->vocab = NULL; /* still the caller's on failure */
        charrnn_model_free(m);
        return rc;
    }
    *out = m;
    return CHARRNN_OK;
}

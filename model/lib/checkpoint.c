/* charrnn checkpoints on top of safetensors: metadata contract, parameter
 * tensors with PyTorch names, optional resume state, full validation. */
#include "charrnn/checkpoint.h"

#include "charrnn/lowp.h"
#include "charrnn/status.h"
#include "charrnn/vocab_json.h"
#include "checkpoint_lowp.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int charrnn_checkpoint_save(const char *path, const charrnn_model *m, const char *train_json,
                            const charrnn_resume_state *resume, char *err, size_t errlen)
{
    if (m->dtype != CHARRNN_DTYPE_F32 && resume)
        return charrnn_fail(err, errlen, CHARRNN_EINVAL,
                            "a %s model is for serving: it has no training state to save",
                            charrnn_dtype_name(m->dtype));
    char layers[16], hidden[16];
    snprintf(layers, sizeof layers, "%d", m->cfg.num_layers);
    snprintf(hidden, sizeof hidden, "%d", m->cfg.hidden_size);
    char *vocab = charrnn_vocab_to_json(m->vocab);
    if (!vocab)
        return charrnn_fail(err, errlen, CHARRNN_ENOMEM, "out of memory");
    const int lowp = m->dtype != CHARRNN_DTYPE_F32;
    charrnn_st_meta meta[10] = {
        {"format", "charrnn"},
        {"format_version", lowp ? CHARRNN_FORMAT_VERSION_LOWP : CHARRNN_FORMAT_VERSION},
        {"cell", charrnn_cell_name(m->cfg.cell)},
        {"num_layers", layers},
        {"hidden_size", hidden},
        {"vocab", vocab},
        {"train", train_json ? train_json : "{}"},
    };
    size_t nm = 7;
    if (resume && resume->json)
        meta[nm++] = (charrnn_st_meta){"resume", resume->json};
    if (lowp)
        meta[nm++] = (charrnn_st_meta){"dtype", charrnn_dtype_name(m->dtype)};
    if (m->dtype == CHARRNN_DTYPE_INT8)
        meta[nm++] = (charrnn_st_meta){"int8_scale", "row"};
    charrnn_st_tensor t[2 * CHARRNN_MAX_TENSORS + 3];
    char scale_names[CHARRNN_MAX_TENSORS][CHARRNN_TENSOR_NAME_MAX + 8];
    size_t nt = lowp ? charrnn_ckpt_lowp_tensors(m, t, scale_names) : 0;
    for (int i = 0; i < m->num_tensors && !lowp; i++) {
        const charrnn_tensor_info *ti = &m->tensors[i];
        t[nt++] = (charrnn_st_tensor){.name = ti->name,
                                      .data = m->params + ti->offset,
                                      .ndim = ti->ndim,
                                      .shape = {ti->shape[0], ti->shape[1]}};
    }
    if (resume) {
        if (resume->m)
            t[nt++] = (charrnn_st_tensor){
                .name = "optim.m", .data = resume->m, .ndim = 1, .shape = {m->num_params}};
        if (resume->v)
            t[nt++] = (charrnn_st_tensor){
                .name = "optim.v", .data = resume->v, .ndim = 1, .shape = {m->num_params}};
        if (resume->carry)
            t[nt++] = (charrnn_st_tensor){.name = "state.carry",
                                          .data = resume->carry,
                                          .ndim = 1,
                                          .shape = {resume->carry_len}};
    }
    int rc = charrnn_st_write(path, t, nt, meta, nm, err, errlen);
    free(vocab);
    return rc;
}

/* Strict decimal integer within [lo, hi]. */
static int parse_int(const char *s, int lo, int hi, int *out)
{
    if (!s || !*s)
        return 0;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < lo || v > hi || (s[0] != '-' && (s[0] < '0' || s[0] > '9')))
        return 0;
    *out = (int)v;
    return 1;
}

int charrnn_checkpoint_model(const charrnn_st_file *f, charrnn_model **out, char *err,
                             size_t errlen)
{
    *out = NULL;
    const char *format = charrnn_st_meta_get(f, "format");
    if (!format || strcmp(format, "charrnn") != 0)
        return charrnn_fail(err, errlen, CHARRNN_EFORMAT,
                            "not a charrnn checkpoint (metadata format is %s%.32s%s)",
                            format ? "'" : "", format ? format : "missing", format ? "'" : "");
    charrnn_dtype dt;
    int rc = charrnn_ckpt_dtype(f, &dt, err, errlen);
    if (rc)
        return rc;
    charrnn_config cfg;
    if (charrnn_cell_parse(charrnn_st_meta_get(f, "cell"), &cfg.cell))
        return charrnn_fail(err, errlen, CHARRNN_EFORMAT, "metadata cell is missing or unknown");
    if (!parse_int(charrnn_st_meta_get(f, "num_layers"), 1, CHARRNN_MAX_LAYERS, &cfg.num_layers))
        return charrnn_fail(err, errlen, CHARRNN_EFORMAT,
                            "metadata num_layers is missing or not in 1..%d", CHARRNN_MAX_LAYERS);
    if (!parse_int(charrnn_st_meta_get(f, "hidden_size"), 1, CHARRNN_MAX_HIDDEN, &cfg.hidden_size))
        return charrnn_fail(err, errlen, CHARRNN_EFORMAT,
                            "metadata hidden_size is missing or not in 1..%d", CHARRNN_MAX_HIDDEN);
    const char *vjson = charrnn_st_meta_get(f, "vocab");
    if (!vjson)
        return charrnn_fail(err, errlen, CHARRNN_EFORMAT, "metadata vocab is missing");
    if (!charrnn_st_meta_get(f, "train"))
        return charrnn_fail(err, errlen, CHARRNN_EFORMAT, "metadata train is missing");
    charrnn_vocab *vocab;
    rc = charrnn_vocab_from_json(vjson, &vocab, err, errlen);
    if (rc)
        return rc;
    cfg.vocab_size = (int)charrnn_vocab_size(vocab);
    /* Every tensor checked against the metadata before the model is allocated. */
    if ((rc = charrnn_ckpt_check_tensors(f, &cfg, dt, err, errlen))) {
        charrnn_vocab_free(vocab);
        return rc;
    }
    charrnn_model *m;
    if (dt != CHARRNN_DTYPE_F32) {
        if ((rc = charrnn_ckpt_lowp_model(f, &cfg, vocab, dt, &m, err, errlen))) {
            charrnn_vocab_free(vocab);
            return rc;
        }
    } else if ((rc = charrnn_model_create(&cfg, vocab, &m, err, errlen))) {
        charrnn_vocab_free(vocab);
        return rc;
    }
    for (int i = 0; i < m->num_tensors && dt == CHARRNN_DTYPE_F32; i++) {
        const charrnn_tensor_info *ti = &m->tensors[i];
        /* ti points into m: the message is formatted before m is freed. */
        if ((rc = charrnn_ckpt_copy_finite(charrnn_st_get(f, ti->name), ti->name,
                                           m->params + ti->offset, err, errlen))) {
            charrnn_model_free(m);
            return rc;
        }
    }
    int worst;
    size_t row;
    const double bound = charrnn_model_activation_bound(m, &worst, &row);
    if (!(bound <= CHARRNN_MAX_ACTIVATION)) {
        const int logit = worst == 4 * cfg.num_layers;
        rc = charrnn_fail(err, errlen, CHARRNN_EFORMAT,
                          "row %zu of tensor '%s' and its bias can reach a %s of %.3g (at most "
                          "%g is accepted): the model's arithmetic could overflow",
                          row, m->tensors[worst].name, logit ? "logit" : "gate pre-activation",
                          bound, CHARRNN_MAX_ACTIVATION);
        charrnn_model_free(m);
        return rc;
    }
    *out = m;
    return CHARRNN_OK;
}

int charrnn_checkpoint_load(const char *path, charrnn_model **out, char *err, size_t errlen)
{
    *out = NULL;
    charrnn_st_file *f;
    int rc = charrnn_st_read(path, &f, err, errlen);
    if (rc)
        return rc;
    rc = charrnn_checkpoint_model(f, out, err, errlen);
    charrnn_st_free(f);
    return rc ? charrnn_err_prefix(err, errlen, rc, path) : rc;
}

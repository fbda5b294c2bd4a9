/* Check suite for reduced-precision serving models (charrnn/lowp.h): the
 * conversions, bf16 and int8 checkpoints saved and loaded bit for bit, every
 * way a reduced file can be wrong rejected with a precise message, sampling
 * from a bf16 model equal to sampling from its exact f32 widening, and the
 * quality bounds (validation loss +0.003 nats/char for bf16, +0.02 for int8)
 * on a small model trained here. */
#include "charrnn/checkpoint.h"
#include "charrnn/data.h"
#include "charrnn/evaluate.h"
#include "charrnn/lowp.h"
#include "charrnn/model.h"
#include "charrnn/rng.h"
#include "charrnn/sampler.h"
#include "charrnn/status.h"
#include "charrnn/trainer.h"

#include "testutil.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

static charrnn_model *make_model(charrnn_cell cell, int V, int H, int L, uint64_t seed)
{
    char err[CHARRNN_ERR_MAX];
    charrnn_config cfg = {cell, V, H, L};
    charrnn_model *m = NULL;
    ck_assert_int_eq(charrnn_model_create(&cfg, letters_vocab(V), &m, err, sizeof err), CHARRNN_OK);
    chaotic_weights(m, seed);
    return m;
}

static charrnn_model *reduce(const charrnn_model *m, charrnn_dtype dt)
{
    char err[CHARRNN_ERR_MAX];
    charrnn_model *q = NULL;
    ck_assert_msg(charrnn_model_reduce(m, dt, &q, err, sizeof err) == CHARRNN_OK, "%s", err);
    ck_assert_int_eq(q->dtype, dt);
    return q;
}

static char *tmpdir(void)
{
    char *d = strdup("/tmp/charrnn-lowp-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(d));
    return d;
}

static void rmtree(const char *dir)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

static float f32_of_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* ---- conversions ---- */

START_TEST(bf16_rounds_to_nearest_even)
{
    /* 1 + 2^-8 is halfway between bf16 1 and 1 + 2^-7: ties to even (1). */
    ck_assert_uint_eq(charrnn_bf16_from_f32(f32_of_bits(0x3F808000u)), 0x3F80u);
    /* 1 + 3 * 2^-8: halfway, rounds up to the even 1 + 2^-6. */
    ck_assert_uint_eq(charrnn_bf16_from_f32(f32_of_bits(0x3F818000u)), 0x3F82u);
    /* Just above halfway rounds up; just below rounds down. */
    ck_assert_uint_eq(charrnn_bf16_from_f32(f32_of_bits(0x3F808001u)), 0x3F81u);
    ck_assert_uint_eq(charrnn_bf16_from_f32(f32_of_bits(0x3F807FFFu)), 0x3F80u);
    ck_assert_uint_eq(charrnn_bf16_from_f32(-0.0f), 0x8000u);
    ck_assert_uint_eq(charrnn_bf16_from_f32(FLT_MAX), 0x7F80u); /* overflows to Inf */
    ck_assert(isnan(charrnn_bf16_to_f32(charrnn_bf16_from_f32(NAN))));
    /* Every bf16 value survives the round trip exactly. */
    for (uint32_t b = 0; b < 0x10000u; b++) {
        if ((b & 0x7F80u) == 0x7F80u)
            continue;
        ck_assert_uint_eq(charrnn_bf16_from_f32(charrnn_bf16_to_f32((uint16_t)b)), b);
    }
}
END_TEST

START_TEST(int8_rows)
{
    const float w[6] = {0.5f, -1.27f, 0.0f, 0.01f, 1.0f, -0.635f};
    int8_t q[6];
    float s;
    charrnn_int8_quantize_row(w, 6, q, &s);
    ck_assert_float_eq(s, 1.27f / 127.0f);
    ck_assert_int_eq(q[1], -127); /* the largest magnitude maps to 127 */
    ck_assert_int_eq(q[2], 0);
    ck_assert_int_eq(q[3], 1);
    ck_assert_int_eq(q[0], 50);
    ck_assert_int_eq(q[5], -64); /* -63.5 rounds away from zero */
    for (int c = 0; c < 6; c++)
        ck_assert_msg(fabsf((float)q[c] * s - w[c]) <= 0.5f * s * 1.0001f, "element %d", c);
    const float z[3] = {0};
    charrnn_int8_quantize_row(z, 3, q, &s);
    ck_assert_float_eq(s, 0.0f);
    ck_assert_int_eq(q[0] | q[1] | q[2], 0);
}
END_TEST

/* A reduced model holds the bytes of its dtype only: about a half (bf16)
 * and a quarter (int8) of the f32 weights. */
START_TEST(reduced_memory)
{
    charrnn_model *m = make_model(CHARRNN_CELL_LSTM, 50, 256, 2, 1);
    charrnn_model *b = reduce(m, CHARRNN_DTYPE_BF16), *q = reduce(m, CHARRNN_DTYPE_INT8);
    size_t f32 = m->num_params * 4;
    ck_assert_uint_le(b->lowp_bytes, f32 / 2);
    ck_assert_uint_le(q->lowp_bytes, f32 / 4 + 4 * 4096);
    ck_assert_uint_eq(b->num_params, m->num_params);
    /* The reduced matrices have no f32 view. */
    ck_assert_ptr_null(b->p.layer[1].w_hh);
    ck_assert_ptr_null(q->p.dec_w);
    ck_assert_ptr_nonnull(q->p.layer[0].w_ih);
    charrnn_model_free(m), charrnn_model_free(b), charrnn_model_free(q);
}
END_TEST

/* ---- files ---- */

static size_t matrix_bytes(const charrnn_model *m, int i)
{
    return m->tensors[i].numel * (m->dtype == CHARRNN_DTYPE_BF16 ? 2 : 1);
}

static void assert_same_model(const charrnn_model *a, const charrnn_model *b)
{
    char err[CHARRNN_ERR_MAX];
    ck_assert_int_eq(a->dtype, b->dtype);
    for (int i = 0; i < a->num_tensors; i++) {
        const charrnn_matrix *ma = charrnn_model_matrix(a, i), *mb = charrnn_model_matrix(b, i);
        if (!ma)
            continue;
        ck_assert_msg(memcmp(ma->w, mb->w, matrix_bytes(a, i)) == 0, "%s", a->tensors[i].name);
        if (a->dtype == CHARRNN_DTYPE_INT8)
            ck_assert(memcmp(ma->scale, mb->scale, a->tensors[i].shape[0] * 4) == 0);
    }
    /* The f32 tensors: compare the widened models as a whole. */
    charrnn_model *wa, *wb;
    ck_assert_int_eq(charrnn_model_widen(a, &wa, err, sizeof err), CHARRNN_OK);
    ck_assert_int_eq(charrnn_model_widen(b, &wb, err, sizeof err), CHARRNN_OK);
    ck_assert(memcmp(wa->params, wb->params, wa->num_params * 4) == 0);
    charrnn_model_free(wa), charrnn_model_free(wb);
}

START_TEST(save_and_load_round_trip)
{
    char err[CHARRNN_ERR_MAX], path[256];
    char *dir = tmpdir();
    static const charrnn_cell cells[] = {CHARRNN_CELL_LSTM, CHARRNN_CELL_GRU, CHARRNN_CELL_RNN};
    for (int c = 0; c < 3; c++) {
        charrnn_model *m = make_model(cells[c], 7, 45, 3, 10 + (uint64_t)c);
        for (int dt = CHARRNN_DTYPE_BF16; dt <= CHARRNN_DTYPE_INT8; dt++) {
            charrnn_model *q = reduce(m, (charrnn_dtype)dt), *back = NULL;
            snprintf(path, sizeof path, "%s/m.safetensors", dir);
            ck_assert_msg(charrnn_checkpoint_save(path, q, "{\"val_loss\":1}", NULL, err,
                                                  sizeof err) == CHARRNN_OK,
                          "%s", err);
            ck_assert_msg(charrnn_checkpoint_load(path, &back, err, sizeof err) == CHARRNN_OK, "%s",
                          err);
            assert_same_model(q, back);
            charrnn_st_file *f;
            ck_assert_int_eq(charrnn_st_read(path, &f, err, sizeof err), CHARRNN_OK);
            ck_assert_str_eq(charrnn_st_meta_get(f, "format_version"), "2");
            ck_assert_str_eq(charrnn_st_meta_get(f, "dtype"), charrnn_dtype_name(q->dtype));
            const charrnn_st_tensor *t = charrnn_st_get(f, "rnn.weight_hh_l2");
            ck_assert_int_eq(t->dtype, dt == CHARRNN_DTYPE_BF16 ? CHARRNN_ST_BF16 : CHARRNN_ST_I8);
            ck_assert_int_eq(charrnn_st_get(f, "rnn.weight_ih_l0")->dtype, CHARRNN_ST_F32);
            ck_assert_int_eq(charrnn_st_get(f, "decoder.bias")->dtype, CHARRNN_ST_F32);
            ck_assert((charrnn_st_get(f, "decoder.weight.scale") != NULL) ==
                      (dt == CHARRNN_DTYPE_INT8));
            charrnn_st_free(f);
            /* A serving model has no training state to save. */
            charrnn_resume_state rs = {0};
            ck_assert_int_eq(charrnn_checkpoint_save(path, q, NULL, &rs, err, sizeof err),
                             CHARRNN_EINVAL);
            charrnn_model_free(q), charrnn_model_free(back);
        }
        /* A reduced model is not reduced again. */
        charrnn_model *q = reduce(m, CHARRNN_DTYPE_BF16), *qq = (charrnn_model *)1;
        ck_assert_int_eq(charrnn_model_reduce(q, CHARRNN_DTYPE_INT8, &qq, err, sizeof err),
                         CHARRNN_EINVAL);
        ck_assert_ptr_null(qq);
        charrnn_model_free(q);
        charrnn_model_free(m);
    }
    rmtree(dir);
    free(dir);
}
END_TEST

/* A saved reduced file as editable arrays: tensors (with their bytes copied)
 * and metadata, rewritten with charrnn_st_write to make it wrong. */
typedef struct {
    charrnn_st_tensor t[2 * CHARRNN_MAX_TENSORS];
    char names[2 * CHARRNN_MAX_TENSORS][64];
    void *data[2 * CHARRNN_MAX_TENSORS];
    size_t nt;
    charrnn_st_meta meta[16];
    char keys[16][32], values[16][4096];
    size_t nm;
    char *dir;
    char path[256];
} parts;

static void parts_init(parts *p, charrnn_dtype dt)
{
    char err[CHARRNN_ERR_MAX];
    memset(p, 0, sizeof *p);
    charrnn_model *m = make_model(CHARRNN_CELL_LSTM, 5, 20, 2, 3), *q = reduce(m, dt);
    p->dir = tmpdir();
    snprintf(p->path, sizeof p->path, "%s/v.safetensors", p->dir);
    ck_assert_int_eq(charrnn_checkpoint_save(p->path, q, "{}", NULL, err, sizeof err), CHARRNN_OK);
    charrnn_model_free(m), charrnn_model_free(q);
    charrnn_st_file *f;
    ck_assert_int_eq(charrnn_st_read(p->path, &f, err, sizeof err), CHARRNN_OK);
    for (size_t i = 0; i < charrnn_st_count(f); i++) {
        const charrnn_st_tensor *t = charrnn_st_at(f, i);
        size_t n = charrnn_st_dtype_size(t->dtype);
        for (int d = 0; d < t->ndim; d++)
            n *= t->shape[d];
        p->data[i] = malloc(n + 4);
        memcpy(p->data[i], t->raw, n);
        snprintf(p->names[i], sizeof p->names[i], "%s", t->name);
        p->t[i] = *t;
        p->t[i].name = p->names[i];
        p->t[i].raw = p->data[i];
        p->t[i].data = NULL;
        p->nt++;
    }
    static const char *keys[] = {"format", "format_version", "cell",  "num_layers", "hidden_size",
                                 "vocab",  "train",          "dtype", "int8_scale"};
    for (size_t k = 0; k < sizeof keys / sizeof *keys; k++) {
        const char *v = charrnn_st_meta_get(f, keys[k]);
        if (!v)
            continue;
        snprintf(p->keys[p->nm], sizeof p->keys[0], "%s", keys[k]);
        snprintf(p->values[p->nm], sizeof p->values[0], "%s", v);
        p->meta[p->nm] = (charrnn_st_meta){p->keys[p->nm], p->values[p->nm]};
        p->nm++;
    }
    charrnn_st_free(f);
}

static void parts_free(parts *p)
{
    for (size_t i = 0; i < 2 * CHARRNN_MAX_TENSORS; i++)
        free(p->data[i]);
    rmtree(p->dir);
    free(p->dir);
}

static void set_meta(parts *p, const char *key, const char *value)
{
    st_meta_set(p->meta, &p->nm, key, value);
}

static charrnn_st_tensor *tensor(parts *p, const char *name)
{
    return st_tensor_find(p->t, p->nt, name);
}

static void drop(parts *p, const char *name)
{
    charrnn_st_tensor *t = tensor(p, name);
    *t = p->t[--p->nt];
}

static void expect_load(parts *p, const char *want)
{
    char err[CHARRNN_ERR_MAX];
    ck_assert_msg(charrnn_st_write(p->path, p->t, p->nt, p->meta, p->nm, err, sizeof err) ==
                      CHARRNN_OK,
                  "%s", err);
    charrnn_model *m = (charrnn_model *)1;
    err[0] = 0;
    int rc = charrnn_checkpoint_load(p->path, &m, err, sizeof err);
    if (!want) {
        ck_assert_msg(rc == CHARRNN_OK, "%s", err);
        charrnn_model_free(m);
        return;
    }
    ck_assert_msg(rc == CHARRNN_EFORMAT, "rc %d, expected an error containing \"%s\"", rc, want);
    ck_assert_ptr_null(m);
    ck_assert_msg(strstr(err, want) != NULL, "error \"%s\" lacks \"%s\"", err, want);
}

START_TEST(untouched_parts_load)
{
    for (int dt = CHARRNN_DTYPE_BF16; dt <= CHARRNN_DTYPE_INT8; dt++) {
        parts p;
        parts_init(&p, (charrnn_dtype)dt);
        expect_load(&p, NULL);
        parts_free(&p);
    }
}
END_TEST

START_TEST(rejects_bad_metadata)
{
    static const struct {
        charrnn_dtype dt;
        const char *key, *value, *want;
    } cases[] = {
        {CHARRNN_DTYPE_BF16, "dtype", NULL, "format_version 2 needs metadata dtype bf16 or int8"},
        {CHARRNN_DTYPE_BF16, "dtype", "fp8", "needs metadata dtype bf16 or int8, not 'fp8'"},
        {CHARRNN_DTYPE_BF16, "dtype", "f32", "needs metadata dtype bf16 or int8, not 'f32'"},
        {CHARRNN_DTYPE_BF16, "dtype", "int8", "int8 checkpoint needs metadata int8_scale"},
        {CHARRNN_DTYPE_BF16, "int8_scale", "row", "bf16 checkpoint has int8_scale metadata"},
        {CHARRNN_DTYPE_INT8, "int8_scale", NULL, "needs metadata int8_scale 'row', not missing"},
        {CHARRNN_DTYPE_INT8, "int8_scale", "block32", "int8_scale 'row', not 'block32'"},
        {CHARRNN_DTYPE_INT8, "dtype", "bf16", "bf16 checkpoint has int8_scale metadata"},
        {CHARRNN_DTYPE_INT8, "format_version", "1", "format_version 1 holds f32 weights"},
        {CHARRNN_DTYPE_BF16, "format_version", "1", "format_version 1 holds f32 weights"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        parts p;
        parts_init(&p, cases[i].dt);
        set_meta(&p, cases[i].key, cases[i].value);
        expect_load(&p, cases[i].want);
        parts_free(&p);
    }
}
END_TEST

START_TEST(rejects_bad_tensors)
{
    parts p;
    char err[CHARRNN_ERR_MAX];
    /* A reduced matrix missing or in the wrong dtype; a bias not in f32. */
    parts_init(&p, CHARRNN_DTYPE_BF16);
    drop(&p, "rnn.weight_hh_l1");
    expect_load(&p, "tensor 'rnn.weight_hh_l1' is missing");
    parts_free(&p);

    parts_init(&p, CHARRNN_DTYPE_BF16);
    charrnn_st_tensor *t = tensor(&p, "decoder.weight");
    t->dtype = CHARRNN_ST_I8, t->shape[1] *= 2; /* the same bytes read as I8 */
    expect_load(&p, "tensor 'decoder.weight' is I8, expected BF16");
    parts_free(&p);

    parts_init(&p, CHARRNN_DTYPE_INT8);
    t = tensor(&p, "rnn.bias_hh_l0");
    t->dtype = CHARRNN_ST_BF16, t->shape[0] *= 2;
    expect_load(&p, "tensor 'rnn.bias_hh_l0' is BF16, expected F32");
    parts_free(&p);

    parts_init(&p, CHARRNN_DTYPE_BF16);
    t = tensor(&p, "rnn.weight_hh_l0");
    t->shape[0] /= 2, t->shape[1] *= 2;
    expect_load(&p, "tensor 'rnn.weight_hh_l0' has the wrong shape (expected [80, 20])");
    parts_free(&p);

    /* Values: bf16 Inf and NaN, int8 -128, bad scales. */
    static const uint16_t bad16[] = {0x7F80u, 0xFF80u, 0x7FC0u, 0xFFFFu};
    for (int k = 0; k < 4; k++) {
        parts_init(&p, CHARRNN_DTYPE_BF16);
        ((uint16_t *)tensor(&p, "rnn.weight_ih_l1")->raw)[7] = bad16[k];
        expect_load(&p, "tensor 'rnn.weight_ih_l1' holds a non-finite value at element 7");
        parts_free(&p);
    }
    parts_init(&p, CHARRNN_DTYPE_INT8);
    ((int8_t *)tensor(&p, "decoder.weight")->raw)[3] = -128;
    expect_load(&p, "tensor 'decoder.weight' holds -128 at element 3");
    parts_free(&p);
    static const float badscale[] = {-1.0f, NAN, INFINITY};
    for (int k = 0; k < 3; k++) {
        parts_init(&p, CHARRNN_DTYPE_INT8);
        ((float *)tensor(&p, "rnn.weight_hh_l1.scale")->raw)[2] = badscale[k];
        expect_load(&p, "tensor 'rnn.weight_hh_l1.scale' holds ");
        parts_free(&p);
    }
    parts_init(&p, CHARRNN_DTYPE_INT8);
    drop(&p, "rnn.weight_hh_l0.scale");
    expect_load(&p, "tensor 'rnn.weight_hh_l0.scale' is missing");
    parts_free(&p);
    parts_init(&p, CHARRNN_DTYPE_INT8);
    tensor(&p, "decoder.weight.scale")->shape[0] -= 1;
    expect_load(&p, "decoder.weight.scale");
    parts_free(&p);

    /* Nothing unknown: no scale for f32 tensors, no training state. */
    parts_init(&p, CHARRNN_DTYPE_INT8);
    float junk[4] = {0};
    p.t[p.nt++] =
        (charrnn_st_tensor){.name = "rnn.bias_ih_l0.scale", .data = junk, .ndim = 1, .shape = {4}};
    expect_load(&p, "unexpected tensor 'rnn.bias_ih_l0.scale' in a int8 checkpoint");
    parts_free(&p);
    parts_init(&p, CHARRNN_DTYPE_BF16);
    p.t[p.nt++] = (charrnn_st_tensor){.name = "optim.m", .data = junk, .ndim = 1, .shape = {4}};
    expect_load(&p, "unexpected tensor 'optim.m' in a bf16 checkpoint");
    parts_free(&p);
    parts_init(&p, CHARRNN_DTYPE_BF16);
    p.t[p.nt++] =
        (charrnn_st_tensor){.name = "decoder.weight.scale", .data = junk, .ndim = 1, .shape = {4}};
    expect_load(&p, "unexpected tensor 'decoder.weight.scale' in a bf16 checkpoint");
    parts_free(&p);

    /* An f32 file holds F32 only. */
    parts_init(&p, CHARRNN_DTYPE_BF16);
    set_meta(&p, "format_version", "1");
    set_meta(&p, "dtype", NULL);
    expect_load(&p, "tensor 'rnn.weight_hh_l0' is BF16 in an f32 checkpoint");
    parts_free(&p);
    (void)err;
}
END_TEST

/* ---- sampling ---- */

static size_t sample(const charrnn_model *m, uint64_t seed, char *out, size_t cap)
{
    char err[CHARRNN_ERR_MAX];
    charrnn_sample_params p = charrnn_sample_defaults();
    p.length = 400;
    p.seed = seed;
    p.prime = "ABCA";
    p.prime_len = 4;
    charrnn_stream *s;
    ck_assert_int_eq(charrnn_stream_create(m, &p, &s, err, sizeof err), CHARRNN_OK);
    size_t len = 0;
    while (!charrnn_stream_done(s)) {
        ck_assert_int_eq(charrnn_infer_step(m, 1, &s), CHARRNN_OK);
        ck_assert_uint_lt(len + 4, cap);
        len += (size_t)charrnn_stream_emit(s, out + len);
    }
    charrnn_stream_free(s);
    return len;
}

/* bf16 widening is exact and the kernel sums in the f32 order, so a bf16
 * model samples exactly what its widened f32 copy samples, in every kernel. */
START_TEST(bf16_samples_as_its_f32_widening)
{
    char err[CHARRNN_ERR_MAX];
    static char a[512], b[512];
    static const char *kernels[] = {"avx512", "avx2", "portable"};
    const char *def = charrnn_kernel_name();
    charrnn_model *m = make_model(CHARRNN_CELL_LSTM, 9, 45, 2, 21);
    charrnn_model *q = reduce(m, CHARRNN_DTYPE_BF16), *w;
    ck_assert_int_eq(charrnn_model_widen(q, &w, err, sizeof err), CHARRNN_OK);
    for (size_t k = 0; k < 3; k++) {
        if (charrnn_kernel_select(kernels[k], NULL, 0) != CHARRNN_OK)
            continue;
        for (uint64_t seed = 1; seed <= 4; seed++) {
            size_t la = sample(q, seed, a, sizeof a), lb = sample(w, seed, b, sizeof b);
            ck_assert_msg(la == lb && memcmp(a, b, la) == 0, "kernel %s seed %d", kernels[k],
                          (int)seed);
        }
    }
    /* And the reduction matters: the original f32 model samples other text. */
    size_t la = sample(q, 1, a, sizeof a), lb = sample(m, 1, b, sizeof b);
    ck_assert(la != lb || memcmp(a, b, la) != 0);
    ck_assert_int_eq(charrnn_kernel_select(def, NULL, 0), CHARRNN_OK);
    charrnn_model_free(m), charrnn_model_free(q), charrnn_model_free(w);
}
END_TEST

/* ---- quality ---- */

/* A small LSTM trained on the README for a few hundred steps, then the
 * validation loss of its bf16 and int8 versions as they are served (through
 * the inference kernel: int8 quantizes its inputs there too), against the f32
 * model's as training computes it. */
START_TEST(quality_bounds)
{
    char err[CHARRNN_ERR_MAX], path[4096];
    const char *src = getenv("CHARRNN_SOURCE_ROOT");
    snprintf(path, sizeof path, "%s/README.md", src ? src : ".");
    charrnn_corpus *c;
    ck_assert_msg(charrnn_corpus_load(path, NULL, &c, err, sizeof err) == CHARRNN_OK, "%s", err);
    charrnn_vocab *v;
    size_t nv = charrnn_vocab_size(c->vocab);
    uint32_t *cps = malloc(nv * sizeof *cps);
    for (size_t i = 0; i < nv; i++)
        cps[i] = charrnn_vocab_codepoint(c->vocab, i);
    ck_assert_int_eq(charrnn_vocab_from_codepoints(cps, nv, &v, NULL, 0), CHARRNN_OK);
    free(cps);
    charrnn_config cfg = {CHARRNN_CELL_LSTM, (int)nv, 64, 2};
    charrnn_model *m;
    ck_assert_int_eq(charrnn_model_create(&cfg, v, &m, err, sizeof err), CHARRNN_OK);
    charrnn_rng rng;
    charrnn_rng_seed(&rng, 7);
    charrnn_model_init(m, &rng);
    enum { B = 16, T = 32, ITERS = 800 };
    charrnn_split sp[3];
    ck_assert_int_eq(charrnn_split_make(c, 0.9, 0.1, B, T, sp, err, sizeof err), CHARRNN_OK);
    charrnn_optim_config oc = charrnn_optim_defaults(CHARRNN_OPT_ADAM);
    charrnn_trainer *tr;
    ck_assert_int_eq(charrnn_trainer_create(m, B, T, 0.0f, &oc, 1, &tr, err, sizeof err),
                     CHARRNN_OK);
    uint16_t x[B * T], y[B * T];
    for (int it = 0; it < ITERS; it++) {
        charrnn_split_batch(&sp[0], (size_t)it % sp[0].nbatches, x, y);
        charrnn_trainer_step(tr, x, y, 5e-3f, 5.0f);
    }
    charrnn_trainer_free(tr);
    double l32, lb, li;
    ck_assert_int_eq(charrnn_evaluate(m, &sp[1], 1, &l32, err, sizeof err), CHARRNN_OK);
    /* It learned something: the bounds are about a model, not noise. */
    ck_assert_msg(l32 < 2.6, "f32 validation loss %.4f", l32);
    /* The served path measures the same thing: the f32 model agrees. */
    double ls;
    ck_assert_msg(charrnn_evaluate_served(m, &sp[1], &ls, err, sizeof err) == CHARRNN_OK, "%s",
                  err);
    ck_assert_msg(fabs(ls - l32) < 1e-4, "f32 as trained %.6f, as served %.6f", l32, ls);
    charrnn_model *q[2] = {reduce(m, CHARRNN_DTYPE_BF16), reduce(m, CHARRNN_DTYPE_INT8)};
    double *out[2] = {&lb, &li};
    for (int k = 0; k < 2; k++) {
        ck_assert_msg(charrnn_evaluate_served(q[k], &sp[1], out[k], err, sizeof err) == CHARRNN_OK,
                      "%s", err);
        charrnn_model_free(q[k]);
    }
    fprintf(stderr,
            "quality: validation loss f32 %.5f (served %+.6f), bf16 %+.5f, int8 %+.5f "
            "nats/char\n",
            l32, ls - l32, lb - l32, li - l32);
    ck_assert_msg(lb - l32 <= 0.003, "bf16 costs %.5f nats/char", lb - l32);
    ck_assert_msg(li - l32 <= 0.02, "int8 costs %.5f nats/char", li - l32);
    charrnn_model_free(m);
    charrnn_corpus_free(c);
}
END_TEST

static Suite *lowp_suite(void)
{
    Suite *s = suite_create("lowp");
    TCase *tc = tcase_create("convert");
    tcase_add_test(tc, bf16_rounds_to_nearest_even);
    tcase_add_test(tc, int8_rows);
    tcase_add_test(tc, reduced_memory);
    suite_add_tcase(s, tc);
    tc = tcase_create("files");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, save_and_load_round_trip);
    tcase_add_test(tc, untouched_parts_load);
    tcase_add_test(tc, rejects_bad_metadata);
    tcase_add_test(tc, rejects_bad_tensors);
    suite_add_tcase(s, tc);
    tc = tcase_create("sampling");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, bf16_samples_as_its_f32_widening);
    suite_add_tcase(s, tc);
    tc = tcase_create("quality");
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, quality_bounds);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(lowp_suite());
}

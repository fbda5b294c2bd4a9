/* safetensors and checkpoints: bit-exact round trip, atomic writes, and the
 * loader's rejections — every bad file gets a precise message (we check a
 * substring of it), never a crash (Check forks each test, so a crash is a
 * failure) and never a half-built model. */
#include "testutil.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <float.h>
#include <malloc.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- a small model with an awkward vocabulary ------------------------- */

/* SOH, TAB, LF, '"', 'A', '\\', 'z', and 2-, 3- and 4-byte UTF-8 characters
 * (sorted). Not NUL: a vocabulary may not hold it (rejects_nul_in_vocab). */
static const uint32_t odd_cps[] = {0x01, 0x09, 0x0A, 0x22, 0x41, 0x5C, 0x7A, 0xE9, 0x20AC, 0x1F600};
enum { NV = sizeof odd_cps / sizeof odd_cps[0], NH = 3, NL = 2 };

static charrnn_model *make_model(charrnn_cell cell, int layers, uint64_t seed)
{
    charrnn_vocab *v;
    char err[CHARRNN_ERR_MAX];
    ck_assert_int_eq(charrnn_vocab_from_codepoints(odd_cps, NV, &v, err, sizeof err), CHARRNN_OK);
    charrnn_config cfg = {cell, NV, NH, layers};
    charrnn_model *m;
    ck_assert_int_eq(charrnn_model_create(&cfg, v, &m, err, sizeof err), CHARRNN_OK);
    charrnn_rng r;
    charrnn_rng_seed(&r, seed);
    charrnn_model_init(m, &r);
    /* Values whose bits a sloppy writer would lose: -0, a denormal, the
     * smallest normal, every mantissa bit set at a large exponent (FLT_MAX
     * itself is refused: a gate could overflow, CHARRNN_MAX_ACTIVATION). */
    m->params[0] = -0.0f;
    m->params[1] = 1e-45f;
    m->params[2] = 0x1.fffffep+98f;
    m->params[3] = -FLT_MIN;
    return m;
}

static char *tmpdir(void)
{
    char *d = strdup("/tmp/charrnn-ckpt-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(d));
    return d;
}

static void rmtree(const char *dir)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

/* Names of the entries of dir (excluding . and ..), joined by '|'. */
static void listdir(const char *dir, char *out, size_t cap)
{
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    out[0] = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        strncat(out, e->d_name, cap - strlen(out) - 2);
        strcat(out, "|");
    }
    closedir(d);
}

static uint8_t *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc((size_t)n + 1);
    ck_assert_uint_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static void write_file(const char *path, const void *buf, size_t len)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(buf, 1, len, f), len);
    fclose(f);
}

/* ---- round trip -------------------------------------------------------- */

START_TEST(round_trip_bit_exact)
{
    static const charrnn_cell cells[] = {CHARRNN_CELL_LSTM, CHARRNN_CELL_GRU, CHARRNN_CELL_RNN};
    char *dir = tmpdir(), path[256], err[CHARRNN_ERR_MAX];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    for (int c = 0; c < 3; c++) {
        charrnn_model *m = make_model(cells[c], NL, 7 + (uint64_t)c);
        ck_assert_int_eq(
            charrnn_checkpoint_save(path, m, "{\"iteration\":5}", NULL, err, sizeof err),
            CHARRNN_OK);
        charrnn_model *back;
        ck_assert_msg(charrnn_checkpoint_load(path, &back, err, sizeof err) == CHARRNN_OK, "%s",
                      err);
        ck_assert_int_eq(back->cfg.cell, cells[c]);
        ck_assert_int_eq(back->cfg.num_layers, NL);
        ck_assert_int_eq(back->cfg.hidden_size, NH);
        ck_assert_int_eq(back->cfg.vocab_size, NV);
        ck_assert_uint_eq(back->num_params, m->num_params);
        ck_assert(memcmp(back->params, m->params, m->num_params * sizeof(float)) == 0);
        ck_assert_uint_eq(charrnn_vocab_size(back->vocab), NV);
        for (size_t i = 0; i < NV; i++)
            ck_assert_uint_eq(charrnn_vocab_codepoint(back->vocab, i), odd_cps[i]);
        charrnn_model_free(back);
        charrnn_model_free(m);
    }
    /* The file is plain safetensors: LE header size, a JSON object, data 8-aligned,
     * the metadata (format, cell, vocab, train...) as strings. */
    size_t len;
    uint8_t *buf = read_file(path, &len);
    uint64_t hlen = 0;
    for (int i = 0; i < 8; i++)
        hlen |= (uint64_t)buf[i] << (8 * i);
    ck_assert_uint_eq(hlen % 8, 0);
    ck_assert_uint_le(8 + hlen, len);
    cJSON *h = cJSON_ParseWithLength((const char *)buf + 8, (size_t)hlen);
    ck_assert_ptr_nonnull(h);
    cJSON *md = cJSON_GetObjectItemCaseSensitive(h, "__metadata__");
    static const char *keys[] = {"format",      "format_version", "cell", "num_layers",
                                 "hidden_size", "vocab",          "train"};
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++)
        ck_assert_msg(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(md, keys[k])), "%s", keys[k]);
    ck_assert_str_eq(cJSON_GetObjectItemCaseSensitive(md, "format")->valuestring, "charrnn");
    cJSON *dw = cJSON_GetObjectItemCaseSensitive(h, "decoder.weight");
    ck_assert_str_eq(cJSON_GetObjectItemCaseSensitive(dw, "dtype")->valuestring, "F32");
    cJSON *shape = cJSON_GetObjectItemCaseSensitive(dw, "shape");
    ck_assert_int_eq(cJSON_GetArraySize(shape), 2);
    ck_assert_int_eq(cJSON_GetArrayItem(shape, 0)->valueint, NV);
    ck_assert_int_eq(cJSON_GetArrayItem(shape, 1)->valueint, NH);
    cJSON_Delete(h);
    free(buf);
    rmtree(dir);
    free(dir);
}
END_TEST

START_TEST(vocab_json_round_trip)
{
    charrnn_vocab *v, *back;
    char err[CHARRNN_ERR_MAX];
    ck_assert_int_eq(charrnn_vocab_from_codepoints(odd_cps, NV, &v, err, sizeof err), CHARRNN_OK);
    char *json = charrnn_vocab_to_json(v);
    ck_assert_ptr_nonnull(json);
    /* Valid JSON whose strings are the characters (cJSON decodes the escapes). */
    cJSON *arr = cJSON_Parse(json);
    ck_assert(cJSON_IsArray(arr));
    ck_assert_int_eq(cJSON_GetArraySize(arr), NV);
    ck_assert_str_eq(cJSON_GetArrayItem(arr, 2)->valuestring, "\n");
    ck_assert_str_eq(cJSON_GetArrayItem(arr, 3)->valuestring, "\"");
    ck_assert_str_eq(cJSON_GetArrayItem(arr, 5)->valuestring, "\\");
    ck_assert_str_eq(cJSON_GetArrayItem(arr, 9)->valuestring, "\xF0\x9F\x98\x80");
    cJSON_Delete(arr);
    ck_assert_int_eq(charrnn_vocab_from_json(json, &back, err, sizeof err), CHARRNN_OK);
    ck_assert_uint_eq(charrnn_vocab_size(back), NV);
    for (size_t i = 0; i < NV; i++)
        ck_assert_uint_eq(charrnn_vocab_codepoint(back, i), odd_cps[i]);
    free(json);
    charrnn_vocab_free(v);
    charrnn_vocab_free(back);
}
END_TEST

START_TEST(resume_state_round_trip)
{
    char *dir = tmpdir(), path[256], err[CHARRNN_ERR_MAX];
    snprintf(path, sizeof path, "%s/r.safetensors", dir);
    charrnn_model *m = make_model(CHARRNN_CELL_LSTM, NL, 3);
    float *mm = malloc(m->num_params * sizeof(float)), *vv = malloc(m->num_params * sizeof(float));
    float carry[2 * NL * NH];
    for (size_t i = 0; i < m->num_params; i++)
        mm[i] = (float)i * 0.25f, vv[i] = (float)i * 0.5f;
    for (int i = 0; i < 2 * NL * NH; i++)
        carry[i] = -(float)i;
    charrnn_resume_state rs = {mm, vv, carry, 2 * NL * NH, "{\"iteration\":3}"};
    ck_assert_int_eq(charrnn_checkpoint_save(path, m, NULL, &rs, err, sizeof err), CHARRNN_OK);
    charrnn_st_file *f;
    ck_assert_int_eq(charrnn_st_read(path, &f, err, sizeof err), CHARRNN_OK);
    const charrnn_st_tensor *t = charrnn_st_get(f, "optim.m");
    ck_assert_ptr_nonnull(t);
    ck_assert(memcmp(t->data, mm, m->num_params * sizeof(float)) == 0);
    ck_assert(memcmp(charrnn_st_get(f, "optim.v")->data, vv, m->num_params * sizeof(float)) == 0);
    ck_assert(memcmp(charrnn_st_get(f, "state.carry")->data, carry, sizeof carry) == 0);
    ck_assert_str_eq(charrnn_st_meta_get(f, "resume"), "{\"iteration\":3}");
    ck_assert_str_eq(charrnn_st_meta_get(f, "train"), "{}");
    charrnn_model *back;
    ck_assert_int_eq(charrnn_checkpoint_model(f, &back, err, sizeof err), CHARRNN_OK);
    ck_assert(memcmp(back->params, m->params, m->num_params * sizeof(float)) == 0);
    charrnn_model_free(back);
    charrnn_st_free(f);
    free(mm), free(vv);
    charrnn_model_free(m);
    rmtree(dir);
    free(dir);
}
END_TEST

/* ---- atomic writes ----------------------------------------------------- */

START_TEST(atomic_write_leaves_no_temp)
{
    char *dir = tmpdir(), path[256], err[CHARRNN_ERR_MAX], names[1024];
    charrnn_model *m = make_model(CHARRNN_CELL_GRU, 1, 1);
    snprintf(path, sizeof path, "%s/a.safetensors", dir);
    ck_assert_int_eq(charrnn_checkpoint_save(path, m, NULL, NULL, err, sizeof err), CHARRNN_OK);
    ck_assert_int_eq(charrnn_checkpoint_save(path, m, NULL, NULL, err, sizeof err), CHARRNN_OK);
    listdir(dir, names, sizeof names);
    ck_assert_str_eq(names, "a.safetensors|");
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0644);

    /* A failing rename (the target is a non-empty directory) reports the path,
     * removes its temporary file and leaves the target alone. */
    char blocked[300], inner[320];
    snprintf(blocked, sizeof blocked, "%s/b.safetensors", dir);
    ck_assert_int_eq(mkdir(blocked, 0755), 0);
    snprintf(inner, sizeof inner, "%s/keep", blocked);
    write_file(inner, "x", 1);
    err[0] = 0;
    ck_assert_int_eq(charrnn_checkpoint_save(blocked, m, NULL, NULL, err, sizeof err), CHARRNN_EIO);
    ck_assert_msg(strstr(err, "b.safetensors") != NULL, "%s", err);
    listdir(dir, names, sizeof names);
    ck_assert_msg(strstr(names, "tmp") == NULL, "temporary file left behind: %s", names);
    ck_assert_msg(strstr(names, "a.safetensors|") && strstr(names, "b.safetensors|"), "%s", names);

    /* A missing directory is an I/O error naming the path, not a crash. */
    snprintf(path, sizeof path, "%s/no/such/dir/c.safetensors", dir);
    ck_assert_int_eq(charrnn_checkpoint_save(path, m, NULL, NULL, err, sizeof err), CHARRNN_EIO);
    ck_assert_msg(strstr(err, "no/such/dir") != NULL, "%s", err);
    charrnn_model_free(m);
    rmtree(dir);
    free(dir);
}
END_TEST

/* ---- checkpoint-level rejections (valid safetensors, bad content) ------ */

typedef struct parts {
    charrnn_model *m;
    charrnn_st_tensor t[CHARRNN_MAX_TENSORS + 4];
    size_t nt;
    charrnn_st_meta meta[16];
    size_t nm;
    char *vocab_json;
    char layers[16], hidden[16];
    char *dir;
    char path[256];
} parts;

/* The tensors and metadata charrnn_checkpoint_save would write, as editable arrays. */
static void parts_init(parts *p)
{
    memset(p, 0, sizeof *p);
    p->m = make_model(CHARRNN_CELL_LSTM, NL, 11);
    for (int i = 0; i < p->m->num_tensors; i++) {
        const charrnn_tensor_info *ti = &p->m->tensors[i];
        p->t[p->nt++] = (charrnn_st_tensor){.name = ti->name,
                                            .data = p->m->params + ti->offset,
                                            .ndim = ti->ndim,
                                            .shape = {ti->shape[0], ti->shape[1]}};
    }
    p->vocab_json = charrnn_vocab_to_json(p->m->vocab);
    snprintf(p->layers, sizeof p->layers, "%d", NL);
    snprintf(p->hidden, sizeof p->hidden, "%d", NH);
    const charrnn_st_meta meta[] = {
        {"format", "charrnn"},     {"format_version", "1"},    {"cell", "lstm"},
        {"num_layers", p->layers}, {"hidden_size", p->hidden}, {"vocab", p->vocab_json},
        {"train", "{}"},
    };
    for (size_t i = 0; i < sizeof meta / sizeof meta[0]; i++)
        p->meta[p->nm++] = meta[i];
    p->dir = tmpdir();
    snprintf(p->path, sizeof p->path, "%s/v.safetensors", p->dir);
}

static void parts_free(parts *p)
{
    charrnn_model_free(p->m);
    free(p->vocab_json);
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

/* Writes the parts, loads them and expects failure with `want` in the message. */
static void expect_load_error(parts *p, const char *want)
{
    char err[CHARRNN_ERR_MAX];
    ck_assert_int_eq(charrnn_st_write(p->path, p->t, p->nt, p->meta, p->nm, err, sizeof err),
                     CHARRNN_OK);
    charrnn_model *m = (charrnn_model *)1;
    err[0] = 0;
    int rc = charrnn_checkpoint_load(p->path, &m, err, sizeof err);
    ck_assert_msg(rc != CHARRNN_OK, "loaded, expected an error containing \"%s\"", want);
    ck_assert_ptr_null(m); /* never a half-built model */
    ck_assert_msg(strstr(err, want) != NULL, "error \"%s\" lacks \"%s\"", err, want);
    /* The message names the file. */
    ck_assert_msg(strstr(err, p->path) != NULL, "error \"%s\" lacks the path", err);
}

static void expect_load_ok(parts *p)
{
    char err[CHARRNN_ERR_MAX];
    ck_assert_int_eq(charrnn_st_write(p->path, p->t, p->nt, p->meta, p->nm, err, sizeof err),
                     CHARRNN_OK);
    charrnn_model *m;
    ck_assert_msg(charrnn_checkpoint_load(p->path, &m, err, sizeof err) == CHARRNN_OK, "%s", err);
    charrnn_model_free(m);
}

START_TEST(baseline_parts_load)
{
    parts p;
    parts_init(&p);
    expect_load_ok(&p); /* so every rejection below is due to its one change */
    parts_free(&p);
}
END_TEST

START_TEST(rejects_missing_tensor)
{
    parts p;
    parts_init(&p);
    *tensor(&p, "rnn.bias_hh_l1") = p.t[--p.nt];
    expect_load_error(&p, "tensor 'rnn.bias_hh_l1' is missing");
    parts_free(&p);
}
END_TEST

START_TEST(rejects_extra_tensor)
{
    parts p;
    parts_init(&p);
    static const float junk[3] = {1, 2, 3};
    p.t[p.nt++] =
        (charrnn_st_tensor){.name = "encoder.weight", .data = junk, .ndim = 1, .shape = {3}};
    expect_load_error(&p, "unexpected tensor 'encoder.weight'");
    /* A tensor of a layer the config does not have is just as unexpected. */
    p.nt--;
    p.t[p.nt++] =
        (charrnn_st_tensor){.name = "rnn.bias_ih_l2", .data = junk, .ndim = 1, .shape = {3}};
    expect_load_error(&p, "unexpected tensor 'rnn.bias_ih_l2'");
    /* optim.* and state.* are resume state and allowed. */
    p.nt--;
    p.t[p.nt++] = (charrnn_st_tensor){.name = "state.carry", .data = junk, .ndim = 1, .shape = {3}};
    expect_load_ok(&p);
    parts_free(&p);
}
END_TEST

START_TEST(rejects_wrong_shapes)
{
    parts p;
    parts_init(&p);
    charrnn_st_tensor *dw = tensor(&p, "decoder.weight");
    /* Transposed: same number of floats, wrong layout. */
    dw->shape[0] = NH, dw->shape[1] = NV;
    expect_load_error(&p, "tensor 'decoder.weight' has the wrong shape (expected [10, 3])");
    /* Flattened to 1-D. */
    dw->ndim = 1, dw->shape[0] = (size_t)NV * NH;
    expect_load_error(&p, "tensor 'decoder.weight' has the wrong shape");
    dw->ndim = 2, dw->shape[0] = NV, dw->shape[1] = NH;
    charrnn_st_tensor *b = tensor(&p, "rnn.bias_ih_l0");
    b->shape[0] = 4 * NH - 1;
    expect_load_error(&p, "tensor 'rnn.bias_ih_l0' has the wrong shape (expected [12])");
    parts_free(&p);
}
END_TEST

START_TEST(rejects_nan_and_inf)
{
    static const float bad[] = {NAN, INFINITY, -INFINITY};
    for (int k = 0; k < 3; k++) {
        parts p;
        parts_init(&p);
        const charrnn_tensor_info *ti = charrnn_model_tensor(p.m, "rnn.weight_hh_l1");
        p.m->params[ti->offset + 5] = bad[k];
        expect_load_error(&p, "tensor 'rnn.weight_hh_l1' holds a non-finite value at element 5");
        parts_free(&p);
    }
}
END_TEST

START_TEST(rejects_bad_metadata)
{
    static const struct {
        const char *key, *value, *want;
    } cases[] = {
        {"format", NULL, "not a charrnn checkpoint (metadata format is missing)"},
        {"format", "pytorch", "not a charrnn checkpoint (metadata format is 'pytorch')"},
        {"format_version", NULL, "unsupported format_version"},
        {"format_version", "3", "unsupported format_version 3 (this build reads 1 and 2)"},
        {"format_version", "2", "format_version 2 needs metadata dtype bf16 or int8, not missing"},
        {"dtype", "bf16", "format_version 1 holds f32 weights, but metadata dtype is 'bf16'"},
        {"format_version", "1.0", "unsupported format_version 1.0"},
        {"cell", NULL, "metadata cell is missing or unknown"},
        {"cell", "transformer", "metadata cell is missing or unknown"},
        {"num_layers", NULL, "metadata num_layers is missing or not in 1..16"},
        {"num_layers", "0", "metadata num_layers is missing or not in 1..16"},
        {"num_layers", "17", "metadata num_layers is missing or not in 1..16"},
        {"num_layers", "-1", "metadata num_layers is missing or not in 1..16"},
        {"num_layers", "2x", "metadata num_layers is missing or not in 1..16"},
        {"num_layers", " 2", "metadata num_layers is missing or not in 1..16"},
        {"num_layers", "", "metadata num_layers is missing or not in 1..16"},
        {"num_layers", "99999999999999999999", "metadata num_layers is missing or not in 1..16"},
        {"hidden_size", "0", "metadata hidden_size is missing or not in 1..8192"},
        {"hidden_size", "8193", "metadata hidden_size is missing or not in 1..8192"},
        {"hidden_size", "three", "metadata hidden_size is missing or not in 1..8192"},
        /* In range but not what the tensors say. */
        {"num_layers", "1", "unexpected tensor 'rnn.weight_ih_l1'"},
        {"num_layers", "3", "tensor 'rnn.weight_ih_l2' is missing"},
        {"hidden_size", "4", "has the wrong shape"},
        {"cell", "gru", "has the wrong shape"},
        {"train", NULL, "metadata train is missing"},
        {"vocab", NULL, "metadata vocab is missing"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        parts p;
        parts_init(&p);
        set_meta(&p, cases[i].key, cases[i].value);
        expect_load_error(&p, cases[i].want);
        parts_free(&p);
    }
}
END_TEST

START_TEST(rejects_bad_vocab_json)
{
    static const struct {
        const char *vocab, *want;
    } cases[] = {
        {"not json", "vocab is not a JSON array"},
        {"{\"a\":1}", "vocab is not a JSON array"},
        {"[]", "vocab has 0 entries"},
        {"[\"ab\",\"c\"]", "vocab entry 0 is not a single-character string"},
        {"[\"a\",1]", "vocab entry 1 is not a single-character string"},
        {"[\"a\",null]", "vocab entry 1 is not a single-character string"},
        {"[\"b\",\"a\"]", "vocabulary is not strictly increasing at entry 1"},
        {"[\"a\",\"a\"]", "vocabulary is not strictly increasing at entry 1"},
        {"[\"a\",\"\\ud800\"]", "vocab is not a JSON array"}, /* lone surrogate */
        {"[\"a\",\"\xC0\x80\"]", "vocab entry 1 is not a single-character string"}, /* overlong */
        {"[\"a\",\"\xED\xA0\x80\"]", "vocab entry 1 is not a single-character string"},
        {"[\"\\u0000\",\"a\"]", "vocab entry 0 is U+0000 (NUL) or empty"},
        /* Valid but of another size than decoder.weight's V = 10. */
        {"[\"a\",\"b\",\"c\"]", "has the wrong shape"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        parts p;
        parts_init(&p);
        set_meta(&p, "vocab", cases[i].vocab);
        expect_load_error(&p, cases[i].want);
        parts_free(&p);
    }
}
END_TEST

START_TEST(rejects_foreign_safetensors)
{
    /* The PyTorch reference fixtures are safetensors, but not charrnn checkpoints. */
    char path[512], err[CHARRNN_ERR_MAX];
    snprintf(path, sizeof path, "%s/fixture_lstm.safetensors", fixture_dir());
    charrnn_model *m;
    ck_assert_int_eq(charrnn_checkpoint_load(path, &m, err, sizeof err), CHARRNN_EFORMAT);
    ck_assert_msg(strstr(err, "not a charrnn checkpoint"), "%s", err);
    ck_assert_ptr_null(m);
    /* Plain tensors without any metadata at all. */
    parts p;
    parts_init(&p);
    p.nm = 0;
    expect_load_error(&p, "not a charrnn checkpoint (metadata format is missing)");
    parts_free(&p);
}
END_TEST

START_TEST(rejects_missing_and_odd_files)
{
    char err[CHARRNN_ERR_MAX];
    charrnn_model *m;
    ck_assert_int_eq(charrnn_checkpoint_load("/nonexistent/x.safetensors", &m, err, sizeof err),
                     CHARRNN_ENOTFOUND);
    ck_assert_msg(strstr(err, "cannot open /nonexistent/x.safetensors"), "%s", err);
    char *dir = tmpdir();
    ck_assert_int_ne(charrnn_checkpoint_load(dir, &m, err, sizeof err), CHARRNN_OK);
    ck_assert_msg(strstr(err, "is not a regular file"), "%s", err);
    char path[256];
    snprintf(path, sizeof path, "%s/empty.safetensors", dir);
    write_file(path, "", 0);
    ck_assert_int_eq(charrnn_checkpoint_load(path, &m, err, sizeof err), CHARRNN_EFORMAT);
    ck_assert_msg(strstr(err, "file is 0 bytes, too short"), "%s", err);
    rmtree(dir);
    free(dir);
}
END_TEST

/* ---- safetensors-level rejections (hand-built headers) ----------------- */

/* 8-byte LE length + header + data, as one buffer. */
static uint8_t *assemble(const char *hdr, const void *data, size_t dlen, size_t *len)
{
    size_t h = strlen(hdr);
    uint8_t *b = malloc(8 + h + dlen + 1);
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)((uint64_t)h >> (8 * i));
    memcpy(b + 8, hdr, h);
    if (dlen)
        memcpy(b + 8 + h, data, dlen);
    *len = 8 + h + dlen;
    return b;
}

static void expect_parse_error(const uint8_t *buf, size_t len, const char *want)
{
    char err[CHARRNN_ERR_MAX] = "";
    charrnn_st_file *f = (charrnn_st_file *)1;
    int rc = charrnn_st_parse(buf, len, &f, err, sizeof err);
    ck_assert_msg(rc == CHARRNN_EFORMAT, "rc %d, expected an error containing \"%s\"", rc, want);
    ck_assert_ptr_null(f);
    ck_assert_msg(strstr(err, want) != NULL, "error \"%s\" lacks \"%s\"", err, want);
}

static void expect_hdr_error(const char *hdr, size_t dlen, const char *want)
{
    static const float data[64] = {0};
    size_t len;
    uint8_t *b = assemble(hdr, data, dlen, &len);
    expect_parse_error(b, len, want);
    free(b);
}

START_TEST(rejects_malformed_headers)
{
    static const struct {
        const char *hdr;
        size_t dlen;
        const char *want;
    } cases[] = {
        {"{\"a\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4,
         "tensor 'a' has dtype F16 (F32, BF16 and I8 are supported)"},
        {"{\"a\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]}}", 8,
         "tensor 'a' has dtype F64"},
        {"{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "tensor 'a' has no dtype"},
        {"{\"a\":[1,2]}", 0, "tensor 'a' is not an object"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 4,
         "tensor 'a' has a non-integer dimension"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4,
         "tensor 'a' has a non-integer dimension"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":\"2\",\"data_offsets\":[0,8]}}", 8,
         "tensor 'a' has a bad shape"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4,
         "tensor 'a' has a bad shape"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,4]}}", 4,
         "tensor 'a' is too large"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", 8,
         "tensor 'a' has bad data_offsets"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8,
         "tensor 'a' data_offsets [8, 0] outside the 8-byte buffer"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,16]}}", 8,
         "tensor 'a' data_offsets [0, 16] outside the 8-byte buffer"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8,
         "tensor 'a' has 8 bytes but its shape needs 12"},
        {"{\"a\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[0,4]}}", 4,
         "tensor 'a' has 4 bytes but its shape needs 6"},
        /* an F32 tensor after an odd number of I8 bytes: misaligned */
        {"{\"a\":{\"dtype\":\"I8\",\"shape\":[1],\"data_offsets\":[0,1]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[1,5]}}",
         5, "tensor 'b' (F32) starts at byte 1, not a multiple of 4"},
        {"{\"a\":{\"dtype\":\"I8\",\"shape\":[1],\"data_offsets\":[0,1]},"
         "\"b\":{\"dtype\":\"BF16\",\"shape\":[1],\"data_offsets\":[1,3]}}",
         3, "tensor 'b' (BF16) starts at byte 1, not a multiple of 2"},
        /* overlap: b starts inside a */
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
         12, "tensor 'b' overlaps at byte 4 of the data buffer"},
        /* the same bytes twice */
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
         8, "overlaps at byte 0"},
        /* hole between tensors */
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[12,20]}}",
         20, "tensor 'b' leaves a hole at byte 12 of the data buffer"},
        /* hole at the start */
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8,
         "tensor 'a' leaves a hole at byte 4"},
        /* trailing bytes nobody owns */
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 12,
         "data buffer has 12 bytes but tensors cover 4"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
         "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
         8, "duplicate tensor 'a'"},
        {"{\"__metadata__\":{\"format\":1}}", 0, "metadata value of 'format' is not a string"},
        {"{\"__metadata__\":[\"x\"]}", 0, "__metadata__ is not an object"},
        {"{\"__metadata__\":{},\"__metadata__\":{}}", 0, "duplicate __metadata__"},
        {"[1,2,3]", 0, "header does not start with '{'"},
        {"{\"a\":", 0, "header is not a valid JSON object"},
        {"{\"a\":{}} trailing", 0, "header is not a valid JSON object"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_hdr_error(cases[i].hdr, cases[i].dlen, cases[i].want);
}
END_TEST

/* The file's first 8 bytes: the header's size, little-endian. */
static void set_header_size(uint8_t *b, uint64_t n)
{
    for (int k = 0; k < 8; k++)
        b[k] = (uint8_t)(n >> (8 * k));
}

/* A valid checkpoint file's bytes. */
static uint8_t *valid_bytes(size_t *len, size_t *hlen)
{
    char *dir = tmpdir(), path[256], err[CHARRNN_ERR_MAX];
    snprintf(path, sizeof path, "%s/ok.safetensors", dir);
    charrnn_model *m = make_model(CHARRNN_CELL_LSTM, NL, 21);
    ck_assert_int_eq(charrnn_checkpoint_save(path, m, "{\"note\":\"x\"}", NULL, err, sizeof err),
                     CHARRNN_OK);
    charrnn_model_free(m);
    uint8_t *buf = read_file(path, len);
    rmtree(dir);
    free(dir);
    uint64_t h = 0;
    for (int i = 0; i < 8; i++)
        h |= (uint64_t)buf[i] << (8 * i);
    *hlen = (size_t)h;
    return buf;
}

/* Parses and builds; on success checks the model, on failure the message. */
static int parse_and_build(const uint8_t *buf, size_t len)
{
    char err[CHARRNN_ERR_MAX];
    err[0] = 0;
    charrnn_st_file *f;
    int rc = charrnn_st_parse(buf, len, &f, err, sizeof err);
    if (rc == CHARRNN_OK) {
        charrnn_model *m;
        err[0] = 0;
        rc = charrnn_checkpoint_model(f, &m, err, sizeof err);
        if (rc == CHARRNN_OK) {
            ck_assert_int_eq(charrnn_config_check(&m->cfg, NULL, 0), CHARRNN_OK);
            for (size_t i = 0; i < m->num_params; i++)
                ck_assert_msg(isfinite(m->params[i]), "loaded a non-finite parameter");
            charrnn_model_free(m);
        } else {
            ck_assert_ptr_null(m);
        }
        charrnn_st_free(f);
    } else {
        ck_assert_ptr_null(f);
    }
    if (rc != CHARRNN_OK) {
        ck_assert_msg(rc < 0, "status %d is not an error code", rc);
        ck_assert_msg(err[0] != 0, "error %d without a message", rc);
    }
    return rc;
}

START_TEST(rejects_every_truncation)
{
    size_t len, hlen;
    uint8_t *buf = valid_bytes(&len, &hlen);
    ck_assert_int_eq(parse_and_build(buf, len), CHARRNN_OK);
    for (size_t n = 0; n < len; n++) {
        uint8_t *cut = malloc(n ? n : 1); /* exact size: ASan catches an over-read */
        memcpy(cut, buf, n);
        char err[CHARRNN_ERR_MAX] = "";
        charrnn_st_file *f;
        int rc = charrnn_st_parse(cut, n, &f, err, sizeof err);
        ck_assert_msg(rc == CHARRNN_EFORMAT, "truncated to %zu of %zu bytes: rc %d", n, len, rc);
        const char *want = n < 8 ? "too short for a safetensors header"
            : n < 8 + hlen       ? "impossible for a"
                                 : "";
        ck_assert_msg(strstr(err, want), "truncated to %zu: \"%s\" lacks \"%s\"", n, err, want);
        ck_assert_msg(err[0], "truncated to %zu: empty message", n);
        free(cut);
    }
    free(buf);
}
END_TEST

START_TEST(rejects_bad_header_size)
{
    size_t len, hlen;
    uint8_t *buf = valid_bytes(&len, &hlen);
    uint8_t *b = malloc(len);
    static const uint64_t sizes[] = {0, 1, UINT64_MAX, 1ull << 40};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        memcpy(b, buf, len);
        set_header_size(b, sizes[i]);
        expect_parse_error(b, len, "header size");
    }
    /* Larger than the file by one byte. */
    memcpy(b, buf, len);
    set_header_size(b, len - 8 + 1);
    expect_parse_error(b, len, "is impossible for a");
    /* One byte longer: the JSON now includes a data byte, or the data is a byte short. */
    memcpy(b, buf, len);
    set_header_size(b, hlen + 1);
    ck_assert_int_ne(parse_and_build(b, len), CHARRNN_OK);
    free(b);
    free(buf);
}
END_TEST

START_TEST(flipped_header_bytes)
{
    size_t len, hlen;
    uint8_t *buf = valid_bytes(&len, &hlen);
    uint8_t *b = malloc(len);
    int rejected = 0, total = 0;
    /* Every byte of the length prefix and the JSON header, three ways. */
    static const uint8_t flips[] = {0x01, 0x20, 0xFF};
    for (size_t i = 0; i < 8 + hlen; i++) {
        for (size_t k = 0; k < sizeof flips; k++) {
            memcpy(b, buf, len);
            b[i] ^= flips[k];
            rejected += parse_and_build(b, len) != CHARRNN_OK;
            total++;
        }
    }
    /* Most flips break the JSON, a name, a number or the metadata; a few land
     * in a float-free spot that stays valid (e.g. "train":"{\"note\":\"x\"}"). */
    ck_assert_msg(rejected > total * 8 / 10, "only %d of %d flips rejected", rejected, total);
    free(b);
    free(buf);
}
END_TEST

START_TEST(random_corruption_loop)
{
    size_t len, hlen;
    uint8_t *buf = valid_bytes(&len, &hlen);
    charrnn_rng r;
    charrnn_rng_seed(&r, 20240601);
    int ok = 0;
    for (int it = 0; it < 2000; it++) {
        size_t cap = len + 64, n = len;
        uint8_t *b = malloc(cap);
        memcpy(b, buf, len);
        int edits = 1 + (int)(charrnn_rng_u64(&r) % 4);
        for (int e = 0; e < edits && n > 0; e++) {
            uint64_t kind = charrnn_rng_u64(&r) % 4;
            /* Half of the edits hit the header, where the parser does its work. */
            size_t span = charrnn_rng_u64(&r) % 2 ? (8 + hlen < n ? 8 + hlen : n) : n;
            size_t at = (size_t)(charrnn_rng_u64(&r) % span);
            if (kind == 0) { /* flip bits */
                b[at] ^= (uint8_t)(1 + charrnn_rng_u64(&r) % 255);
            } else if (kind == 1) { /* random byte */
                b[at] = (uint8_t)charrnn_rng_u64(&r);
            } else if (kind == 2) { /* truncate */
                n = at;
            } else if (n + 8 <= cap) { /* insert 1..8 random bytes */
                size_t k = 1 + (size_t)(charrnn_rng_u64(&r) % 8);
                memmove(b + at + k, b + at, n - at);
                for (size_t j = 0; j < k; j++)
                    b[at + j] = (uint8_t)charrnn_rng_u64(&r);
                n += k;
            }
        }
        /* An exact-size copy, so a read past the end is an ASan/valgrind error. */
        uint8_t *exact = malloc(n ? n : 1);
        memcpy(exact, b, n);
        ok += parse_and_build(exact, n) == CHARRNN_OK;
        free(exact);
        free(b);
    }
    /* Some edits are harmless (a flipped bit in a weight's mantissa); most are not. */
    ck_assert_msg(ok < 2000 / 2, "%d of 2000 corruptions loaded", ok);
    free(buf);
}
END_TEST

/* ---- what a file makes the loader allocate ---------------------------- */

/* The kB value of a /proc/self/status line ("VmHWM:", "VmSize:"). */
static long status_kb(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    ck_assert_ptr_nonnull(f);
    char line[256];
    long kb = -1;
    while (kb < 0 && fgets(line, sizeof line, f))
        if (strncmp(line, key, strlen(key)) == 0)
            kb = strtol(line + strlen(key), NULL, 10);
    fclose(f);
    ck_assert_msg(kb >= 0, "no %s in /proc/self/status", key);
    return kb;
}

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define UNDER_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define UNDER_SANITIZER 1
#endif
#endif

/* What loading one file did, measured in a child process of its own. */
typedef struct load_cost {
    int rc;
    char err[CHARRNN_ERR_MAX];
    long peak_kb;  /* growth of the peak resident set during the load */
    long model_kb; /* resident growth the loaded model keeps (after the load) */
} load_cost;

/* Loads path in a fresh child process: its peak RSS is reset first
 * (clear_refs 5) so earlier allocations cannot hide the load's, and its
 * address space is capped at 512 MB beyond what it has (not under a
 * sanitizer, whose shadow memory needs terabytes of it), so a loader that
 * asks for gigabytes fails with "out of memory" instead of taking them. */
static load_cost load_measured(const char *path)
{
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        close(fds[0]);
        load_cost c = {0};
#ifndef UNDER_SANITIZER
        struct rlimit lim;
        lim.rlim_cur = lim.rlim_max = (rlim_t)(status_kb("VmSize:") + 512 * 1024) * 1024;
        if (setrlimit(RLIMIT_AS, &lim) != 0)
            _exit(3);
#endif
        /* Where clear_refs is not writable (Linux < 4.0, some sandboxes) the
         * peak starts at the one inherited, which can only hide growth. */
        FILE *cr = fopen("/proc/self/clear_refs", "w");
        int reset = cr && fputs("5", cr) != EOF;
        if (cr && fclose(cr) != 0)
            reset = 0;
        if (!reset)
            fprintf(stderr, "cannot reset the peak RSS: the peak check is weaker\n");
        long rss0 = status_kb("VmRSS:"), hwm0 = status_kb("VmHWM:");
        charrnn_model *m = NULL;
        c.rc = charrnn_checkpoint_load(path, &m, c.err, sizeof c.err);
        c.peak_kb = status_kb("VmHWM:") - hwm0;
        malloc_trim(0); /* what the allocator keeps of freed buffers is not the model */
        c.model_kb = status_kb("VmRSS:") - rss0;
        charrnn_model_free(m);
        _exit(write(fds[1], &c, sizeof c) == (ssize_t)sizeof c ? 0 : 5);
    }
    close(fds[1]);
    load_cost c;
    ck_assert_int_eq(read(fds[0], &c, sizeof c), (ssize_t)sizeof c);
    close(fds[0]);
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "measuring child: status %d", st);
    return c;
}

/* Writes the parts and expects a refusal containing want that grew the
 * peak RSS by less than 8 MB (the metadata asks for gigabytes). */
static void expect_cheap_refusal(parts *p, const char *want)
{
    char err[CHARRNN_ERR_MAX];
    ck_assert_int_eq(charrnn_st_write(p->path, p->t, p->nt, p->meta, p->nm, err, sizeof err),
                     CHARRNN_OK);
    load_cost c = load_measured(p->path);
    ck_assert_msg(c.rc != CHARRNN_OK, "loaded, expected \"%s\"", want);
    ck_assert_msg(strstr(c.err, want), "error \"%s\" lacks \"%s\"", c.err, want);
    ck_assert_msg(c.peak_kb < 8 * 1024, "refusing \"%s\" took %ld kB at its peak", want, c.peak_kb);
}

/* Metadata of 2 layers of 8192 (3.2 GB of f32 parameters, 1.6 GB bf16, 0.8
 * GB int8) over the parts' 10-character vocabulary, with the parts' tiny
 * tensors: every way such a file can be wrong is refused before the model is
 * allocated. */
START_TEST(refuses_hostile_sizes_before_allocating)
{
    static const float zeros[16] = {0};
    static const char *const dtypes[] = {NULL, "bf16", "int8"};
    for (int d = 0; d < 3; d++) {
        parts p;
        parts_init(&p);
        set_meta(&p, "hidden_size", "8192");
        if (dtypes[d]) {
            set_meta(&p, "format_version", "2");
            set_meta(&p, "dtype", dtypes[d]);
            if (d == 2)
                set_meta(&p, "int8_scale", "row");
        }
        /* Every tensor present, of the small model's shape. */
        expect_cheap_refusal(
            &p, "tensor 'rnn.weight_ih_l0' has the wrong shape (expected [32768, 10])");
        /* The file: one tensor. */
        size_t nt = p.nt;
        p.t[0] = *tensor(&p, "decoder.bias");
        p.nt = 1;
        expect_cheap_refusal(&p, "tensor 'rnn.weight_ih_l0' is missing");
        p.nt = nt;
        parts_free(&p);
    }
    /* The right names, shapes and sizes for 8192 but one tensor of the
     * wrong dtype: a BF16 matrix in an f32 file. */
    parts p;
    parts_init(&p);
    set_meta(&p, "hidden_size", "8192");
    p.t[0] = (charrnn_st_tensor){.name = "rnn.weight_hh_l0",
                                 .dtype = CHARRNN_ST_BF16,
                                 .ndim = 1,
                                 .shape = {8},
                                 .raw = zeros};
    p.nt = 1;
    expect_cheap_refusal(&p, "tensor 'rnn.weight_hh_l0' is BF16 in an f32 checkpoint");
    parts_free(&p);
    /* Data cut short, and dimensions whose product overflows 64 bits: the
     * reader refuses them before the model is considered. */
    parts_init(&p);
    set_meta(&p, "hidden_size", "8192");
    char err[CHARRNN_ERR_MAX];
    ck_assert_int_eq(charrnn_st_write(p.path, p.t, p.nt, p.meta, p.nm, err, sizeof err),
                     CHARRNN_OK);
    size_t len;
    uint8_t *buf = read_file(p.path, &len);
    write_file(p.path, buf, len - 4);
    load_cost c = load_measured(p.path);
    ck_assert_msg(c.rc != CHARRNN_OK && strstr(c.err, "outside the"), "%s", c.err);
    ck_assert_int_lt(c.peak_kb, 8 * 1024);
    free(buf);
    static const char huge[] =
        "{\"__metadata__\":{\"format\":\"charrnn\",\"format_version\":\"1\",\"cell\":\"lstm\","
        "\"num_layers\":\"2\",\"hidden_size\":\"8192\",\"vocab\":\"[\\\"a\\\"]\",\"train\":\"{}\"},"
        "\"rnn.weight_hh_l0\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],"
        "\"data_offsets\":[0,0]}}";
    buf = assemble(huge, NULL, 0, &len);
    write_file(p.path, buf, len);
    c = load_measured(p.path);
    ck_assert_msg(c.rc != CHARRNN_OK && strstr(c.err, "tensor 'rnn.weight_hh_l0' is too large"),
                  "%s", c.err);
    ck_assert_int_lt(c.peak_kb, 8 * 1024);
    free(buf);
    parts_free(&p);
}
END_TEST

/* Saves the f32 model m in dtype d (reduced unless f32) into a fresh
 * directory, which it returns (for rmtree); path receives the file's. */
static char *save_as(const charrnn_model *m, charrnn_dtype d, char *path, size_t n)
{
    char err[CHARRNN_ERR_MAX];
    charrnn_model *q = (charrnn_model *)m;
    if (d != CHARRNN_DTYPE_F32)
        ck_assert_int_eq(charrnn_model_reduce(m, d, &q, err, sizeof err), CHARRNN_OK);
    char *dir = tmpdir();
    snprintf(path, n, "%s/m.safetensors", dir);
    ck_assert_int_eq(charrnn_checkpoint_save(path, q, "{}", NULL, err, sizeof err), CHARRNN_OK);
    if (q != m)
        charrnn_model_free(q);
    return dir;
}

/* docs/security.md: a checkpoint's size is the memory it takes. For a 3 MB
 * model in each dtype the loaded model keeps at most its file size (plus
 * alignment), and the load's peak is at most three times it (the file read
 * whole, its parsed tensors, the model). */
START_TEST(model_memory_is_its_file_size)
{
    charrnn_model *f32 = chaotic_model(CHARRNN_CELL_LSTM, 256, 2, 5);
    for (int d = 0; d < 3; d++) {
        char path[256], *dir = save_as(f32, (charrnn_dtype)d, path, sizeof path);
        struct stat st;
        ck_assert_int_eq(stat(path, &st), 0);
        const long file_kb = (long)(st.st_size / 1024);
        load_cost c = load_measured(path);
        ck_assert_msg(c.rc == CHARRNN_OK, "%s", c.err);
#ifndef UNDER_SANITIZER /* its allocator keeps freed memory (quarantine) and adds shadow */
        ck_assert_msg(c.model_kb <= file_kb + 512, "%s: a %ld kB file keeps %ld kB",
                      charrnn_dtype_name((charrnn_dtype)d), file_kb, c.model_kb);
        ck_assert_msg(c.peak_kb <= 3 * file_kb + 512, "%s: a %ld kB file peaked at %ld kB",
                      charrnn_dtype_name((charrnn_dtype)d), file_kb, c.peak_kb);
#endif
        printf("%s: file %ld kB, model keeps %ld kB, load peak +%ld kB\n",
               charrnn_dtype_name((charrnn_dtype)d), file_kb, c.model_kb, c.peak_kb);
        rmtree(dir);
        free(dir);
    }
    charrnn_model_free(f32);
}
END_TEST

/* Finite weights whose products overflow: decoder weights of +-3e38 make
 * logits of +-Inf (and log-probabilities of NaN). Refused at load in every
 * dtype, as is a hidden layer whose gate inputs could overflow; a model just
 * within CHARRNN_MAX_ACTIVATION loads. */
START_TEST(refuses_weights_that_overflow)
{
    char err[CHARRNN_ERR_MAX];
    for (int d = 0; d < 3; d++) {
        charrnn_model *m = make_model(CHARRNN_CELL_LSTM, NL, 3);
        const charrnn_tensor_info *dw = charrnn_model_tensor(m, "decoder.weight");
        for (size_t k = 0; k < dw->numel; k++)
            m->params[dw->offset + k] = k % 2 ? 3e38f : -3e38f;
        char path[256], *dir = save_as(m, (charrnn_dtype)d, path, sizeof path);
        charrnn_model *back = (charrnn_model *)1;
        ck_assert_int_eq(charrnn_checkpoint_load(path, &back, err, sizeof err), CHARRNN_EFORMAT);
        ck_assert_ptr_null(back);
        ck_assert_msg(strstr(err,
                             "row 0 of tensor 'decoder.weight' and its bias can reach a "
                             "logit of 9") &&
                          strstr(err, "(at most 1e+30 is accepted)"),
                      "%s: %s", charrnn_dtype_name((charrnn_dtype)d), err);
        charrnn_model_free(m);
        rmtree(dir);
        free(dir);
    }
    /* A gate row of layer 1: its input is layer 0's h, in [-1, 1]. */
    parts p;
    parts_init(&p);
    const charrnn_tensor_info *w = charrnn_model_tensor(p.m, "rnn.weight_ih_l1");
    p.m->params[w->offset + 2 * NH + 1] = 6e29f; /* row 2 */
    expect_load_ok(&p);
    p.m->params[w->offset + 2 * NH + 2] = 6e29f;
    expect_load_error(&p,
                      "row 2 of tensor 'rnn.weight_ih_l1' and its bias can reach a gate "
                      "pre-activation of 1.2e+30");
    parts_free(&p);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("checkpoint");
    ADD_CASE(s, "round-trip", round_trip_bit_exact, vocab_json_round_trip, resume_state_round_trip,
             atomic_write_leaves_no_temp);
    ADD_CASE(s, "checkpoint-errors", baseline_parts_load, rejects_missing_tensor,
             rejects_extra_tensor, rejects_wrong_shapes, rejects_nan_and_inf, rejects_bad_metadata,
             rejects_bad_vocab_json, rejects_foreign_safetensors, rejects_missing_and_odd_files);
    TCase *st =
        ADD_CASE(s, "safetensors-errors", rejects_malformed_headers, rejects_every_truncation,
                 rejects_bad_header_size, flipped_header_bytes, random_corruption_loop);
    tcase_set_timeout(st, 60);
    ADD_CASE(s, "limits", refuses_hostile_sizes_before_allocating, model_memory_is_its_file_size,
             refuses_weights_that_overflow);
    return run_suite(s);
}

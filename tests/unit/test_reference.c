/* The C network against PyTorch: logits, loss, every gradient and 5 Adam
 * steps with clipping, per cell type (fixtures from tests/reference/gen_fixtures.py). */
#include "testutil.h"

#include <cjson/cJSON.h>
#include <string.h>

/* Relative tolerance for every compared tensor; the absolute floor only
 * covers elements that are zero up to float rounding (|x| < 1e-6). */
#define REL 1e-4
#define ABS 1e-6

typedef struct fixture {
    charrnn_st_file *f;
    charrnn_model *m;
    int B, T, V;
    double clip, lr;
    int steps;
} fixture;

static void load_fixture(fixture *fx, const char *cell)
{
    char path[512], err[CHARRNN_ERR_MAX];
    snprintf(path, sizeof path, "%s/fixture_%s.safetensors", fixture_dir(), cell);
    ck_assert_msg(charrnn_st_read(path, &fx->f, err, sizeof err) == CHARRNN_OK, "%s", err);
    cJSON *meta = cJSON_Parse(charrnn_st_meta_get(fx->f, "fixture"));
    ck_assert_ptr_nonnull(meta);
    charrnn_config cfg;
    ck_assert_int_eq(charrnn_cell_parse(cell, &cfg.cell), CHARRNN_OK);
    cfg.vocab_size = fx->V = (int)cJSON_GetObjectItem(meta, "V")->valuedouble;
    cfg.hidden_size = (int)cJSON_GetObjectItem(meta, "H")->valuedouble;
    cfg.num_layers = (int)cJSON_GetObjectItem(meta, "L")->valuedouble;
    fx->B = (int)cJSON_GetObjectItem(meta, "B")->valuedouble;
    fx->T = (int)cJSON_GetObjectItem(meta, "T")->valuedouble;
    fx->clip = cJSON_GetObjectItem(meta, "clip")->valuedouble;
    fx->lr = cJSON_GetObjectItem(meta, "lr")->valuedouble;
    fx->steps = (int)cJSON_GetObjectItem(meta, "steps")->valuedouble;
    cJSON_Delete(meta);
    ck_assert_int_eq(charrnn_model_create(&cfg, letters_vocab(fx->V), &fx->m, err, sizeof err),
                     CHARRNN_OK);
    for (int i = 0; i < fx->m->num_tensors; i++) {
        const charrnn_tensor_info *ti = &fx->m->tensors[i];
        const charrnn_st_tensor *t = charrnn_st_get(fx->f, ti->name);
        ck_assert_msg(t != NULL, "fixture lacks %s", ti->name);
        memcpy(fx->m->params + ti->offset, t->data, ti->numel * sizeof(float));
    }
}

static void free_fixture(fixture *fx)
{
    charrnn_model_free(fx->m);
    charrnn_st_free(fx->f);
}

/* Window w of the fixture as time-major x, y. */
static void window(const fixture *fx, int w, uint16_t *x, uint16_t *y)
{
    const float *win = charrnn_st_get(fx->f, "fixture.windows")->data; /* (W, T+1, B) */
    const size_t per = (size_t)(fx->T + 1) * fx->B;
    for (int t = 0; t < fx->T; t++)
        for (int b = 0; b < fx->B; b++) {
            x[t * fx->B + b] = (uint16_t)win[w * per + (size_t)t * fx->B + b];
            y[t * fx->B + b] = (uint16_t)win[w * per + (size_t)(t + 1) * fx->B + b];
        }
}

/* The cell's fixture and an Adam trainer of its (B, T) without dropout. */
static charrnn_trainer *fixture_trainer(fixture *fx, const char *cell)
{
    load_fixture(fx, cell);
    charrnn_optim_config oc = charrnn_optim_defaults(CHARRNN_OPT_ADAM);
    charrnn_trainer *tr;
    char err[CHARRNN_ERR_MAX];
    ck_assert_int_eq(
        charrnn_trainer_create(fx->m, fx->B, fx->T, 0.0f, &oc, 1, &tr, err, sizeof err),
        CHARRNN_OK);
    return tr;
}

static void check_forward_backward(const char *cell, int shards)
{
    fixture fx;
    charrnn_trainer *tr = fixture_trainer(&fx, cell);
    ck_assert_int_eq(charrnn_trainer_set_shards(tr, shards, NULL, 0), CHARRNN_OK);
    ck_assert_int_eq(charrnn_trainer_shards(tr), shards);
    uint16_t x[512], y[512];
    window(&fx, 0, x, y);
    charrnn_trainer_forward(tr, x, y, CHARRNN_MODE_TRAIN); /* only carries the state */
    window(&fx, 1, x, y);
    charrnn_trainer_zero_grad(tr);
    float loss = charrnn_trainer_forward(tr, x, y, CHARRNN_MODE_TRAIN);
    float want_loss = charrnn_st_get(fx.f, "fixture.loss")->data[0];
    assert_close("loss", &loss, &want_loss, 1, REL, 0.0);
    /* softmax of the reference logits against our probabilities */
    const size_t N = (size_t)fx.T * fx.B;
    const float *lg = charrnn_st_get(fx.f, "fixture.logits")->data;
    float *want_p = malloc(N * fx.V * sizeof(float));
    for (size_t r = 0; r < N; r++) {
        double mx = -1e30, sum = 0.0;
        for (int v = 0; v < fx.V; v++)
            mx = fmax(mx, lg[r * fx.V + v]);
        for (int v = 0; v < fx.V; v++)
            sum += exp(lg[r * fx.V + v] - mx);
        for (int v = 0; v < fx.V; v++)
            want_p[r * fx.V + v] = (float)(exp(lg[r * fx.V + v] - mx) / sum);
    }
    assert_close("probabilities", charrnn_trainer_probs(tr), want_p, N * fx.V, REL, ABS);
    free(want_p);
    charrnn_trainer_backward(tr);
    const float *g = charrnn_trainer_grads(tr);
    for (int i = 0; i < fx.m->num_tensors; i++) {
        const charrnn_tensor_info *ti = &fx.m->tensors[i];
        char name[64];
        snprintf(name, sizeof name, "grad.%s", ti->name);
        const charrnn_st_tensor *t = charrnn_st_get(fx.f, name);
        ck_assert_ptr_nonnull(t);
        assert_close(name, g + ti->offset, t->data, ti->numel, REL, ABS);
    }
    charrnn_trainer_free(tr);
    free_fixture(&fx);
}

static void check_adam(const char *cell)
{
    fixture fx;
    charrnn_trainer *tr = fixture_trainer(&fx, cell);
    const float *want = charrnn_st_get(fx.f, "fixture.adam_losses")->data;
    uint16_t x[512], y[512];
    for (int s = 0; s < fx.steps; s++) {
        window(&fx, 2 + s, x, y);
        float loss = charrnn_trainer_step(tr, x, y, (float)fx.lr, (float)fx.clip);
        char what[32];
        snprintf(what, sizeof what, "adam step %d loss", s + 1);
        assert_close(what, &loss, &want[s], 1, REL, 0.0);
    }
    for (int i = 0; i < fx.m->num_tensors; i++) {
        const charrnn_tensor_info *ti = &fx.m->tensors[i];
        char name[64];
        snprintf(name, sizeof name, "final.%s", ti->name);
        assert_close(name, fx.m->params + ti->offset, charrnn_st_get(fx.f, name)->data, ti->numel,
                     REL, ABS);
    }
    charrnn_trainer_free(tr);
    free_fixture(&fx);
}

START_TEST(lstm_grads)
{
    check_forward_backward("lstm", 1);
}
END_TEST
START_TEST(gru_grads)
{
    check_forward_backward("gru", 1);
}
END_TEST
START_TEST(rnn_grads)
{
    check_forward_backward("rnn", 1);
}
END_TEST
/* The batch split over threads (B = 3: shards of 1 and 2, or 1, 1, 1 streams). */
START_TEST(lstm_grads_sharded)
{
    check_forward_backward("lstm", 2 + _i);
}
END_TEST
START_TEST(gru_grads_sharded)
{
    check_forward_backward("gru", 2 + _i);
}
END_TEST
START_TEST(rnn_grads_sharded)
{
    check_forward_backward("rnn", 2 + _i);
}
END_TEST
START_TEST(lstm_adam)
{
    check_adam("lstm");
}
END_TEST
START_TEST(gru_adam)
{
    check_adam("gru");
}
END_TEST
START_TEST(rnn_adam)
{
    check_adam("rnn");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("reference");
    TCase *fb = ADD_CASE(s, "forward-backward", lstm_grads, gru_grads, rnn_grads);
    tcase_add_loop_test(fb, lstm_grads_sharded, 0, 2);
    tcase_add_loop_test(fb, gru_grads_sharded, 0, 2);
    tcase_add_loop_test(fb, rnn_grads_sharded, 0, 2);
    ADD_CASE(s, "adam", lstm_adam, gru_adam, rnn_adam);
    return run_suite(s);
}

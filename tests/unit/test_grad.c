/* Finite-difference gradient checks: the analytic backward of every cell type,
 * 1..3 layers, dropout and a carried state, against central differences of
 * the loss, and the decoder + softmax cross-entropy on its own.
 *
 * The loss is a fixed function of the parameters only when everything else is
 * pinned: before every forward the carried TRAIN state and the trainer's RNG
 * (which draws the dropout masks) are restored to saved copies.
 *
 * Tolerances (float32 network, double read-out):
 *   The loss the library returns is a float (ulp 2.4e-7 at ~2 nats), which
 *   would put a noise floor of ~3e-5 under a central difference. We therefore
 *   read the loss out of the returned probabilities in double,
 *   -mean(log p[target]); what remains is the float32 rounding of the
 *   activations, measured at <= 5e-6 on the numeric gradient with EPS = 1e-2.
 *   The truncation error of the central difference is EPS^2/6 * |f'''|, below
 *   1e-3 relative on these models (parameters ~0.5, pre-activations ~1).
 *   So a coordinate passes when
 *       |analytic - numeric| <= REL * max(|analytic|, |numeric|) + ABS
 *   with REL = 1e-2 (10x the truncation error) and ABS = 3e-5 (6x the
 *   rounding noise, so coordinates with a gradient of ~0 cannot fail by
 *   noise). Every tensor must also have a checked coordinate with
 *   |gradient| >= 10 * ABS (so measured to ~10%), so it is really tested and
 *   not passed by the floor. A wrong derivative (a dropped factor, a wrong gate, a missing path)
 *   is off by O(100%) on the coordinates it touches. */
#include "testutil.h"

#include <cblas.h>
#include <string.h>

#define EPS 1e-2f
#define REL 1e-2
#define ABS 3e-5
#define COORDS 30 /* coordinates checked per tensor (all of them if fewer) */

enum { V = 7, H = 5, B = 2, T = 4 };

typedef struct gcase {
    charrnn_cell cell;
    int layers;
    float dropout;
    int carried; /* run one window first so the initial state is not zero */
    float scale; /* parameters uniform in [-scale, scale) */
} gcase;

/* Scale 0.5 puts every gate in its nonlinear range (char-rnn's +-0.08 leaves
 * the cells nearly linear). A 3-layer LSTM damps the gradient reaching layer 0
 * to ~1e-4 at that scale, too close to ABS to be measured: it gets 1.0. */
static const gcase cases[] = {
    {CHARRNN_CELL_LSTM, 1, 0.0f, 0, 0.5f}, {CHARRNN_CELL_LSTM, 2, 0.0f, 1, 0.5f},
    {CHARRNN_CELL_LSTM, 2, 0.3f, 1, 0.5f}, {CHARRNN_CELL_LSTM, 3, 0.3f, 1, 1.0f},
    {CHARRNN_CELL_GRU, 1, 0.0f, 0, 0.5f},  {CHARRNN_CELL_GRU, 2, 0.0f, 1, 0.5f},
    {CHARRNN_CELL_GRU, 3, 0.3f, 1, 0.5f},  {CHARRNN_CELL_RNN, 1, 0.0f, 0, 0.5f},
    {CHARRNN_CELL_RNN, 2, 0.0f, 1, 0.5f},  {CHARRNN_CELL_RNN, 3, 0.3f, 1, 0.5f},
};

typedef struct pinned {
    charrnn_trainer *tr;
    float *state; /* saved carried state */
    size_t state_len;
    charrnn_rng rng; /* saved dropout RNG */
    const uint16_t *x, *y;
} pinned;

/* The dropout RNG and carried state back to the pinned ones (moments as they are). */
static void restore(pinned *p)
{
    charrnn_trainer_snapshot s;
    charrnn_trainer_save_state(p->tr, &s);
    ck_assert_uint_eq(s.carry_len, p->state_len);
    s.moment1 = s.moment2 = NULL;
    s.carry = p->state;
    s.rng = p->rng;
    ck_assert_int_eq(charrnn_trainer_restore_state(p->tr, &s, NULL, 0), CHARRNN_OK);
}

static charrnn_rng rng_of(const charrnn_trainer *tr)
{
    charrnn_trainer_snapshot s;
    charrnn_trainer_save_state(tr, &s);
    return s.rng;
}

static void set_rng(charrnn_trainer *tr, charrnn_rng rng)
{
    charrnn_trainer_snapshot s;
    charrnn_trainer_save_state(tr, &s);
    s.moment1 = s.moment2 = s.carry = NULL;
    s.rng = rng;
    ck_assert_int_eq(charrnn_trainer_restore_state(tr, &s, NULL, 0), CHARRNN_OK);
}

/* -mean log p[target] in double from the (n, vn) probabilities. */
static double xent(const float *probs, const uint16_t *y, int n, int vn)
{
    double s = 0.0;
    for (int i = 0; i < n; i++)
        s -= log((double)probs[(size_t)i * vn + y[i]]);
    return s / n;
}

static double loss_at(pinned *p)
{
    restore(p);
    float l = charrnn_trainer_forward(p->tr, p->x, p->y, CHARRNN_MODE_TRAIN);
    double d = xent(charrnn_trainer_probs(p->tr), p->y, T * B, V);
    /* The returned float loss is the same quantity (float32 rounding of ~2 nats). */
    ck_assert_msg(fabs(d - l) <= 1e-6 * fabs(d) + 1e-6, "loss %.9g vs probabilities %.9g", l, d);
    return d;
}

/* Distinct random indices in [0, n): all of them when n <= k. */
static size_t pick(charrnn_rng *r, size_t n, size_t k, size_t *out)
{
    if (n <= k) {
        for (size_t i = 0; i < n; i++)
            out[i] = i;
        return n;
    }
    size_t m = 0;
    while (m < k) {
        size_t c = (size_t)(charrnn_rng_u64(r) % n), dup = 0;
        for (size_t i = 0; i < m; i++)
            dup |= out[i] == c;
        if (!dup)
            out[m++] = c;
    }
    return m;
}

/* Checks one coordinate's analytic gradient against a central difference of f. */
typedef double (*lossfn)(void *ctx);

static void fd_check(const char *what, size_t idx, float *param, float analytic, lossfn f,
                     void *ctx, double *worst_ratio)
{
    const float orig = *param;
    const float up = orig + EPS, down = orig - EPS;
    *param = up;
    double lp = f(ctx);
    *param = down;
    double lm = f(ctx);
    *param = orig;
    /* The step actually taken in float, not the nominal 2*EPS. */
    double numeric = (lp - lm) / ((double)up - (double)down);
    double a = analytic, diff = fabs(a - numeric);
    double tol = REL * fmax(fabs(a), fabs(numeric)) + ABS;
    double ratio = diff / tol;
    if (ratio > *worst_ratio)
        *worst_ratio = ratio;
    ck_assert_msg(diff <= tol, "%s[%zu]: analytic %.7g vs numeric %.7g (|diff| %.2g > tol %.2g)",
                  what, idx, a, numeric, diff, tol);
}

static double pinned_loss(void *ctx)
{
    return loss_at(ctx);
}

static void randomize(charrnn_model *m, uint64_t seed, float scale)
{
    charrnn_rng r;
    charrnn_rng_seed(&r, seed);
    for (size_t i = 0; i < m->num_params; i++)
        m->params[i] = scale * (2.0f * charrnn_rng_uniform_f(&r) - 1.0f);
}

/* Tokens covering the whole vocabulary so every column of W_ih gets a gradient. */
static void tokens(charrnn_rng *r, uint16_t *x, uint16_t *y)
{
    for (int i = 0; i < T * B; i++) {
        x[i] = (uint16_t)(i < V ? (uint64_t)i : charrnn_rng_u64(r) % V);
        y[i] = (uint16_t)(charrnn_rng_u64(r) % V);
    }
}

START_TEST(network_fd)
{
    const gcase *c = &cases[_i];
    char err[CHARRNN_ERR_MAX];
    charrnn_config cfg = {c->cell, V, H, c->layers};
    charrnn_model *m;
    ck_assert_int_eq(charrnn_model_create(&cfg, letters_vocab(V), &m, err, sizeof err), CHARRNN_OK);
    randomize(m, 1000 + (uint64_t)_i, c->scale);
    charrnn_optim_config oc = charrnn_optim_defaults(CHARRNN_OPT_ADAM);
    charrnn_trainer *tr;
    ck_assert_int_eq(charrnn_trainer_create(m, B, T, c->dropout, &oc, 77, &tr, err, sizeof err),
                     CHARRNN_OK);
    charrnn_rng r;
    charrnn_rng_seed(&r, 42 + (uint64_t)_i);
    uint16_t x[T * B], y[T * B];
    if (c->carried) {
        tokens(&r, x, y);
        charrnn_trainer_forward(tr, x, y, CHARRNN_MODE_TRAIN);
    }
    tokens(&r, x, y);
    charrnn_trainer_snapshot snap;
    charrnn_trainer_save_state(tr, &snap);
    pinned p = {tr, NULL, snap.carry_len, snap.rng, x, y};
    const float *s = snap.carry;
    p.state = malloc(p.state_len * sizeof(float));
    memcpy(p.state, s, p.state_len * sizeof(float));
    if (c->carried) {
        double norm = 0.0;
        for (size_t i = 0; i < p.state_len; i++)
            norm += fabs(p.state[i]);
        ck_assert_msg(norm > 0.1, "the carried state is still zero");
    }

    restore(&p);
    charrnn_trainer_zero_grad(tr);
    charrnn_trainer_forward(tr, x, y, CHARRNN_MODE_TRAIN);
    charrnn_trainer_backward(tr);
    float *g = malloc(m->num_params * sizeof(float));
    memcpy(g, charrnn_trainer_grads(tr), m->num_params * sizeof(float));
    /* Pinning works: the same parameters give the same loss twice. */
    ck_assert(loss_at(&p) == loss_at(&p));

    double worst = 0.0;
    size_t idx[COORDS];
    for (int ti = 0; ti < m->num_tensors; ti++) {
        const charrnn_tensor_info *t = &m->tensors[ti];
        size_t k = pick(&r, t->numel, COORDS, idx);
        double gmax = 0.0;
        for (size_t j = 0; j < k; j++) {
            size_t o = t->offset + idx[j];
            gmax = fmax(gmax, fabs(g[o]));
            fd_check(t->name, idx[j], &m->params[o], g[o], pinned_loss, &p, &worst);
        }
        /* A zero gradient would pass trivially: every tensor must be exercised. */
        ck_assert_msg(gmax >= 10 * ABS, "%s: checked gradients are all ~0 (max %g)", t->name, gmax);
    }
    if (getenv("CHARRNN_GRAD_VERBOSE"))
        fprintf(stderr, "case %d (%s, %d layers, dropout %.1f): worst |diff|/tol %.3f\n", _i,
                charrnn_cell_name(c->cell), c->layers, (double)c->dropout, worst);
    ck_assert_double_lt(worst, 1.0);
    free(g);
    free(p.state);
    charrnn_trainer_free(tr);
    charrnn_model_free(m);
}
END_TEST

/* --precision bf16's gradients against f32's on the same parameters and
 * tokens: each tensor within a few times bf16's rounding (2^-9 relative per
 * operand) in norm, so every product is wired to the right operands (a wrong
 * one is off by O(1)); and W_hh's differ, so the bf16 products ran. Without
 * AVX512-BF16 the trainer must refuse the switch instead. */
START_TEST(bf16_near_f32)
{
    static const charrnn_cell cells[] = {CHARRNN_CELL_LSTM, CHARRNN_CELL_GRU, CHARRNN_CELL_RNN};
    char err[CHARRNN_ERR_MAX];
    charrnn_config cfg = {cells[_i], V, H, 2};
    charrnn_model *m;
    ck_assert_int_eq(charrnn_model_create(&cfg, letters_vocab(V), &m, err, sizeof err), CHARRNN_OK);
    randomize(m, 500 + (uint64_t)_i, 0.5f);
    charrnn_optim_config oc = charrnn_optim_defaults(CHARRNN_OPT_ADAM);
    charrnn_trainer *t[2];
    for (int k = 0; k < 2; k++)
        ck_assert_int_eq(charrnn_trainer_create(m, B, T, 0.0f, &oc, 77, &t[k], err, sizeof err),
                         CHARRNN_OK);
    const int rc = charrnn_trainer_set_precision(t[1], CHARRNN_PRECISION_BF16, err, sizeof err);
    if (!__builtin_cpu_supports("avx512bf16")) {
        ck_assert_msg(rc == CHARRNN_EINVAL && strstr(err, "AVX512-BF16"), "%d %s", rc, err);
        charrnn_trainer_free(t[0]), charrnn_trainer_free(t[1]), charrnn_model_free(m);
        return;
    }
    ck_assert_msg(rc == CHARRNN_OK, "%s", err);
    charrnn_rng r;
    charrnn_rng_seed(&r, 7);
    uint16_t x[T * B], y[T * B];
    tokens(&r, x, y);
    const float *g[2];
    for (int k = 0; k < 2; k++) {
        charrnn_trainer_zero_grad(t[k]);
        charrnn_trainer_forward(t[k], x, y, CHARRNN_MODE_TRAIN);
        charrnn_trainer_backward(t[k]);
        g[k] = charrnn_trainer_grads(t[k]);
    }
    for (int ti = 0; ti < m->num_tensors; ti++) {
        const charrnn_tensor_info *ts = &m->tensors[ti];
        double d = 0.0, n = 0.0;
        for (size_t i = ts->offset; i < ts->offset + ts->numel; i++) {
            d += ((double)g[1][i] - g[0][i]) * ((double)g[1][i] - g[0][i]);
            n += (double)g[0][i] * g[0][i];
        }
        ck_assert_msg(n > 0.0 && sqrt(d / n) < 0.03, "%s %s: |bf16 - f32| / |f32| = %.3g",
                      charrnn_cell_name(cells[_i]), ts->name, sqrt(d / n));
        if (strstr(ts->name, "weight_hh"))
            ck_assert_msg(d > 0.0, "%s: bf16 gave f32's bits", ts->name);
    }
    charrnn_trainer_free(t[0]), charrnn_trainer_free(t[1]), charrnn_model_free(m);
}
END_TEST

/* Dropout with a restored RNG draws the same masks; a different RNG state
 * gives a different loss (so the dropout cases really are stochastic). */
START_TEST(dropout_masks_pinned)
{
    char err[CHARRNN_ERR_MAX];
    charrnn_config cfg = {CHARRNN_CELL_LSTM, V, H, 2};
    charrnn_model *m;
    ck_assert_int_eq(charrnn_model_create(&cfg, letters_vocab(V), &m, err, sizeof err), CHARRNN_OK);
    randomize(m, 5, 0.5f);
    charrnn_optim_config oc = charrnn_optim_defaults(CHARRNN_OPT_ADAM);
    charrnn_trainer *tr;
    ck_assert_int_eq(charrnn_trainer_create(m, B, T, 0.5f, &oc, 9, &tr, err, sizeof err),
                     CHARRNN_OK);
    charrnn_rng r;
    charrnn_rng_seed(&r, 3);
    uint16_t x[T * B], y[T * B];
    tokens(&r, x, y);
    charrnn_rng saved = rng_of(tr);
    float a = charrnn_trainer_forward(tr, x, y, CHARRNN_MODE_TRAIN);
    charrnn_trainer_reset_state(tr, CHARRNN_MODE_TRAIN);
    float b = charrnn_trainer_forward(tr, x, y, CHARRNN_MODE_TRAIN); /* new masks */
    charrnn_trainer_reset_state(tr, CHARRNN_MODE_TRAIN);
    set_rng(tr, saved);
    float c = charrnn_trainer_forward(tr, x, y, CHARRNN_MODE_TRAIN);
    ck_assert(a == c);
    ck_assert(a != b);
    /* EVAL mode has no dropout: it does not consume the RNG and is repeatable. */
    saved = rng_of(tr);
    float e1 = charrnn_trainer_forward(tr, x, y, CHARRNN_MODE_EVAL);
    charrnn_trainer_reset_state(tr, CHARRNN_MODE_EVAL);
    float e2 = charrnn_trainer_forward(tr, x, y, CHARRNN_MODE_EVAL);
    ck_assert(e1 == e2);
    charrnn_rng after = rng_of(tr);
    ck_assert(memcmp(&saved, &after, sizeof saved) == 0);
    charrnn_trainer_free(tr);
    charrnn_model_free(m);
}
END_TEST

/* A trainer's saved state restored into a twin makes the twin step exactly
 * like the original; a state of the wrong size is refused and changes nothing. */
START_TEST(state_save_restore)
{
    char err[CHARRNN_ERR_MAX];
    charrnn_config cfg = {CHARRNN_CELL_LSTM, V, H, 2}, other = {CHARRNN_CELL_GRU, V, H, 1};
    charrnn_model *m, *m2, *mo;
    ck_assert_int_eq(charrnn_model_create(&cfg, letters_vocab(V), &m, err, sizeof err), CHARRNN_OK);
    ck_assert_int_eq(charrnn_model_create(&cfg, letters_vocab(V), &m2, err, sizeof err),
                     CHARRNN_OK);
    ck_assert_int_eq(charrnn_model_create(&other, letters_vocab(V), &mo, err, sizeof err),
                     CHARRNN_OK);
    randomize(m, 5, 0.5f);
    charrnn_optim_config oc = charrnn_optim_defaults(CHARRNN_OPT_ADAM);
    charrnn_trainer *a, *b, *o;
    ck_assert_int_eq(charrnn_trainer_create(m, B, T, 0.5f, &oc, 9, &a, err, sizeof err),
                     CHARRNN_OK);
    ck_assert_int_eq(charrnn_trainer_create(m2, B, T, 0.5f, &oc, 77, &b, err, sizeof err),
                     CHARRNN_OK);
    ck_assert_int_eq(charrnn_trainer_create(mo, B, T, 0.5f, &oc, 77, &o, err, sizeof err),
                     CHARRNN_OK);
    charrnn_rng r;
    charrnn_rng_seed(&r, 3);
    uint16_t x[T * B], y[T * B];
    for (int k = 0; k < 3; k++) {
        tokens(&r, x, y);
        charrnn_trainer_step(a, x, y, 0.01f, 5.0f);
    }
    memcpy(m2->params, m->params, m->num_params * sizeof(float));
    charrnn_trainer_snapshot s;
    charrnn_trainer_save_state(a, &s);
    ck_assert_uint_eq(s.optimizer_steps, 3);
    ck_assert_int_eq(charrnn_trainer_restore_state(b, &s, err, sizeof err), CHARRNN_OK);
    charrnn_trainer_snapshot before, after;
    charrnn_trainer_save_state(o, &before);
    ck_assert_int_eq(charrnn_trainer_restore_state(o, &s, err, sizeof err), CHARRNN_EINVAL);
    charrnn_trainer_save_state(o, &after);
    ck_assert_uint_eq(after.optimizer_steps, 0);
    ck_assert(memcmp(&before.rng, &after.rng, sizeof before.rng) == 0);
    tokens(&r, x, y);
    float la = charrnn_trainer_step(a, x, y, 0.01f, 5.0f);
    float lb = charrnn_trainer_step(b, x, y, 0.01f, 5.0f);
    ck_assert(la == lb);
    ck_assert(memcmp(m->params, m2->params, m->num_params * sizeof(float)) == 0);
    charrnn_trainer_free(a), charrnn_trainer_free(b), charrnn_trainer_free(o);
    charrnn_model_free(m), charrnn_model_free(m2), charrnn_model_free(mo);
}
END_TEST

/* ---- decoder + softmax cross-entropy alone ---------------------------- */

enum { DN = 6, DV = 9, DH = 4 };

typedef struct dec {
    float h[DN * DH], w[DV * DH], b[DV];
    uint16_t tg[DN];
    float probs[DN * DV];
} dec;

static double dec_loss(void *ctx)
{
    dec *d = ctx;
    charrnn_decoder_forward(d->probs, d->h, d->w, d->b, d->tg, DN, DV, DH);
    return xent(d->probs, d->tg, DN, DV);
}

START_TEST(decoder_fd)
{
    dec d;
    charrnn_rng r;
    charrnn_rng_seed(&r, 11);
    for (int i = 0; i < DN * DH; i++)
        d.h[i] = 2.0f * charrnn_rng_uniform_f(&r) - 1.0f;
    for (int i = 0; i < DV * DH; i++)
        d.w[i] = 2.0f * charrnn_rng_uniform_f(&r) - 1.0f;
    for (int i = 0; i < DV; i++)
        d.b[i] = charrnn_rng_uniform_f(&r) - 0.5f;
    for (int i = 0; i < DN; i++)
        d.tg[i] = (uint16_t)(charrnn_rng_u64(&r) % DV);

    float loss = charrnn_decoder_forward(d.probs, d.h, d.w, d.b, d.tg, DN, DV, DH);
    /* The returned probabilities are a softmax of h W^T + b, computed here in
     * double (1e-6: float32 exp and normalisation of O(1) values). */
    for (int i = 0; i < DN; i++) {
        double lg[DV], mx = -1e30, sum = 0.0;
        for (int v = 0; v < DV; v++) {
            lg[v] = d.b[v];
            for (int k = 0; k < DH; k++)
                lg[v] += (double)d.h[i * DH + k] * d.w[v * DH + k];
            mx = fmax(mx, lg[v]);
        }
        for (int v = 0; v < DV; v++)
            sum += exp(lg[v] - mx);
        for (int v = 0; v < DV; v++)
            ck_assert_double_eq_tol(d.probs[i * DV + v], exp(lg[v] - mx) / sum, 1e-6);
    }
    /* The loss is the mean of -log p[target] (float32 result of ~2 nats). */
    ck_assert_double_eq_tol(loss, xent(d.probs, d.tg, DN, DV), 1e-6);

    float dh[DN * DH], dw[DV * DH], db[DV];
    /* backward ADDS into dw and db: start them at a known offset. */
    for (int i = 0; i < DV * DH; i++)
        dw[i] = 1.0f;
    for (int i = 0; i < DV; i++)
        db[i] = 1.0f;
    charrnn_decoder_backward(dh, dw, db, d.probs, d.h, d.w, d.tg, DN, DV, DH);
    for (int i = 0; i < DV * DH; i++)
        dw[i] -= 1.0f;
    for (int i = 0; i < DV; i++)
        db[i] -= 1.0f;

    double worst = 0.0;
    for (int i = 0; i < DV * DH; i++)
        fd_check("decoder dw", (size_t)i, &d.w[i], dw[i], dec_loss, &d, &worst);
    for (int i = 0; i < DV; i++)
        fd_check("decoder db", (size_t)i, &d.b[i], db[i], dec_loss, &d, &worst);
    for (int i = 0; i < DN * DH; i++)
        fd_check("decoder dh", (size_t)i, &d.h[i], dh[i], dec_loss, &d, &worst);
    if (getenv("CHARRNN_GRAD_VERBOSE"))
        fprintf(stderr, "decoder: worst |diff|/tol %.3f\n", worst);
    ck_assert_double_lt(worst, 1.0);
}
END_TEST

int main(void)
{
    openblas_set_num_threads(1); /* tiny matrices; the result must not depend on threads */
    Suite *s = suite_create("grad");
    TCase *net = ADD_CASE(s, "network", dropout_masks_pinned, state_save_restore);
    tcase_set_timeout(net, 60);
    tcase_add_loop_test(net, network_fd, 0, (int)(sizeof cases / sizeof cases[0]));
    ADD_CASE(s, "decoder", decoder_fd);
    TCase *bf16 = tcase_create("bf16");
    tcase_add_loop_test(bf16, bf16_near_f32, 0, 3);
    suite_add_tcase(s, bf16);
    return run_suite(s);
}

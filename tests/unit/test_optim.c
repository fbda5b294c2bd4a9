/* The optimizer helpers (optim.h): gradient clipping, Adam and RMSProp
 * against torch.optim's formulas. */
#include "testutil.h"

/* ---- optimizer helpers ------------------------------------------------- */

START_TEST(clip_grad_value)
{
    float g[] = {-10.0f, -5.0f, -4.999f, 0.0f, 3.0f, 5.0f, 5.001f, 1e30f, -INFINITY};
    const float want[] = {-5.0f, -5.0f, -4.999f, 0.0f, 3.0f, 5.0f, 5.0f, 5.0f, -5.0f};
    charrnn_clip_grad_value(g, 9, 5.0f);
    for (int i = 0; i < 9; i++)
        ck_assert_float_eq(g[i], want[i]);
    float h[] = {-10.0f, 7.0f};
    charrnn_clip_grad_value(h, 2, 0.0f); /* off */
    ck_assert_float_eq(h[0], -10.0f);
    ck_assert_float_eq(h[1], 7.0f);
}
END_TEST

/* One Adam and one RMSProp update against the formulas of torch.optim, in double. */
START_TEST(optimizer_updates)
{
    const float g[4] = {0.5f, -2.0f, 1e-3f, 0.0f};
    float p[4] = {1.0f, 1.0f, 1.0f, 1.0f}, m[4] = {0.1f, 0.0f, 0.0f, 0.2f},
          v[4] = {0.01f, 0.0f, 0.0f, 0.04f};
    charrnn_optim_config a = charrnn_optim_defaults(CHARRNN_OPT_ADAM);
    ck_assert_float_eq(a.beta1, 0.9f);
    ck_assert_float_eq(a.beta2, 0.999f);
    const uint64_t step = 3;
    charrnn_optim_update(&a, p, g, m, v, 4, 0.01f, step);
    const double m0[4] = {0.1, 0, 0, 0.2}, v0[4] = {0.01, 0, 0, 0.04};
    for (int i = 0; i < 4; i++) {
        double mm = 0.9 * m0[i] + 0.1 * g[i], vv = 0.999 * v0[i] + 0.001 * (double)g[i] * g[i];
        double want =
            1.0 - 0.01 * (mm / (1 - pow(0.9, 3))) / (sqrt(vv) / sqrt(1 - pow(0.999, 3)) + 1e-8);
        ck_assert_double_eq_tol(p[i], want, 1e-6); /* float32 arithmetic on O(1) values */
        ck_assert_double_eq_tol(m[i], mm, 1e-7);
    }
    charrnn_optim_config r = charrnn_optim_defaults(CHARRNN_OPT_RMSPROP);
    ck_assert_float_eq(r.alpha, 0.95f);
    float q[4] = {1.0f, 1.0f, 1.0f, 1.0f}, w[4] = {0.01f, 0.0f, 0.0f, 0.04f};
    charrnn_optim_update(&r, q, g, NULL, w, 4, 0.01f, 1);
    for (int i = 0; i < 4; i++) {
        double vv = 0.95 * v0[i] + 0.05 * (double)g[i] * g[i];
        ck_assert_double_eq_tol(q[i], 1.0 - 0.01 * g[i] / (sqrt(vv) + 1e-8), 1e-6);
    }
}
END_TEST

int main(void)
{
    RUN_TESTS("optim", clip_grad_value, optimizer_updates);
}

/* The int8 product of the inference kernel against its definition, written
 * out here independently of the library: each stream's input quantized with
 * one scale (m = max |x|, q = round-half-even(x * (127 / m)), xs = m / 127),
 * an exact integer sum per row, then y = b + sc * (xs * sum). Every build of
 * the kernel (avx512, avx2, portable) must give exactly these bits for every
 * shape (rows and inputs not multiples of the blocks, 1..16 streams, inputs
 * wider than the kernel's stack buffer), and the result must be within the
 * quantization's error bound of the exact product. Built with
 * -ffp-contract=off, as the library is, so the reference's float operations
 * are the ones written. */
#include "../../model/core/rowdot_variants.h"
#include "charrnn/rng.h"
#include "charrnn/sampler.h"
#include "charrnn/status.h"
#include "check_run.h"

#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { DT_INT8 = 2 };

static float reference(const int8_t *w, float sc, float b, const float *x, int D)
{
    float m = 0.0f;
    for (int i = 0; i < D; i++)
        if (fabsf(x[i]) > m)
            m = fabsf(x[i]);
    int64_t sum = 0;
    if (m != 0.0f) {
        float inv = 127.0f / m;
        for (int i = 0; i < D; i++) {
            float v = rintf(x[i] * inv);
            if (v > 127.0f)
                v = 127.0f;
            if (v < -127.0f)
                v = -127.0f;
            sum += (int64_t)w[i] * (int64_t)v;
        }
    }
    ck_assert(sum <= INT32_MAX && sum >= INT32_MIN);
    float xs = m / 127.0f;
    float t = xs * (float)(int32_t)sum;
    t = sc * t;
    return b + t;
}

typedef struct {
    int R, D;
    int8_t *w;
    float *sc, *b, *x[16], *y[16];
} problem;

/* Random weights (with every row's extremes at +-127, as a quantized row
 * has), scales and inputs in (-1, 1); kind 1: all weights and inputs at the
 * largest magnitude (the largest integer sums); kind 2: stream 0's input
 * all zeros. */
static problem make(int R, int D, int kind, uint64_t seed)
{
    charrnn_rng r;
    charrnn_rng_seed(&r, seed);
    problem p = {R,
                 D,
                 malloc((size_t)R * (size_t)D),
                 malloc((size_t)R * sizeof(float)),
                 malloc((size_t)R * sizeof(float)),
                 {0},
                 {0}};
    for (int i = 0; i < R; i++) {
        for (int k = 0; k < D; k++)
            p.w[(size_t)i * D + k] =
                kind == 1 ? 127 : (int8_t)(charrnn_rng_uniform_f(&r) * 254.999f - 127.0f);
        p.w[(size_t)i * D + (size_t)i % (size_t)D] = kind == 1 ? 127 : (i & 1 ? 127 : -127);
        p.sc[i] = 0.001f + 0.01f * charrnn_rng_uniform_f(&r);
        p.b[i] = charrnn_rng_uniform_f(&r) - 0.5f;
    }
    for (int s = 0; s < 16; s++) {
        p.x[s] = malloc((size_t)D * sizeof(float));
        p.y[s] = malloc((size_t)R * sizeof(float));
        for (int k = 0; k < D; k++)
            p.x[s][k] = kind == 1     ? 1.0f
                : kind == 2 && s == 0 ? 0.0f
                                      : 2.0f * charrnn_rng_uniform_f(&r) - 1.0f;
    }
    return p;
}

static void drop(problem *p)
{
    free(p->w), free(p->sc), free(p->b);
    for (int s = 0; s < 16; s++)
        free(p->x[s]), free(p->y[s]);
}

static int kernels_checked;

static void check_shape(int R, int D, int kind)
{
    static const char *kernels[] = {"avx512", "avx2", "portable"};
    const char *def = charrnn_kernel_name();
    problem p = make(R, D, kind, (uint64_t)(R * 7919 + D * 31 + kind));
    for (int k = 0; k < 3; k++) {
        if (charrnn_kernel_select(kernels[k], NULL, 0) != CHARRNN_OK)
            continue;
        kernels_checked |= 1 << k;
        for (size_t n = 1; n <= 16; n++) {
            for (int s = 0; s < 16; s++)
                for (int i = 0; i < R; i++)
                    p.y[s][i] = NAN;
            charrnn_rd_rows(DT_INT8, p.w, p.sc, p.b, R, D, n, (const float *const *)p.x, NULL, p.y);
            for (size_t s = 0; s < n; s++)
                for (int i = 0; i < R; i++) {
                    const int8_t *wr = p.w + (size_t)i * D;
                    float want = reference(wr, p.sc[i], p.b[i], p.x[s], D);
                    ck_assert_msg(memcmp(&want, &p.y[s][i], sizeof want) == 0,
                                  "kernel %s, R %d D %d kind %d, %zu streams: y[%zu][%d] = %.9g, "
                                  "definition %.9g",
                                  kernels[k], R, D, kind, n, s, i, (double)p.y[s][i], (double)want);
                    /* Within the quantization's bound of the exact product:
                     * each |q xs - x| <= xs / 2. */
                    double exact = p.b[i], bound = 0.0, m = 0.0;
                    for (int c = 0; c < D; c++) {
                        exact += (double)p.sc[i] * wr[c] * p.x[s][c];
                        bound += fabs((double)p.sc[i] * wr[c]);
                        m = fmax(m, fabs(p.x[s][c]));
                    }
                    bound = bound * (m / 127.0) / 2.0 * 1.001 + 1e-5 * (1.0 + fabs(exact));
                    ck_assert_msg(fabs(p.y[s][i] - exact) <= bound,
                                  "R %d D %d: %.9g is %.3g from the exact %.9g (bound %.3g)", R, D,
                                  (double)p.y[s][i], fabs(p.y[s][i] - exact), exact, bound);
                }
        }
    }
    ck_assert_int_eq(charrnn_kernel_select(def, NULL, 0), CHARRNN_OK);
    drop(&p);
}

START_TEST(int8_product_is_its_definition)
{
    static const int Rs[] = {1, 7, 8, 13, 40};
    static const int Ds[] = {1, 15, 16, 17, 63, 64, 65, 100, 130, 512, 517};
    for (size_t a = 0; a < sizeof Rs / sizeof *Rs; a++)
        for (size_t c = 0; c < sizeof Ds / sizeof *Ds; c++)
            check_shape(Rs[a], Ds[c], 0);
    /* Inputs wider than the kernel quantizes at once for 16 streams. */
    check_shape(9, 2100, 0);
    check_shape(3, 8192, 0);
    ck_assert_msg(kernels_checked & 4, "the portable kernel always runs");
}
END_TEST

START_TEST(int8_extremes)
{
    /* The largest sums: 127 * 127 * 8192, still exact in 32 bits. */
    check_shape(8, 8192, 1);
    check_shape(5, 1000, 1);
    /* A zero input vector: scale 0, y = b. */
    check_shape(8, 100, 2);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("rowdot");
    tcase_set_timeout(ADD_CASE(s, "int8", int8_product_is_its_definition, int8_extremes), 240);
    return run_suite(s);
}

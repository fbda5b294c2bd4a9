/* The gate arithmetic gives the same bits whatever instruction set GCC
 * builds it for (model/core/fastmath.h CR_CLONES: the cell functions of
 * model/core/cell_math.h, which training and sampling call, run as AVX-512, AVX2 or
 * baseline clones, picked by the CPU). The LSTM cell, which uses every
 * function of fastmath.h, is compiled here into scalar code and into each
 * target (flatten inlines it into each wrapper), run over edge values and a
 * quarter million random inputs, and compared bit for bit.
 * Built with the library's -ffp-contract=off (with contraction on, the
 * AVX-512 version differs: this test fails) and -fno-trapping-math (without
 * it GCC 12 vectorizes these loops only for AVX-512). */
#include "../../model/core/cell_math.h"
#include "../../model/core/fastmath.h"
#include "check_run.h"

#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { N = 1 << 18 };

/* One row of the LSTM cell: pre-activations g (4n) and c_prev (n) in;
 * activations a (4n), c and h out; e = exp(g) for cr_expf alone. */
#define GATES_BODY                                                                                 \
    memcpy(a, g, sizeof(float) * 4 * (size_t)n);                                                   \
    cell_lstm_forward(a, a + n, a + 2 * n, a + 3 * n, cp, c, h, n);                                \
    for (int j = 0; j < n; j++)                                                                    \
        e[j] = cr_expf(g[j]);

#define GATES_PARAMS                                                                               \
    const float *restrict g, float *restrict a, const float *restrict cp, float *restrict c,       \
        float *restrict h, float *restrict e, int n

typedef void gates_fn(GATES_PARAMS);

__attribute__((optimize("no-tree-vectorize"), flatten)) static void gates_scalar(GATES_PARAMS)
{
    GATES_BODY
}

__attribute__((flatten)) static void gates_default(GATES_PARAMS)
{
    GATES_BODY
}

#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("avx2"), flatten)) static void gates_avx2(GATES_PARAMS)
{
    GATES_BODY
}

__attribute__((target("avx512f"), flatten)) static void gates_avx512(GATES_PARAMS)
{
    GATES_BODY
}
#endif

static float *g0, *c0;

static void setup(void)
{
    g0 = malloc(sizeof(float) * 4 * N), c0 = malloc(sizeof(float) * N);
    ck_assert(g0 && c0);
    /* Edge values first, then random floats of every magnitude and sign. */
    static const float edges[] = {
        0.0f,   -0.0f,  1e-30f,   -1e-30f,   0.29999f,        0.3f,   -0.3f,
        1.0f,   -1.0f,  9.0f,     -9.0f,     20.0f,           -20.0f, 43.5f,
        -43.5f, 87.0f,  -87.0f,   88.0f,     -88.0f,          100.0f, -100.0f,
        1e30f,  -1e30f, INFINITY, -INFINITY, 1.17549435e-38f, 3.4e38f};
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i < 4 * (size_t)N; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        uint32_t bits = (uint32_t)(x >> 32);
        /* Exponents mostly in the range gates see (|v| < 2^7), some anywhere. */
        if ((x & 7) != 0)
            bits = (bits & 0x807fffffu) | ((uint32_t)(110 + (x >> 3) % 25) << 23);
        float v;
        memcpy(&v, &bits, sizeof v);
        g0[i] = i < sizeof edges / sizeof *edges ? edges[i] : isnan(v) ? 0.5f : v;
    }
    for (size_t i = 0; i < (size_t)N; i++)
        c0[i] = g0[(i * 7) % (4 * (size_t)N)] * 0.25f;
}

static void teardown(void)
{
    free(g0), free(c0);
}

static void run(gates_fn *f, float **c, float **h, float **e)
{
    *c = malloc(sizeof(float) * N), *h = malloc(sizeof(float) * N), *e = malloc(sizeof(float) * N);
    ck_assert(*c && *h && *e);
    float *a = malloc(sizeof(float) * 4 * 1003);
    ck_assert(a);
    /* Rows of 1003: vector bodies and scalar remainders both run. */
    for (int r0 = 0; r0 < N; r0 += 1003) {
        int n = N - r0 < 1003 ? N - r0 : 1003;
        f(g0 + (size_t)4 * r0, a, c0 + r0, *c + r0, *h + r0, *e + r0, n);
    }
    free(a);
}

static void same_bits(const char *what, const float *a, const float *b)
{
    for (size_t i = 0; i < (size_t)N; i++)
        ck_assert_msg(!memcmp(&a[i], &b[i], sizeof(float)), "%s differs at %zu: %a vs %a", what, i,
                      (double)a[i], (double)b[i]);
}

static void compare(gates_fn *f, const char *name)
{
    float *c1, *h1, *e1, *c2, *h2, *e2;
    run(gates_scalar, &c1, &h1, &e1);
    run(f, &c2, &h2, &e2);
    same_bits(name, c1, c2);
    same_bits(name, h1, h2);
    same_bits(name, e1, e2);
    free(c1), free(h1), free(e1), free(c2), free(h2), free(e2);
}

START_TEST(default_build_matches_scalar)
{
    compare(gates_default, "default");
}
END_TEST

START_TEST(avx2_matches_scalar)
{
#if defined(__x86_64__) && defined(__GNUC__)
    if (__builtin_cpu_supports("avx2"))
        compare(gates_avx2, "avx2");
#endif
}
END_TEST

START_TEST(avx512_matches_scalar)
{
#if defined(__x86_64__) && defined(__GNUC__)
    if (__builtin_cpu_supports("avx512f"))
        compare(gates_avx512, "avx512f");
#endif
}
END_TEST

int main(void)
{
    Suite *s = suite_create("fastmath");
    TCase *t = ADD_CASE(s, "clones", default_build_matches_scalar, avx2_matches_scalar,
                        avx512_matches_scalar);
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_set_timeout(t, 60);
    return run_suite(s);
}

/* The trainer's bf16 products (model/core/gemm.h, gemm_bf16.c) against a
 * reference computed in double from the bf16-rounded operands, for the
 * trainer's shapes and the tiles' edges; the rounding of the operands (to
 * nearest, ties to even); the same bits whatever the blocking; and the
 * refusal where the kernel cannot run. On a CPU without AVX512-BF16 the
 * suite checks that refusal instead of the arithmetic (it never skips). */
#include "../../model/core/gemm.h"
#include "charrnn/lowp.h"
#include "charrnn/rng.h"
#include "charrnn/sampler.h"
#include "charrnn/status.h"
#include "testutil.h"

#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* 1 where the arithmetic is checked. On a CPU without AVX512-BF16 the
 * kernel must be refused (refusal_without_the_kernel checks the message) and
 * there is no arithmetic to check; on one with it, this build must run it. */
static int runs_bf16(void)
{
    const int ready = charrnn_gemm_bf16_ready(NULL, 0) == CHARRNN_OK;
    ck_assert_int_eq(ready, __builtin_cpu_supports("avx512bf16") != 0);
    return ready;
}

static double rounded(float x)
{
    return (double)charrnn_bf16_to_f32(charrnn_bf16_from_f32(x));
}

/* C = [C0 +] op(A) op(B) in bf16, by the path the trainer uses for the
 * operands: packed B (ta = 0) or A and B converted as they go (tb = 0). */
static void product(int ta, int tb, int packed, int M, int N, int K, const float *A, int lda,
                    const float *B, int ldb, int acc, float *C, int ldc)
{
    if (packed) {
        uint32_t *pk = malloc(sizeof(uint32_t) * (charrnn_gemm_bf16_pack_words(N, K) + 1));
        ck_assert_ptr_nonnull(pk);
        charrnn_gemm_bf16_pack(pk, tb, B, ldb, N, K);
        charrnn_gemm_bf16_packed(M, N, K, A, lda, pk, acc, C, ldc);
        free(pk);
    } else {
        charrnn_gemm_bf16(ta, M, N, K, A, lda, B, ldb, acc, C, ldc);
    }
}

/* ta = 1 only unpacked, tb = 1 only packed: the trainer's combinations. */
static void check_shape(int ta, int tb, int M, int N, int K, int acc)
{
    const int packed = !ta;
    charrnn_rng r;
    charrnn_rng_seed(&r, (uint64_t)(M * 1000003 + N * 1009 + K * 7 + ta * 2 + tb));
    const int lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 5, ldc = N + 2;
    float *A = rand_floats(&r, (size_t)(ta ? K : M) * lda),
          *B = rand_floats(&r, (size_t)(tb ? N : K) * ldb);
    float *C0 = rand_floats(&r, (size_t)M * ldc), *C = malloc(sizeof(float) * (size_t)M * ldc);
    float *row = malloc(sizeof(float) * (size_t)ldc);
    ck_assert(C && row);
    memcpy(C, C0, sizeof(float) * (size_t)M * ldc);
    product(ta, tb, packed, M, N, K, A, lda, B, ldb, acc, C, ldc);
    for (int i = 0; i < M; i++) {
        for (int j = 0; j < N; j++) {
            /* Terms: x_0 = C0 (or 0) and x_k = a_k b_k, k < K, with a_k and
             * b_k the bf16 roundings. A bf16 has 8 significant bits, so a
             * product has at most 16 and is exact in f32 (24), and these
             * magnitudes (2^-30 .. 1) are far from f32's underflow, where
             * vdpbf16ps would flush. The only error is then that of the f32
             * additions of K + 1 terms, each a rounding to nearest (two per
             * vdpbf16ps step, or fewer if the CPU fuses a pair; a padding
             * zero adds none): |got - exact| <= gamma_K * sum |x_k|, gamma_K
             * = K u / (1 - K u), u = 2^-24 (Higham, Accuracy and Stability,
             * 4.2). The reference sum in double is exact to 2^-53 relative
             * per term, far inside that. */
            double exact = acc ? C0[(size_t)i * ldc + j] : 0.0, mag = fabs(exact);
            for (int k = 0; k < K; k++) {
                const float a = ta ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
                const float b = tb ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j];
                exact += rounded(a) * rounded(b);
                mag += fabs(rounded(a) * rounded(b));
            }
            const double u = 0x1p-24, gamma = K * u / (1.0 - K * u);
            const float got = C[(size_t)i * ldc + j];
            ck_assert_msg(fabs(got - exact) <= gamma * mag,
                          "ta %d tb %d %dx%dx%d acc %d: C[%d][%d] = %.9g, exact %.12g, bound %.3g",
                          ta, tb, M, N, K, acc, i, j, (double)got, exact, gamma * mag);
        }
        for (int j = N; j < ldc; j++) /* nothing written past a row's N columns */
            ck_assert(!memcmp(&C[(size_t)i * ldc + j], &C0[(size_t)i * ldc + j], 4));
    }
    /* Another blocking of the same elements: row i alone (one row tile,
     * another A stage) gives the same bits, as the chain is fixed. */
    for (int i = 0; i<M; i += M> 7 ? M / 3 : 1) {
        memcpy(row, C0 + (size_t)i * ldc, sizeof(float) * (size_t)ldc);
        const float *Ai = ta ? A + i : A + (size_t)i * lda;
        product(ta, tb, packed, 1, N, K, Ai, lda, B, ldb, acc, row, ldc);
        ck_assert_msg(!memcmp(row, C + (size_t)i * ldc, sizeof(float) * (size_t)N),
                      "row %d alone differs (ta %d tb %d %dx%dx%d)", i, ta, tb, M, N, K);
    }
    free(A), free(B), free(C0), free(C), free(row);
}

START_TEST(products_within_the_bound)
{
    if (!runs_bf16())
        return; /* refusal_without_the_kernel checks this CPU instead */
    static const int Ms[] = {1, 5, 6, 7, 13, 65};
    static const int Ns[] = {1, 15, 16, 17, 63, 64, 65, 130};
    static const int Ks[] = {1, 2, 3, 31, 256, 257, 300, 513};
    for (int t = 0; t < 3; t++) /* A B^T packed, A B packed, A^T B */
        for (size_t a = 0; a < sizeof Ms / sizeof *Ms; a++)
            for (size_t b = 0; b < sizeof Ns / sizeof *Ns; b++)
                for (size_t c = 0; c < sizeof Ks / sizeof *Ks; c++)
                    check_shape(t == 2, t == 0, Ms[a], Ns[b], Ks[c], (int)(a + b + c) % 2);
}
END_TEST

START_TEST(trainer_shapes)
{
    if (!runs_bf16())
        return;
    /* A 512-unit LSTM's products for a shard of 25 streams x 50 steps: the
     * recurrent step and its backward (packed W_hh^T, W_hh), the input side
     * of a layer above the first, its dx, and the weight gradients over the
     * window (A^T B, K = the window's rows; odd here). */
    check_shape(0, 1, 25, 2048, 512, 1);
    check_shape(0, 0, 25, 512, 2048, 0);
    check_shape(0, 1, 130, 2048, 512, 0);
    check_shape(0, 0, 70, 65, 2048, 0);
    check_shape(1, 0, 200, 520, 1251, 1);
}
END_TEST

/* A (1 x 1) times B (1 x 1) by both paths and both operand positions. */
static void one_product(float a, float b, float want)
{
    for (int swap = 0; swap < 2; swap++)
        for (int t = 0; t < 3; t++) {
            const float x = swap ? b : a, y = swap ? a : b;
            float c = -7.0f;
            product(t == 2, t == 0, t != 2, 1, 1, 1, &x, 1, &y, 1, 0, &c, 1);
            ck_assert_msg(c == want, "%.9g x %.9g (path %d) = %.9g, want %.9g", (double)x,
                          (double)y, t, (double)c, (double)want);
        }
}

START_TEST(operands_round_to_nearest_even)
{
    if (!runs_bf16())
        return;
    /* bf16 keeps 7 fraction bits: near 1 its step is 2^-7. */
    one_product(1.0f + 0x1p-8f, 1.0f, 1.0f);                      /* tie: to even 1 */
    one_product(1.0f + 3 * 0x1p-8f, 1.0f, 1.0f + 0x1p-6f);        /* tie: up to even */
    one_product(1.0f + 0x1p-8f + 0x1p-16f, 1.0f, 1.0f + 0x1p-7f); /* above: up */
    one_product(1.0f + 0x1p-8f - 0x1p-20f, 1.0f, 1.0f);           /* below: down */
    one_product(-(1.0f + 0x1p-8f + 0x1p-16f), 1.0f + 0x1p-8f, -1.0f - 0x1p-7f); /* sign, both */
    one_product(3.0f + 0x1p-7f, 2.0f, 6.0f); /* tie at 2^-6 steps */
}
END_TEST

START_TEST(refusal_without_the_kernel)
{
    char err[CHARRNN_ERR_MAX];
    if (!__builtin_cpu_supports("avx512bf16")) {
        ck_assert_int_eq(charrnn_gemm_bf16_ready(err, sizeof err), CHARRNN_EINVAL);
        ck_assert_msg(strstr(err, "AVX512-BF16") || strstr(err, "AVX-512 BF16"), "%s", err);
        return;
    }
    ck_assert_int_eq(charrnn_gemm_bf16_ready(err, sizeof err), CHARRNN_OK);
    /* Another kernel forced (CHARRNN_KERNEL's selection): refused, named. */
    const char *def = charrnn_kernel_name();
    ck_assert_int_eq(charrnn_kernel_select("portable", NULL, 0), CHARRNN_OK);
    ck_assert_int_eq(charrnn_gemm_bf16_ready(err, sizeof err), CHARRNN_EINVAL);
    ck_assert_msg(strstr(err, "'portable'") && strstr(err, "CHARRNN_KERNEL"), "%s", err);
    ck_assert_int_eq(charrnn_kernel_select(def, NULL, 0), CHARRNN_OK);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("gemm_bf16");
    tcase_set_timeout(ADD_CASE(s, "gemm_bf16", products_within_the_bound, trainer_shapes,
                               operands_round_to_nearest_even, refusal_without_the_kernel),
                      120);
    return run_suite(s);
}

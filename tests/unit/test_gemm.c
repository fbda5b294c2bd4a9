/* The trainer's GEMM (model/core/gemm.h) against its definition: every
 * C[i][j] is the chain s = (acc ? C : +0), s = fmaf(A[i][k], B[k][j], s) for
 * k = 0 .. K-1. Each build of the kernel (avx512, avx2, portable: those this
 * CPU runs) must give exactly these bits for every transpose, shape edge
 * (rows and columns beyond the register tiles and vectors, k beyond a block),
 * accumulate or overwrite, packed or not; and the result must lie within the
 * rounding bound of the exact product (computed in double). */
#include "../../model/core/gemm.h"
#include "charrnn/rng.h"
#include "charrnn/sampler.h"
#include "charrnn/status.h"
#include "testutil.h"

#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const kernels[] = {"avx512", "avx2", "portable"};
static int kernels_checked;

static void check_shape(int ta, int tb, int M, int N, int K, int acc, int packed)
{
    charrnn_rng r;
    charrnn_rng_seed(&r, (uint64_t)(M * 1000003 + N * 1009 + K * 7 + ta * 2 + tb));
    /* Stored with a row stride wider than needed, so strides are honoured. */
    const int lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 5, ldc = N + 2;
    float *A = rand_floats(&r, (size_t)(ta ? K : M) * lda),
          *B = rand_floats(&r, (size_t)(tb ? N : K) * ldb);
    float *C0 = rand_floats(&r, (size_t)M * ldc), *C = malloc(sizeof(float) * (size_t)M * ldc);
    float *want = malloc(sizeof(float) * (size_t)M * ldc);
    float *pack = malloc(sizeof(float) * (charrnn_gemm_pack_floats(N, K) + 1));
    ck_assert(C && want && pack);
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            float s = acc ? C0[(size_t)i * ldc + j] : 0.0f;
            double exact = s, mag = fabs(s);
            for (int k = 0; k < K; k++) {
                const float a = ta ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
                const float b = tb ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j];
                s = fmaf(a, b, s);
                exact += (double)a * b;
                mag += fabs((double)a * b);
            }
            want[(size_t)i * ldc + j] = s;
            /* K roundings, each at most 2^-24 of a partial sum <= mag. */
            ck_assert_msg(fabs(s - exact) <= (K + 1) * 0x1p-24 * mag,
                          "definition off the exact product at %d,%d", i, j);
        }
    const char *def = charrnn_kernel_name();
    for (int v = 0; v < 3; v++) {
        if (charrnn_kernel_select(kernels[v], NULL, 0) != CHARRNN_OK)
            continue;
        kernels_checked |= 1 << v;
        memcpy(C, C0, sizeof(float) * (size_t)M * ldc);
        if (packed) {
            charrnn_gemm_pack(pack, tb, B, ldb, N, K);
            charrnn_gemm_packed(ta, M, N, K, A, lda, pack, acc, C, ldc);
        } else {
            charrnn_gemm(ta, tb, M, N, K, A, lda, B, ldb, acc, C, ldc);
        }
        for (int i = 0; i < M; i++) {
            for (int j = 0; j < N; j++) {
                const size_t o = (size_t)i * ldc + j;
                ck_assert_msg(!memcmp(&C[o], &want[o], sizeof(float)),
                              "%s ta %d tb %d %dx%dx%d acc %d packed %d: C[%d][%d] = %.9g, "
                              "definition %.9g",
                              kernels[v], ta, tb, M, N, K, acc, packed, i, j, (double)C[o],
                              (double)want[o]);
            }
            for (int j = N; j < ldc; j++) /* nothing written past a row's N columns */
                ck_assert(!memcmp(&C[(size_t)i * ldc + j], &C0[(size_t)i * ldc + j], 4));
        }
    }
    ck_assert_int_eq(charrnn_kernel_select(def, NULL, 0), CHARRNN_OK);
    free(A), free(B), free(C0), free(C), free(want), free(pack);
}

START_TEST(every_kernel_is_the_definition)
{
    static const int Ms[] = {1, 5, 6, 7, 13, 25};
    static const int Ns[] = {1, 7, 8, 16, 17, 63, 64, 65, 130};
    static const int Ks[] = {0, 1, 3, 129, 256, 300};
    for (int t = 0; t < 4; t++)
        for (size_t a = 0; a < sizeof Ms / sizeof *Ms; a++)
            for (size_t b = 0; b < sizeof Ns / sizeof *Ns; b++)
                for (size_t c = 0; c < sizeof Ks / sizeof *Ks; c++)
                    check_shape(t >> 1, t & 1, Ms[a], Ns[b], Ks[c], (int)(a + b + c) % 2,
                                (int)(a + c) % 3 == 0);
    ck_assert_msg(kernels_checked & 4, "the portable kernel always runs");
}
END_TEST

START_TEST(trainer_shapes)
{
    /* The shapes of a 512-unit LSTM step and its window (a shard of 25
     * streams, 50 steps): column blocks, k blocks and the staged B^T. */
    check_shape(0, 1, 25, 2048, 512, 1, 1);
    check_shape(0, 0, 25, 512, 2048, 0, 0);
    check_shape(1, 0, 200, 520, 1250, 1, 0);
    check_shape(0, 1, 70, 65, 512, 0, 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("gemm");
    tcase_set_timeout(ADD_CASE(s, "gemm", every_kernel_is_the_definition, trainer_shapes), 120);
    return run_suite(s);
}

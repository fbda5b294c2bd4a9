/* The trainer's GEMM entry points (gemm.h): operand layouts and packing,
 * handed to the build of gemm_kernel.c that sampler_kernel.c selected. */
#include "gemm.h"

#include <string.h>

enum { PANEL = 16, STAGE_K = 128, STAGE_N = 64 };

size_t charrnn_gemm_pack_floats(int N, int K)
{
    return (size_t)(N + PANEL - 1) / PANEL * PANEL * (size_t)K;
}

/* op(B)'s columns [j0, j0 + n) and rows [k0, k0 + kc) as panels of kc x 16. */
static void pack_block(float *dst, int tb, const float *B, int ldb, int j0, int n, int k0, int kc)
{
    for (int j = 0; j < (n + PANEL - 1) / PANEL * PANEL; j++) {
        float *d = dst + (size_t)(j / PANEL) * PANEL * kc + j % PANEL;
        if (j >= n) {
            for (int k = 0; k < kc; k++)
                d[(size_t)k * PANEL] = 0.0f;
        } else if (tb) {
            const float *row = B + (size_t)(j0 + j) * ldb + k0;
            for (int k = 0; k < kc; k++)
                d[(size_t)k * PANEL] = row[k];
        } else {
            const float *col = B + (size_t)k0 * ldb + j0 + j;
            for (int k = 0; k < kc; k++)
                d[(size_t)k * PANEL] = col[(size_t)k * ldb];
        }
    }
}

void charrnn_gemm_pack(float *dst, int tb, const float *B, int ldb, int N, int K)
{
    pack_block(dst, tb, B, ldb, 0, N, 0, K);
}

/* K = 0: C = 0, or C unchanged. */
static int empty(int M, int N, int K, int acc, float *C, int ldc)
{
    if (M > 0 && N > 0 && K <= 0 && !acc)
        for (int i = 0; i < M; i++)
            memset(C + (size_t)i * ldc, 0, sizeof(float) * (size_t)N);
    return M <= 0 || N <= 0 || K <= 0;
}

static charrnn_gemm_op op_of(int ta, int M, int N, int K, const float *A, int lda, int acc,
                             float *C, int ldc)
{
    charrnn_gemm_op op = {M, N, K, A, ta ? 1 : lda, ta ? lda : 1, NULL, 0, 0, acc, C, ldc};
    return op;
}

void charrnn_gemm_packed(int ta, int M, int N, int K, const float *A, int lda, const float *Bp,
                         int acc, float *C, int ldc)
{
    if (empty(M, N, K, acc, C, ldc))
        return;
    charrnn_gemm_op op = op_of(ta, M, N, K, A, lda, acc, C, ldc);
    op.b = Bp, op.bs = PANEL, op.bp = (ptrdiff_t)PANEL * K;
    charrnn_gemm_kernel()(&op);
}

void charrnn_gemm(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B,
                  int ldb, int acc, float *C, int ldc)
{
    if (empty(M, N, K, acc, C, ldc))
        return;
    charrnn_gemm_fn *kernel = charrnn_gemm_kernel();
    charrnn_gemm_op op = op_of(ta, M, N, K, A, lda, acc, C, ldc);
    if (!tb) { /* B's rows are the kernel's vectors already */
        op.b = B, op.bs = ldb, op.bp = PANEL;
        kernel(&op);
        return;
    }
    /* B^T: transpose blocks of STAGE_K x STAGE_N into panels as we go; each k
     * block continues from the C the previous one stored (same chain). */
    float stage[STAGE_K * STAGE_N];
    for (int k0 = 0; k0 < K; k0 += STAGE_K) {
        const int kc = K - k0 < STAGE_K ? K - k0 : STAGE_K;
        for (int j0 = 0; j0 < N; j0 += STAGE_N) {
            const int n = N - j0 < STAGE_N ? N - j0 : STAGE_N;
            pack_block(stage, 1, B, ldb, j0, n, k0, kc);
            charrnn_gemm_op blk = op;
            blk.N = n, blk.K = kc, blk.acc = acc || k0 > 0;
            blk.a = A + (ta ? (size_t)k0 * lda : (size_t)k0);
            blk.b = stage, blk.bs = PANEL, blk.bp = (ptrdiff_t)PANEL * kc;
            blk.c = C + j0;
            kernel(&blk);
        }
    }
}

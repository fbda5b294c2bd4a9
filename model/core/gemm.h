/* The trainer's matrix products (private to libcharrnn), in place of a BLAS:
 *
 *   C (M x N, row stride ldc) = [C +] op(A) op(B),  op(A) M x K, op(B) K x N,
 *
 * with op(X) = X or X^T (ta, tb: 0 or 1, row-major as cblas_sgemm). alpha is
 * always 1; acc = 0 overwrites C (never reads it), acc = 1 adds to it.
 *
 * The bits are defined, not left to the build: every C[i][j] is the chain
 *   s = (acc ? C[i][j] : +0.0f);  for k = 0 .. K-1: s = fmaf(A[i][k], B[k][j], s)
 * in that order, each step one fused multiply-add rounded to f32. The kernels
 * vectorize across j (16 lanes AVX-512, 8 AVX2, 1 portable) and block over
 * rows, columns and k (a k block ends by storing s into C, exact in f32, and
 * the next continues from it), none of which changes an element's sequence:
 * every instruction set, blocking and thread layout gives the same bits.
 * The build is chosen with the inference kernel (sampler_kernel.c,
 * CHARRNN_KERNEL): the same names, the same variable. */
#ifndef CHARRNN_GEMM_H
#define CHARRNN_GEMM_H

#include <stddef.h>

/* B's columns live in panels of 16: B[k][j] = b[(j / 16) * bp + k * bs + j % 16].
 * A row-major (K x N, ldb) matrix is bs = ldb, bp = 16; a packed one
 * (charrnn_gemm_pack) is bs = 16, bp = 16 * K. A[i][k] = a[i * ars + k * acs]. */
typedef struct charrnn_gemm_op {
    int M, N, K;
    const float *a;
    ptrdiff_t ars, acs;
    const float *b;
    ptrdiff_t bs, bp;
    int acc;
    float *c;
    ptrdiff_t ldc;
} charrnn_gemm_op;

typedef void charrnn_gemm_fn(const charrnn_gemm_op *op);

/* One build per instruction set (gemm_kernel.c); which exist is meson's
 * choice (CHARRNN_RD_AVX512, CHARRNN_RD_AVX2, as for the row-dot kernel). */
charrnn_gemm_fn charrnn_gemm_portable;
#ifdef CHARRNN_RD_AVX2
charrnn_gemm_fn charrnn_gemm_avx2;
#endif
#ifdef CHARRNN_RD_AVX512
charrnn_gemm_fn charrnn_gemm_avx512;
#endif

/* The selected build (CHARRNN_KERNEL / charrnn_kernel_select / the best
 * this CPU runs). */
charrnn_gemm_fn *charrnn_gemm_kernel(void);

/* The general product (see above). NT (tb = 1) packs B in blocks on the
 * stack as it goes: for a B used by many calls with few rows each, pack it
 * once with charrnn_gemm_pack and call charrnn_gemm_packed. */
void charrnn_gemm(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B,
                  int ldb, int acc, float *C, int ldc);

/* Floats of a packed K x N operand: N rounded up to 16, times K. */
size_t charrnn_gemm_pack_floats(int N, int K);
/* Packs op(B) (K x N; tb as above, ldb its row stride) into dst, zero-padded
 * to whole panels. */
void charrnn_gemm_pack(float *dst, int tb, const float *B, int ldb, int N, int K);
/* charrnn_gemm with op(B) already packed: the same bits. */
void charrnn_gemm_packed(int ta, int M, int N, int K, const float *A, int lda, const float *Bp,
                         int acc, float *C, int ldc);

#endif

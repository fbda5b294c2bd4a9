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
#include <stdint.h>

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

/* bf16 products (charrnn-train --precision bf16; gemm_bf16.c): the same
 * C = [C +] op(A) op(B), with every operand first rounded to bf16 (nearest,
 * ties to even; a subnormal becomes zero) and each element's chain
 *   s = (acc ? C[i][j] : +0.0f);
 *   for p = 0 .. ceil(K/2)-1: s = vdpbf16ps(s, A[i][2p..2p+1], B[2p..2p+1][j])
 * (K padded with a zero to even). A product of two bf16 is exact in f32, so
 * an element's only rounding is that of its f32 additions; one vdpbf16ps
 * step is the CPU's (AVX512-BF16), fixed per CPU feature set, so the bits
 * are the same for any blocking and thread layout on one kind of CPU, but
 * need not match another vendor's implementation of the instruction. */

/* CHARRNN_OK when this build and CPU run the bf16 kernel and CHARRNN_KERNEL
 * (charrnn_kernel_name) selects the avx512 one; else CHARRNN_EINVAL saying
 * why. The functions below may be called only after it said yes. */
int charrnn_gemm_bf16_ready(char *err, size_t errlen);
/* 32-bit words of a packed K x N operand: N rounded up to 16, times K/2
 * rounded up (each word a pair of bf16). */
size_t charrnn_gemm_bf16_pack_words(int N, int K);
/* Rounds op(B) (K x N; tb: B^T given, ldb its row stride) to bf16 and packs
 * it, zero-padded, into dst: once per weight update, for many products. */
void charrnn_gemm_bf16_pack(uint32_t *dst, int tb, const float *B, int ldb, int N, int K);
/* C = [C +] A op(B), A M x K row-major (lda), op(B) packed in Bp. */
void charrnn_gemm_bf16_packed(int M, int N, int K, const float *A, int lda, const uint32_t *Bp,
                              int acc, float *C, int ldc);
/* C = [C +] op(A) B, B K x N row-major (ldb), both rounded as they go. */
void charrnn_gemm_bf16(int ta, int M, int N, int K, const float *A, int lda, const float *B,
                       int ldb, int acc, float *C, int ldc);

#endif

/* The trainer's bf16 products (gemm.h, "bf16"): operands rounded to bf16,
 * products summed in f32 by vdpbf16ps (AVX512-BF16). meson compiles this file
 * with the AVX-512 variant's flags plus -mavx512bf16 where the compiler has
 * it (CHARRNN_GEMM_BF16); elsewhere only charrnn_gemm_bf16_ready exists to
 * say why there is no kernel, and the rest is never called.
 *
 * Layouts (32-bit words, each a pair of bf16: the lower half is the even k):
 * B in panels of 16 columns, word (p, j) of a panel = (B[2p][j], B[2p+1][j]),
 * so one 512-bit load is a pair-row of 16 columns; A as pairs (A[i][2p],
 * A[i][2p+1]) broadcast to every lane. vdpbf16ps then adds both products of
 * a pair into each column's f32 sum: gemm.h's chain, whatever the blocking.
 *
 * Loops: k blocks of KC (even: a block boundary never splits a pair; it
 * stores the f32 sum in C, exactly, and the next block continues from it),
 * then column blocks of NC (B's block, KC x NC bf16 = 256 KB, stays in L2
 * for every row block; converted into a stage unless pre-packed), then row
 * blocks of MC (A converted into a stage, once per column block), then
 * column tiles outside row tiles, so a tile's B (KC x 64 bf16, 32 KB) is
 * reused from L1 by each row tile. The stages live on the stack (288 KB: the
 * trainer's threads have default stacks). NC was measured: see
 * docs/benchmarks.md, "Measurements behind constants in the code". */
#include "gemm.h"

#include "charrnn/sampler.h"
#include "charrnn/status.h"

#include <stdint.h>
#include <string.h>

#ifdef CHARRNN_GEMM_BF16
#include <immintrin.h>

enum { KC = 256, PC = KC / 2, MC = 64, NC = 512, PANEL = 16, MR = 6, NV = 4 };
_Static_assert(KC % 32 == 0 && MC % 16 == 0 && NC % (NV * PANEL) == 0, "whole vectors");

static inline __mmask16 lanes(int n)
{
    return n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1u);
}

/* n (<= 16) floats at p rounded to bf16 (nearest even), zero past n. */
static inline __m256i bf16_of(const float *p, int n)
{
    return (__m256i)_mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(lanes(n), p));
}

/* 16 pairs (r0[c], r1[c]) for c < n, zero past n; r1 NULL: (r0[c], 0). */
static inline void pairs16(uint32_t *dst, const float *r0, const float *r1, int n)
{
    __m512i lo = _mm512_cvtepu16_epi32(bf16_of(r0, n));
    __m512i hi =
        r1 ? _mm512_slli_epi32(_mm512_cvtepu16_epi32(bf16_of(r1, n)), 16) : _mm512_setzero_si512();
    _mm512_storeu_si512(dst, _mm512_or_si512(lo, hi));
}

size_t charrnn_gemm_bf16_pack_words(int N, int K)
{
    return (size_t)(N + PANEL - 1) / PANEL * PANEL * (size_t)((K + 1) / 2);
}

/* op(B)'s rows [k0, k0 + kc) and columns [j0, j0 + n) as pair panels (P =
 * pairs per panel); B[k][j] = b[k * ldb + j] (tb = 0) or b[j * ldb + k]. */
static void pack_b(uint32_t *dst, int tb, const float *b, int ldb, int K, int k0, int kc, int j0,
                   int n, int P)
{
    for (int q = 0; q * PANEL < n; q++) {
        uint32_t *pan = dst + (size_t)q * PANEL * P;
        const int jn = n - q * PANEL < PANEL ? n - q * PANEL : PANEL, j = j0 + q * PANEL;
        if (!tb) {
            for (int p = 0; p < P; p++) {
                const int k = k0 + 2 * p;
                pairs16(pan + (size_t)p * PANEL, b + (size_t)k * ldb + j,
                        k + 1 < k0 + kc && k + 1 < K ? b + (size_t)(k + 1) * ldb + j : NULL, jn);
            }
            continue;
        }
        /* B^T: each column of op(B) is a row of b; convert 16 of its k at a
         * time (8 pairs) and spread them down the panel. */
        memset(pan, 0, sizeof(uint32_t) * PANEL * (size_t)P);
        for (int jj = 0; jj < jn; jj++) {
            const float *row = b + (size_t)(j + jj) * ldb + k0;
            for (int k = 0; k < kc; k += 16) {
                uint32_t w[8];
                _mm256_storeu_si256((__m256i *)w, bf16_of(row + k, kc - k));
                for (int t = 0; t < 8 && k + 2 * t < kc; t++)
                    pan[(size_t)(k / 2 + t) * PANEL + jj] = w[t];
            }
        }
    }
}

void charrnn_gemm_bf16_pack(uint32_t *dst, int tb, const float *B, int ldb, int N, int K)
{
    pack_b(dst, tb, B, ldb, K, 0, K, 0, N, (K + 1) / 2);
}

/* One tile's operands: mr rows of A's pairs (word (i, p) at a[i * ars + p *
 * acs]), B's pair panels from b (bp words apart), C at c. */
typedef struct tile_args {
    const uint32_t *a, *b;
    ptrdiff_t ars, acs, bp, ldc;
    float *c;
    int P, acc, cols;
} tile_args;

static inline __attribute__((always_inline)) void tile(const tile_args *t, int mr, int nv)
{
    __m512 s[MR][NV];
    __mmask16 m[NV];
    for (int v = 0; v < nv; v++)
        m[v] = lanes(t->cols - v * PANEL);
    for (int i = 0; i < mr; i++)
        for (int v = 0; v < nv; v++)
            s[i][v] = t->acc ? _mm512_maskz_loadu_ps(m[v], t->c + i * t->ldc + v * PANEL)
                             : _mm512_setzero_ps();
    for (int p = 0; p < t->P; p++) {
        __m512bh bk[NV];
        for (int v = 0; v < nv; v++)
            bk[v] = (__m512bh)_mm512_loadu_si512(t->b + v * t->bp + (ptrdiff_t)p * PANEL);
        for (int i = 0; i < mr; i++) {
            const __m512bh ai = (__m512bh)_mm512_set1_epi32((int)t->a[i * t->ars + p * t->acs]);
            for (int v = 0; v < nv; v++)
                s[i][v] = _mm512_dpbf16_ps(s[i][v], ai, bk[v]);
        }
    }
    for (int i = 0; i < mr; i++)
        for (int v = 0; v < nv; v++)
            _mm512_mask_storeu_ps(t->c + i * t->ldc + v * PANEL, m[v], s[i][v]);
}

typedef void tile_fn(const tile_args *t);
#define TILE_FN(mr, nv)                                                                            \
    static void tile_##mr##_##nv(const tile_args *t)                                               \
    {                                                                                              \
        tile(t, mr, nv);                                                                           \
    }
#define TILE_MR(mr) TILE_FN(mr, 1) TILE_FN(mr, 2) TILE_FN(mr, 3) TILE_FN(mr, 4)
TILE_MR(1)
TILE_MR(2)
TILE_MR(3)
TILE_MR(4)
TILE_MR(5)
TILE_MR(6)
#define ENT_MR(mr)                                                                                 \
    {                                                                                              \
        tile_##mr##_1, tile_##mr##_2, tile_##mr##_3, tile_##mr##_4                                 \
    }
static tile_fn *const tiles[MR][NV] = {ENT_MR(1), ENT_MR(2), ENT_MR(3),
                                       ENT_MR(4), ENT_MR(5), ENT_MR(6)};

/* A's rows [i0, i0 + mc), k in [k0, k0 + kc) as pairs: ta = 0 (A[i][k] =
 * a[i * lda + k]) row by row, word (i, p) at i * PC + p; ta = 1 (A[i][k] =
 * a[k * lda + i]) pair-row by pair-row, word (i, p) at p * MC + i. */
static void pack_a(uint32_t *dst, int ta, const float *a, int lda, int K, int i0, int mc, int k0,
                   int kc)
{
    if (!ta) {
        for (int i = 0; i < mc; i++)
            for (int k = 0; k < kc; k += 16) /* an odd kc's pad is a zero */
                _mm256_storeu_si256((__m256i *)(dst + (size_t)i * PC + k / 2),
                                    bf16_of(a + (size_t)(i0 + i) * lda + k0 + k, kc - k));
        return;
    }
    for (int p = 0; p < (kc + 1) / 2; p++) {
        const int k = k0 + 2 * p;
        const float *r0 = a + (size_t)k * lda + i0;
        const float *r1 = k + 1 < K && k + 1 < k0 + kc ? r0 + lda : NULL;
        for (int i = 0; i < mc; i += 16)
            pairs16(dst + (size_t)p * MC + i, r0 + i, r1 ? r1 + i : NULL, mc - i);
    }
}

/* The product with B pre-packed (bpk: its words, P pairs per panel) or
 * converted here block by block (bpk NULL: B[k][j] = b[k * ldb + j]). */
static void drive(int ta, int M, int N, int K, const float *A, int lda, const uint32_t *bpk,
                  const float *b, int ldb, int acc, float *C, int ldc)
{
    uint32_t astage[MC * PC];
    uint32_t bstage[NC * PC];
    const int Pall = (K + 1) / 2;
    for (int k0 = 0; k0 < K; k0 += KC) {
        const int kc = K - k0 < KC ? K - k0 : KC, P = (kc + 1) / 2;
        tile_args t = {0};
        t.P = P, t.acc = acc || k0 > 0, t.ldc = ldc;
        t.ars = ta ? 1 : PC, t.acs = ta ? MC : 1;
        for (int j1 = 0; j1 < N; j1 += NC) {
            const int nc = N - j1 < NC ? N - j1 : NC;
            const uint32_t *bb;
            ptrdiff_t bp;
            if (bpk) {
                bb = bpk + (size_t)(j1 / PANEL) * PANEL * Pall + (size_t)(k0 / 2) * PANEL;
                bp = (ptrdiff_t)PANEL * Pall;
            } else {
                pack_b(bstage, 0, b, ldb, K, k0, kc, j1, nc, P);
                bb = bstage, bp = (ptrdiff_t)PANEL * P;
            }
            t.bp = bp;
            for (int i0 = 0; i0 < M; i0 += MC) {
                const int mc = M - i0 < MC ? M - i0 : MC;
                pack_a(astage, ta, A, lda, K, i0, mc, k0, kc);
                for (int j0 = 0; j0 < nc; j0 += NV * PANEL) {
                    t.cols = nc - j0 < NV * PANEL ? nc - j0 : NV * PANEL;
                    t.b = bb + (ptrdiff_t)(j0 / PANEL) * bp;
                    const int nv = (t.cols + PANEL - 1) / PANEL;
                    for (int i = 0; i < mc; i += MR) {
                        const int mr = mc - i < MR ? mc - i : MR;
                        t.a = astage + i * t.ars;
                        t.c = C + (ptrdiff_t)(i0 + i) * ldc + j1 + j0;
                        tiles[mr - 1][nv - 1](&t);
                    }
                }
            }
        }
    }
}

/* K = 0: C = 0, or C unchanged (as charrnn_gemm). */
static int empty(int M, int N, int K, int acc, float *C, int ldc)
{
    if (M > 0 && N > 0 && K <= 0 && !acc)
        for (int i = 0; i < M; i++)
            memset(C + (size_t)i * ldc, 0, sizeof(float) * (size_t)N);
    return M <= 0 || N <= 0 || K <= 0;
}

void charrnn_gemm_bf16_packed(int M, int N, int K, const float *A, int lda, const uint32_t *Bp,
                              int acc, float *C, int ldc)
{
    if (!empty(M, N, K, acc, C, ldc))
        drive(0, M, N, K, A, lda, Bp, NULL, 0, acc, C, ldc);
}

void charrnn_gemm_bf16(int ta, int M, int N, int K, const float *A, int lda, const float *B,
                       int ldb, int acc, float *C, int ldc)
{
    if (!empty(M, N, K, acc, C, ldc))
        drive(ta, M, N, K, A, lda, NULL, B, ldb, acc, C, ldc);
}
#endif

int charrnn_gemm_bf16_ready(char *err, size_t errlen)
{
#ifndef CHARRNN_GEMM_BF16
    return charrnn_fail(err, errlen, CHARRNN_EINVAL,
                        "bf16 training needs the AVX-512 BF16 kernel, which this build lacks "
                        "(not x86-64, or the compiler has no -mavx512bf16)");
#else
    if (!__builtin_cpu_supports("avx512bf16"))
        return charrnn_fail(err, errlen, CHARRNN_EINVAL,
                            "bf16 training needs a CPU with AVX512-BF16 (avx512_bf16 in "
                            "/proc/cpuinfo), which this one lacks; train in f32");
    if (strcmp(charrnn_kernel_name(), "avx512") != 0)
        return charrnn_fail(err, errlen, CHARRNN_EINVAL,
                            "bf16 training runs only with the avx512 kernel, and CHARRNN_KERNEL "
                            "selects '%s' (unset it, or train in f32)",
                            charrnn_kernel_name());
    return CHARRNN_OK;
#endif
}

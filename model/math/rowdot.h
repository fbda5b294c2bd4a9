/* Batch-invariant matrix-vector products for the inference step:
 * y[s][r] = b[r] + W[r,:] . x[s] for a block of rows and a group of streams.
 *
 * Every (row, stream) dot product is the same sequence of operations whatever
 * the blocking: lane k (0..15) accumulates w[i]*x[i] for i = k mod 16 in
 * order with fused multiply-adds (missing tail elements count as 0*0), then
 * the 16 lanes are summed by a fixed tree (k + 8, k + 4, k + 2, k + 1), then
 * the bias is added. Blocking several rows and several streams per pass over
 * the inputs only adds independent accumulators (instruction-level
 * parallelism, each weight vector loaded once for up to 4 streams); it never
 * changes a result bit, so a stream's text does not depend on its company.
 * Private to libcharrnn: compiled once per instruction set by rowdot.c,
 * chosen at run time by sampler_kernel.c. */
#ifndef CHARRNN_ROWDOT_H
#define CHARRNN_ROWDOT_H

#include <math.h>
#include <stddef.h>

/* RD_ISA picks the code path (meson sets it per variant of rowdot.c):
 * 512 = AVX-512 intrinsics, 256 = AVX2 + FMA intrinsics, 0 = plain C. */
#ifndef RD_ISA
#define RD_ISA 0
#endif

#if RD_ISA == 512
#include <immintrin.h>

/* The fixed tree over 16 lanes: (k, k+8), (k, k+4), (k, k+2), (0, 1). */
static inline float rd_hsum16(__m512 a)
{
    __m256 lo = _mm512_castps512_ps256(a);
    __m256 hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a), 1));
    __m256 s8 = _mm256_add_ps(lo, hi);
    __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
    __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
    __m128 s1 = _mm_add_ss(s2, _mm_movehdup_ps(s2));
    return _mm_cvtss_f32(s1);
}

/* The same tree for 4 accumulators at once (rows r..r+3 of one stream),
 * transposed: every lane meets the same partner in the same order as in
 * rd_hsum16, so the 4 sums are bit-identical to 4 calls of it. */
static inline __m128 rd_hsum4x16(__m512 a0, __m512 a1, __m512 a2, __m512 a3)
{
    __m512 t01 = _mm512_add_ps(_mm512_shuffle_f32x4(a0, a1, _MM_SHUFFLE(1, 0, 1, 0)),
                               _mm512_shuffle_f32x4(a0, a1, _MM_SHUFFLE(3, 2, 3, 2)));
    __m512 t23 = _mm512_add_ps(_mm512_shuffle_f32x4(a2, a3, _MM_SHUFFLE(1, 0, 1, 0)),
                               _mm512_shuffle_f32x4(a2, a3, _MM_SHUFFLE(3, 2, 3, 2)));
    __m512 u = _mm512_add_ps(_mm512_shuffle_f32x4(t01, t23, _MM_SHUFFLE(2, 0, 2, 0)),
                             _mm512_shuffle_f32x4(t01, t23, _MM_SHUFFLE(3, 1, 3, 1)));
    u = _mm512_add_ps(u, _mm512_permute_ps(u, 0x4E)); /* (k, k+2) */
    u = _mm512_add_ps(u, _mm512_permute_ps(u, 0xB1)); /* (0, 1) */
    const __m512i pick = _mm512_set_epi32(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 12, 8, 4, 0);
    return _mm512_castps512_ps128(_mm512_permutexvar_ps(pick, u));
}

/* RB rows from row r0 times SB streams; RB and SB are compile-time constants
 * after inlining, so the accumulators live in registers (RB*SB <= 16).
 * Meanwhile npf cache lines from pf are prefetched, q per step (rd_rows
 * spreads the next row block over the calls of the current one). */
static inline __attribute__((always_inline)) void rd_block(const float *w, const float *b, int D,
                                                           int r0, int RB, const float *const *x,
                                                           float *const *y, int SB, const char *pf,
                                                           int npf, int q)
{
    __m512 acc[8][4];
    for (int r = 0; r < RB; r++)
        for (int s = 0; s < SB; s++)
            acc[r][s] = _mm512_setzero_ps();
    const float *wr = w + (size_t)r0 * D;
    int i = 0;
    for (int t = 0; i + 16 <= D; i += 16, t++) {
        for (int u = t * q; u < t * q + q && u < npf; u++)
            _mm_prefetch(pf + (size_t)u * 64, _MM_HINT_T0);
        __m512 xv[4];
        /* Every input and weight vector loaded into a register once (GCC
         * would otherwise fold one of them into every FMA: 20 loads per 16
         * FMAs instead of 8, load-bound). */
        for (int s = 0; s < SB; s++) {
            xv[s] = _mm512_loadu_ps(x[s] + i);
            __asm__("" : "+v"(xv[s]));
        }
        for (int r = 0; r < RB; r++) {
            __m512 wv = _mm512_loadu_ps(wr + (size_t)r * D + i);
            __asm__("" : "+v"(wv));
            for (int s = 0; s < SB; s++)
                acc[r][s] = _mm512_fmadd_ps(wv, xv[s], acc[r][s]);
        }
    }
    if (i < D) {
        __mmask16 k = (__mmask16)((1u << (D - i)) - 1u);
        __m512 xv[4];
        for (int s = 0; s < SB; s++)
            xv[s] = _mm512_maskz_loadu_ps(k, x[s] + i);
        for (int r = 0; r < RB; r++) {
            __m512 wv = _mm512_maskz_loadu_ps(k, wr + (size_t)r * D + i);
            for (int s = 0; s < SB; s++)
                acc[r][s] = _mm512_fmadd_ps(wv, xv[s], acc[r][s]);
        }
    }
    if (RB % 4 == 0) {
        for (int r = 0; r < RB; r += 4)
            for (int s = 0; s < SB; s++)
                _mm_storeu_ps(y[s] + r0 + r,
                              _mm_add_ps(_mm_loadu_ps(b + r0 + r),
                                         rd_hsum4x16(acc[r][s], acc[r + 1][s], acc[r + 2][s],
                                                     acc[r + 3][s])));
        return;
    }
    for (int r = 0; r < RB; r++)
        for (int s = 0; s < SB; s++)
            y[s][r0 + r] = b[r0 + r] + rd_hsum16(acc[r][s]);
}

#elif RD_ISA == 256
#include <immintrin.h>

/* The fixed tree of rd_hsum16 over lanes 0..7 (lo) and 8..15 (hi). */
static inline float rd_hsum8x2(__m256 lo, __m256 hi)
{
    __m256 s8 = _mm256_add_ps(lo, hi);
    __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
    __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
    __m128 s1 = _mm_add_ss(s2, _mm_movehdup_ps(s2));
    return _mm_cvtss_f32(s1);
}

/* The AVX-512 block with 8-lane registers: each lane's chain of FMAs is
 * independent of the others, so lanes 0..7 run over the whole row first and
 * lanes 8..15 second. With 16 registers, blocks of more than 8 (row, stream)
 * pairs also go in two halves of their rows, so the accumulators, inputs and
 * a weight vector fit without spilling. */
static inline __attribute__((always_inline)) void rd_block(const float *w, const float *b, int D,
                                                           int r0, int RB, const float *const *x,
                                                           float *const *y, int SB, const char *pf,
                                                           int npf, int q)
{
    const int RC = RB * SB > 8 ? (RB + 1) / 2 : RB; /* rows per pass */
    const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    for (int rc = 0; rc < RB; rc += RC) {
        const int nr = RB - rc < RC ? RB - rc : RC;
        const float *wr = w + (size_t)(r0 + rc) * D;
        __m256 lanes[2][8][4];
        for (int h = 0; h < 2; h++) {
            __m256 acc[8][4];
            for (int r = 0; r < nr; r++)
                for (int s = 0; s < SB; s++)
                    acc[r][s] = _mm256_setzero_ps();
            int i = 0;
            for (int t = 0; i + 16 <= D; i += 16, t++) {
                for (int u = t * q; rc == 0 && h == 0 && u < t * q + q && u < npf; u++)
                    _mm_prefetch(pf + (size_t)u * 64, _MM_HINT_T0);
                __m256 xv[4];
                for (int s = 0; s < SB; s++)
                    xv[s] = _mm256_loadu_ps(x[s] + i + 8 * h);
                for (int r = 0; r < nr; r++) {
                    __m256 wv = _mm256_loadu_ps(wr + (size_t)r * D + i + 8 * h);
                    for (int s = 0; s < SB; s++)
                        acc[r][s] = _mm256_fmadd_ps(wv, xv[s], acc[r][s]);
                }
            }
            if (i < D) { /* lanes past D load 0 and add 0*0, as the AVX-512 path */
                int n = D - i - 8 * h;
                const __m256i k = _mm256_cmpgt_epi32(_mm256_set1_epi32(n < 0 ? 0 : n), idx);
                const int off = n > 0 ? i + 8 * h : 0; /* nothing is read when n <= 0 */
                __m256 xv[4];
                for (int s = 0; s < SB; s++)
                    xv[s] = _mm256_maskload_ps(x[s] + off, k);
                for (int r = 0; r < nr; r++) {
                    __m256 wv = _mm256_maskload_ps(wr + (size_t)r * D + off, k);
                    for (int s = 0; s < SB; s++)
                        acc[r][s] = _mm256_fmadd_ps(wv, xv[s], acc[r][s]);
                }
            }
            for (int r = 0; r < nr; r++)
                for (int s = 0; s < SB; s++)
                    lanes[h][r][s] = acc[r][s];
        }
        for (int r = 0; r < nr; r++)
            for (int s = 0; s < SB; s++)
                y[s][r0 + rc + r] = b[r0 + rc + r] + rd_hsum8x2(lanes[0][r][s], lanes[1][r][s]);
    }
}

#else /* portable: the same lanes and tree in plain C (fmaf: fused, like the AVX-512 path) */

static inline __attribute__((always_inline)) void rd_block(const float *w, const float *b, int D,
                                                           int r0, int RB, const float *const *x,
                                                           float *const *y, int SB, const char *pf,
                                                           int npf, int q)
{
    (void)pf, (void)npf, (void)q;
    for (int r = 0; r < RB; r++) {
        const float *wr = w + (size_t)(r0 + r) * D;
        for (int s = 0; s < SB; s++) {
            float acc[16] = {0};
            int i = 0;
            for (; i + 16 <= D; i += 16)
                for (int k = 0; k < 16; k++)
                    acc[k] = fmaf(wr[i + k], x[s][i + k], acc[k]);
            for (int k = 0; i < D && k < 16; k++) /* lanes past D add 0*0 */
                acc[k] =
                    i + k < D ? fmaf(wr[i + k], x[s][i + k], acc[k]) : fmaf(0.0f, 0.0f, acc[k]);
            for (int h = 8; h >= 1; h /= 2)
                for (int k = 0; k < h; k++)
                    acc[k] += acc[k + h];
            y[s][r0 + r] = b[r0 + r] + acc[0];
        }
    }
}

#endif

#define RD_KERNEL(RB, SB)                                                                          \
    static void rd_##RB##x##SB(const float *w, const float *b, int D, int r0,                      \
                               const float *const *x, float *const *y, const char *pf, int npf,    \
                               int q)                                                              \
    {                                                                                              \
        rd_block(w, b, D, r0, RB, x, y, SB, pf, npf, q);                                           \
    }
RD_KERNEL(8, 1)
RD_KERNEL(8, 2)
RD_KERNEL(4, 3)
RD_KERNEL(4, 4)
RD_KERNEL(1, 1)
RD_KERNEL(1, 2)
RD_KERNEL(1, 3)
RD_KERNEL(1, 4)
#undef RD_KERNEL

/* The next slice of a prefetch range: its start (NULL when empty) and, in
 * *k, its length in cache lines. */
static inline const char *rd_slice(const char *pf, int lines, int slice, int *pos, int *k)
{
    *k = *pos < lines ? (lines - *pos < slice ? lines - *pos : slice) : 0;
    const char *p = *k ? pf + (size_t)*pos * 64 : NULL;
    *pos += slice;
    return p;
}

/* y[s][r] = b[r] + W[r,:] . x[s] for r < R, s < n; W is (R, D) row-major.
 * Rows go in blocks of 8 (each block read from memory once and reused from L1
 * by every group of up to 4 streams). While a block is computed, the next
 * one is prefetched, spread evenly over the block's kernel calls: the first
 * pass over a block then finds it in cache instead of waiting for memory
 * (3x512, 16 streams: +22%). */
static inline void rd_rows(const float *w, const float *b, int R, int D, size_t n,
                           const float *const *x, float *const *y)
{
    const int steps = D / 16 > 0 ? D / 16 : 1;
    /* Only for a batch over a matrix that does not stay in L2: measured a
     * loss for one stream (memory-bound either way) and for a 2x128 model. */
    const int big = n >= 3 && (size_t)R * (size_t)D * sizeof(float) >= ((size_t)1 << 20);
    for (int r0 = 0; r0 < R; r0 += 8) {
        int rb = R - r0 < 8 ? R - r0 : 8;
        const char *pf = NULL;
        int lines = 0, calls = 0, pos = 0;
        if (big && rb == 8 && r0 + 8 < R) {
            int nb = R - r0 - 8 < 8 ? R - r0 - 8 : 8;
            pf = (const char *)(w + (size_t)(r0 + 8) * D);
            lines = (int)(((size_t)nb * D * sizeof(float) + 63) / 64);
            for (size_t s0 = 0; s0 < n; s0 += 4)
                calls += n - s0 >= 3 ? 2 : 1;
        }
        const int slice = calls ? (lines + calls - 1) / calls : 0;
        const int q = (slice + steps - 1) / steps;
        for (size_t s0 = 0; s0 < n; s0 += 4) {
            size_t sb = n - s0 < 4 ? n - s0 : 4;
            const float *const *xs = x + s0;
            float *const *ys = y + s0;
            if (rb == 8) {
                int k;
                const char *p;
                switch (sb) {
                case 1:
                    p = rd_slice(pf, lines, slice, &pos, &k);
                    rd_8x1(w, b, D, r0, xs, ys, p, k, q);
                    break;
                case 2:
                    p = rd_slice(pf, lines, slice, &pos, &k);
                    rd_8x2(w, b, D, r0, xs, ys, p, k, q);
                    break;
                case 3:
                    p = rd_slice(pf, lines, slice, &pos, &k);
                    rd_4x3(w, b, D, r0, xs, ys, p, k, q);
                    p = rd_slice(pf, lines, slice, &pos, &k);
                    rd_4x3(w, b, D, r0 + 4, xs, ys, p, k, q);
                    break;
                default:
                    p = rd_slice(pf, lines, slice, &pos, &k);
                    rd_4x4(w, b, D, r0, xs, ys, p, k, q);
                    p = rd_slice(pf, lines, slice, &pos, &k);
                    rd_4x4(w, b, D, r0 + 4, xs, ys, p, k, q);
                    break;
                }
                continue;
            }
            for (int r = r0; r < r0 + rb; r++) {
                switch (sb) {
                case 1: rd_1x1(w, b, D, r, xs, ys, NULL, 0, 0); break;
                case 2: rd_1x2(w, b, D, r, xs, ys, NULL, 0, 0); break;
                case 3: rd_1x3(w, b, D, r, xs, ys, NULL, 0, 0); break;
                default: rd_1x4(w, b, D, r, xs, ys, NULL, 0, 0); break;
                }
            }
        }
    }
}

#endif

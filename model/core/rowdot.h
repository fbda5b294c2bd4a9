/* Batch-invariant matrix-vector products for the inference step:
 * y[s][r] = b[r] + W[r,:] . x[s] for a block of rows and a group of streams.
 *
 * W is stored as f32, bf16 or int8 (RD_F32, RD_BF16, RD_I8: the values of
 * charrnn_dtype).
 *
 * f32 and bf16: a bf16 weight is first widened to f32, which is exact, and
 * then takes the f32 path unchanged. Every (row, stream) dot product is the
 * same sequence of operations whatever the blocking: lane k (0..15)
 * accumulates w[i]*x[i] for i = k mod 16 in order with fused multiply-adds
 * (missing tail elements count as 0*0), then the 16 lanes are summed by a
 * fixed tree (k + 8, k + 4, k + 2, k + 1), then the bias is added.
 *
 * int8: each stream's input is quantized to int8 with one scale
 * (rowdot_quant.h) and the row is multiplied as integers: the sum of
 * w[i]*q[i] is exact in 32 bits (|w|, |q| <= 127, D <= 8192), so the order,
 * the instruction set and the blocking cannot change it; then
 * y = b + sc[r] * (xs * sum). AVX-512 VNNI multiplies 64 byte pairs per
 * instruction, four times the f32 multiply-adds: int8 is the dtype for
 * arithmetic-bound batches, not only for memory-bound single streams.
 *
 * Blocking several rows and several streams per pass over the inputs only
 * adds independent accumulators (instruction-level parallelism, each weight
 * vector loaded once for up to 4 streams); it never changes a result bit, so
 * a stream's text does not depend on its company.
 * Private to libcharrnn: compiled once per instruction set by rowdot.c,
 * chosen at run time by sampler_kernel.c. */
#ifndef CHARRNN_ROWDOT_H
#define CHARRNN_ROWDOT_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "rowdot_quant.h"

enum { RD_F32 = 0, RD_BF16 = 1, RD_I8 = 2 };

static inline int rd_isf32(int dt)
{
    return dt == RD_F32;
}

/* Bytes per weight. */
static inline size_t rd_esz(int dt)
{
    return rd_isf32(dt) ? 4 : dt == RD_BF16 ? 2 : 1;
}

/* RD_ISA picks the code path (meson sets it per variant of rowdot.c):
 * 512 = AVX-512 intrinsics, 256 = AVX2 + FMA intrinsics, 0 = plain C. */
#ifndef RD_ISA
#define RD_ISA 0
#endif

#if RD_ISA == 512
#include <immintrin.h>

/* 16 weights at p widened exactly to f32 (bf16: the bits shifted into the
 * upper half). */
static inline __m512 rd_wload(const char *p, int dt)
{
    if (rd_isf32(dt))
        return _mm512_loadu_ps((const float *)p);
    return _mm512_castsi512_ps(
        _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)p)), 16));
}

/* The first n (1..15) weights at p, the other lanes 0. */
static inline __m512 rd_wload_tail(const char *p, int n, int dt)
{
    if (rd_isf32(dt))
        return _mm512_maskz_loadu_ps((__mmask16)((1u << n) - 1u), p);
    return _mm512_castsi512_ps(_mm512_slli_epi32(
        _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16((__mmask16)((1u << n) - 1u), p)), 16));
}

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
static inline __attribute__((always_inline)) void rd_block(const void *w, const float *b, int D,
                                                           int r0, int RB, const float *const *x,
                                                           float *const *y, int SB, const char *pf,
                                                           int npf, int q, int dt)
{
    __m512 acc[8][4];
    for (int r = 0; r < RB; r++)
        for (int s = 0; s < SB; s++)
            acc[r][s] = _mm512_setzero_ps();
    const size_t esz = rd_esz(dt);
    const char *wr = w; /* row r0 */
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
            __m512 wv = rd_wload(wr + ((size_t)r * D + i) * esz, dt);
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
            __m512 wv = rd_wload_tail(wr + ((size_t)r * D + i) * esz, D - i, dt);
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
        for (int s = 0; s < SB; s++) {
            y[s][r0 + r] = b[r0 + r] + rd_hsum16(acc[r][s]);
        }
}

#elif RD_ISA == 256
#include <immintrin.h>

/* 8 weights at p widened exactly to f32 (as rd_wload of the AVX-512 path). */
static inline __m256 rd_wload8(const char *p, int dt)
{
    if (rd_isf32(dt))
        return _mm256_loadu_ps((const float *)p);
    return _mm256_castsi256_ps(
        _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p)), 16));
}

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
static inline __attribute__((always_inline)) void rd_block(const void *w, const float *b, int D,
                                                           int r0, int RB, const float *const *x,
                                                           float *const *y, int SB, const char *pf,
                                                           int npf, int q, int dt)
{
    const int RC = RB * SB > 8 ? (RB + 1) / 2 : RB; /* rows per pass */
    const size_t esz = rd_esz(dt);
    const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    for (int rc = 0; rc < RB; rc += RC) {
        const int nr = RB - rc < RC ? RB - rc : RC;
        const char *wr = (const char *)w + (size_t)rc * D * esz; /* w: row r0 */
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
                    __m256 wv = rd_wload8(wr + ((size_t)r * D + i + 8 * h) * esz, dt);
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
                    __m256 wv;
                    if (rd_isf32(dt)) {
                        wv = _mm256_maskload_ps((const float *)(wr + ((size_t)r * D + off) * esz),
                                                k);
                    } else { /* no 16-bit masked load: a zeroed copy */
                        char buf[16] = {0};
                        if (n > 0)
                            memcpy(buf, wr + ((size_t)r * D + off) * esz,
                                   (size_t)(n < 8 ? n : 8) * esz);
                        wv = rd_wload8(buf, dt);
                    }
                    for (int s = 0; s < SB; s++)
                        acc[r][s] = _mm256_fmadd_ps(wv, xv[s], acc[r][s]);
                }
            }
            for (int r = 0; r < nr; r++)
                for (int s = 0; s < SB; s++)
                    lanes[h][r][s] = acc[r][s];
        }
        for (int r = 0; r < nr; r++)
            for (int s = 0; s < SB; s++) {
                y[s][r0 + rc + r] = b[r0 + rc + r] + rd_hsum8x2(lanes[0][r][s], lanes[1][r][s]);
            }
    }
}

#else /* portable: the same lanes and tree in plain C (fmaf: fused, like the AVX-512 path) */

/* Weight i of a row widened exactly to f32. */
static inline float rd_w(const char *row, size_t i, int dt)
{
    if (rd_isf32(dt))
        return ((const float *)row)[i];
    uint32_t u = (uint32_t)((const uint16_t *)row)[i] << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline __attribute__((always_inline)) void rd_block(const void *w, const float *b, int D,
                                                           int r0, int RB, const float *const *x,
                                                           float *const *y, int SB, const char *pf,
                                                           int npf, int q, int dt)
{
    (void)pf, (void)npf, (void)q;
    for (int r = 0; r < RB; r++) {
        const char *wr = (const char *)w + (size_t)r * D * rd_esz(dt); /* w: row r0 */
        for (int s = 0; s < SB; s++) {
            float acc[16] = {0};
            int i = 0;
            for (; i + 16 <= D; i += 16)
                for (int k = 0; k < 16; k++)
                    acc[k] = fmaf(rd_w(wr, (size_t)(i + k), dt), x[s][i + k], acc[k]);
            for (int k = 0; i < D && k < 16; k++) /* lanes past D add 0*0 */
                acc[k] = i + k < D ? fmaf(rd_w(wr, (size_t)(i + k), dt), x[s][i + k], acc[k])
                                   : fmaf(0.0f, 0.0f, acc[k]);
            for (int h = 8; h >= 1; h /= 2)
                for (int k = 0; k < h; k++)
                    acc[k] += acc[k + h];
            y[s][r0 + r] = b[r0 + r] + acc[0];
        }
    }
}

#endif

/* One specialised function per (rows, streams, dtype), and a switch on the
 * dtype: the dtype is a compile-time constant inside every loop. */
#define RD_KERNEL_DT(RB, SB, DT)                                                                   \
    static void rd_##RB##x##SB##_##DT(const void *w, const float *b, int D, int r0,                \
                                      const float *const *x, float *const *y, const char *pf,      \
                                      int npf, int q)                                              \
    {                                                                                              \
        rd_block(w, b, D, r0, RB, x, y, SB, pf, npf, q, DT);                                       \
    }
#define RD_KERNEL(RB, SB)                                                                          \
    RD_KERNEL_DT(RB, SB, 0)                                                                        \
    RD_KERNEL_DT(RB, SB, 1)                                                                        \
    static inline void rd_##RB##x##SB(const void *w, const float *b, int D, int r0,                \
                                      const float *const *x, float *const *y, const char *pf,      \
                                      int npf, int q, int dt)                                      \
    {                                                                                              \
        if (dt == RD_F32)                                                                          \
            rd_##RB##x##SB##_0(w, b, D, r0, x, y, pf, npf, q);                                     \
        else                                                                                       \
            rd_##RB##x##SB##_1(w, b, D, r0, x, y, pf, npf, q);                                     \
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
#undef RD_KERNEL_DT

/* Widens n bf16 weights exactly to f32 (the vectorizer takes it). */
static inline void rd_widen(float *restrict t, const void *restrict w, size_t n)
{
    const uint16_t *u = w;
    for (size_t i = 0; i < n; i++) {
        uint32_t b = (uint32_t)u[i] << 16;
        memcpy(&t[i], &b, sizeof b); /* the bits, without aliasing t */
    }
}

/* Widest rows a bf16 block is widened into an f32 tile for (8 rows, 32 KB:
 * stays in L1 while every group of streams passes over it). */
#define RD_TILE_MAX_D 1024

/* The next slice of a prefetch range: its start (NULL when empty) and, in
 * *k, its length in cache lines. */
static inline const char *rd_slice(const char *pf, int lines, int slice, int *pos, int *k)
{
    *k = *pos < lines ? (lines - *pos < slice ? lines - *pos : slice) : 0;
    const char *p = *k ? pf + (size_t)*pos * 64 : NULL;
    *pos += slice;
    return p;
}

/* y[s][r] = b[r] + W[r,:] . x[s] for r < R, s < n; W is (R, D) row-major in
 * f32 or bf16. Rows go in blocks of 8 (each block read from memory once and
 * reused from L1 by every group of up to 4 streams). While a block is
 * computed, the next one is prefetched, spread evenly over the block's kernel
 * calls: the first pass over a block then finds it in cache instead of
 * waiting for memory (a 3x512 batch gains; docs/benchmarks.md, "Measurements
 * behind constants in the code").
 * A bf16 block for more than 4 streams is first widened into an f32 tile:
 * widening in registers would repeat for every group of 4 streams and costs
 * as much as the multiply-adds; the tile holds the same values, summed in the
 * same order, so the bits are the same either way. */
static inline void rd_rows_float(int dt, const void *w, const float *b, int R, int D, size_t n,
                                 const float *const *x, float *const *y)
{
    const int steps = D / 16 > 0 ? D / 16 : 1;
    const size_t esz = rd_esz(dt);
    /* Only for a matrix that does not stay in L2 (a loss for a 2x128 model).
     * For one stream it helps bf16 (its widening leaves the loads fewer
     * chances to overlap) and leaves f32 the same (bandwidth-bound); the
     * figures: docs/benchmarks.md, "Measurements behind constants in the
     * code". */
    const int big = (size_t)R * (size_t)D * esz >= ((size_t)1 << 20);
    const int tiled = dt == RD_BF16 && n > 4 && D <= RD_TILE_MAX_D;
    /* A VLA of 1 unless tiled: a fixed 32 KB frame costs every call its
     * stack probes, and under ASan the unpoisoning of its shadow. */
    float tile[tiled ? 8 * D : 1] __attribute__((aligned(64)));
    for (int r0 = 0; r0 < R; r0 += 8) {
        int rb = R - r0 < 8 ? R - r0 : 8;
        const char *wb = (const char *)w + (size_t)r0 * D * esz; /* row r0 */
        int kdt = dt;
        if (tiled && rb == 8) {
            rd_widen(tile, wb, (size_t)8 * D);
            wb = (const char *)tile;
            kdt = RD_F32;
        }
        const char *pf = NULL;
        int lines = 0, calls = 0, pos = 0;
        if (big && rb == 8 && r0 + 8 < R) {
            int nb = R - r0 - 8 < 8 ? R - r0 - 8 : 8;
            pf = (const char *)w + (size_t)(r0 + 8) * D * esz;
            lines = (int)(((size_t)nb * D * esz + 63) / 64);
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
                    rd_8x1(wb, b, D, r0, xs, ys, p, k, q, kdt);
                    break;
                case 2:
                    p = rd_slice(pf, lines, slice, &pos, &k);
                    rd_8x2(wb, b, D, r0, xs, ys, p, k, q, kdt);
                    break;
                case 3:
                    p = rd_slice(pf, lines, slice, &pos, &k);
                    rd_4x3(wb, b, D, r0, xs, ys, p, k, q, kdt);
                    p = rd_slice(pf, lines, slice, &pos, &k);
                    rd_4x3(wb + (size_t)4 * D * rd_esz(kdt), b, D, r0 + 4, xs, ys, p, k, q, kdt);
                    break;
                default:
                    p = rd_slice(pf, lines, slice, &pos, &k);
                    rd_4x4(wb, b, D, r0, xs, ys, p, k, q, kdt);
                    p = rd_slice(pf, lines, slice, &pos, &k);
                    rd_4x4(wb + (size_t)4 * D * rd_esz(kdt), b, D, r0 + 4, xs, ys, p, k, q, kdt);
                    break;
                }
                continue;
            }
            for (int r = r0; r < r0 + rb; r++) {
                const char *wr = (const char *)w + (size_t)r * D * esz; /* not tiled */
                switch (sb) {
                case 1: rd_1x1(wr, b, D, r, xs, ys, NULL, 0, 0, dt); break;
                case 2: rd_1x2(wr, b, D, r, xs, ys, NULL, 0, 0, dt); break;
                case 3: rd_1x3(wr, b, D, r, xs, ys, NULL, 0, 0, dt); break;
                default: rd_1x4(wr, b, D, r, xs, ys, NULL, 0, 0, dt); break;
                }
            }
        }
    }
}

/* ---- int8: exact integer sums ----
 * rd_i8_block: out[s * 8 + r] = sum_i w[r][i] * q[s][i] for RB rows from w
 * (row stride D) and SB quantized streams (padded to rd_qstride(D) with
 * zeros). Exact, so the three builds below agree bit for bit by construction. */
#if RD_ISA == 512 && defined(__AVX512VNNI__) && defined(__AVX512BW__)

/* The sums of 4 accumulators (16 lanes each) as 4 lanes: a transposed tree
 * (integer addition is exact, so the order is free; this one is short). */
static inline __m128i rd_i8_hsum4(__m512i a0, __m512i a1, __m512i a2, __m512i a3)
{
    __m512i t01 = _mm512_add_epi32(_mm512_shuffle_i32x4(a0, a1, _MM_SHUFFLE(1, 0, 1, 0)),
                                   _mm512_shuffle_i32x4(a0, a1, _MM_SHUFFLE(3, 2, 3, 2)));
    __m512i t23 = _mm512_add_epi32(_mm512_shuffle_i32x4(a2, a3, _MM_SHUFFLE(1, 0, 1, 0)),
                                   _mm512_shuffle_i32x4(a2, a3, _MM_SHUFFLE(3, 2, 3, 2)));
    __m512i u = _mm512_add_epi32(_mm512_shuffle_i32x4(t01, t23, _MM_SHUFFLE(2, 0, 2, 0)),
                                 _mm512_shuffle_i32x4(t01, t23, _MM_SHUFFLE(3, 1, 3, 1)));
    u = _mm512_add_epi32(u, _mm512_shuffle_epi32(u, (_MM_PERM_ENUM)0x4E));
    u = _mm512_add_epi32(u, _mm512_shuffle_epi32(u, (_MM_PERM_ENUM)0xB1));
    const __m512i pick = _mm512_set_epi32(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 12, 8, 4, 0);
    return _mm512_castsi512_si128(_mm512_permutexvar_epi32(pick, u));
}

/* acc += the byte products of u (unsigned) and v (signed), 4 per lane.
 * Written as asm: GCC 12 copies the accumulator around the intrinsic's
 * instruction (two extra moves per multiply, half the speed). */
static inline __m512i rd_dpbusd(__m512i acc, __m512i u, __m512i v)
{
    __asm__("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(u), "v"(v));
    return acc;
}

/* VPDPBUSD multiplies unsigned by signed bytes: the weights go in unsigned,
 * offset by 128 (w ^ 0x80 = w + 128), and 128 * sum q comes off at the end:
 * sum (w + 128) q - 128 sum q = sum w q. Weights past D load as 0 (their q
 * is 0 too). */
static inline __attribute__((always_inline)) void rd_i8_block(const int8_t *w, int D, int RB,
                                                              const int8_t *const *q, int SB,
                                                              const int32_t *qsum, int32_t *out)
{
    __m512i acc[16]; /* [r * SB + s]: a flat array GCC keeps in registers */
    for (int a = 0; a < RB * SB; a++)
        acc[a] = _mm512_setzero_si512();
    const __m512i flip = _mm512_set1_epi8((char)0x80);
    int i = 0;
    for (; i + 64 <= D; i += 64) {
        __m512i xv[4];
        for (int s = 0; s < SB; s++) {
            xv[s] = _mm512_loadu_si512(q[s] + i);
            __asm__("" : "+v"(xv[s])); /* in registers, as rd_block's */
        }
        for (int r = 0; r < RB; r++) {
            __m512i wv = _mm512_xor_si512(_mm512_loadu_si512(w + (size_t)r * D + i), flip);
            __asm__("" : "+v"(wv));
            for (int s = 0; s < SB; s++)
                acc[r * SB + s] = rd_dpbusd(acc[r * SB + s], wv, xv[s]);
        }
    }
    if (i < D) {
        const __mmask64 k = ((__mmask64)1 << (D - i)) - 1;
        __m512i xv[4];
        for (int s = 0; s < SB; s++)
            xv[s] = _mm512_loadu_si512(q[s] + i);
        for (int r = 0; r < RB; r++) {
            __m512i wv = _mm512_xor_si512(_mm512_maskz_loadu_epi8(k, w + (size_t)r * D + i), flip);
            for (int s = 0; s < SB; s++)
                acc[r * SB + s] = rd_dpbusd(acc[r * SB + s], wv, xv[s]);
        }
    }
    for (int s = 0; s < SB; s++) {
        const __m128i off = _mm_set1_epi32(128 * qsum[s]);
        if (RB % 4 == 0) {
            for (int r = 0; r < RB; r += 4)
                _mm_storeu_si128(
                    (__m128i *)(out + s * 8 + r),
                    _mm_sub_epi32(rd_i8_hsum4(acc[r * SB + s], acc[(r + 1) * SB + s],
                                              acc[(r + 2) * SB + s], acc[(r + 3) * SB + s]),
                                  off));
        } else {
            for (int r = 0; r < RB; r++)
                out[s * 8 + r] = _mm512_reduce_add_epi32(acc[r * SB + s]) - 128 * qsum[s];
        }
    }
}

#elif RD_ISA >= 256

/* Bytes widened to 16 bits and multiplied in pairs (VPMADDWD: exact, no
 * saturation), 8 rows x streams at most per pass for the 16 registers. */
static inline __attribute__((always_inline)) void rd_i8_block(const int8_t *w, int D, int RB,
                                                              const int8_t *const *q, int SB,
                                                              const int32_t *qsum, int32_t *out)
{
    (void)qsum;
    const int RC = RB * SB > 8 ? (SB > 2 ? 2 : 4) : RB; /* rows per pass */
    for (int rc = 0; rc < RB; rc += RC) {
        const int nr = RB - rc < RC ? RB - rc : RC;
        __m256i acc[8][4];
        for (int r = 0; r < nr; r++)
            for (int s = 0; s < SB; s++)
                acc[r][s] = _mm256_setzero_si256();
        for (int i = 0; i < D; i += 16) {
            __m256i xv[4];
            for (int s = 0; s < SB; s++)
                xv[s] = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(q[s] + i)));
            for (int r = 0; r < nr; r++) {
                const int8_t *p = w + (size_t)(rc + r) * D + i;
                __m128i raw;
                if (D - i >= 16) {
                    raw = _mm_loadu_si128((const __m128i *)p);
                } else { /* the row's tail: a zeroed copy, never past the matrix */
                    int8_t buf[16] = {0};
                    memcpy(buf, p, (size_t)(D - i));
                    raw = _mm_loadu_si128((const __m128i *)buf);
                }
                __m256i wv = _mm256_cvtepi8_epi16(raw);
                for (int s = 0; s < SB; s++)
                    acc[r][s] = _mm256_add_epi32(acc[r][s], _mm256_madd_epi16(wv, xv[s]));
            }
        }
        for (int r = 0; r < nr; r++)
            for (int s = 0; s < SB; s++) {
                __m128i h = _mm_add_epi32(_mm256_castsi256_si128(acc[r][s]),
                                          _mm256_extracti128_si256(acc[r][s], 1));
                h = _mm_add_epi32(h, _mm_shuffle_epi32(h, _MM_SHUFFLE(1, 0, 3, 2)));
                h = _mm_add_epi32(h, _mm_shuffle_epi32(h, _MM_SHUFFLE(2, 3, 0, 1)));
                out[s * 8 + rc + r] = _mm_cvtsi128_si32(h);
            }
    }
}

#else /* portable */

static inline __attribute__((always_inline)) void rd_i8_block(const int8_t *w, int D, int RB,
                                                              const int8_t *const *q, int SB,
                                                              const int32_t *qsum, int32_t *out)
{
    (void)qsum;
    for (int r = 0; r < RB; r++)
        for (int s = 0; s < SB; s++) {
            const int8_t *wr = w + (size_t)r * D, *qs = q[s];
            int32_t acc = 0;
            for (int i = 0; i < D; i++)
                acc += (int32_t)wr[i] * (int32_t)qs[i];
            out[s * 8 + r] = acc;
        }
}

#endif

#if RD_ISA
#define RD_PREFETCH(p) _mm_prefetch((const char *)(p), _MM_HINT_T0)
#else
#define RD_PREFETCH(p) __builtin_prefetch(p)
#endif

#define RD_I8_KERNEL(RB, SB)                                                                       \
    static void rd_i8_##RB##x##SB(const int8_t *w, int D, const int8_t *const *q,                  \
                                  const int32_t *qsum, int32_t *out)                               \
    {                                                                                              \
        rd_i8_block(w, D, RB, q, SB, qsum, out);                                                   \
    }
RD_I8_KERNEL(8, 1)
RD_I8_KERNEL(8, 2)
RD_I8_KERNEL(4, 3)
RD_I8_KERNEL(4, 4)
RD_I8_KERNEL(1, 1)
RD_I8_KERNEL(1, 2)
RD_I8_KERNEL(1, 3)
RD_I8_KERNEL(1, 4)
#undef RD_I8_KERNEL

/* The int8 product for n streams already quantized (q[s], xs[s], qsum[s]):
 * rows in blocks of 8, each block read once and reused by every group of up
 * to 4 streams. */
static inline void rd_rows_i8q(const int8_t *w, const float *sc, const float *b, int R, int D,
                               size_t n, const int8_t *const *q, const float *xs,
                               const int32_t *qsum, float *const *y)
{
    int32_t sum[4 * 8]; /* [stream][row] of a block */
    for (int r0 = 0; r0 < R; r0 += 8) {
        const int rb = R - r0 < 8 ? R - r0 : 8;
        const int8_t *wb = w + (size_t)r0 * D;
        if (r0 + 8 < R) { /* the next block on its way while this one is summed */
            const size_t next = (size_t)(R - r0 - 8 < 8 ? R - r0 - 8 : 8) * (size_t)D;
            for (size_t o = 0; o < next; o += 64)
                RD_PREFETCH(wb + (size_t)8 * D + o);
        }
        for (size_t s0 = 0; s0 < n; s0 += 4) {
            const int sb = n - s0 < 4 ? (int)(n - s0) : 4;
            const int8_t *const *qs = q + s0;
            const int32_t *qss = qsum + s0;
            if (rb == 8) {
                switch (sb) {
                case 1: rd_i8_8x1(wb, D, qs, qss, sum); break;
                case 2: rd_i8_8x2(wb, D, qs, qss, sum); break;
                case 3:
                    rd_i8_4x3(wb, D, qs, qss, sum);
                    rd_i8_4x3(wb + (size_t)4 * D, D, qs, qss, sum + 4);
                    break;
                default:
                    rd_i8_4x4(wb, D, qs, qss, sum);
                    rd_i8_4x4(wb + (size_t)4 * D, D, qs, qss, sum + 4);
                    break;
                }
            } else {
                for (int r = 0; r < rb; r++) {
                    const int8_t *wr = wb + (size_t)r * D;
                    switch (sb) {
                    case 1: rd_i8_1x1(wr, D, qs, qss, sum + r); break;
                    case 2: rd_i8_1x2(wr, D, qs, qss, sum + r); break;
                    case 3: rd_i8_1x3(wr, D, qs, qss, sum + r); break;
                    default: rd_i8_1x4(wr, D, qs, qss, sum + r); break;
                    }
                }
            }
            for (int s = 0; s < sb; s++) {
                float *ys = y[s0 + s] + r0;
                const float x_s = xs[s0 + s];
                for (int r = 0; r < rb; r++)
                    ys[r] = rd_i8_finish(b[r0 + r], sc[r0 + r], x_s, sum[s * 8 + r]);
            }
        }
    }
}

/* Bytes of quantized inputs rd_rows_i8 keeps on the stack: 16 streams of
 * D <= 2048, or fewer streams per pass for wider inputs. */
#define RD_QBUF (32 << 10)

/* The int8 product from float inputs: each stream's input quantized once
 * (rowdot_quant.h), then rd_rows_i8q. Not inlined into rd_rows: its buffer
 * stays out of the f32/bf16 path's stack frame. */
static __attribute__((noinline)) void rd_rows_i8(const int8_t *w, const float *sc, const float *b,
                                                 int R, int D, size_t n, const float *const *x,
                                                 float *const *y)
{
    _Alignas(64) int8_t buf[RD_QBUF];
    const size_t stride = (size_t)rd_qstride(D);
    const size_t per = RD_QBUF / stride < 16 ? RD_QBUF / stride : 16; /* >= 4: D <= 8192 */
    const int8_t *q[16];
    float xs[16];
    int32_t qsum[16];
    for (size_t s0 = 0; s0 < n; s0 += per) {
        const size_t ns = n - s0 < per ? n - s0 : per;
        for (size_t s = 0; s < ns; s++) {
            rd_quantize(x[s0 + s], D, buf + s * stride, &xs[s], &qsum[s]);
            q[s] = buf + s * stride;
        }
        rd_rows_i8q(w, sc, b, R, D, ns, q, xs, qsum, y + s0);
    }
}

/* y[s][r] = b[r] + W[r,:] . x[s] for r < R, s < n (n <= 16); W is (R, D)
 * row-major in dtype dt (sc: int8 row scales, else unused). */
static inline void rd_rows(int dt, const void *w, const float *sc, const float *b, int R, int D,
                           size_t n, const float *const *x, float *const *y)
{
    if (dt == RD_I8)
        rd_rows_i8(w, sc, b, R, D, n, x, y);
    else
        rd_rows_float(dt, w, b, R, D, n, x, y);
}

#endif

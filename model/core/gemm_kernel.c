/* One build of the trainer's GEMM (gemm.h) for one instruction set. meson
 * compiles this file once per variant, with that variant's flags, GK_ISA and
 * GK_NAME (the rowdot.c variants: avx512, avx2, portable), and
 * sampler_kernel.c picks one at run time.
 *
 * A register tile of MR rows x NV vectors of C lives in accumulators while k
 * runs through a block of KC; each step broadcasts A[i][k] and multiplies it
 * into the NV vectors of B's row k with one fused multiply-add per vector.
 * That is gemm.h's per-element chain whatever MR, NV or the vector width,
 * so the variants differ in speed only. Loops: k blocks (B's block of KC
 * rows stays in L2, the tile's A in L1), then column blocks of NC, then row
 * tiles, then the column tiles of the block. */
#include "gemm.h"

#include <math.h>
#include <stdint.h>

#ifndef GK_ISA
#define GK_ISA 0
#endif

#if GK_ISA == 512 || GK_ISA == 256
#include <immintrin.h>
#define MR 6
#if GK_ISA == 512
#define VW 16
#define NV 4
#define VOP(op) _mm512_##op
typedef __m512 vec;
typedef __mmask16 vmask;
static inline vmask vmask_of(int n)
{
    return (vmask)((1u << n) - 1u);
}
static inline vec vloadm(const float *p, vmask m)
{
    return _mm512_maskz_loadu_ps(m, p);
}
static inline void vstorem(float *p, vec v, vmask m)
{
    _mm512_mask_storeu_ps(p, m, v);
}
#else
#define VW 8
#define NV 2
#define VOP(op) _mm256_##op
typedef __m256 vec;
typedef __m256i vmask;
static inline vmask vmask_of(int n)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
static inline vec vloadm(const float *p, vmask m)
{
    return _mm256_maskload_ps(p, m);
}
static inline void vstorem(float *p, vec v, vmask m)
{
    _mm256_maskstore_ps(p, m, v);
}
#endif
/* The same operations at either width (VOP: the intrinsic's prefix). */
static inline vec vzero(void)
{
    return VOP(setzero_ps)();
}
static inline vec vload(const float *p)
{
    return VOP(loadu_ps)(p);
}
static inline void vstore(float *p, vec v)
{
    VOP(storeu_ps)(p, v);
}
static inline vec vbcast(const float *p)
{
    return VOP(set1_ps)(*p);
}
static inline vec vfma(vec a, vec b, vec c)
{
    return VOP(fmadd_ps)(a, b, c);
}
#else
/* One lane: plain C. fmaf is exact (one rounding) with or without an FMA
 * instruction, so this is the same chain. */
#define VW 1
#define MR 4
#define NV 4
typedef float vec;
typedef int vmask;
static inline vec vzero(void)
{
    return 0.0f;
}
static inline vmask vmask_of(int n)
{
    return n;
}
static inline vec vload(const float *p)
{
    return *p;
}
static inline vec vloadm(const float *p, vmask m)
{
    return m ? *p : 0.0f;
}
static inline void vstore(float *p, vec v)
{
    *p = v;
}
static inline void vstorem(float *p, vec v, vmask m)
{
    if (m)
        *p = v;
}
static inline vec vbcast(const float *p)
{
    return *p;
}
static inline vec vfma(vec a, vec b, vec c)
{
    return fmaf(a, b, c);
}
#endif

#define NR (NV * VW)
enum { KC = 256, NC = 512, SMALL_A = 64 * 1024 };

/* One tile's operands: C at c (row stride ldc), A's rows from a, B's first
 * column at b, k in [0, K), nlast lanes valid in the last of the nv vectors. */
typedef struct tile_args {
    const float *a, *b;
    ptrdiff_t ars, acs, bs, bp, ldc;
    float *c;
    int K, acc, nlast;
} tile_args;

#define INLINE static inline __attribute__((always_inline))

/* mr rows x nv vectors; rowa: A read along rows (acs == 1), else along
 * columns (ars == 1); part: the last vector is partial (masked). All three
 * are constants in each instance, so the accumulators stay in registers. */
INLINE void tile(const tile_args *t, int mr, int nv, int rowa, int part)
{
    vec s[6][4]; /* every instance's size (tiles below), used up to mr x nv */
    const float *bv[4];
    const vmask m = vmask_of(part ? t->nlast : VW);
    for (int v = 0; v < nv; v++)
        bv[v] = t->b + (ptrdiff_t)((v * VW) / 16) * t->bp + (v * VW) % 16;
    for (int i = 0; i < mr; i++)
        for (int v = 0; v < nv; v++) {
            float *c = t->c + i * t->ldc + v * VW;
            s[i][v] = !t->acc ? vzero() : part && v == nv - 1 ? vloadm(c, m) : vload(c);
        }
    const float *ar[6];
    for (int i = 0; i < mr; i++)
        ar[i] = t->a + i * t->ars;
    const ptrdiff_t acs = rowa ? 1 : t->acs, bs = t->bs;
    for (int k = 0; k < t->K; k++) {
        vec bk[4];
        for (int v = 0; v < nv; v++)
            bk[v] = part && v == nv - 1 ? vloadm(bv[v] + k * bs, m) : vload(bv[v] + k * bs);
        for (int i = 0; i < mr; i++) {
            const vec ai = vbcast(rowa ? ar[i] + k : t->a + k * acs + i);
            for (int v = 0; v < nv; v++)
                s[i][v] = vfma(ai, bk[v], s[i][v]);
        }
    }
    for (int i = 0; i < mr; i++)
        for (int v = 0; v < nv; v++) {
            float *c = t->c + i * t->ldc + v * VW;
            if (part && v == nv - 1)
                vstorem(c, s[i][v], m);
            else
                vstore(c, s[i][v]);
        }
}

typedef void tile_fn(const tile_args *t);

#define TILE_FN(mr, nv, rowa, part)                                                                \
    static void tile_##mr##_##nv##_##rowa##_##part(const tile_args *t)                             \
    {                                                                                              \
        tile(t, mr, nv, rowa, part);                                                               \
    }
#define TILE_NV(mr, nv)                                                                            \
    TILE_FN(mr, nv, 0, 0) TILE_FN(mr, nv, 0, 1) TILE_FN(mr, nv, 1, 0) TILE_FN(mr, nv, 1, 1)
#define TILE_MR(mr) TILE_NV(mr, 1) TILE_NV(mr, 2) TILE_NV(mr, 3) TILE_NV(mr, 4)
TILE_MR(1)
TILE_MR(2)
TILE_MR(3)
TILE_MR(4)
TILE_MR(5)
TILE_MR(6)

#define ENT_NV(mr, nv)                                                                             \
    {                                                                                              \
        {tile_##mr##_##nv##_0_0, tile_##mr##_##nv##_0_1},                                          \
        {                                                                                          \
            tile_##mr##_##nv##_1_0, tile_##mr##_##nv##_1_1                                         \
        }                                                                                          \
    }
#define ENT_MR(mr)                                                                                 \
    {                                                                                              \
        ENT_NV(mr, 1), ENT_NV(mr, 2), ENT_NV(mr, 3), ENT_NV(mr, 4)                                 \
    }
/* tiles[mr - 1][nv - 1][rowa][part] */
static tile_fn *const tiles[6][4][2][2] = {ENT_MR(1), ENT_MR(2), ENT_MR(3),
                                           ENT_MR(4), ENT_MR(5), ENT_MR(6)};
_Static_assert(MR <= 6 && NV <= 4, "the tile table covers 6 x 4");

/* The tile of C at (i0, j0) over the k block that t describes. */
static void run_tile(tile_args *t, const charrnn_gemm_op *op, int rowa, int i0, int j0, int j2,
                     int k0)
{
    const int mr = op->M - i0 < MR ? op->M - i0 : MR;
    const int cols = j2 - j0 < NR ? j2 - j0 : NR;
    const int nv = (cols + VW - 1) / VW;
    t->nlast = cols - (nv - 1) * VW;
    t->a = op->a + i0 * op->ars + k0 * op->acs;
    t->b = op->b + (ptrdiff_t)(j0 / 16) * op->bp + k0 * op->bs + j0 % 16;
    t->c = op->c + (ptrdiff_t)i0 * op->ldc + j0;
    tiles[mr - 1][nv - 1][rowa][t->nlast < VW](t);
}

charrnn_gemm_fn GK_NAME;

void GK_NAME(const charrnn_gemm_op *op)
{
    const int rowa = op->acs == 1;
    /* Few rows (a recurrent step's batch): column tiles outside, so each
     * tile's B (KC x NR) is reused from L1 by every row tile while A's block
     * stays in L2. Otherwise row tiles outside, over column blocks of NC:
     * the tile's A stays in L1, B's block (KC x NC) in L2. */
    const int cols_outer = (long)op->M * KC <= SMALL_A;
    for (int k0 = 0; k0 < op->K; k0 += KC) {
        tile_args t;
        t.K = op->K - k0 < KC ? op->K - k0 : KC;
        t.acc = op->acc || k0 > 0; /* a later k block continues from C */
        t.ars = op->ars, t.acs = op->acs, t.bs = op->bs, t.bp = op->bp, t.ldc = op->ldc;
        if (cols_outer) {
            for (int j0 = 0; j0 < op->N; j0 += NR)
                for (int i0 = 0; i0 < op->M; i0 += MR)
                    run_tile(&t, op, rowa, i0, j0, op->N, k0);
            continue;
        }
        for (int j1 = 0; j1 < op->N; j1 += NC) {
            const int j2 = op->N - j1 < NC ? op->N : j1 + NC;
            for (int i0 = 0; i0 < op->M; i0 += MR)
                for (int j0 = j1; j0 < j2; j0 += NR)
                    run_tile(&t, op, rowa, i0, j0, j2, k0);
        }
    }
}

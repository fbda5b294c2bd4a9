/* One build of the batch-invariant row-dot kernel (rowdot.h) for one
 * instruction set. meson compiles this file once per variant, with that
 * variant's flags and RD_NAME, and sampler_kernel.c picks one at run time:
 *   avx512    RD_ISA=512 -mavx512f/bw/vl/vnni -mfma  AVX-512 intrinsics
 *   avx2      RD_ISA=256 -mavx2 -mfma                 AVX2 + FMA intrinsics
 *   portable  RD_ISA=0                                plain C (fmaf through
 *                                  libm where the target has no FMA instruction)
 * Every variant computes every f32/bf16 dot product in the same order with
 * fused multiply-adds and every int8 one as an exact integer sum, so all give
 * bit-identical results, for each weight dtype. */
#include "rowdot_variants.h"
#include "rowdot.h"

charrnn_rd_rows_fn RD_NAME;

void RD_NAME(int dt, const void *w, const float *sc, const float *b, int R, int D, size_t n,
             const float *const *x, const charrnn_rd_qin *qin, float *const *y)
{
    if (dt == RD_I8 && qin)
        rd_rows_i8q(w, sc, b, R, D, n, qin->q, qin->xs, qin->qsum, y);
    else
        rd_rows(dt, w, sc, b, R, D, n, x, y);
}

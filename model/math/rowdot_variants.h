/* The builds of the row-dot kernel (rowdot.c, one per instruction set) and
 * the dispatcher that the sampler calls (sampler_kernel.c). Which variants
 * exist is decided by meson: CHARRNN_RD_AVX512 and CHARRNN_RD_AVX2 are
 * defined when those were compiled. Private to libcharrnn. */
#ifndef CHARRNN_ROWDOT_VARIANTS_H
#define CHARRNN_ROWDOT_VARIANTS_H

#include <stddef.h>

/* y[s][r] = b[r] + W[r,:] . x[s] for r < R, s < n; W is (R, D) row-major. */
typedef void charrnn_rd_rows_fn(const float *w, const float *b, int R, int D, size_t n,
                                const float *const *x, float *const *y);

charrnn_rd_rows_fn charrnn_rd_rows_portable;
#ifdef CHARRNN_RD_AVX2
charrnn_rd_rows_fn charrnn_rd_rows_avx2;
#endif
#ifdef CHARRNN_RD_AVX512
charrnn_rd_rows_fn charrnn_rd_rows_avx512;
#endif

/* The selected variant (charrnn_kernel_select / CHARRNN_KERNEL / the best
 * this CPU runs). */
charrnn_rd_rows_fn charrnn_rd_rows;

#endif

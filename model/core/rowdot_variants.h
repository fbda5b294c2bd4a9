/* The builds of the row-dot kernel (rowdot.c, one per instruction set) and
 * the dispatcher that the sampler calls (sampler_kernel.c). Which variants
 * exist is decided by meson: CHARRNN_RD_AVX512 and CHARRNN_RD_AVX2 are
 * defined when those were compiled. Private to libcharrnn. */
#ifndef CHARRNN_ROWDOT_VARIANTS_H
#define CHARRNN_ROWDOT_VARIANTS_H

#include <stddef.h>
#include <stdint.h>

#define CHARRNN_RD_MAX_STREAMS 16

/* int8 products' inputs already quantized (rowdot_quant.h): stream s as
 * q[s] (rd_qstride(D) bytes), scale xs[s] and sum qsum[s]. A row split
 * quantizes each input once per product instead of once per block. */
typedef struct charrnn_rd_qin {
    const int8_t *q[CHARRNN_RD_MAX_STREAMS];
    float xs[CHARRNN_RD_MAX_STREAMS];
    int32_t qsum[CHARRNN_RD_MAX_STREAMS];
} charrnn_rd_qin;

/* y[s][r] = b[r] + W[r,:] . x[s] for r < R, s < n (n <= 16); W is (R, D)
 * row-major, stored as dt (a charrnn_dtype): f32, bf16 bits or int8 with
 * sc = (R) row scales (unused otherwise). For int8, qin (may be NULL) holds
 * x already quantized; x is then not read. */
typedef void charrnn_rd_rows_fn(int dt, const void *w, const float *sc, const float *b, int R,
                                int D, size_t n, const float *const *x, const charrnn_rd_qin *qin,
                                float *const *y);

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

/* One product of a step: y[s][r] = b[r] + W[r,:] . x[s], r < R, s < n. */
typedef struct charrnn_rd_job {
    int dt; /* charrnn_dtype of w */
    const void *w;
    const float *sc; /* int8 row scales */
    const float *b;
    int R, D;
    size_t n; /* <= CHARRNN_RD_MAX_STREAMS */
    const float *const *x;
    float *const *y;
} charrnn_rd_job;

struct charrnn_rowsplit;
/* Computes the jobs (independent of each other), split across the helpers of
 * rs when it has any (rowsplit.c), else directly. */
void charrnn_rd_run(struct charrnn_rowsplit *rs, const charrnn_rd_job *jobs, int njobs);

#endif

/* The int8 kernel's input side: one stream's input vector quantized to
 * int8 with one scale, so that int8 weights are multiplied as integers.
 *
 *   m = max |x_i|;  q_i = round-half-even(x_i * (127 / m)), in [-127, 127]
 *   (all 0 when m = 0);  xs = m / 127;  qsum = sum q_i.
 *
 * Every operation is one IEEE single operation or exact (the maximum, the
 * integer sum), so any compilation of this header (vectorized or not, for
 * any instruction set) gives the same bytes: the kernels' results stay
 * bit-identical. The inputs are hidden states (tanh-bounded, finite).
 * Private to libcharrnn. */
#ifndef CHARRNN_ROWDOT_QUANT_H
#define CHARRNN_ROWDOT_QUANT_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Quantized rows are padded with zeros to a multiple of this many bytes
 * (one AVX-512 register), so kernels read whole vectors of q. */
#define RD_QPAD 64

static inline int rd_qstride(int D)
{
    return (D + RD_QPAD - 1) / RD_QPAD * RD_QPAD;
}

/* x (D floats) into q (rd_qstride(D) bytes, the padding zeroed). */
static inline void rd_quantize(const float *restrict x, int D, int8_t *restrict q, float *xs,
                               int32_t *qsum)
{
    /* The largest |x_i| from the bits: for finite floats without the sign
     * bit, the float order is the unsigned integer order (this vectorizes;
     * a float maximum does not, for want of -ffinite-math-only). */
    uint32_t mb = 0;
    for (int i = 0; i < D; i++) {
        uint32_t u;
        memcpy(&u, &x[i], sizeof u);
        u &= 0x7FFFFFFFu;
        mb = u > mb ? u : mb;
    }
    float m;
    memcpy(&m, &mb, sizeof m);
    int32_t sum = 0;
    if (m > 0.0f) {
        const float inv = 127.0f / m;
        for (int i = 0; i < D; i++) {
            float v = nearbyintf(x[i] * inv); /* the default mode: half to even */
            v = v > 127.0f ? 127.0f : v < -127.0f ? -127.0f : v;
            q[i] = (int8_t)v;
            sum += (int32_t)q[i];
        }
    } else {
        memset(q, 0, (size_t)D);
    }
    memset(q + D, 0, (size_t)(rd_qstride(D) - D));
    *xs = m / 127.0f;
    *qsum = sum;
}

/* y = b + sc * (xs * s): the row's integer sum s scaled back, a product, a
 * product, then a sum (never fused: -ffp-contract=off). */
static inline float rd_i8_finish(float b, float sc, float xs, int32_t s)
{
    float t = xs * (float)s;
    t = sc * t;
    return b + t;
}

#endif

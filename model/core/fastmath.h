/* Branch-free float exp, sigmoid and tanh that the compiler can vectorize
 * (glibc's expf/tanhf are scalar calls, and they dominated the gate
 * arithmetic). Accuracy: a few ulp over the whole float range (Cephes-style
 * range reduction and minimax polynomial for exp; an odd Taylor polynomial
 * for tanh near zero, where 1 - e^-2x would cancel). Private to libcharrnn. */
#ifndef CHARRNN_FASTMATH_H
#define CHARRNN_FASTMATH_H

#include <stdint.h>

/* For the hot loops over these functions: GCC builds the function for
 * AVX-512, AVX2 and the baseline and picks one when the library loads, so a
 * portable build (-Dnative=false: the Docker image) still runs wide vectors.
 * Elementwise float operations give the same bits at any vector width (the
 * library builds with -ffp-contract=off, so nothing is fused differently).
 * CHARRNN_TARGET_CLONES: meson found that the compiler and libc build and
 * run such a function (GCC with ifunc). Not under ThreadSanitizer: GCC 12
 * instruments the clone resolver, which runs before TSan is up, and crashes. */
#if defined(CHARRNN_TARGET_CLONES) && !defined(__SANITIZE_THREAD__)
#define CR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define CR_CLONES
#endif

static inline float cr_expf(float x)
{
    x = x < -87.0f ? -87.0f : x > 88.0f ? 88.0f : x;
    /* Round to nearest with the 1.5*2^23 trick: vectorizes, unlike floorf. */
    float kf = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = x - kf * 0.693359375f + kf * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    union {
        int32_t i;
        float f;
    } scale = {.i = ((int32_t)kf + 127) << 23};
    return p * scale.f;
}

static inline float cr_sigmoidf(float x)
{
    return 1.0f / (1.0f + cr_expf(-x));
}

static inline float cr_tanhf(float x)
{
    float ax = __builtin_fabsf(x);
    /* |x| < 0.3: x + x^3 (-1/3 + x^2 (2/15 + x^2 (-17/315 + x^2 (62/2835 - x^2 1382/155925)))) */
    float x2 = x * x;
    float small = x +
        x * x2 *
            (-3.33333333e-1f +
             x2 *
                 (1.33333333e-1f +
                  x2 * (-5.39682540e-2f + x2 * (2.18694885e-2f - x2 * 8.86323552e-3f))));
    float e = cr_expf(-2.0f * ax);
    float big = (1.0f - e) / (1.0f + e);
    big = x < 0.0f ? -big : big;
    return ax < 0.3f ? small : big;
}

#endif

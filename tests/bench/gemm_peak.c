/* Benchmark tool: the trainer's own GEMM (model/core/gemm.h) in GFLOP/s on
 * one thread, best of three one-second rounds, for a shape and layout:
 *   gemm_peak M N K [nt|nn|tn|ntp|nnp]   (C = A B^T, A B, A^T B; ntp, nnp:
 *                                        B^T or B packed once, as the
 *                                        recurrent steps use them)
 *   gemm_peak M N K [nn|tn|ntp|nnp] bf16 (the bf16 products, gemm.h: B
 *                                        packed, or A and B converted as
 *                                        they go; no nt)
 * prints one JSON line with the kernel build in use (CHARRNN_KERNEL). */
#include "../../model/core/gemm.h"
#include "charrnn/sampler.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: gemm_peak M N K [nt|nn|tn|ntp|nnp] [bf16]\n");
        return 2;
    }
    const int M = atoi(argv[1]), N = atoi(argv[2]), K = atoi(argv[3]);
    const char *lay = argc > 4 ? argv[4] : "nt";
    const int ta = !strcmp(lay, "tn"), tb = !strcmp(lay, "nt") || !strcmp(lay, "ntp");
    const int packed = !strcmp(lay, "ntp") || !strcmp(lay, "nnp");
    const int bf16 = argc > 5 && !strcmp(argv[5], "bf16");
    if (M < 1 || N < 1 || K < 1 || (!ta && !tb && strcmp(lay, "nn") && strcmp(lay, "nnp")) ||
        (bf16 && !strcmp(lay, "nt"))) {
        fprintf(stderr, "gemm_peak: bad shape or layout\n");
        return 2;
    }
    char err[256];
    if (bf16 && charrnn_gemm_bf16_ready(err, sizeof err)) {
        fprintf(stderr, "gemm_peak: %s\n", err);
        return 2;
    }
    float *a = malloc(sizeof(float) * (size_t)M * K), *b = malloc(sizeof(float) * (size_t)N * K);
    float *c = calloc((size_t)M * N, sizeof(float));
    float *p = malloc(sizeof(float) * charrnn_gemm_pack_floats(N, K));
    uint32_t *pw = malloc(sizeof(uint32_t) * charrnn_gemm_bf16_pack_words(N, K));
    if (!a || !b || !c || !p || !pw)
        return 1;
    for (size_t i = 0; i < (size_t)M * K; i++)
        a[i] = (float)(i % 7) * 1e-3f;
    for (size_t i = 0; i < (size_t)N * K; i++)
        b[i] = (float)(i % 5) * 1e-3f;
    if (packed && bf16)
        charrnn_gemm_bf16_pack(pw, tb, b, tb ? K : N, N, K);
    else if (packed)
        charrnn_gemm_pack(p, tb, b, tb ? K : N, N, K);
    double best = 0.0;
    for (int round = 0; round < 3; round++) {
        long reps = 0;
        double t0 = now(), t;
        do {
            if (bf16 && packed)
                charrnn_gemm_bf16_packed(M, N, K, a, K, pw, 1, c, N);
            else if (bf16)
                charrnn_gemm_bf16(ta, M, N, K, a, ta ? M : K, b, N, 1, c, N);
            else if (packed)
                charrnn_gemm_packed(0, M, N, K, a, K, p, 1, c, N);
            else
                charrnn_gemm(ta, tb, M, N, K, a, ta ? M : K, b, tb ? K : N, 1, c, N);
            reps++;
        } while ((t = now() - t0) < 1.0);
        double g = 2.0 * M * N * K * (double)reps / t / 1e9;
        best = g > best ? g : best;
    }
    printf("{\"m\":%d,\"n\":%d,\"k\":%d,\"layout\":\"%s\",\"gflops\":%.2f,\"kernel\":\"%s\","
           "\"precision\":\"%s\"}\n",
           M, N, K, lay, best, charrnn_kernel_name(), bf16 ? "bf16" : "f32");
    free(a), free(b), free(c), free(p), free(pw);
    return 0;
}

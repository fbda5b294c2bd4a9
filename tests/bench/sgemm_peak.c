/* Benchmark tool: OpenBLAS sgemm GFLOP/s on a given shape (C = A B^T, row
 * major, as the trainer's GEMMs), best of several one-second rounds.
 * usage: sgemm_peak M N K [threads]   prints one JSON line, with the kernel
 * family OpenBLAS picked (OPENBLAS_CORETYPE overrides its detection). */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(int argc, char **argv)
{
    if (argc < 4)
        return 2;
    int M = atoi(argv[1]), N = atoi(argv[2]), K = atoi(argv[3]);
    if (argc > 4)
        openblas_set_num_threads(atoi(argv[4]));
    float *a = malloc(sizeof(float) * (size_t)M * K), *b = malloc(sizeof(float) * (size_t)N * K);
    float *c = malloc(sizeof(float) * (size_t)M * N);
    if (!a || !b || !c)
        return 1;
    for (size_t i = 0; i < (size_t)M * K; i++)
        a[i] = (float)(i % 7) * 1e-3f;
    for (size_t i = 0; i < (size_t)N * K; i++)
        b[i] = (float)(i % 5) * 1e-3f;
    double best = 0.0;
    for (int round = 0; round < 3; round++) {
        long reps = 0;
        double t0 = now(), t;
        do {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, a, K, b, K, 0.0f, c,
                        N);
            reps++;
        } while ((t = now() - t0) < 1.0);
        double g = 2.0 * M * N * K * (double)reps / t / 1e9;
        best = g > best ? g : best;
    }
    printf("{\"m\":%d,\"n\":%d,\"k\":%d,\"gflops\":%.2f,\"core\":\"%s\"}\n", M, N, K, best,
           openblas_get_corename());
    free(a), free(b), free(c);
    return 0;
}

/* STREAM-style read bandwidth: THREADS threads each sum their share of one
 * array of BYTES bytes (as a step reads the weights: every byte once, in
 * order), repeatedly for SECONDS; the best pass is reported in GB/s (10^9).
 * Prints one JSON line.
 *
 * usage: read_bw BYTES [THREADS] [SECONDS]   (default 1 thread, 2 s) */
#define _GNU_SOURCE
#include <immintrin.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

typedef struct part {
    const float *a;
    size_t n;
    float sum;
} part;

static pthread_barrier_t start, stop;
static atomic_int quit;

/* Sum with 8 independent accumulators so arithmetic is never the limit. */
static float sum(const float *a, size_t n)
{
#ifdef __AVX512F__
    __m512 s[8];
    for (int k = 0; k < 8; k++)
        s[k] = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 128 <= n; i += 128)
        for (int k = 0; k < 8; k++)
            s[k] = _mm512_add_ps(s[k], _mm512_load_ps(a + i + 16 * k));
    for (int k = 1; k < 8; k++)
        s[0] = _mm512_add_ps(s[0], s[k]);
    float t = _mm512_reduce_add_ps(s[0]);
#else
    float s[32] = {0};
    size_t i = 0;
    for (; i + 32 <= n; i += 32)
        for (int k = 0; k < 32; k++)
            s[k] += a[i + k];
    float t = 0;
    for (int k = 0; k < 32; k++)
        t += s[k];
#endif
    for (; i < n; i++)
        t += a[i];
    return t;
}

static void *reader(void *arg)
{
    part *p = arg;
    for (;;) {
        pthread_barrier_wait(&start);
        if (atomic_load(&quit))
            return NULL;
        p->sum += sum(p->a, p->n);
        pthread_barrier_wait(&stop);
    }
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s BYTES [THREADS] [SECONDS]\n", argv[0]);
        return 2;
    }
    size_t bytes = strtoull(argv[1], NULL, 10);
    int threads = argc > 2 ? atoi(argv[2]) : 1;
    double secs = argc > 3 ? atof(argv[3]) : 2.0;
    if (threads < 1 || threads > 64 || bytes < 4096)
        return 2;
    size_t n = (bytes / 4 + 127) & ~(size_t)127;
    float *a = aligned_alloc(64, n * 4);
    for (size_t i = 0; i < n; i++)
        a[i] = (float)(i & 7);
    part p[64];
    pthread_t th[64];
    size_t chunk = (n / (size_t)threads + 127) & ~(size_t)127;
    pthread_barrier_init(&start, NULL, (unsigned)threads + 1);
    pthread_barrier_init(&stop, NULL, (unsigned)threads + 1);
    for (int t = 0; t < threads; t++) {
        size_t lo = (size_t)t * chunk < n ? (size_t)t * chunk : n;
        size_t hi = lo + chunk < n ? lo + chunk : n;
        p[t] = (part){a + lo, hi - lo, 0.0f};
        pthread_create(&th[t], NULL, reader, &p[t]);
    }
    double best = 1e30, t_end = now() + secs;
    long passes = 0;
    while (now() < t_end || passes < 3) {
        double t0 = now();
        pthread_barrier_wait(&start);
        pthread_barrier_wait(&stop);
        double dt = now() - t0;
        best = dt < best ? dt : best;
        passes++;
    }
    atomic_store(&quit, 1);
    pthread_barrier_wait(&start);
    float total = 0;
    for (int t = 0; t < threads; t++) {
        pthread_join(th[t], NULL);
        total += p[t].sum;
    }
    printf("{\"bytes\": %zu, \"threads\": %d, \"passes\": %ld, \"gb_per_s\": %.2f, "
           "\"checksum\": %g}\n",
           n * 4, threads, passes, (double)n * 4 / best / 1e9, (double)total);
    free(a);
    return 0;
}

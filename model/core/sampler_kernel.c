/* Run-time choice of the inference kernel (see charrnn_kernel_select in
 * sampler.h): the fastest build of rowdot.c this CPU runs, unless
 * CHARRNN_KERNEL names another. All variants give bit-identical results, so
 * the choice changes speed only, never text. */
#include "charrnn/sampler.h"
#include "charrnn/status.h"
#include "rowdot_variants.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct variant {
    const char *name;
    charrnn_rd_rows_fn *fn;
    int (*runs)(void); /* does this CPU (and OS) run it? */
} variant;

static int always(void)
{
    return 1;
}
#ifdef CHARRNN_RD_AVX2
static int has_avx2(void)
{
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
#endif
#ifdef CHARRNN_RD_AVX512
static int has_avx512(void) /* the variant's flags (meson.build) let GCC use AVX2 too */
{
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni") &&
        __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
#endif

/* Fastest first. */
static const variant variants[] = {
#ifdef CHARRNN_RD_AVX512
    {"avx512", charrnn_rd_rows_avx512, has_avx512},
#endif
#ifdef CHARRNN_RD_AVX2
    {"avx2", charrnn_rd_rows_avx2, has_avx2},
#endif
    {"portable", charrnn_rd_rows_portable, always},
};
enum { NVARIANTS = sizeof variants / sizeof *variants };

static _Atomic(const variant *) current;

static const variant *best(void)
{
    for (int i = 0; i < NVARIANTS; i++)
        if (variants[i].runs())
            return &variants[i];
    return &variants[NVARIANTS - 1];
}

/* The variant a name asks for: the best for NULL, "" or "auto"; NULL for an
 * unknown name (whether this CPU runs it is the caller's question). */
static const variant *lookup(const char *name)
{
    if (!name || !*name || !strcmp(name, "auto"))
        return best();
    for (int i = 0; i < NVARIANTS; i++)
        if (!strcmp(name, variants[i].name))
            return &variants[i];
    return NULL;
}

int charrnn_kernel_select(const char *name, char *err, size_t errlen)
{
    const variant *v = lookup(name);
    if (!v) {
        char names[80] = "";
        size_t len = 0;
        for (int i = 0; i < NVARIANTS; i++) {
            int k =
                snprintf(names + len, sizeof names - len, "%s%s", i ? ", " : "", variants[i].name);
            len += k > 0 && (size_t)k < sizeof names - len ? (size_t)k : 0;
        }
        return charrnn_fail(err, errlen, CHARRNN_EINVAL, "unknown inference kernel '%s' (auto, %s)",
                            name, names);
    }
    if (!v->runs())
        return charrnn_fail(err, errlen, CHARRNN_EINVAL,
                            "inference kernel '%s' needs instructions this CPU lacks", name);
    atomic_store(&current, v);
    return CHARRNN_OK;
}

int charrnn_kernel_init(char *err, size_t errlen)
{
    return charrnn_kernel_select(getenv("CHARRNN_KERNEL"), err, errlen);
}

static const variant *resolve(void)
{
    const variant *v = atomic_load(&current);
    if (!v) { /* first use: never overrides a concurrent charrnn_kernel_select */
        /* CHARRNN_KERNEL, or the best where it names nothing this CPU runs
         * (programs report a bad value through charrnn_kernel_init). */
        const variant *want = lookup(getenv("CHARRNN_KERNEL"));
        if (!want || !want->runs())
            want = best();
        v = atomic_compare_exchange_strong(&current, &(const variant *){NULL}, want)
            ? want
            : atomic_load(&current);
    }
    return v;
}

const char *charrnn_kernel_name(void)
{
    return resolve()->name;
}

void charrnn_rd_rows(int dt, const void *w, const float *sc, const float *b, int R, int D, size_t n,
                     const float *const *x, const charrnn_rd_qin *qin, float *const *y)
{
    resolve()->fn(dt, w, sc, b, R, D, n, x, qin, y);
}

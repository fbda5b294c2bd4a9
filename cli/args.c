/* Strict command-line value parsing for charrnn-train, charrnn-sample and
 * charrnn-convert. */
#include "args.h"

#include "charrnn/status.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *charrnn_prog = "charrnn";

/* Prints "<prog>: <flag>: <problem>" and returns 0, a parser's failure. */
__attribute__((format(printf, 2, 3))) static int bad(const char *flag, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: %s: ", charrnn_prog, flag);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 0;
}

int args_parse(int argc, char **argv, int (*one)(void *ctx, int argc, char **argv, int *i),
               void *ctx, void (*usage)(FILE *f))
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return ARGS_HELP;
        }
        int r = one(ctx, argc, argv, &i);
        if (r < 0)
            fprintf(stderr, "%s: unknown argument '%s' (see --help)\n", charrnn_prog, a);
        if (r <= 0)
            return ARGS_BAD;
    }
    return ARGS_OK;
}

int parse_sample_number(const char *flag, charrnn_sample_field field, const char *s, double *out)
{
    long n = 0; /* set on success; GCC -O3 cannot see that bad() returns 0 */
    if (charrnn_sample_limit_of(field)->integer) {
        if (!parse_long(flag, s, LONG_MIN, LONG_MAX, &n))
            return 0;
        *out = (double)n;
    } else if (!parse_double(flag, s, -HUGE_VAL, HUGE_VAL, out)) {
        return 0;
    }
    char why[CHARRNN_ERR_MAX];
    return charrnn_sample_check_number(field, *out, why, sizeof why) ? bad(flag, "%s", why) : 1;
}

int parse_sample_stop(const char *flag, size_t n_before, const char *s)
{
    char why[CHARRNN_ERR_MAX];
    if (charrnn_sample_check_number(CHARRNN_SAMPLE_STOP, (double)n_before + 1, why, sizeof why) ||
        charrnn_sample_check_stop(s, why, sizeof why))
        return bad(flag, "%s", why);
    return 1;
}

int parse_sample_length(const char *flag, charrnn_sample_field f, const char *s)
{
    char why[CHARRNN_ERR_MAX];
    if (charrnn_sample_check_number(f, (double)strlen(s), why, sizeof why))
        return bad(flag, "%s", why);
    return 1;
}

int parse_choice(const char *flag, const char *s, int valid, const char *choices)
{
    return valid ? 1 : bad(flag, "'%s' is not %s", s, choices);
}

int cli_fail(int status, const char *err)
{
    fprintf(stderr, "%s: %s\n", charrnn_prog, err && *err ? err : charrnn_strerror(status));
    return 1;
}

int arg_value(int argc, char **argv, int *i, const char *name, const char **value)
{
    const char *a = argv[*i];
    size_t n = strlen(name);
    if (strncmp(a, name, n) != 0)
        return 0;
    if (a[n] == '=') {
        *value = a + n + 1;
        return 1;
    }
    if (a[n] != '\0')
        return 0;
    if (*i + 1 >= argc) {
        fprintf(stderr, "%s: %s needs a value\n", charrnn_prog, name);
        return -1;
    }
    *value = argv[++*i];
    return 1;
}

int parse_long(const char *flag, const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!*s || *end || errno)
        return bad(flag, "'%s' is not an integer", s);
    if (v < lo || v > hi)
        return bad(flag, "%ld is out of range %ld..%ld", v, lo, hi);
    *out = v;
    return 1;
}

int parse_int(const char *flag, const char *s, int lo, int hi, int *out)
{
    long v = 0;
    if (!parse_long(flag, s, lo, hi, &v))
        return 0;
    *out = (int)v;
    return 1;
}

int parse_double(const char *flag, const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || *end || errno || !isfinite(v))
        return bad(flag, "'%s' is not a number", s);
    if (v < lo || v > hi)
        return bad(flag, "%g is out of range [%g, %g]", v, lo, hi);
    *out = v;
    return 1;
}

int parse_float(const char *flag, const char *s, double lo, double hi, float *out)
{
    double v = 0;
    if (!parse_double(flag, s, lo, hi, &v))
        return 0;
    *out = (float)v;
    return 1;
}

int parse_u64(const char *flag, const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    if (!*s || *s == '-' || *s == '+')
        return bad(flag, "'%s' is not an unsigned integer", s);
    unsigned long long v = strtoull(s, &end, 10);
    if (*end || errno)
        return bad(flag, "'%s' is not an unsigned 64-bit integer", s);
    *out = v;
    return 1;
}

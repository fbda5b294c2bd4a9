/* Strict command-line value parsing for charrnn-train and charrnn-sample. */
#include "args.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *charrnn_prog = "charrnn";

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
    if (!*s || *end || errno) {
        fprintf(stderr, "%s: %s: '%s' is not an integer\n", charrnn_prog, flag, s);
        return 0;
    }
    if (v < lo || v > hi) {
        fprintf(stderr, "%s: %s: %ld is out of range %ld..%ld\n", charrnn_prog, flag, v, lo, hi);
        return 0;
    }
    *out = v;
    return 1;
}

int parse_int(const char *flag, const char *s, int lo, int hi, int *out)
{
    long v;
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
    if (!*s || *end || errno || !isfinite(v)) {
        fprintf(stderr, "%s: %s: '%s' is not a number\n", charrnn_prog, flag, s);
        return 0;
    }
    if (v < lo || v > hi) {
        fprintf(stderr, "%s: %s: %g is out of range [%g, %g]\n", charrnn_prog, flag, v, lo, hi);
        return 0;
    }
    *out = v;
    return 1;
}

int parse_float(const char *flag, const char *s, double lo, double hi, float *out)
{
    double v;
    if (!parse_double(flag, s, lo, hi, &v))
        return 0;
    *out = (float)v;
    return 1;
}

int parse_u64(const char *flag, const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    if (!*s || *s == '-' || *s == '+') {
        fprintf(stderr, "%s: %s: '%s' is not an unsigned integer\n", charrnn_prog, flag, s);
        return 0;
    }
    unsigned long long v = strtoull(s, &end, 10);
    if (*end || errno) {
        fprintf(stderr, "%s: %s: '%s' is not an unsigned 64-bit integer\n", charrnn_prog, flag, s);
        return 0;
    }
    *out = v;
    return 1;
}

/* The sampling parameters' limits, in one table, and the one validation that
 * charrnn_stream_create, charrnn-serve's request parser and charrnn-sample's
 * flags all use. A failure names its field by enum, so the API's "param" never
 * depends on how a message is worded. */
#include "charrnn/sampler.h"
#include "charrnn/status.h"
#include "charrnn/vocab.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *name;
    int has_limit;
    charrnn_sample_limit limit; /* lo, hi, lo_open, integer */
    const char *unit;           /* of the number, in messages; "" for none */
} fields[] = {
    [CHARRNN_SAMPLE_NONE] = {"", 0, {0, 0, 0, 0}, ""},
    [CHARRNN_SAMPLE_PRIME] = {"prime", 0, {0, 0, 0, 0}, ""},
    /* No upper bound here: the programs set theirs (charrnn-serve's --max-length). */
    [CHARRNN_SAMPLE_LENGTH] = {"length", 1, {1, INFINITY, 0, 1}, ""},
    [CHARRNN_SAMPLE_TEMPERATURE] = {"temperature", 1, {0, 10, 0, 0}, ""}, /* 0 = argmax */
    [CHARRNN_SAMPLE_SEED] = {"seed", 0, {0, 0, 0, 0}, ""},
    /* More than the largest vocabulary could only mean "off", which is 0. */
    [CHARRNN_SAMPLE_TOP_K] = {"top_k", 1, {0, CHARRNN_MAX_VOCAB, 0, 1}, ""},
    [CHARRNN_SAMPLE_TOP_P] = {"top_p", 1, {0, 1, 1, 0}, ""},
    [CHARRNN_SAMPLE_STOP] = {"stop", 1, {0, CHARRNN_MAX_STOP, 0, 1}, " strings"},
};
#define NFIELDS (sizeof fields / sizeof fields[0])

const char *charrnn_sample_field_name(charrnn_sample_field f)
{
    return (unsigned)f < NFIELDS ? fields[f].name : "";
}

const charrnn_sample_limit *charrnn_sample_limit_of(charrnn_sample_field f)
{
    return (unsigned)f < NFIELDS && fields[f].has_limit ? &fields[f].limit : NULL;
}

/* The shortest of %.15g and %.17g that reads back as v. */
static void format_number(double v, char *out, size_t n)
{
    snprintf(out, n, "%.15g", v);
    if (isfinite(v) && strtod(out, NULL) != v)
        snprintf(out, n, "%.17g", v);
}

int charrnn_sample_check_number(charrnn_sample_field f, double v, char *err, size_t errlen)
{
    const charrnn_sample_limit *l = charrnn_sample_limit_of(f);
    if (!l)
        return charrnn_fail(err, errlen, CHARRNN_EINVAL, "'%s' has no numeric limits",
                            charrnn_sample_field_name(f));
    char val[32], lo[32], hi[32];
    format_number(v, val, sizeof val);
    if (l->integer && isfinite(v) && v != floor(v))
        return charrnn_fail(err, errlen, CHARRNN_ERANGE, "%s is not an integer", val);
    int low_ok = l->lo_open ? v > l->lo : v >= l->lo;
    if (low_ok && v <= l->hi && isfinite(v))
        return CHARRNN_OK;
    format_number(l->lo, lo, sizeof lo);
    format_number(l->hi, hi, sizeof hi);
    const char *unit = fields[f].unit;
    if (isinf(l->hi))
        return charrnn_fail(err, errlen, CHARRNN_ERANGE, "%s%s is out of range (%s %s)", val, unit,
                            l->lo_open ? "more than" : "at least", lo);
    if (l->integer)
        return charrnn_fail(err, errlen, CHARRNN_ERANGE, "%s%s is out of range %s..%s", val, unit,
                            lo, hi);
    return charrnn_fail(err, errlen, CHARRNN_ERANGE, "%s%s is out of range %c%s, %s]", val, unit,
                        l->lo_open ? '(' : '[', lo, hi);
}

int charrnn_sample_check_stop(const char *s, char *err, size_t errlen)
{
    size_t len = s ? strlen(s) : 0;
    if (len >= 1 && len <= CHARRNN_MAX_STOP_LEN)
        return CHARRNN_OK;
    return charrnn_fail(err, errlen, CHARRNN_ERANGE, "a string of %zu bytes is out of range 1..%d",
                        len, CHARRNN_MAX_STOP_LEN);
}

int charrnn_sample_params_check(const charrnn_sample_params *p, charrnn_sample_field *field,
                                char *err, size_t errlen)
{
    const struct {
        charrnn_sample_field f;
        double v;
    } numbers[] = {
        {CHARRNN_SAMPLE_LENGTH, (double)p->length}, {CHARRNN_SAMPLE_TEMPERATURE, p->temperature},
        {CHARRNN_SAMPLE_TOP_K, p->top_k},           {CHARRNN_SAMPLE_TOP_P, p->top_p},
        {CHARRNN_SAMPLE_STOP, (double)p->n_stop},
    };
    char why[CHARRNN_ERR_MAX];
    charrnn_sample_field bad = CHARRNN_SAMPLE_NONE;
    for (size_t i = 0; i < sizeof numbers / sizeof numbers[0] && !bad; i++)
        if (charrnn_sample_check_number(numbers[i].f, numbers[i].v, why, sizeof why))
            bad = numbers[i].f;
    for (size_t i = 0; i < p->n_stop && !bad; i++)
        if (charrnn_sample_check_stop(p->stop[i], why, sizeof why))
            bad = CHARRNN_SAMPLE_STOP;
    if (field)
        *field = bad;
    if (!bad)
        return CHARRNN_OK;
    return charrnn_fail(err, errlen, CHARRNN_ERANGE, "%s: %s", charrnn_sample_field_name(bad), why);
}

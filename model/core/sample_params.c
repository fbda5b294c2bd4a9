/* The sampling parameters' limits, in one table, and the one validation that
 * charrnn_stream_create, charrnn-serve's request parser and charrnn-sample's
 * flags all use. A failure names its field by enum, so the API's "param" never
 * depends on how a message is worded. */
#include "charrnn/sampler.h"
#include "charrnn/regex.h"
#include "charrnn/status.h"
#include "charrnn/vocab.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
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
    /* The alternatives reported per character; the model's vocabulary size is
     * the real bound (charrnn_sample_params_check_model). */
    [CHARRNN_SAMPLE_LOGPROBS] = {"logprobs", 1, {0, CHARRNN_MAX_VOCAB, 0, 1}, ""},
    [CHARRNN_SAMPLE_LOGIT_BIAS] = {"logit_bias", 1, {-100, 100, 0, 0}, ""}, /* OpenAI's range */
    [CHARRNN_SAMPLE_MIN_P] = {"min_p", 1, {0, 1, 0, 0}, ""},                /* 0 = off */
    /* Hugging Face's: strictly positive; 1 = off. Above 10 a seen
     * character's logit is all but gone. */
    [CHARRNN_SAMPLE_REPETITION_PENALTY] = {"repetition_penalty", 1, {0, 10, 1, 0}, ""},
    [CHARRNN_SAMPLE_PRESENCE_PENALTY] = {"presence_penalty", 1, {-2, 2, 0, 0}, ""}, /* OpenAI's */
    [CHARRNN_SAMPLE_FREQUENCY_PENALTY] = {"frequency_penalty", 1, {-2, 2, 0, 0}, ""},
    [CHARRNN_SAMPLE_PENALTY_WINDOW] = {"penalty_window",
                                       1,
                                       {1, CHARRNN_MAX_PENALTY_WINDOW, 0, 1},
                                       " characters"},
    /* The pattern's bytes (the limits of its automaton need the model). */
    [CHARRNN_SAMPLE_REGEX] = {"regex", 1, {1, CHARRNN_REGEX_MAX_LEN, 0, 1}, " bytes"},
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
    int whole = !l->integer || !isfinite(v) || v == floor(v);
    int low_ok = l->lo_open ? v > l->lo : v >= l->lo;
    if (whole && low_ok && v <= l->hi && isfinite(v))
        return CHARRNN_OK; /* before any formatting: this runs per logit_bias entry */
    char val[32], lo[32], hi[32];
    format_number(v, val, sizeof val);
    if (!whole)
        return charrnn_fail(err, errlen, CHARRNN_ERANGE, "%s is not an integer", val);
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
    if (len < 1 || len > CHARRNN_MAX_STOP_LEN)
        return charrnn_fail(err, errlen, CHARRNN_ERANGE,
                            "a string of %zu bytes is out of range 1..%d", len,
                            CHARRNN_MAX_STOP_LEN);
    /* Generated text is whole characters of valid UTF-8, so a valid stop can
     * only match from a character's first byte to a character's last: the
     * text cut at it stays whole characters. A stray byte could match inside
     * a character and cut it. */
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        int k = charrnn_utf8_decode((const uint8_t *)s + i, len - i, &cp);
        if (k == 0)
            return charrnn_fail(err, errlen, CHARRNN_EINVAL,
                                "a string that is not valid UTF-8 (byte %zu of %zu, 0x%02x)", i + 1,
                                len, (unsigned char)s[i]);
        i += (size_t)k;
    }
    return CHARRNN_OK;
}

int charrnn_sample_params_check(const charrnn_sample_params *p, charrnn_sample_field *field,
                                char *err, size_t errlen)
{
    const struct {
        charrnn_sample_field f;
        double v;
    } numbers[] = {
        {CHARRNN_SAMPLE_LENGTH, (double)p->length},
        {CHARRNN_SAMPLE_TEMPERATURE, p->temperature},
        {CHARRNN_SAMPLE_TOP_K, p->top_k},
        {CHARRNN_SAMPLE_TOP_P, p->top_p},
        {CHARRNN_SAMPLE_STOP, (double)p->n_stop},
        {CHARRNN_SAMPLE_MIN_P, p->min_p},
        {CHARRNN_SAMPLE_REPETITION_PENALTY, p->repetition_penalty},
        {CHARRNN_SAMPLE_PRESENCE_PENALTY, p->presence_penalty},
        {CHARRNN_SAMPLE_FREQUENCY_PENALTY, p->frequency_penalty},
        {CHARRNN_SAMPLE_PENALTY_WINDOW, p->penalty_window},
    };
    char why[CHARRNN_ERR_MAX];
    charrnn_sample_field bad = CHARRNN_SAMPLE_NONE;
    /* length 0 is a scoring stream: the prime's log-probabilities only */
    int scoring = p->length == 0 && ((p->logprobs && p->score_prime) || p->inspect);
    for (size_t i = scoring ? 1 : 0; i < sizeof numbers / sizeof numbers[0] && !bad; i++)
        if (charrnn_sample_check_number(numbers[i].f, numbers[i].v, why, sizeof why))
            bad = numbers[i].f;
    for (size_t i = 0; i < p->n_stop && !bad; i++)
        if (charrnn_sample_check_stop(p->stop[i], why, sizeof why))
            bad = CHARRNN_SAMPLE_STOP;
    if (!bad && p->regex &&
        charrnn_sample_check_number(CHARRNN_SAMPLE_REGEX, (double)strlen(p->regex), why,
                                    sizeof why))
        bad = CHARRNN_SAMPLE_REGEX;
    if (!bad && p->logprobs &&
        charrnn_sample_check_number(CHARRNN_SAMPLE_LOGPROBS, p->top_logprobs, why, sizeof why))
        bad = CHARRNN_SAMPLE_LOGPROBS;
    /* Distinct ids in one pass over a bit per possible id: a request may
     * carry thousands of entries, and this runs for every stream. */
    uint64_t seen[CHARRNN_MAX_VOCAB / 64] = {0};
    for (size_t i = 0; i < p->n_bias && !bad; i++) {
        int id = p->bias_id[i];
        if (charrnn_sample_check_number(CHARRNN_SAMPLE_LOGIT_BIAS, p->bias_val[i], why, sizeof why))
            bad = CHARRNN_SAMPLE_LOGIT_BIAS;
        else if (id < 0 || id >= CHARRNN_MAX_VOCAB)
            snprintf(why, sizeof why,
                     "character id %d is out of range 0..%d (no vocabulary is larger)", id,
                     CHARRNN_MAX_VOCAB - 1);
        else if (seen[id / 64] & (UINT64_C(1) << (id % 64)))
            snprintf(why, sizeof why, "character id %d appears twice", id);
        else {
            seen[id / 64] |= UINT64_C(1) << (id % 64);
            continue;
        }
        bad = CHARRNN_SAMPLE_LOGIT_BIAS;
    }
    if (field)
        *field = bad;
    if (!bad)
        return CHARRNN_OK;
    return charrnn_fail(err, errlen, CHARRNN_ERANGE, "%s: %s", charrnn_sample_field_name(bad), why);
}

int charrnn_sample_params_check_model(const charrnn_sample_params *p, const charrnn_model *m,
                                      charrnn_sample_field *field, char *err, size_t errlen)
{
    int rc = charrnn_sample_params_check(p, field, err, errlen);
    if (rc)
        return rc;
    const int V = m->cfg.vocab_size;
    charrnn_sample_field bad = CHARRNN_SAMPLE_NONE;
    char why[CHARRNN_ERR_MAX];
    if (p->logprobs && p->top_logprobs > V) {
        snprintf(why, sizeof why, "%d is more than the vocabulary's %d characters", p->top_logprobs,
                 V);
        bad = CHARRNN_SAMPLE_LOGPROBS;
    }
    unsigned char *seen = p->n_bias ? calloc((size_t)V, 1) : NULL;
    if (p->n_bias && !seen)
        return charrnn_fail(err, errlen, CHARRNN_ENOMEM, "out of memory");
    for (size_t i = 0; i < p->n_bias && !bad; i++) {
        int id = p->bias_id[i];
        if (id < 0 || id >= V)
            snprintf(why, sizeof why, "character id %d is out of range 0..%d (the vocabulary)", id,
                     V - 1);
        else if (seen[id]++)
            snprintf(why, sizeof why, "character id %d appears twice", id);
        else
            continue;
        bad = CHARRNN_SAMPLE_LOGIT_BIAS;
    }
    free(seen);
    if (field)
        *field = bad;
    if (!bad)
        return CHARRNN_OK;
    return charrnn_fail(err, errlen, CHARRNN_ERANGE, "%s: %s", charrnn_sample_field_name(bad), why);
}

float charrnn_sample_top_p(double v)
{
    float f = (float)v;
    return f > 0.0f ? f : FLT_TRUE_MIN;
}

/* POST /sample bodies (sample_request.h). */
#include "sample_request.h"

#include "charrnn/status.h"
#include "store.h"

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define INVALID "invalid_request_error"

static char *dup_n(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

void sample_request_clear(sample_request *r)
{
    free(r->model);
    free(r->prime);
    for (size_t i = 0; i < r->p.n_stop; i++)
        free(r->stop[i]);
    free(r->stop);
    free(r->regex);
    memset(r, 0, sizeof *r);
}

int sample_number_member(const cJSON *v, charrnn_sample_field f, charrnn_sample_params *p,
                         api_error *err)
{
    double d;
    if (json_get_sample_number(v, f, &d, err))
        return -1;
    switch (f) {
    case CHARRNN_SAMPLE_TEMPERATURE: p->temperature = (float)d; break;
    case CHARRNN_SAMPLE_TOP_K: p->top_k = (int)d; break;
    case CHARRNN_SAMPLE_TOP_P: p->top_p = charrnn_sample_top_p(d); break;
    case CHARRNN_SAMPLE_MIN_P: p->min_p = (float)d; break;
    case CHARRNN_SAMPLE_REPETITION_PENALTY: p->repetition_penalty = (float)d; break;
    case CHARRNN_SAMPLE_PRESENCE_PENALTY: p->presence_penalty = (float)d; break;
    case CHARRNN_SAMPLE_FREQUENCY_PENALTY: p->frequency_penalty = (float)d; break;
    case CHARRNN_SAMPLE_PENALTY_WINDOW: p->penalty_window = (int)d; break;
    default:
        return api_fail(err, 500, "server_error", NULL, "no sampling field for '%s'", v->string);
    }
    return 0;
}

int sample_regex_member(const cJSON *v, span src, char **out, api_error *err)
{
    char why[CHARRNN_ERR_MAX];
    if (!cJSON_IsString(v))
        return api_fail(err, 400, INVALID, "regex", "'%s' must be a string (a pattern)", v->string);
    if (json_has_nul(src))
        return api_fail(err, 400, INVALID, "regex", "'%s' contains U+0000, which is not supported",
                        v->string);
    if (charrnn_sample_check_number(CHARRNN_SAMPLE_REGEX, (double)strlen(v->valuestring), why,
                                    sizeof why))
        return api_fail(err, 400, INVALID, "regex", "'%s': %s", v->string, why);
    char *copy = strdup(v->valuestring);
    if (!copy)
        return api_fail(err, 500, "server_error", NULL, "out of memory");
    free(*out);
    *out = copy;
    return 0;
}

static int oom(api_error *err)
{
    return api_fail(err, 500, "server_error", NULL, "out of memory");
}

typedef struct sample_ctx {
    const serve_config *cfg;
    sample_request *r;
} sample_ctx;

static int parse_model(void *ctx, const cJSON *v, span src, api_error *err)
{
    sample_ctx *c = ctx;
    if (!cJSON_IsString(v))
        return api_fail(err, 400, INVALID, "model", "'model' must be a string");
    if (!store_name_valid(v->valuestring))
        return api_fail(err, 400, INVALID, "model",
                        "'model' must be a model name ([A-Za-z0-9._-]+, not starting "
                        "with '.', at most %d characters)",
                        STORE_NAME_MAX);
    return (c->r->model = strdup(v->valuestring)) ? 0 : oom(err);
}

static int parse_prime(void *ctx, const cJSON *v, span src, api_error *err)
{
    sample_ctx *c = ctx;
    if (!cJSON_IsString(v))
        return api_fail(err, 400, INVALID, "prime", "'prime' must be a string");
    size_t n = strlen(v->valuestring);
    size_t chars = utf8_chars(v->valuestring, n);
    if ((long)chars > c->cfg->max_prime)
        return api_fail(err, 400, INVALID, "prime",
                        "'prime' is %zu characters long; the limit is %ld", chars,
                        c->cfg->max_prime);
    free(c->r->prime);
    if (!(c->r->prime = dup_n(v->valuestring, n)))
        return oom(err);
    c->r->p.prime_len = n;
    return 0;
}

static int parse_length(void *ctx, const cJSON *v, span src, api_error *err)
{
    sample_ctx *c = ctx;
    double d;
    if (json_get_sample_number(v, CHARRNN_SAMPLE_LENGTH, &d, err))
        return -1;
    if (d > (double)c->cfg->max_length)
        return api_fail(err, 400, INVALID, "length", "'length': %.0f is more than the limit of %ld",
                        d, c->cfg->max_length);
    c->r->p.length = (size_t)d;
    return 0;
}

static int parse_seed(void *ctx, const cJSON *v, span src, api_error *err)
{
    sample_ctx *c = ctx;
    if (json_get_seed(v, src, &c->r->p.seed, err))
        return -1;
    c->r->has_seed = 1;
    return 0;
}

static int parse_stop(void *ctx, const cJSON *v, span src, api_error *err)
{
    sample_ctx *c = ctx;
    sample_request *r = c->r;
    char why[CHARRNN_ERR_MAX];
    if (!cJSON_IsArray(v))
        return api_fail(err, 400, INVALID, "stop", "'stop' must be an array of strings");
    int n = cJSON_GetArraySize(v);
    if (charrnn_sample_check_number(CHARRNN_SAMPLE_STOP, n, why, sizeof why))
        return api_fail(err, 400, INVALID, "stop", "'stop': %s", why);
    if (n > 0 && !(r->stop = calloc((size_t)n, sizeof *r->stop)))
        return oom(err);
    const cJSON *it;
    cJSON_ArrayForEach(it, v)
    {
        if (!cJSON_IsString(it))
            return api_fail(err, 400, INVALID, "stop", "'stop' must be an array of strings");
        if (charrnn_sample_check_stop(it->valuestring, why, sizeof why))
            return api_fail(err, 400, INVALID, "stop", "'stop': %s", why);
        if (!(r->stop[r->p.n_stop] = strdup(it->valuestring)))
            return oom(err);
        r->p.n_stop++;
    }
    return 0;
}

static int parse_stream(void *ctx, const cJSON *v, span src, api_error *err)
{
    sample_ctx *c = ctx;
    if (!cJSON_IsBool(v))
        return api_fail(err, 400, INVALID, "stream", "'stream' must be a boolean");
    c->r->stream = cJSON_IsTrue(v);
    return 0;
}

static int parse_logprobs(void *ctx, const cJSON *v, span src, api_error *err)
{
    sample_ctx *c = ctx;
    double d; /* the upper bound is the model's vocabulary size, checked by the sampler */
    if (json_get_sample_number(v, CHARRNN_SAMPLE_LOGPROBS, &d, err))
        return -1;
    c->r->logprobs = (int)d;
    return 0;
}

static int parse_regex(void *ctx, const cJSON *v, span src, api_error *err)
{
    sample_ctx *c = ctx;
    return sample_regex_member(v, src, &c->r->regex, err);
}

/* The fields of /sample (sample_field). */
static const sample_field sample_rows[] = {
    {"model", .parse = parse_model, .no_nul = 1},
    {"prime", .parse = parse_prime, .no_nul = 1},
    {"length", .parse = parse_length},
    {"temperature", .number = CHARRNN_SAMPLE_TEMPERATURE},
    {"seed", .parse = parse_seed},
    {"top_k", .number = CHARRNN_SAMPLE_TOP_K},
    {"top_p", .number = CHARRNN_SAMPLE_TOP_P},
    {"stop", .parse = parse_stop, .no_nul = 1},
    {"stream", .parse = parse_stream},
    {"logprobs", .parse = parse_logprobs},
    {"min_p", .number = CHARRNN_SAMPLE_MIN_P},
    {"repetition_penalty", .number = CHARRNN_SAMPLE_REPETITION_PENALTY},
    {"presence_penalty", .number = CHARRNN_SAMPLE_PRESENCE_PENALTY},
    {"frequency_penalty", .number = CHARRNN_SAMPLE_FREQUENCY_PENALTY},
    {"penalty_window", .number = CHARRNN_SAMPLE_PENALTY_WINDOW},
    {"best_of", .lo = 1, .hi = SAMPLE_MAX_BEST_OF, .int_at = offsetof(sample_request, best_of)},
    {"regex", .parse = parse_regex},
};
#define NFIELDS (sizeof sample_rows / sizeof sample_rows[0])

void sample_field_names(const sample_field *rows, size_t n, const char **names)
{
    for (size_t i = 0; i < n; i++)
        names[i] = rows[i].name;
}

int sample_field_member(const sample_field *rows, void *req, charrnn_sample_params *p, void *ctx,
                        const cJSON *v, span src, api_error *err)
{
    const sample_field *row = rows;
    while (strcmp(row->name, v->string))
        row++;
    if (row->no_nul && json_has_nul(src))
        return api_fail(err, 400, INVALID, row->name,
                        "'%s' contains U+0000, which is not supported", row->name);
    if (row->parse)
        return row->parse(ctx, v, src, err);
    if (row->number != CHARRNN_SAMPLE_NONE)
        return sample_number_member(v, row->number, p, err);
    double d;
    if (json_get_int(v, row->name, row->lo, row->hi, &d, err))
        return -1;
    *(int *)((char *)req + row->int_at) = (int)d;
    return 0;
}

static int sample_member(void *ctx, const cJSON *v, span src, api_error *err)
{
    sample_ctx *c = ctx;
    return sample_field_member(sample_rows, c->r, &c->r->p, c, v, src, err);
}

int sample_request_parse(const char *body, size_t len, const serve_config *cfg, sample_request *r,
                         api_error *err)
{
    memset(r, 0, sizeof *r);
    r->p = charrnn_sample_defaults();
    r->logprobs = -1;
    r->best_of = 1;
    if ((long)r->p.length > cfg->max_length)
        r->p.length = (size_t)cfg->max_length;
    if (!(r->prime = strdup("")))
        return oom(err);
    const char *names[NFIELDS];
    sample_field_names(sample_rows, NFIELDS, names);
    sample_ctx c = {cfg, r};
    int rc = json_object_parse(body, len, names, NFIELDS, sample_member, &c, err);
    if (!rc && r->logprobs >= 0)
        rc = logprob_budget_check(cfg, r->p.length, r->logprobs, "logprobs", err);
    if (!rc && cfg->max_choices > 0 && r->best_of > cfg->max_choices)
        rc = api_fail(err, 400, INVALID, "best_of",
                      "best_of %d is more than the %d candidates one request may run "
                      "(--max-choices-per-request)",
                      r->best_of, cfg->max_choices);
    if (!rc && r->best_of > 1 && r->stream)
        rc = api_fail(err, 400, INVALID, "best_of",
                      "'best_of' cannot be used with stream: the candidates are ranked once "
                      "they are complete");
    if (rc) {
        sample_request_clear(r);
        return rc;
    }
    r->p.prime = r->prime;
    r->p.stop = (const char *const *)r->stop;
    r->p.regex = r->regex;
    r->p.logprobs = r->logprobs >= 0;
    r->p.top_logprobs = r->logprobs >= 0 ? r->logprobs : 0;
    return 0;
}

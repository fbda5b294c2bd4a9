/* POST /sample bodies (sample_request.h). */
#include "sample_request.h"

#include "charrnn/status.h"
#include "store.h"

#include <cjson/cJSON.h>
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

static int parse_model(const cJSON *v, span src, sample_ctx *c, api_error *err)
{
    (void)src;
    if (!cJSON_IsString(v))
        return api_fail(err, 400, INVALID, "model", "'model' must be a string");
    if (!store_name_valid(v->valuestring))
        return api_fail(err, 400, INVALID, "model",
                        "'model' must be a model name ([A-Za-z0-9._-]+, not starting "
                        "with '.', at most %d characters)",
                        STORE_NAME_MAX);
    return (c->r->model = strdup(v->valuestring)) ? 0 : oom(err);
}

static int parse_prime(const cJSON *v, span src, sample_ctx *c, api_error *err)
{
    (void)src;
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

static int parse_length(const cJSON *v, span src, sample_ctx *c, api_error *err)
{
    (void)src;
    double d;
    if (json_get_sample_number(v, CHARRNN_SAMPLE_LENGTH, &d, err))
        return -1;
    if (d > (double)c->cfg->max_length)
        return api_fail(err, 400, INVALID, "length", "'length': %.0f is more than the limit of %ld",
                        d, c->cfg->max_length);
    c->r->p.length = (size_t)d;
    return 0;
}

static int parse_seed(const cJSON *v, span src, sample_ctx *c, api_error *err)
{
    if (json_get_seed(v, src, &c->r->p.seed, err))
        return -1;
    c->r->has_seed = 1;
    return 0;
}

static int parse_stop(const cJSON *v, span src, sample_ctx *c, api_error *err)
{
    (void)src;
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

static int parse_stream(const cJSON *v, span src, sample_ctx *c, api_error *err)
{
    (void)src;
    if (!cJSON_IsBool(v))
        return api_fail(err, 400, INVALID, "stream", "'stream' must be a boolean");
    c->r->stream = cJSON_IsTrue(v);
    return 0;
}

static int parse_logprobs(const cJSON *v, span src, sample_ctx *c, api_error *err)
{
    (void)src;
    double d; /* the upper bound is the model's vocabulary size, checked by the sampler */
    if (json_get_sample_number(v, CHARRNN_SAMPLE_LOGPROBS, &d, err))
        return -1;
    c->r->logprobs = (int)d;
    return 0;
}

static int parse_best_of(const cJSON *v, span src, sample_ctx *c, api_error *err)
{
    (void)src;
    double d;
    if (json_get_int(v, "best_of", 1, SAMPLE_MAX_BEST_OF, &d, err))
        return -1;
    c->r->best_of = (int)d;
    return 0;
}

static int parse_regex(const cJSON *v, span src, sample_ctx *c, api_error *err)
{
    return sample_regex_member(v, src, &c->r->regex, err);
}

/* The fields of /sample, in the order the unknown-field error lists them.
 * A row without a parse function is a plain sampling number
 * (sample_number_member). no_nul: a \u0000 in the value is a 400 before
 * anything else (cJSON would cut the string there). */
static const struct sample_row {
    const char *name;
    int (*parse)(const cJSON *v, span src, sample_ctx *c, api_error *err);
    charrnn_sample_field field;
    int no_nul;
} sample_rows[] = {
    {"model", parse_model, CHARRNN_SAMPLE_NONE, 1},
    {"prime", parse_prime, CHARRNN_SAMPLE_NONE, 1},
    {"length", parse_length, CHARRNN_SAMPLE_NONE, 0},
    {"temperature", NULL, CHARRNN_SAMPLE_TEMPERATURE, 0},
    {"seed", parse_seed, CHARRNN_SAMPLE_NONE, 0},
    {"top_k", NULL, CHARRNN_SAMPLE_TOP_K, 0},
    {"top_p", NULL, CHARRNN_SAMPLE_TOP_P, 0},
    {"stop", parse_stop, CHARRNN_SAMPLE_NONE, 1},
    {"stream", parse_stream, CHARRNN_SAMPLE_NONE, 0},
    {"logprobs", parse_logprobs, CHARRNN_SAMPLE_NONE, 0},
    {"min_p", NULL, CHARRNN_SAMPLE_MIN_P, 0},
    {"repetition_penalty", NULL, CHARRNN_SAMPLE_REPETITION_PENALTY, 0},
    {"presence_penalty", NULL, CHARRNN_SAMPLE_PRESENCE_PENALTY, 0},
    {"frequency_penalty", NULL, CHARRNN_SAMPLE_FREQUENCY_PENALTY, 0},
    {"penalty_window", NULL, CHARRNN_SAMPLE_PENALTY_WINDOW, 0},
    {"best_of", parse_best_of, CHARRNN_SAMPLE_NONE, 0},
    {"regex", parse_regex, CHARRNN_SAMPLE_NONE, 0},
};
#define NFIELDS (sizeof sample_rows / sizeof sample_rows[0])

/* json_object_parse has checked the name against the table's */
static int sample_member(void *ctx, const cJSON *v, span src, api_error *err)
{
    sample_ctx *c = ctx;
    const struct sample_row *row = sample_rows;
    while (strcmp(row->name, v->string))
        row++;
    if (row->no_nul && json_has_nul(src))
        return api_fail(err, 400, INVALID, row->name,
                        "'%s' contains U+0000, which is not supported", row->name);
    return row->parse ? row->parse(v, src, c, err)
                      : sample_number_member(v, row->field, &c->r->p, err);
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
    for (size_t i = 0; i < NFIELDS; i++)
        names[i] = sample_rows[i].name;
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

/* POST /sample bodies (sample_request.h). */
#include "sample_request.h"

#include "charrnn/status.h"
#include "store.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define INVALID "invalid_request_error"

static const char *const sample_fields[] = {"model",
                                            "prime",
                                            "length",
                                            "temperature",
                                            "seed",
                                            "top_k",
                                            "top_p",
                                            "stop",
                                            "stream",
                                            "logprobs",
                                            "min_p",
                                            "repetition_penalty",
                                            "presence_penalty",
                                            "frequency_penalty",
                                            "penalty_window",
                                            "best_of",
                                            "regex"};
#define NFIELDS (sizeof sample_fields / sizeof sample_fields[0])

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

int sample_penalty_member(const cJSON *v, charrnn_sample_params *p, api_error *err)
{
    static const struct {
        const char *name;
        charrnn_sample_field f;
    } pen[] = {{"repetition_penalty", CHARRNN_SAMPLE_REPETITION_PENALTY},
               {"presence_penalty", CHARRNN_SAMPLE_PRESENCE_PENALTY},
               {"frequency_penalty", CHARRNN_SAMPLE_FREQUENCY_PENALTY},
               {"penalty_window", CHARRNN_SAMPLE_PENALTY_WINDOW}};
    float *dst[] = {&p->repetition_penalty, &p->presence_penalty, &p->frequency_penalty};
    for (size_t i = 0; i < sizeof pen / sizeof pen[0]; i++) {
        if (strcmp(v->string, pen[i].name))
            continue;
        double d;
        if (json_get_sample_number(v, pen[i].f, &d, err))
            return -1;
        if (pen[i].f == CHARRNN_SAMPLE_PENALTY_WINDOW)
            p->penalty_window = (int)d;
        else
            *dst[i] = (float)d;
        return 0;
    }
    return api_fail(err, 400, INVALID, v->string, "unknown field '%s'", v->string);
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

static int parse_member(const cJSON *v, span src, const serve_config *cfg, sample_request *r,
                        api_error *err)
{
    const char *k = v->string;
    double d;
    if ((!strcmp(k, "prime") || !strcmp(k, "stop") || !strcmp(k, "model")) && json_has_nul(src))
        return api_fail(err, 400, INVALID, k, "'%s' contains U+0000, which is not supported", k);
    if (!strcmp(k, "model")) {
        if (!cJSON_IsString(v))
            return api_fail(err, 400, INVALID, k, "'model' must be a string");
        if (!store_name_valid(v->valuestring))
            return api_fail(err, 400, INVALID, k,
                            "'model' must be a model name ([A-Za-z0-9._-]+, not starting "
                            "with '.', at most %d characters)",
                            STORE_NAME_MAX);
        if (!(r->model = strdup(v->valuestring)))
            goto oom;
    } else if (!strcmp(k, "prime")) {
        if (!cJSON_IsString(v))
            return api_fail(err, 400, INVALID, k, "'prime' must be a string");
        size_t n = strlen(v->valuestring);
        size_t chars = utf8_chars(v->valuestring, n);
        if ((long)chars > cfg->max_prime)
            return api_fail(err, 400, INVALID, k,
                            "'prime' is %zu characters long; the limit is %ld", chars,
                            cfg->max_prime);
        free(r->prime);
        if (!(r->prime = dup_n(v->valuestring, n)))
            goto oom;
        r->p.prime_len = n;
    } else if (!strcmp(k, "length")) {
        if (json_get_sample_number(v, CHARRNN_SAMPLE_LENGTH, &d, err))
            return -1;
        if (d > (double)cfg->max_length)
            return api_fail(err, 400, INVALID, k, "'length': %.0f is more than the limit of %ld", d,
                            cfg->max_length);
        r->p.length = (size_t)d;
    } else if (!strcmp(k, "temperature")) {
        if (json_get_sample_number(v, CHARRNN_SAMPLE_TEMPERATURE, &d, err))
            return -1;
        r->p.temperature = (float)d;
    } else if (!strcmp(k, "seed")) {
        if (json_get_seed(v, src, &r->p.seed, err))
            return -1;
        r->has_seed = 1;
    } else if (!strcmp(k, "top_k")) {
        if (json_get_sample_number(v, CHARRNN_SAMPLE_TOP_K, &d, err))
            return -1;
        r->p.top_k = (int)d;
    } else if (!strcmp(k, "top_p")) {
        if (json_get_sample_number(v, CHARRNN_SAMPLE_TOP_P, &d, err))
            return -1;
        r->p.top_p = charrnn_sample_top_p(d);
    } else if (!strcmp(k, "min_p")) {
        if (json_get_sample_number(v, CHARRNN_SAMPLE_MIN_P, &d, err))
            return -1;
        r->p.min_p = (float)d;
    } else if (!strcmp(k, "repetition_penalty") || !strcmp(k, "presence_penalty") ||
               !strcmp(k, "frequency_penalty") || !strcmp(k, "penalty_window")) {
        if (sample_penalty_member(v, &r->p, err))
            return -1;
    } else if (!strcmp(k, "regex")) {
        return sample_regex_member(v, src, &r->regex, err);
    } else if (!strcmp(k, "stop")) {
        char why[CHARRNN_ERR_MAX];
        if (!cJSON_IsArray(v))
            return api_fail(err, 400, INVALID, k, "'stop' must be an array of strings");
        int n = cJSON_GetArraySize(v);
        if (charrnn_sample_check_number(CHARRNN_SAMPLE_STOP, n, why, sizeof why))
            return api_fail(err, 400, INVALID, k, "'stop': %s", why);
        if (n > 0 && !(r->stop = calloc((size_t)n, sizeof *r->stop)))
            goto oom;
        const cJSON *it;
        cJSON_ArrayForEach(it, v)
        {
            if (!cJSON_IsString(it))
                return api_fail(err, 400, INVALID, k, "'stop' must be an array of strings");
            if (charrnn_sample_check_stop(it->valuestring, why, sizeof why))
                return api_fail(err, 400, INVALID, k, "'stop': %s", why);
            if (!(r->stop[r->p.n_stop] = strdup(it->valuestring)))
                goto oom;
            r->p.n_stop++;
        }
    } else if (!strcmp(k, "stream")) {
        if (!cJSON_IsBool(v))
            return api_fail(err, 400, INVALID, k, "'stream' must be a boolean");
        r->stream = cJSON_IsTrue(v);
    } else if (!strcmp(k, "best_of")) {
        if (json_get_int(v, k, 1, SAMPLE_MAX_BEST_OF, &d, err))
            return -1;
        r->best_of = (int)d;
    } else if (!strcmp(k, "logprobs")) {
        /* the upper bound is the model's vocabulary size, checked by the sampler */
        if (json_get_sample_number(v, CHARRNN_SAMPLE_LOGPROBS, &d, err))
            return -1;
        r->logprobs = (int)d;
    }
    return 0;
oom:
    return api_fail(err, 500, "server_error", NULL, "out of memory");
}
typedef struct sample_ctx {
    const serve_config *cfg;
    sample_request *r;
} sample_ctx;

static int sample_member(void *ctx, const cJSON *v, span src, api_error *err)
{
    sample_ctx *c = ctx;
    return parse_member(v, src, c->cfg, c->r, err);
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
        return api_fail(err, 500, "server_error", NULL, "out of memory");
    sample_ctx c = {cfg, r};
    int rc = json_object_parse(body, len, sample_fields, NFIELDS, sample_member, &c, err);
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

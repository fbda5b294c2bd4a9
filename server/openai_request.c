/* Parsing of /v1/completions bodies (openai_request.h). A field that is not
 * implemented (suffix) is accepted at its neutral value only, so a client
 * never gets silently different behaviour from what it asked for. */
#include "openai_request.h"

#include "echo.h"

#include "store.h"
#include "charrnn/status.h"
#include "charrnn/vocab.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define INVALID "invalid_request_error"

typedef struct v1_ctx {
    const serve_config *cfg;
    completion_request *r;
    int has_stream_options;
} v1_ctx;

static int oom(api_error *err)
{
    return api_fail(err, 500, "server_error", NULL, "out of memory");
}

static int add_prompt(completion_request *r, const cJSON *s, const serve_config *cfg,
                      api_error *err)
{
    size_t n = strlen(s->valuestring), chars = utf8_chars(s->valuestring, n);
    if ((long)chars > cfg->max_prime)
        return api_fail(err, 400, INVALID, "prompt",
                        "'prompt' is %zu characters long; the limit is %ld", chars, cfg->max_prime);
    if (!(r->prompt[r->n_prompt] = strdup(s->valuestring)))
        return oom(err);
    r->prompt_len[r->n_prompt++] = n;
    return 0;
}

static int parse_prompt(completion_request *r, const cJSON *v, span src, const serve_config *cfg,
                        api_error *err)
{
    int n = cJSON_IsArray(v) ? cJSON_GetArraySize(v) : 1;
    if (!cJSON_IsString(v) && !cJSON_IsArray(v))
        return api_fail(err, 400, INVALID, "prompt",
                        "'prompt' must be a string or an array of "
                        "strings");
    if (n < 1 || n > V1_MAX_PROMPTS)
        return api_fail(err, 400, INVALID, "prompt", "'prompt' must hold 1..%d strings",
                        V1_MAX_PROMPTS);
    if (json_has_nul(src))
        return api_fail(err, 400, INVALID, "prompt",
                        "'prompt' contains U+0000, which is not supported");
    r->prompt = calloc((size_t)n, sizeof *r->prompt);
    r->prompt_len = calloc((size_t)n, sizeof *r->prompt_len);
    if (!r->prompt || !r->prompt_len)
        return oom(err);
    if (cJSON_IsString(v))
        return add_prompt(r, v, cfg, err);
    const cJSON *it;
    cJSON_ArrayForEach(it, v)
    {
        if (!cJSON_IsString(it))
            return api_fail(err, 400, INVALID, "prompt",
                            "'prompt' must be a string or an array of strings (token-id "
                            "prompts are not supported: send the characters)");
        if (add_prompt(r, it, cfg, err))
            return -1;
    }
    return 0;
}

static int parse_stop(completion_request *r, const cJSON *v, span src, api_error *err)
{
    int n = cJSON_IsArray(v) ? cJSON_GetArraySize(v) : 1;
    if (!cJSON_IsString(v) && !cJSON_IsArray(v))
        return api_fail(err, 400, INVALID, "stop",
                        "'stop' must be a string or an array of "
                        "strings");
    if (json_has_nul(src)) /* cJSON would cut the string there: a different stop */
        return api_fail(err, 400, INVALID, "stop",
                        "'stop' contains U+0000, which is not supported");
    if (n > V1_MAX_STOP)
        return api_fail(err, 400, INVALID, "stop", "'stop' has %d strings; the limit is %d", n,
                        V1_MAX_STOP);
    if (n > 0 && !(r->stop = calloc((size_t)n, sizeof *r->stop)))
        return oom(err);
    const cJSON *single[1] = {v};
    const cJSON *it = cJSON_IsArray(v) ? v->child : single[0];
    for (int i = 0; i < n; i++, it = it->next) {
        if (!cJSON_IsString(it))
            return api_fail(err, 400, INVALID, "stop",
                            "'stop' must be a string or an array of "
                            "strings");
        char why[CHARRNN_ERR_MAX];
        if (charrnn_sample_check_stop(it->valuestring, why, sizeof why))
            return api_fail(err, 400, INVALID, "stop", "'stop': %s", why);
        if (!(r->stop[r->p.n_stop] = strdup(it->valuestring)))
            return oom(err);
        r->p.n_stop++;
        if (!cJSON_IsArray(v))
            break;
    }
    return 0;
}

/* {"<character id>": bias, ...}: ids as the vocabulary orders them (GET
 * /models/{name} gives the size; the range is checked against the model). */
static int parse_logit_bias(completion_request *r, const cJSON *v, api_error *err)
{
    char shown[48];
    if (!cJSON_IsObject(v))
        return api_fail(err, 400, INVALID, "logit_bias",
                        "'logit_bias' must be an object of character id to bias");
    int n = cJSON_GetArraySize(v);
    if (n > CHARRNN_MAX_VOCAB)
        return api_fail(err, 400, INVALID, "logit_bias", "'logit_bias' has too many entries");
    r->bias_id = calloc((size_t)(n ? n : 1), sizeof *r->bias_id);
    r->bias_val = calloc((size_t)(n ? n : 1), sizeof *r->bias_val);
    if (!r->bias_id || !r->bias_val)
        return oom(err);
    const cJSON *it;
    cJSON_ArrayForEach(it, v)
    {
        const char *k = it->string;
        size_t kl = strlen(k);
        int ok = kl >= 1 && kl <= 5;
        for (size_t i = 0; ok && i < kl; i++)
            ok = k[i] >= '0' && k[i] <= '9';
        if (!ok)
            return api_fail(err, 400, INVALID, "logit_bias",
                            "'logit_bias' keys must be character ids (decimal integers), got "
                            "'%s'",
                            echo_str(shown, sizeof shown, k));
        double d;
        if (json_get_sample_number(it, CHARRNN_SAMPLE_LOGIT_BIAS, &d, err))
            return -1;
        r->bias_id[r->p.n_bias] = atoi(k);
        r->bias_val[r->p.n_bias++] = (float)d;
    }
    return 0;
}

static int v1_model(void *ctx, const cJSON *v, span src, api_error *err)
{
    v1_ctx *c = ctx;
    char shown[208];
    if (!cJSON_IsString(v))
        return api_fail(err, 400, INVALID, "model", "'model' must be a string");
    if (json_has_nul(src)) /* cJSON would cut the name there: another model */
        return api_fail(err, 400, INVALID, "model",
                        "'model' contains U+0000, which is not supported");
    if (!store_name_valid(v->valuestring))
        return api_fail(err, 404, "not_found_error", "model", "model '%s' not found",
                        echo_str(shown, sizeof shown, v->valuestring));
    return (c->r->model = strdup(v->valuestring)) ? 0 : oom(err);
}

static int v1_prompt(void *ctx, const cJSON *v, span src, api_error *err)
{
    v1_ctx *c = ctx;
    return parse_prompt(c->r, v, src, c->cfg, err);
}

static int v1_max_tokens(void *ctx, const cJSON *v, span src, api_error *err)
{
    v1_ctx *c = ctx;
    double d;
    if (json_get_int(v, "max_tokens", 0, (double)c->cfg->max_length, &d, err))
        return -1;
    c->r->p.length = (size_t)d;
    return 0;
}

/* regex, or guided_regex as vLLM spells it */
static int v1_regex(void *ctx, const cJSON *v, span src, api_error *err)
{
    v1_ctx *c = ctx;
    if (c->r->regex)
        return api_fail(err, 400, INVALID, "regex", "give 'regex' or 'guided_regex', not both");
    return sample_regex_member(v, src, &c->r->regex, err);
}

static int v1_bool(const cJSON *v, int *out, api_error *err)
{
    if (!cJSON_IsBool(v))
        return api_fail(err, 400, INVALID, v->string, "'%s' must be a boolean", v->string);
    *out = cJSON_IsTrue(v);
    return 0;
}

static int v1_stream(void *ctx, const cJSON *v, span src, api_error *err)
{
    v1_ctx *c = ctx;
    return v1_bool(v, &c->r->stream, err);
}

static int v1_echo(void *ctx, const cJSON *v, span src, api_error *err)
{
    v1_ctx *c = ctx;
    return v1_bool(v, &c->r->echo, err);
}

static int v1_stream_options(void *ctx, const cJSON *v, span src, api_error *err)
{
    v1_ctx *c = ctx;
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(v, "include_usage");
    if (!cJSON_IsObject(v) || cJSON_GetArraySize(v) != (u ? 1 : 0) || (u && !cJSON_IsBool(u)))
        return api_fail(err, 400, INVALID, "stream_options",
                        "'stream_options' must be an object with at most "
                        "'include_usage' (a boolean)");
    c->r->include_usage = u && cJSON_IsTrue(u);
    c->has_stream_options = 1;
    return 0;
}

static int v1_stop(void *ctx, const cJSON *v, span src, api_error *err)
{
    v1_ctx *c = ctx;
    return parse_stop(c->r, v, src, err);
}

static int v1_seed(void *ctx, const cJSON *v, span src, api_error *err)
{
    v1_ctx *c = ctx;
    if (json_get_seed(v, src, &c->r->seed, err))
        return -1;
    c->r->has_seed = 1;
    return 0;
}

static int v1_user(void *ctx, const cJSON *v, span src, api_error *err)
{
    v1_ctx *c = ctx;
    completion_request *r = c->r;
    if (!cJSON_IsString(v) || strlen(v->valuestring) >= sizeof r->user)
        return api_fail(err, 400, INVALID, "user", "'user' must be a string of at most %zu bytes",
                        sizeof r->user - 1);
    snprintf(r->user, sizeof r->user, "%s", v->valuestring);
    return 0;
}

static int v1_logit_bias(void *ctx, const cJSON *v, span src, api_error *err)
{
    v1_ctx *c = ctx;
    return parse_logit_bias(c->r, v, err);
}

static int v1_suffix(void *ctx, const cJSON *v, span src, api_error *err)
{
    if (!cJSON_IsString(v) || v->valuestring[0])
        return api_fail(err, 400, INVALID, "suffix",
                        "'suffix' is only supported empty (insertion is not supported)");
    return 0;
}

/* The fields of /v1/completions (sample_field). The plain sampling numbers
 * are /sample's definitions: temperature, top_p, min_p (vLLM's extension),
 * presence_penalty, frequency_penalty (OpenAI's), repetition_penalty,
 * penalty_window. */
static const sample_field v1_rows[] = {
    {"model", .parse = v1_model},
    {"prompt", .parse = v1_prompt},
    {"max_tokens", .parse = v1_max_tokens},
    {"temperature", .number = CHARRNN_SAMPLE_TEMPERATURE},
    {"top_p", .number = CHARRNN_SAMPLE_TOP_P},
    {"min_p", .number = CHARRNN_SAMPLE_MIN_P},
    {"n", .lo = 1, .hi = V1_MAX_N, .int_at = offsetof(completion_request, n)},
    {"stream", .parse = v1_stream},
    {"stream_options", .parse = v1_stream_options},
    {"logprobs", .lo = 0, .hi = V1_MAX_LOGPROBS, .int_at = offsetof(completion_request, logprobs)},
    {"echo", .parse = v1_echo},
    {"stop", .parse = v1_stop},
    {"seed", .parse = v1_seed},
    {"user", .parse = v1_user},
    {"logit_bias", .parse = v1_logit_bias},
    {"suffix", .parse = v1_suffix},
    {"best_of", .lo = 1, .hi = V1_MAX_N, .int_at = offsetof(completion_request, best_of)},
    {"presence_penalty", .number = CHARRNN_SAMPLE_PRESENCE_PENALTY},
    {"frequency_penalty", .number = CHARRNN_SAMPLE_FREQUENCY_PENALTY},
    {"repetition_penalty", .number = CHARRNN_SAMPLE_REPETITION_PENALTY},
    {"penalty_window", .number = CHARRNN_SAMPLE_PENALTY_WINDOW},
    {"regex", .parse = v1_regex},
    {"guided_regex", .parse = v1_regex},
};
#define NV1 (sizeof v1_rows / sizeof v1_rows[0])

static int v1_member(void *ctx, const cJSON *v, span src, api_error *err)
{
    v1_ctx *c = ctx;
    return sample_field_member(v1_rows, c->r, &c->r->p, c, v, src, err);
}

void completion_request_clear(completion_request *r)
{
    free(r->model);
    for (size_t i = 0; i < r->n_prompt; i++)
        free(r->prompt[i]);
    free(r->prompt);
    free(r->prompt_len);
    for (size_t i = 0; i < r->p.n_stop; i++)
        free(r->stop[i]);
    free(r->stop);
    free(r->regex);
    free(r->bias_id);
    free(r->bias_val);
    memset(r, 0, sizeof *r);
}

int completion_request_parse(const char *body, size_t len, const serve_config *cfg,
                             completion_request *r, api_error *err)
{
    memset(r, 0, sizeof *r);
    r->p = charrnn_sample_defaults();
    r->p.length = 16; /* OpenAI's default */
    if ((long)r->p.length > cfg->max_length)
        r->p.length = (size_t)cfg->max_length;
    r->n = 1;
    r->logprobs = -1;
    const char *names[NV1];
    sample_field_names(v1_rows, NV1, names);
    v1_ctx c = {cfg, r, 0};
    int rc = json_object_parse(body, len, names, NV1, v1_member, &c, err);
    if (!rc && !r->n_prompt)
        rc = api_fail(err, 400, INVALID, "prompt", "'prompt' is required");
    /* the server's per-request limit (--max-choices-per-request), within the
     * fixed one the response buffers are sized for */
    size_t max_choices = cfg->max_choices > 0 && cfg->max_choices < V1_MAX_CHOICES
        ? (size_t)cfg->max_choices
        : V1_MAX_CHOICES;
    if (!rc && r->n_prompt * (size_t)r->n > max_choices)
        rc = api_fail(err, 400, INVALID, "n",
                      "%zu prompts x n %d = %zu choices; the limit is %zu per request "
                      "(--max-choices-per-request)",
                      r->n_prompt, r->n, r->n_prompt * (size_t)r->n, max_choices);
    if (!rc && r->best_of && r->best_of < r->n)
        rc = api_fail(err, 400, INVALID, "best_of", "'best_of' (%d) must be at least n (%d)",
                      r->best_of, r->n);
    if (!rc && r->best_of > r->n && r->stream)
        rc = api_fail(err, 400, INVALID, "best_of",
                      "'best_of' cannot be used with stream: the candidates are ranked once "
                      "they are all generated");
    if (!rc && r->best_of > r->n && r->n_prompt * (size_t)r->best_of > max_choices)
        rc = api_fail(err, 400, INVALID, "best_of",
                      "%zu prompts x best_of %d = %zu candidates; the limit is %zu per request "
                      "(--max-choices-per-request)",
                      r->n_prompt, r->best_of, r->n_prompt * (size_t)r->best_of, max_choices);
    if (!rc && r->logprobs >= 0) { /* every choice: its generated characters, and the echo */
        size_t chars = 0;
        for (size_t i = 0; i < r->n_prompt; i++)
            chars += (r->p.length + (r->echo ? utf8_chars(r->prompt[i], r->prompt_len[i]) : 0)) *
                (size_t)r->n;
        rc = logprob_budget_check(cfg, chars, r->logprobs, "logprobs", err);
    }
    if (!rc && r->p.length == 0 && !r->echo)
        rc = api_fail(err, 400, INVALID, "max_tokens",
                      "'max_tokens' must be at least 1 (0 is allowed with echo, to score the "
                      "prompt)");
    if (!rc && c.has_stream_options && !r->stream)
        rc = api_fail(err, 400, INVALID, "stream_options",
                      "'stream_options' is only allowed with stream: true");
    if (rc) {
        completion_request_clear(r);
        return rc;
    }
    r->p.stop = (const char *const *)r->stop;
    r->p.regex = r->regex;
    r->p.logprobs = r->logprobs >= 0;
    r->p.top_logprobs = r->logprobs >= 0 ? r->logprobs : 0;
    r->p.score_prime = r->echo && r->logprobs >= 0; /* echo with logprobs scores the prompt */
    r->p.bias_id = r->bias_id, r->p.bias_val = r->bias_val;
    return 0;
}

charrnn_sample_params completion_choice_params(const completion_request *r, size_t i, uint64_t seed)
{
    charrnn_sample_params p = r->p;
    p.prime = r->prompt[i];
    p.prime_len = r->prompt_len[i];
    p.seed = seed;
    return p;
}

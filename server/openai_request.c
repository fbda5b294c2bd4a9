/* Parsing of /v1/completions bodies (openai_request.h). A field that is not
 * implemented (suffix) is accepted at its neutral value only, so a client
 * never gets silently different behaviour from what it asked for. */
#include "openai_request.h"

#include "echo.h"

#include "store.h"
#include "charrnn/status.h"
#include "charrnn/vocab.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define INVALID "invalid_request_error"

static const char *const v1_fields[] = {"model",
                                        "prompt",
                                        "max_tokens",
                                        "temperature",
                                        "top_p",
                                        "min_p",
                                        "n",
                                        "stream",
                                        "stream_options",
                                        "logprobs",
                                        "echo",
                                        "stop",
                                        "seed",
                                        "user",
                                        "logit_bias",
                                        "suffix",
                                        "best_of",
                                        "presence_penalty",
                                        "frequency_penalty",
                                        "repetition_penalty",
                                        "penalty_window",
                                        "regex",
                                        "guided_regex"};
#define NV1 (sizeof v1_fields / sizeof *v1_fields)

typedef struct v1_ctx {
    const serve_config *cfg;
    completion_request *r;
    int best_of; /* 0 = not given */
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

static int v1_member(void *ctx, const cJSON *v, span src, api_error *err)
{
    char shown[208];
    v1_ctx *c = ctx;
    completion_request *r = c->r;
    const char *k = v->string;
    double d;
    if (!strcmp(k, "model")) {
        if (!cJSON_IsString(v))
            return api_fail(err, 400, INVALID, k, "'model' must be a string");
        if (json_has_nul(src)) /* cJSON would cut the name there: another model */
            return api_fail(err, 400, INVALID, k,
                            "'model' contains U+0000, which is not supported");
        if (!store_name_valid(v->valuestring))
            return api_fail(err, 404, "not_found_error", k, "model '%s' not found",
                            echo_str(shown, sizeof shown, v->valuestring));
        return (r->model = strdup(v->valuestring)) ? 0 : oom(err);
    }
    if (!strcmp(k, "prompt"))
        return parse_prompt(r, v, src, c->cfg, err);
    if (!strcmp(k, "max_tokens")) {
        if (json_get_int(v, k, 0, (double)c->cfg->max_length, &d, err))
            return -1;
        r->p.length = (size_t)d;
        return 0;
    }
    if (!strcmp(k, "temperature") || !strcmp(k, "top_p")) { /* the sampler's limits */
        int t = !strcmp(k, "temperature");
        if (json_get_sample_number(v, t ? CHARRNN_SAMPLE_TEMPERATURE : CHARRNN_SAMPLE_TOP_P, &d,
                                   err))
            return -1;
        *(t ? &r->p.temperature : &r->p.top_p) = (float)d;
        return 0;
    }
    if (!strcmp(k, "min_p")) { /* vLLM's extension, the sampler's limits */
        if (json_get_sample_number(v, CHARRNN_SAMPLE_MIN_P, &d, err))
            return -1;
        r->p.min_p = (float)d;
        return 0;
    }
    if (!strcmp(k, "regex") || !strcmp(k, "guided_regex")) { /* vLLM spells it guided_regex */
        if (r->regex)
            return api_fail(err, 400, INVALID, "regex", "give 'regex' or 'guided_regex', not both");
        return sample_regex_member(v, src, &r->regex, err);
    }
    if (!strcmp(k, "n")) {
        if (json_get_int(v, k, 1, V1_MAX_N, &d, err))
            return -1;
        r->n = (int)d;
        return 0;
    }
    if (!strcmp(k, "stream") || !strcmp(k, "echo")) {
        if (!cJSON_IsBool(v))
            return api_fail(err, 400, INVALID, k, "'%s' must be a boolean", k);
        *(!strcmp(k, "stream") ? &r->stream : &r->echo) = cJSON_IsTrue(v);
        return 0;
    }
    if (!strcmp(k, "stream_options")) {
        const cJSON *u = cJSON_GetObjectItemCaseSensitive(v, "include_usage");
        if (!cJSON_IsObject(v) || cJSON_GetArraySize(v) != (u ? 1 : 0) || (u && !cJSON_IsBool(u)))
            return api_fail(err, 400, INVALID, k,
                            "'stream_options' must be an object with at most "
                            "'include_usage' (a boolean)");
        r->include_usage = u && cJSON_IsTrue(u);
        c->has_stream_options = 1;
        return 0;
    }
    if (!strcmp(k, "logprobs")) {
        if (json_get_int(v, k, 0, V1_MAX_LOGPROBS, &d, err))
            return -1;
        r->logprobs = (int)d;
        return 0;
    }
    if (!strcmp(k, "stop"))
        return parse_stop(r, v, src, err);
    if (!strcmp(k, "seed")) {
        if (json_get_seed(v, src, &r->seed, err))
            return -1;
        r->has_seed = 1;
        return 0;
    }
    if (!strcmp(k, "user")) {
        if (!cJSON_IsString(v) || strlen(v->valuestring) >= sizeof r->user)
            return api_fail(err, 400, INVALID, k, "'user' must be a string of at most %zu bytes",
                            sizeof r->user - 1);
        snprintf(r->user, sizeof r->user, "%s", v->valuestring);
        return 0;
    }
    if (!strcmp(k, "logit_bias"))
        return parse_logit_bias(r, v, err);
    if (!strcmp(k, "suffix")) {
        if (!cJSON_IsString(v) || v->valuestring[0])
            return api_fail(err, 400, INVALID, k,
                            "'suffix' is only supported empty (insertion is not supported)");
        return 0;
    }
    if (!strcmp(k, "best_of")) {
        if (json_get_int(v, k, 1, V1_MAX_N, &d, err))
            return -1;
        c->best_of = (int)d;
        return 0;
    }
    /* presence_penalty, frequency_penalty (OpenAI's), repetition_penalty,
     * penalty_window: /sample's definitions */
    return sample_penalty_member(v, &r->p, err);
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
    v1_ctx c = {cfg, r, 0, 0};
    int rc = json_object_parse(body, len, v1_fields, NV1, v1_member, &c, err);
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
    r->best_of = c.best_of;
    if (!rc && c.best_of && c.best_of < r->n)
        rc = api_fail(err, 400, INVALID, "best_of", "'best_of' (%d) must be at least n (%d)",
                      c.best_of, r->n);
    if (!rc && c.best_of > r->n && r->stream)
        rc = api_fail(err, 400, INVALID, "best_of",
                      "'best_of' cannot be used with stream: the candidates are ranked once "
                      "they are all generated");
    if (!rc && c.best_of > r->n && r->n_prompt * (size_t)c.best_of > max_choices)
        rc = api_fail(err, 400, INVALID, "best_of",
                      "%zu prompts x best_of %d = %zu candidates; the limit is %zu per request "
                      "(--max-choices-per-request)",
                      r->n_prompt, c.best_of, r->n_prompt * (size_t)c.best_of, max_choices);
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

/* POST /score bodies (score_request.h). */
#include "score_request.h"

#include "store.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#define INVALID "invalid_request_error"

static const char *const score_fields[] = {"model", "text", "top_logprobs"};

int score_request_model(const cJSON *v, char **model, api_error *err)
{
    if (!cJSON_IsString(v) || !store_name_valid(v->valuestring))
        return api_fail(err, 400, INVALID, v->string, "'model' must be a model name");
    return (*model = strdup(v->valuestring))
        ? 0
        : api_fail(err, 500, "server_error", NULL, "out of memory");
}

int score_request_text(const cJSON *v, span src, const serve_config *cfg, size_t min_chars,
                       unsigned over_status, const char *why, char **text, size_t *len,
                       api_error *err)
{
    const char *k = v->string;
    if (!cJSON_IsString(v))
        return api_fail(err, 400, INVALID, k, "'text' must be a string");
    if (json_has_nul(src))
        return api_fail(err, 400, INVALID, k, "'text' contains U+0000, which is not supported");
    size_t n = strlen(v->valuestring), chars = utf8_chars(v->valuestring, n);
    if (chars < min_chars || (long)chars > cfg->max_score_chars)
        return api_fail(err, chars < min_chars ? 400 : over_status, INVALID, k,
                        "'text' must be %zu..%ld characters long%s, got %zu", min_chars,
                        cfg->max_score_chars, why, chars);
    *len = n;
    return (*text = strdup(v->valuestring))
        ? 0
        : api_fail(err, 500, "server_error", NULL, "out of memory");
}

static int score_member(void *ctx, const cJSON *v, span src, api_error *err)
{
    score_request *r = ctx;
    const char *k = v->string;
    double d;
    if (!strcmp(k, "model"))
        return score_request_model(v, &r->model, err);
    if (!strcmp(k, "text"))
        return score_request_text(v, src, r->cfg, 2, 400, " (the first one has no log-probability)",
                                  &r->text, &r->text_len, err);
    if (json_get_int(v, k, 0, CHARRNN_MAX_VOCAB, &d, err)) /* top_logprobs */
        return -1;
    r->top_logprobs = (int)d;
    return 0;
}

void score_request_clear(score_request *r)
{
    free(r->model);
    free(r->text);
    memset(r, 0, sizeof *r);
}

int score_request_parse(const char *body, size_t len, const serve_config *cfg, score_request *r,
                        api_error *err)
{
    memset(r, 0, sizeof *r);
    r->cfg = cfg;
    int rc = json_object_parse(body, len, score_fields, sizeof score_fields / sizeof *score_fields,
                               score_member, r, err);
    if (!rc && !r->text)
        rc = api_fail(err, 400, INVALID, "text", "'text' is required");
    if (!rc)
        rc = logprob_budget_check(cfg, utf8_chars(r->text, r->text_len), r->top_logprobs,
                                  "top_logprobs", err);
    if (rc)
        score_request_clear(r);
    return rc;
}

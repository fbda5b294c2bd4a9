/* POST /inspect: one layer's state after each character of a text, or the
 * units whose state follows a feature of the text (charrnn/inspect.h), or
 * LSTMVis's span match. The text runs through the engine as a stream of
 * length 0 with a recorder (charrnn_sample_params.inspect): the same
 * forward pass as /score, batched with the other jobs, under the same
 * admission (503 when busy), timeouts and API key limits, and without the
 * store's lock (the job holds its version). */
#include "generate.h"
#include "server.h"

#include "charrnn/inspect.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define INVALID "invalid_request_error"
#define WAIT_MS 100
#define PER_FEATURE 5 /* units reported per feature */
#define MAX_SPANS 100 /* other spans a match lists */

typedef struct inspect_request {
    char *model; /* NULL = the default model */
    char *text;
    size_t text_len;
    int layer; /* 1-based; 0 = not given */
    int units[CHARRNN_INSPECT_MAX_UNITS];
    int n_units; /* 0 = not given */
    int state;   /* -1 = not given */
    unsigned find;
    int decimals;
    int has_match;
    double match_start, match_end, match_threshold;
    const serve_config *cfg;
} inspect_request;

static const char *const inspect_fields[] = {"model", "text", "layer",    "units",
                                             "state", "find", "decimals", "match"};

static int parse_units(inspect_request *r, const cJSON *v, api_error *err)
{
    int n = cJSON_IsArray(v) ? cJSON_GetArraySize(v) : -1;
    if (n < 1 || n > CHARRNN_INSPECT_MAX_UNITS)
        return api_fail(err, 400, INVALID, "units",
                        "'units' must be an array of 1..%d unit indices",
                        CHARRNN_INSPECT_MAX_UNITS);
    const cJSON *u;
    cJSON_ArrayForEach(u, v)
    {
        double d;
        if (json_get_int(u, "units", 0, 65535, &d, err))
            return -1;
        r->units[r->n_units++] = (int)d;
    }
    return 0;
}

static int parse_find(inspect_request *r, const cJSON *v, api_error *err)
{
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) < 1)
        return api_fail(err, 400, INVALID, "find",
                        "'find' must be a non-empty array of features (line_position, "
                        "word_position, quote, bracket_depth, indent)");
    const cJSON *f;
    cJSON_ArrayForEach(f, v)
    {
        int k = cJSON_IsString(f) ? charrnn_feature_parse(f->valuestring) : -1;
        if (k < 0)
            return api_fail(err, 400, INVALID, "find",
                            "unknown feature%s%s%s: the features are line_position, "
                            "word_position, quote, bracket_depth and indent",
                            cJSON_IsString(f) ? " '" : "", cJSON_IsString(f) ? f->valuestring : "",
                            cJSON_IsString(f) ? "'" : "");
        r->find |= 1u << k;
    }
    return 0;
}

static int parse_match(inspect_request *r, const cJSON *v, api_error *err)
{
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(v, "start");
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(v, "end");
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(v, "threshold");
    if (!cJSON_IsObject(v) || cJSON_GetArraySize(v) != 3 || !s || !e || !cJSON_IsNumber(t) ||
        !isfinite(t->valuedouble))
        return api_fail(err, 400, INVALID, "match",
                        "'match' must be {\"start\": i, \"end\": j, \"threshold\": x}: the "
                        "characters [start, end) and a value");
    if (json_get_int(s, "match", 0, 1e9, &r->match_start, err) ||
        json_get_int(e, "match", 1, 1e9, &r->match_end, err))
        return -1;
    if (r->match_end <= r->match_start)
        return api_fail(err, 400, INVALID, "match", "'match': end must be above start");
    r->match_threshold = t->valuedouble;
    r->has_match = 1;
    return 0;
}

static int inspect_member(void *ctx, const cJSON *v, span src, api_error *err)
{
    inspect_request *r = ctx;
    const char *k = v->string;
    double d;
    if (!strcmp(k, "model")) {
        if (!cJSON_IsString(v) || !charrnn_store_name_valid(v->valuestring))
            return api_fail(err, 400, INVALID, k, "'model' must be a model name");
        return (r->model = strdup(v->valuestring))
            ? 0
            : api_fail(err, 500, "server_error", NULL, "out of memory");
    }
    if (!strcmp(k, "text")) {
        if (!cJSON_IsString(v))
            return api_fail(err, 400, INVALID, k, "'text' must be a string");
        if (json_has_nul(src))
            return api_fail(err, 400, INVALID, k, "'text' contains U+0000, which is not supported");
        size_t n = strlen(v->valuestring), chars = utf8_chars(v->valuestring, n);
        if (chars < 1)
            return api_fail(err, 400, INVALID, k, "'text' must not be empty");
        if ((long)chars > r->cfg->max_score_chars)
            return api_fail(err, 413, INVALID, k,
                            "'text' is %zu characters long; the limit is %ld (--max-score-chars)",
                            chars, r->cfg->max_score_chars);
        r->text_len = n;
        return (r->text = strdup(v->valuestring))
            ? 0
            : api_fail(err, 500, "server_error", NULL, "out of memory");
    }
    if (!strcmp(k, "layer")) {
        if (json_get_int(v, k, 1, 1024, &d, err))
            return -1;
        r->layer = (int)d;
        return 0;
    }
    if (!strcmp(k, "units"))
        return parse_units(r, v, err);
    if (!strcmp(k, "state")) {
        if (!cJSON_IsString(v) ||
            (strcmp(v->valuestring, "cell") && strcmp(v->valuestring, "hidden")))
            return api_fail(err, 400, INVALID, k, "'state' must be \"cell\" or \"hidden\"");
        r->state = strcmp(v->valuestring, "cell") ? CHARRNN_STATE_HIDDEN : CHARRNN_STATE_CELL;
        return 0;
    }
    if (!strcmp(k, "find"))
        return parse_find(r, v, err);
    if (!strcmp(k, "match"))
        return parse_match(r, v, err);
    if (json_get_int(v, k, 0, 9, &d, err)) /* decimals */
        return -1;
    r->decimals = (int)d;
    return 0;
}

/* The request's shape once every member is read: which mode, and its
 * required fields. */
static int inspect_check(inspect_request *q, api_error *err)
{
    if (!q->text)
        return api_fail(err, 400, INVALID, "text", "'text' is required");
    if (q->find && (q->n_units || q->has_match))
        return api_fail(err, 400, INVALID, "find",
                        "'find' searches every unit: give it without 'units' and 'match'");
    if (!q->find && !q->n_units && !q->has_match)
        return api_fail(err, 400, INVALID, "units",
                        "give 'units' (with 'layer'), 'find' or 'match' (with 'layer')");
    if (!q->find && !q->layer)
        return api_fail(err, 400, INVALID, "layer", "'layer' is required with 'units' or 'match'");
    if (q->has_match && q->match_end > (double)utf8_chars(q->text, q->text_len))
        return api_fail(err, 400, INVALID, "match",
                        "'match': end is past the text's %zu characters",
                        utf8_chars(q->text, q->text_len));
    return 0;
}

static void inspect_request_clear(inspect_request *r)
{
    free(r->model);
    free(r->text);
}

static cJSON *found_json(const charrnn_inspect *rec)
{
    size_t n = charrnn_inspect_found(rec, PER_FEATURE, NULL, 0);
    charrnn_found *f = malloc((n ? n : 1) * sizeof *f);
    cJSON *arr = cJSON_CreateArray();
    if (f)
        charrnn_inspect_found(rec, PER_FEATURE, f, n);
    for (size_t i = 0; f && i < n; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "layer", f[i].layer + 1);
        cJSON_AddStringToObject(o, "state", charrnn_state_name(f[i].state));
        cJSON_AddNumberToObject(o, "unit", f[i].unit);
        cJSON_AddStringToObject(o, "feature", charrnn_feature_name(f[i].feature));
        cJSON_AddNumberToObject(o, "r", f[i].r);
        cJSON_AddItemToArray(arr, o);
    }
    free(f);
    return arr;
}

/* Values of unit k of the recorder, one per character. */
static cJSON *values_json(const charrnn_inspect *rec, int k)
{
    size_t n = charrnn_inspect_chars(rec);
    cJSON *arr = cJSON_CreateArray();
    for (size_t t = 0; t < n; t++)
        cJSON_AddItemToArray(arr, cJSON_CreateNumber(charrnn_inspect_value(rec, k, t)));
    return arr;
}

static cJSON *match_json(const inspect_request *q, const charrnn_inspect *rec)
{
    int units[CHARRNN_INSPECT_MAX_UNITS];
    charrnn_span spans[MAX_SPANS];
    size_t nu, ns;
    cJSON *o = cJSON_CreateObject();
    if (charrnn_inspect_match(rec, (size_t)q->match_start, (size_t)q->match_end, q->match_threshold,
                              units, CHARRNN_INSPECT_MAX_UNITS, &nu, spans, MAX_SPANS, &ns) != 0)
        return o;
    cJSON_AddNumberToObject(o, "start", q->match_start);
    cJSON_AddNumberToObject(o, "end", q->match_end);
    cJSON_AddNumberToObject(o, "threshold", q->match_threshold);
    cJSON *u = cJSON_AddArrayToObject(o, "units");
    for (size_t i = 0; i < nu && i < CHARRNN_INSPECT_MAX_UNITS; i++)
        cJSON_AddItemToArray(u, cJSON_CreateNumber(units[i]));
    cJSON_AddNumberToObject(o, "matched_units", (double)nu);
    cJSON *s = cJSON_AddArrayToObject(o, "spans");
    for (size_t i = 0; i < ns && i < MAX_SPANS; i++) {
        cJSON *p = cJSON_CreateObject();
        cJSON_AddNumberToObject(p, "start", (double)spans[i].start);
        cJSON_AddNumberToObject(p, "end", (double)spans[i].end);
        cJSON_AddItemToArray(s, p);
    }
    cJSON_AddNumberToObject(o, "matched_spans", (double)ns);
    return o;
}

static cJSON *inspect_json(req_ctx *c, const inspect_request *q, const charrnn_inspect *rec,
                           const job_result *res)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "model", c->model);
    cJSON_AddNumberToObject(o, "model_version", (double)c->model_version);
    cJSON_AddNumberToObject(o, "chars", (double)charrnn_inspect_chars(rec));
    cJSON_AddNumberToObject(o, "decimals", q->decimals);
    if (q->find) {
        cJSON_AddItemToObject(o, "found", found_json(rec));
    } else {
        cJSON_AddNumberToObject(o, "layer", q->layer);
        cJSON_AddStringToObject(o, "state", charrnn_state_name((charrnn_state_kind)q->state));
        cJSON *us = cJSON_AddArrayToObject(o, "units");
        for (int k = 0; k < q->n_units; k++) {
            cJSON *u = cJSON_CreateObject();
            cJSON_AddNumberToObject(u, "unit", q->units[k]);
            /* with a match every unit is recorded: unit i is row i */
            cJSON_AddItemToObject(u, "values", values_json(rec, q->has_match ? q->units[k] : k));
            cJSON_AddItemToArray(us, u);
        }
        if (q->has_match)
            cJSON_AddItemToObject(o, "match", match_json(q, rec));
    }
    cJSON *tm = cJSON_AddObjectToObject(o, "timing");
    cJSON_AddNumberToObject(tm, "queue_ms", round(res->queue_seconds * 1e6) / 1e3);
    cJSON_AddNumberToObject(tm, "inspect_ms", round(res->generate_seconds * 1e6) / 1e3);
    cJSON_AddNumberToObject(tm, "total_ms", round(res->total_seconds * 1e6) / 1e3);
    return o;
}

/* /inspect's name of a sampling field: the text is the prime. */
static const char *inspect_field_name(charrnn_sample_field f)
{
    (void)f;
    return "text";
}

/* Runs the recorder's stream as an engine job and waits for its end. 0 when
 * it finished; else the response is sent (*ret). */
static int inspect_run(req_ctx *c, const charrnn_store_model *ver, const inspect_request *q,
                       charrnn_inspect *rec, job_result *res, enum MHD_Result *ret)
{
    server *srv = c->srv;
    charrnn_sample_params p = charrnn_sample_defaults();
    p.prime = q->text, p.prime_len = q->text_len, p.length = 0, p.inspect = rec;
    gen_job *job = gen_submit(c, ver, &p, inspect_field_name, ret);
    if (!job)
        return -1;
    c->prime_chars = utf8_chars(q->text, q->text_len);
    c->job = job;
    while (!engine_job_wait(srv->eng, job, WAIT_MS)) {
        if (client_gone(c)) {
            engine_cancel(srv->eng, job);
            c->finish = "cancelled";
            *ret = MHD_NO;
            return -1;
        }
    }
    engine_job_result(srv->eng, job, res);
    if (res->end == JOB_QUEUE_TIMEOUT || res->end == JOB_SHUTDOWN || res->end == JOB_TIMEOUT) {
        c->finish = res->end == JOB_TIMEOUT ? "timeout" : "unavailable";
        *ret = respond_fail(c, 503, "unavailable_error", NULL,
                            res->end == JOB_TIMEOUT ? "inspection ran past the time limit"
                                                    : "the server is busy or shutting down");
        return -1;
    }
    if (res->end != JOB_FINISHED) {
        *ret = MHD_NO;
        return -1;
    }
    if (charrnn_inspect_filled(rec) != charrnn_inspect_chars(rec)) {
        *ret = respond_fail(c, 500, "server_error", NULL, "the model did not read the whole text");
        return -1;
    }
    return 0;
}

enum MHD_Result handle_inspect(req_ctx *c)
{
    server *srv = c->srv;
    api_error err;
    inspect_request q = {.cfg = &srv->cfg, .state = -1, .decimals = 4};
    if (json_object_parse(c->body ? c->body : "", c->body_len, inspect_fields,
                          sizeof inspect_fields / sizeof *inspect_fields, inspect_member, &q,
                          &err) ||
        inspect_check(&q, &err)) {
        inspect_request_clear(&q);
        return respond_error(c, &err);
    }
    enum MHD_Result ret;
    const charrnn_store_model *ver;
    if (gen_acquire(c, q.model, &ver, &ret) != 0) {
        inspect_request_clear(&q);
        return ret;
    }
    if (q.state < 0) /* the default: the cell state where there is one */
        q.state =
            ver->model->cfg.cell == CHARRNN_CELL_LSTM ? CHARRNN_STATE_CELL : CHARRNN_STATE_HIDDEN;
    /* A match needs every unit of the layer; the units asked for are served
     * from the same recording. */
    charrnn_inspect_opts o = {.layer = q.layer - 1,
                              .state = (charrnn_state_kind)q.state,
                              .units = q.units,
                              .n_units = q.has_match ? -1 : q.n_units,
                              .find = q.find,
                              .decimals = q.decimals};
    char msg[CHARRNN_ERR_MAX];
    const char *field = NULL;
    charrnn_inspect *rec = NULL;
    int rc =
        charrnn_inspect_create(ver->model, q.text, q.text_len, &o, &rec, &field, msg, sizeof msg);
    for (int k = 0; rc == CHARRNN_OK && q.has_match && k < q.n_units; k++)
        if (q.units[k] >= ver->model->cfg.hidden_size) {
            rc = charrnn_fail(msg, sizeof msg, CHARRNN_ERANGE,
                              "unit %d is out of range: layer %d has units 0..%d", q.units[k],
                              q.layer, ver->model->cfg.hidden_size - 1);
            field = "units";
        }
    if (rc != CHARRNN_OK) {
        charrnn_store_release(ver);
        inspect_request_clear(&q);
        charrnn_inspect_release(rec);
        return rc == CHARRNN_ENOMEM ? respond_fail(c, 500, "server_error", NULL, "%s", msg)
                                    : respond_fail(c, 400, INVALID, field, "%s", msg);
    }
    job_result res;
    rc = inspect_run(c, ver, &q, rec, &res, &ret);
    charrnn_store_release(ver);
    if (rc == 0) {
        c->finish = "length";
        ret = respond_json(c, 200, inspect_json(c, &q, rec, &res));
    }
    charrnn_inspect_release(rec);
    inspect_request_clear(&q);
    return ret;
}

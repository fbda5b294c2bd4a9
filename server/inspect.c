/* POST /inspect: one layer's state after each character of a text, or the
 * units whose state follows a feature of the text (charrnn/inspect.h), or
 * LSTMVis's span match. The text runs through the engine as a stream of
 * length 0 with a recorder (charrnn_sample_params.inspect): the same
 * forward pass as /score, batched with the other jobs, under the same
 * admission (503 when busy), timeouts and API key limits, and without the
 * store's lock (the job holds its version). */
#include "generate.h"
#include "inspect_request.h"
#include "server.h"

#include "charrnn/inspect.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define INVALID "invalid_request_error"
#define PER_FEATURE 5 /* units reported per feature */
#define MAX_SPANS 100 /* other spans a match lists */

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

/* Per layer, per sigmoid gate: each unit's fraction of left- and
 * right-saturated characters, rounded to 4 decimals (the paper's figure). */
static cJSON *saturation_json(const charrnn_inspect *rec, int L, int H)
{
    cJSON *layers = cJSON_CreateArray();
    for (int l = 0; l < L; l++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "layer", l + 1);
        for (int g = 0; g < CHARRNN_SAT_GATES; g++) {
            cJSON *gate = cJSON_AddObjectToObject(o, charrnn_state_name(charrnn_sat_gate(g)));
            cJSON *left = cJSON_AddArrayToObject(gate, "left");
            cJSON *right = cJSON_AddArrayToObject(gate, "right");
            for (int j = 0; j < H; j++) {
                double a, b;
                charrnn_inspect_saturation(rec, l, g, j, &a, &b);
                cJSON_AddItemToArray(left, cJSON_CreateNumber(round(a * 1e4) / 1e4));
                cJSON_AddItemToArray(right, cJSON_CreateNumber(round(b * 1e4) / 1e4));
            }
        }
        cJSON_AddItemToArray(layers, o);
    }
    return layers;
}

static cJSON *inspect_json(req_ctx *c, const inspect_request *q, const charrnn_config *cfg,
                           const charrnn_inspect *rec, const job_result *res)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "model", c->model);
    cJSON_AddNumberToObject(o, "model_version", (double)c->model_version);
    cJSON_AddNumberToObject(o, "chars", (double)charrnn_inspect_chars(rec));
    cJSON_AddNumberToObject(o, "decimals", q->decimals);
    if (q->find) {
        cJSON_AddItemToObject(o, "found", found_json(rec));
    } else if (q->n_units || q->has_match) {
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
    if (q->saturation)
        cJSON_AddItemToObject(o, "saturation",
                              saturation_json(rec, cfg->num_layers, cfg->hidden_size));
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
static int inspect_run(req_ctx *c, const store_model *ver, const inspect_request *q,
                       charrnn_inspect *rec, job_result *res, enum MHD_Result *ret)
{
    charrnn_sample_params p = charrnn_sample_defaults();
    p.prime = q->text, p.prime_len = q->text_len, p.length = 0, p.inspect = rec;
    gen_job *job = gen_submit(c, ver, &p, inspect_field_name, ret);
    if (!job)
        return -1;
    c->prime_chars = utf8_chars(q->text, q->text_len);
    c->job = job;
    if (gen_wait(c, job, "inspection", res, ret) != 0)
        return -1;
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
    inspect_request q;
    if (inspect_request_parse(c->body ? c->body : "", c->body_len, &srv->cfg, &q, &err))
        return respond_error(c, &err);
    enum MHD_Result ret;
    const store_model *ver;
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
                              .saturation = q.saturation,
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
        store_release(ver);
        inspect_request_clear(&q);
        charrnn_inspect_release(rec);
        return rc == CHARRNN_ENOMEM ? respond_fail(c, 500, "server_error", NULL, "%s", msg)
                                    : respond_fail(c, 400, INVALID, field, "%s", msg);
    }
    job_result res;
    const charrnn_config cfg = ver->model->cfg;
    rc = inspect_run(c, ver, &q, rec, &res, &ret);
    store_release(ver);
    if (rc == 0) {
        c->finish = "length";
        ret = respond_json(c, 200, inspect_json(c, &q, &cfg, rec, &res));
    }
    charrnn_inspect_release(rec);
    inspect_request_clear(&q);
    return ret;
}

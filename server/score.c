/* POST /score {model, text, top_logprobs}: the log-probability of every
 * character of text given the ones before it (the first has none), with the
 * total, nats and bits per character and perplexity. The text runs through
 * the engine as a stream with score_prime and length 0 (sampler.h), so it is
 * stepped in the same batches as generations and shares the machine fairly. */
#include "logprobs_json.h"
#include "score_request.h"
#include "generate.h"
#include "server.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define INVALID "invalid_request_error"

/* The response once the job has finished. */
static cJSON *score_json(req_ctx *c, const score_request *q, const job_result *res,
                         const job_records *x)
{
    const charrnn_vocab *v = engine_job_vocab(c->job);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "model", c->model);
    cJSON_AddNumberToObject(o, "model_version", (double)c->model_version);
    double total = 0.0;
    for (size_t i = 0; i < x->n; i++)
        total += x->rec[i].lp;
    size_t n = x->n;
    cJSON_AddNumberToObject(o, "chars", (double)(n + 1));
    cJSON_AddNumberToObject(o, "scored_chars", (double)n);
    cJSON_AddNumberToObject(o, "total_logprob", total);
    cJSON_AddNumberToObject(o, "nats_per_char", -total / (double)n);
    cJSON_AddNumberToObject(o, "bits_per_char", -total / (double)n / log(2.0));
    cJSON_AddNumberToObject(o, "perplexity", exp(-total / (double)n));
    /* the first character, then one record per following character */
    cJSON *arr = logprobs_native(v, x->rec, x->top_id, x->top_lp, x->k, x->n);
    uint32_t cp = 0;
    size_t first = (size_t)charrnn_utf8_decode((const uint8_t *)q->text, q->text_len, &cp);
    char ch[8];
    memcpy(ch, q->text, first);
    ch[first] = '\0';
    cJSON *f = cJSON_CreateObject();
    cJSON_AddStringToObject(f, "char", ch);
    cJSON_AddNullToObject(f, "logprob");
    if (x->k > 0)
        cJSON_AddArrayToObject(f, "top");
    cJSON_InsertItemInArray(arr, 0, f);
    cJSON_AddItemToObject(o, "logprobs", arr);
    /* the text is the prime: how much of it the prefix-state cache gave */
    cJSON *u = cJSON_AddObjectToObject(o, "usage");
    cJSON_AddNumberToObject(u, "prime_chars", (double)(n + 1));
    cJSON_AddNumberToObject(u, "cached_chars", (double)res->cached_chars);
    cJSON *tm = cJSON_AddObjectToObject(o, "timing");
    cJSON_AddNumberToObject(tm, "queue_ms", round(res->queue_seconds * 1e6) / 1e3);
    cJSON_AddNumberToObject(tm, "scoring_ms", round(res->generate_seconds * 1e6) / 1e3);
    cJSON_AddNumberToObject(tm, "total_ms", round(res->total_seconds * 1e6) / 1e3);
    return o;
}

/* /score's names of the sampling fields it sets: the text is the prime. */
static const char *score_field_name(charrnn_sample_field f)
{
    return f == CHARRNN_SAMPLE_LOGPROBS ? "top_logprobs" : "text";
}

enum MHD_Result handle_score(req_ctx *c)
{
    server *srv = c->srv;
    api_error err;
    score_request q;
    if (score_request_parse(c->body ? c->body : "", c->body_len, &srv->cfg, &q, &err))
        return respond_error(c, &err);
    enum MHD_Result ret;
    const store_model *ver;
    if (gen_acquire(c, q.model, &ver, &ret) != 0) {
        score_request_clear(&q);
        return ret;
    }
    charrnn_sample_params p = charrnn_sample_defaults();
    p.prime = q.text;
    p.prime_len = q.text_len;
    p.length = 0;
    p.logprobs = 1, p.top_logprobs = q.top_logprobs, p.score_prime = 1;
    gen_job *job = gen_submit(c, ver, &p, score_field_name, &ret);
    store_release(ver);
    if (!job) {
        score_request_clear(&q);
        return ret;
    }
    c->prime_chars = utf8_chars(q.text, q.text_len);
    c->job = job;
    job_result res;
    job_records x;
    if (gen_wait(c, job, "scoring", &res, &ret) != 0) {
        /* answered */
    } else if (job_records_get(srv->eng, job, &res, &x) != 0) {
        ret = respond_fail(c, 500, "server_error", NULL, "out of memory");
    } else {
        c->finish = "length";
        c->cached_chars = res.cached_chars;
        metrics_scored(srv->met, c->model, x.n);
        ret = respond_json(c, 200, score_json(c, &q, &res, &x));
        job_records_free(&x);
    }
    score_request_clear(&q);
    return ret;
}

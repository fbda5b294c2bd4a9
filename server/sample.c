/* POST /sample: validation, admission, and the response — one JSON object, or
 * server-sent events (one "data: {json}" event per chunk of new text, then a
 * last event with finish_reason, usage and timing). */
#include "logprobs_json.h"
#include "generate.h"
#include "server.h"
#include "sse.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WAIT_MS 100    /* how often a waiting request checks its client */
#define CHUNK_MAX 4096 /* most text bytes per SSE event */

/* Milliseconds rounded to microseconds, so the JSON stays short. */
static double ms(double seconds)
{
    return round(seconds * 1e6) / 1e3;
}

static cJSON *raw_u64(uint64_t v)
{
    char b[24];
    snprintf(b, sizeof b, "%llu", (unsigned long long)v);
    return cJSON_CreateRaw(b);
}

static const char *finish_name(const job_result *r)
{
    return r->end == JOB_TIMEOUT ? "timeout" : charrnn_finish_name(r->finish);
}

/* The response object (text is the continuation only, never the prime). */
static cJSON *result_json(const req_ctx *c, const job_result *r, const char *text, size_t len,
                          int with_logprobs)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "model", c->model);
    cJSON_AddNumberToObject(o, "model_version", (double)c->model_version);
    char *t = malloc(len + 1);
    if (t) {
        memcpy(t, text, len);
        t[len] = '\0';
    }
    cJSON_AddStringToObject(o, "text", t ? t : "");
    free(t);
    cJSON_AddItemToObject(o, "seed", raw_u64(c->seed));
    cJSON_AddStringToObject(o, "finish_reason", finish_name(r));
    cJSON *u = cJSON_AddObjectToObject(o, "usage");
    cJSON_AddNumberToObject(u, "prime_chars", (double)r->prime_chars);
    cJSON_AddNumberToObject(u, "cached_chars", (double)r->cached_chars);
    cJSON_AddNumberToObject(u, "generated_chars", (double)r->generated_chars);
    cJSON *tm = cJSON_AddObjectToObject(o, "timing");
    cJSON_AddNumberToObject(tm, "queue_ms", ms(r->queue_seconds));
    cJSON_AddNumberToObject(tm, "generation_ms", ms(r->generate_seconds));
    cJSON_AddNumberToObject(tm, "total_ms", ms(r->total_seconds));
    cJSON_AddNumberToObject(
        tm, "chars_per_second",
        r->generate_seconds > 0 ? round((double)r->generated_chars / r->generate_seconds) : 0);
    if (c->logprobs >= 0 && with_logprobs) {
        job_records x;
        if (job_records_get(c->srv->eng, c->job, r, &x) == 0) {
            cJSON_AddItemToObject(
                o, "logprobs",
                logprobs_native(engine_job_vocab(c->job), x.rec, x.top_id, x.top_lp, x.k, x.n));
            job_records_free(&x);
        }
    }
    return o;
}

/* The records of the n characters just read from the stream, as JSON. */
static cJSON *chunk_logprobs(req_ctx *c, size_t chars)
{
    size_t k = c->logprobs > 0 ? (size_t)c->logprobs : 0;
    job_rec *rec = malloc((chars ? chars : 1) * sizeof *rec);
    int *ti = malloc((chars * k > 0 ? chars * k : 1) * sizeof *ti);
    float *tl = malloc((chars * k > 0 ? chars * k : 1) * sizeof *tl);
    cJSON *arr = NULL;
    if (rec && ti && tl) {
        int ended;
        /* the engine appends a character's record before its bytes */
        size_t n =
            engine_job_records(c->srv->eng, c->job, c->rec_sent, chars, rec, ti, tl, 0, &ended);
        c->rec_sent += n;
        arr = logprobs_native(engine_job_vocab(c->job), rec, ti, tl, (int)k, n);
    }
    free(rec), free(ti), free(tl);
    return arr;
}

static void record(req_ctx *c, const job_result *r)
{
    c->prime_chars = r->prime_chars;
    c->cached_chars = r->cached_chars;
    c->generated_chars = r->generated_chars;
    switch (r->end) {
    case JOB_FINISHED:
    case JOB_TIMEOUT: c->finish = finish_name(r); break;
    case JOB_QUEUE_TIMEOUT: c->finish = "queue_timeout"; break;
    case JOB_SHUTDOWN: c->finish = "shutdown"; break;
    default: c->finish = "cancelled"; break;
    }
    if (r->end == JOB_FINISHED || r->end == JOB_TIMEOUT)
        metrics_generated(c->srv->met, c->model, r->generated_chars);
}

/* An error for a job that ended without text to show (nothing sent yet). */
static void end_error(const job_result *r, api_error *e)
{
    if (r->end == JOB_QUEUE_TIMEOUT)
        api_fail(e, 503, "unavailable_error", NULL, "timed out waiting for a free generation slot");
    else
        api_fail(e, 503, "unavailable_error", NULL, "the server is shutting down");
}

/* ---- server-sent events ---- */

/* Makes the next event; returns 1 when one is pending, 0 at the end, -1 to abort. */
static int next_event(req_ctx *c)
{
    engine *e = c->srv->eng;
    if (c->sse_over)
        return 0;
    char buf[CHUNK_MAX];
    sse_pace(c);
    for (;;) {
        int ended = 0;
        size_t n = engine_job_read(e, c->job, c->sent, buf, sizeof buf, WAIT_MS, &ended);
        if (n == sizeof buf)
            n = utf8_whole(buf, n);
        if (n > 0) {
            c->sent += n;
            char *t = malloc(n + 1);
            if (!t)
                return -1;
            memcpy(t, buf, n);
            t[n] = '\0';
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "text", t);
            if (c->logprobs >= 0)
                cJSON_AddItemToObject(o, "logprobs", chunk_logprobs(c, utf8_chars(t, n)));
            free(t);
            return sse_set_json(c, o) == 0 ? 1 : -1;
        }
        if (ended) {
            job_result r;
            engine_job_result(e, c->job, &r);
            record(c, &r);
            c->sse_over = 1;
            if (r.end == JOB_CANCELLED)
                return -1;
            if (r.end == JOB_QUEUE_TIMEOUT || r.end == JOB_SHUTDOWN) {
                api_error err;
                end_error(&r, &err);
                cJSON *o = cJSON_CreateObject();
                cJSON *eo = cJSON_AddObjectToObject(o, "error");
                cJSON_AddNumberToObject(eo, "code", err.status);
                cJSON_AddStringToObject(eo, "type", err.type);
                cJSON_AddStringToObject(eo, "message", err.message);
                cJSON_AddNullToObject(eo, "param");
                return sse_set_json(c, o) == 0 ? 1 : -1;
            }
            return sse_set_json(c, result_json(c, &r, "", 0, 0)) == 0 ? 1 : -1;
        }
        if (client_gone(c)) {
            engine_cancel(e, c->job);
            c->finish = "cancelled";
            return -1;
        }
        int ka = sse_keepalive(c);
        if (ka != 0)
            return ka;
    }
}

static enum MHD_Result wait_and_respond(req_ctx *c)
{
    engine *e = c->srv->eng;
    while (!engine_job_wait(e, c->job, WAIT_MS)) {
        if (client_gone(c)) {
            engine_cancel(e, c->job);
            c->finish = "cancelled";
            return MHD_NO; /* closes the connection */
        }
    }
    job_result r;
    engine_job_result(e, c->job, &r);
    record(c, &r);
    if (r.end == JOB_CANCELLED)
        return MHD_NO;
    if (r.end == JOB_QUEUE_TIMEOUT || r.end == JOB_SHUTDOWN) {
        api_error err;
        end_error(&r, &err);
        return respond_error(c, &err);
    }
    return respond_json(c, 200, result_json(c, &r, r.text, r.text_len, 1));
}

/* Lets go of jobs[0..n) but keep (which c->job holds), cancelling them
 * first once they were admitted. */
static void drop_jobs(engine *e, gen_job **jobs, int n, const gen_job *keep, int admitted)
{
    for (int j = 0; j < n; j++)
        if (jobs[j] && jobs[j] != keep) {
            if (admitted)
                engine_cancel(e, jobs[j]);
            engine_job_release(e, jobs[j]);
        }
}

/* best_of > 1: candidate j samples with seed + j (candidate 0 is the text of
 * the same request without best_of), recording log-probabilities to rank
 * them; they are batched like any other streams. The candidate with the
 * highest mean log-probability per generated character (ties: the lower j)
 * is the response, exactly as if it had been asked for alone with its seed,
 * plus "best_of": the candidates, the one chosen, its seed and its mean.
 * usage.candidate_chars counts the characters of every candidate. */
static enum MHD_Result respond_best_of(req_ctx *c, const store_model *ver,
                                       const sample_request *req, charrnn_sample_params p)
{
    engine *e = c->srv->eng;
    const int n = req->best_of;
    gen_job *jobs[SAMPLE_MAX_BEST_OF] = {0};
    enum MHD_Result ret = MHD_NO;
    p.logprobs = 1; /* the ranking's numbers; returned only when asked for */
    for (int j = 0; j < n; j++) {
        p.seed = req->p.seed + (uint64_t)j;
        if (!(jobs[j] = gen_prepare(c, ver, &p, charrnn_sample_field_name, &ret))) {
            drop_jobs(e, jobs, j, NULL, 0);
            return ret;
        }
    }
    if (gen_admit(c, jobs, (size_t)n, &ret) != 0) { /* all the candidates, or none */
        drop_jobs(e, jobs, n, NULL, 0);
        return ret;
    }
    c->job = jobs[0]; /* ctx_release lets go of c->job, whatever happens below */
    int best = -1;
    double best_mean = -INFINITY;
    size_t all_chars = 0;
    for (int j = 0; j < n; j++) {
        while (!engine_job_wait(e, jobs[j], WAIT_MS))
            if (client_gone(c)) {
                drop_jobs(e, jobs, n, c->job, 1);
                c->finish = "cancelled";
                return MHD_NO;
            }
        job_result r;
        engine_job_result(e, jobs[j], &r);
        if (r.end != JOB_FINISHED && r.end != JOB_TIMEOUT) { /* the request ends with it */
            c->job = jobs[j];
            drop_jobs(e, jobs, n, c->job, 1);
            record(c, &r);
            if (r.end == JOB_CANCELLED)
                return MHD_NO;
            api_error err;
            end_error(&r, &err);
            return respond_error(c, &err);
        }
        all_chars += r.generated_chars;
        job_records x;
        if (job_records_get(e, jobs[j], &r, &x) != 0) {
            drop_jobs(e, jobs, n, c->job, 1);
            return respond_fail(c, 500, "server_error", NULL, "out of memory");
        }
        const double mean = records_mean_logprob(x.rec, x.n);
        job_records_free(&x);
        if (best < 0 || mean > best_mean)
            best = j, best_mean = mean;
    }
    c->job = jobs[best];
    drop_jobs(e, jobs, n, c->job, 1);
    job_result r;
    engine_job_result(e, c->job, &r);
    record(c, &r);
    /* c->seed stays the request's (the response's and X-Seed); the records
     * go out only when asked for (c->logprobs), not the ranking's */
    cJSON *o = result_json(c, &r, r.text, r.text_len, 1);
    cJSON *u = cJSON_GetObjectItemCaseSensitive(o, "usage");
    cJSON_AddNumberToObject(u, "candidate_chars", (double)all_chars);
    cJSON *b = cJSON_AddObjectToObject(o, "best_of");
    cJSON_AddNumberToObject(b, "candidates", n);
    cJSON_AddNumberToObject(b, "chosen", best);
    cJSON_AddItemToObject(b, "seed", raw_u64(req->p.seed + (uint64_t)best));
    cJSON_AddItemToObject(b, "mean_logprob",
                          isfinite(best_mean) ? json_float((float)best_mean) : cJSON_CreateNull());
    return respond_json(c, 200, o);
}

enum MHD_Result handle_sample(req_ctx *c)
{
    server *srv = c->srv;
    api_error err;
    sample_request req;
    if (sample_request_parse(c->body ? c->body : "", c->body_len, &srv->cfg, &req, &err))
        return respond_error(c, &err);
    enum MHD_Result ret;
    const store_model *ver;
    if (gen_acquire(c, req.model, &ver, &ret) != 0 ||
        gen_seed(c, req.has_seed, &req.p.seed, &ret)) {
        store_release(ver);
        sample_request_clear(&req);
        return ret;
    }
    c->stream = req.stream;
    c->sampled = 1;
    c->logprobs = req.logprobs;
    if (req.best_of > 1) {
        ret = respond_best_of(c, ver, &req, req.p);
        c->prime_chars = utf8_chars(req.prime, req.p.prime_len);
        store_release(ver);
        sample_request_clear(&req);
        return ret;
    }
    c->job = gen_submit(c, ver, &req.p, charrnn_sample_field_name, &ret);
    c->prime_chars = c->job ? utf8_chars(req.prime, req.p.prime_len) : 0;
    store_release(ver);
    sample_request_clear(&req);
    if (!c->job)
        return ret;
    return c->stream ? sse_start(c, next_event) : wait_and_respond(c);
}

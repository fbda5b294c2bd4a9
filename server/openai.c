/* The OpenAI-compatible API: POST /v1/completions (legacy completions, one
 * token = one character), GET /v1/models and GET /v1/models/{id}.
 *
 * Every choice is one engine job (one stream), so the choices of a request
 * are batched with every other generation. Choice `index` (prompts in order,
 * n choices each: index = prompt * n + j) samples with seed + index (mod
 * 2^64), so choice 0 is exactly /sample's text for the same prime, length,
 * temperature, top_p, stop and seed, and any choice can be reproduced alone.
 * As OpenAI specifies, the returned text excludes a matched stop string.
 *
 * best_of > n: each prompt gets best_of candidates, candidate j of prompt p
 * sampling with seed + p * best_of + j (the seeds its choices would have with
 * n = best_of); they run as jobs like choices (batched together), recording
 * log-probabilities, and the n with the highest mean log-probability per
 * generated character (ties: the lower candidate) are returned, best first,
 * as choices p * n + rank. usage counts every candidate's characters. */
#include "echo.h"
#include "buf.h"
#include "logprobs_json.h"
#include "openai_request.h"
#include "generate.h"
#include "server.h"
#include "sse.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define WAIT_MS 100 /* how often a waiting request checks its client */
#define POLL_MS 10  /* wait per round when streaming several choices */
#define READ_CHUNK 4096

typedef struct choice {
    gen_job *job; /* NULL when nothing runs (echo of the prompt only) */
    size_t index, prompt_idx;
    const char *prompt;
    size_t prompt_len, prompt_chars;
    size_t scored; /* records of prompt characters, before the generated ones */
    uint64_t seed;
    /* everything received so far */
    char *text;
    size_t len, cap;
    job_rec *rec;
    int *top_id;
    float *top_lp;
    size_t nrec, caprec;
    int ended;
    job_result res;
    size_t keep; /* bytes of text to return (a matched stop string removed) */
    /* streaming */
    int echo_sent, final_sent;
    size_t bytes_sent, chars_sent;
} choice;

typedef struct completion {
    completion_request q;
    charrnn_vocab *vocab; /* a copy: the jobs let go of the model when they end */
    char id[REQUEST_ID_MAX + 8];
    long long created;
    char fingerprint[24];
    choice *ch;
    size_t nch;
    size_t cand; /* candidates per prompt: best_of when it ranks, else n */
    size_t hold; /* bytes held back while streaming (a stop may still match) */
    int usage_sent, done_sent, over;
    size_t cursor; /* round robin over choices while streaming */
} completion;

static cJSON *raw_u64(uint64_t v)
{
    char b[24];
    snprintf(b, sizeof b, "%llu", (unsigned long long)v);
    return cJSON_CreateRaw(b);
}

static void completion_free(void *p)
{
    completion *k = p;
    if (!k)
        return;
    for (size_t i = 0; i < k->nch; i++) {
        choice *c = &k->ch[i];
        free(c->text), free(c->rec), free(c->top_id), free(c->top_lp);
    }
    free(k->ch);
    charrnn_vocab_free(k->vocab);
    completion_request_clear(&k->q);
    free(k);
}

/* Ends and drops every job (the request is over or failed). */
static void release_jobs(engine *e, completion *k)
{
    for (size_t i = 0; i < k->nch; i++)
        if (k->ch[i].job) {
            engine_cancel(e, k->ch[i].job);
            engine_job_release(e, k->ch[i].job);
            k->ch[i].job = NULL;
        }
}

static void v1_ctx_free(req_ctx *c)
{
    completion *k = c->v1;
    if (!k)
        return;
    release_jobs(c->srv->eng, k);
    completion_free(k);
    c->v1 = NULL;
}

/* ---- receiving a choice's output ---- */

/* Takes whatever the job has produced since the last call (waiting up to
 * timeout_ms for something). Returns -1 when out of memory. */
static int pull(engine *e, choice *c, int k_top, int timeout_ms)
{
    if (c->ended)
        return 0;
    if (!c->job) {
        c->ended = 1;
        c->res.end = JOB_FINISHED;
        c->res.finish = CHARRNN_FINISH_LENGTH;
        return 0;
    }
    char buf[READ_CHUNK];
    int ended_bytes = 0, ended_recs = 0;
    size_t n = engine_job_read(e, c->job, c->len, buf, sizeof buf, timeout_ms, &ended_bytes);
    if (buf_reserve(&c->text, &c->cap, c->len + n + 1, 1))
        return -1;
    memcpy(c->text + c->len, buf, n);
    c->len += n;
    for (;;) {
        size_t room = c->caprec - c->nrec;
        if (room < 64) {
            size_t cap = c->caprec, k = k_top > 0 ? (size_t)k_top : 1;
            if (buf_reserve(&c->rec, &c->caprec, c->nrec + 64, sizeof *c->rec))
                return -1;
            size_t nc = c->caprec;
            int *ti = realloc(c->top_id, nc * k * sizeof *ti);
            if (ti)
                c->top_id = ti;
            float *tl = realloc(c->top_lp, nc * k * sizeof *tl);
            if (tl)
                c->top_lp = tl;
            if (!ti || !tl) {
                c->caprec = cap;
                return -1;
            }
            room = c->caprec - c->nrec;
        }
        size_t k = k_top > 0 ? (size_t)k_top : 0;
        size_t got =
            engine_job_records(e, c->job, c->nrec, room, c->rec + c->nrec, c->top_id + c->nrec * k,
                               c->top_lp + c->nrec * k, 0, &ended_recs);
        c->nrec += got;
        if (got < room)
            break;
    }
    if (ended_bytes && ended_recs) {
        engine_job_result(e, c->job, &c->res);
        c->ended = 1;
    }
    return 0;
}

/* Bytes of the text to return: all of it, minus the stop string that ended
 * it (OpenAI returns text without the stop sequence). */
static size_t text_to_keep(const completion *k, const choice *c)
{
    if (!c->ended || c->res.end != JOB_FINISHED || c->res.finish != CHARRNN_FINISH_STOP)
        return c->len;
    for (size_t i = 0; i < k->q.p.n_stop; i++) { /* the sampler checks them in this order */
        size_t sl = strlen(k->q.stop[i]);
        if (sl <= c->len && !memcmp(c->text + c->len - sl, k->q.stop[i], sl))
            return c->len - sl;
    }
    return c->len;
}

static const char *finish_reason(const choice *c)
{
    if (c->res.end == JOB_TIMEOUT)
        return "timeout";
    return c->res.finish == CHARRNN_FINISH_STOP ? "stop" : "length";
}

/* ---- OpenAI's logprobs object ---- */

typedef struct lp_lists {
    cJSON *tokens, *token_logprobs, *top_logprobs, *text_offset;
} lp_lists;

static cJSON *lp_begin(lp_lists *l)
{
    cJSON *o = cJSON_CreateObject();
    l->tokens = cJSON_AddArrayToObject(o, "tokens");
    l->token_logprobs = cJSON_AddArrayToObject(o, "token_logprobs");
    l->top_logprobs = cJSON_AddArrayToObject(o, "top_logprobs");
    l->text_offset = cJSON_AddArrayToObject(o, "text_offset");
    return o;
}

/* One entry: rec NULL (or without a log-probability) gives nulls. The top
 * dictionary holds the k most likely characters and, as OpenAI's does, the
 * chosen one when it is not among them. */
static void lp_add(lp_lists *l, const charrnn_vocab *v, const char *tok, const job_rec *rec,
                   const int *top_id, const float *top_lp, int k, size_t offset)
{
    cJSON_AddItemToArray(l->tokens, cJSON_CreateString(tok));
    cJSON_AddItemToArray(l->text_offset, cJSON_CreateNumber((double)offset));
    if (!rec || !rec->has_lp) {
        cJSON_AddItemToArray(l->token_logprobs, cJSON_CreateNull());
        cJSON_AddItemToArray(l->top_logprobs, cJSON_CreateNull());
        return;
    }
    cJSON_AddItemToArray(l->token_logprobs, json_float(rec->lp));
    cJSON *d = cJSON_CreateObject();
    char ch[8];
    int chosen_in = 0;
    for (int i = 0; i < k; i++) {
        cJSON_AddItemToObject(d, vocab_char(v, top_id[i], ch), json_float(top_lp[i]));
        chosen_in |= top_id[i] == rec->token;
    }
    if (!chosen_in)
        cJSON_AddItemToObject(d, tok, json_float(rec->lp));
    cJSON_AddItemToArray(l->top_logprobs, d);
}

/* Adds the prompt's characters (echo): the first without a log-probability,
 * the others from the scored records. */
static void lp_add_prompt(lp_lists *l, const completion *k, const choice *c)
{
    const char *p = c->prompt;
    size_t off = 0;
    int kt = k->q.logprobs;
    for (size_t b = 0; b < c->prompt_len; off++) {
        uint32_t cp;
        int n = charrnn_utf8_decode((const uint8_t *)p + b, c->prompt_len - b, &cp);
        if (n <= 0)
            break;
        char tok[8];
        memcpy(tok, p + b, (size_t)n);
        tok[n] = '\0';
        const job_rec *r = off > 0 && off - 1 < c->nrec ? &c->rec[off - 1] : NULL;
        lp_add(l, k->vocab, tok, r, r ? c->top_id + (off - 1) * (size_t)kt : NULL,
               r ? c->top_lp + (off - 1) * (size_t)kt : NULL, kt, off);
        b += (size_t)n;
    }
}

/* Adds generated characters [from_char, from_char + count) of the text. */
static void lp_add_generated(lp_lists *l, const completion *k, const choice *c, size_t from_byte,
                             size_t to_byte, size_t from_char)
{
    int kt = k->q.logprobs;
    size_t i = from_char;
    for (size_t b = from_byte; b < to_byte; i++) {
        uint32_t cp;
        int n = charrnn_utf8_decode((const uint8_t *)c->text + b, to_byte - b, &cp);
        if (n <= 0)
            break;
        char tok[8];
        memcpy(tok, c->text + b, (size_t)n);
        tok[n] = '\0';
        size_t ri = c->scored + i;
        const job_rec *r = ri < c->nrec ? &c->rec[ri] : NULL;
        lp_add(l, k->vocab, tok, r, r ? c->top_id + ri * (size_t)kt : NULL,
               r ? c->top_lp + ri * (size_t)kt : NULL, kt, c->prompt_chars + i);
        b += (size_t)n;
    }
}

/* ---- response objects ---- */

static cJSON *envelope(const completion *k)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", k->id);
    cJSON_AddStringToObject(o, "object", "text_completion");
    cJSON_AddNumberToObject(o, "created", (double)k->created);
    cJSON_AddStringToObject(o, "model", k->q.model);
    cJSON_AddStringToObject(o, "system_fingerprint", k->fingerprint);
    return o;
}

static void add_usage(cJSON *o, const completion *k)
{
    size_t prompt = 0, completion_chars = 0, cached = 0;
    for (size_t i = 0; i < k->q.n_prompt; i++)
        prompt += utf8_chars(k->q.prompt[i], k->q.prompt_len[i]);
    for (size_t i = 0; i < k->nch; i++) {
        completion_chars += k->ch[i].res.generated_chars;
        /* each prompt is counted once, as prompt_tokens counts it: by its first choice */
        if (i % k->cand == 0)
            cached += k->ch[i].res.cached_chars;
    }
    cJSON *u = cJSON_AddObjectToObject(o, "usage");
    cJSON_AddNumberToObject(u, "prompt_tokens", (double)prompt);
    cJSON *d = cJSON_AddObjectToObject(u, "prompt_tokens_details");
    cJSON_AddNumberToObject(d, "cached_tokens", (double)cached);
    cJSON_AddNumberToObject(u, "completion_tokens", (double)completion_chars);
    cJSON_AddNumberToObject(u, "total_tokens", (double)(prompt + completion_chars));
}

/* A choice object with text [from, to) of the generated bytes (and the
 * prompt first when echo is due). */
static cJSON *choice_json(const completion *k, const choice *c, int with_echo, size_t from,
                          size_t to, size_t from_char, const char *finish)
{
    cJSON *o = cJSON_CreateObject();
    size_t elen = with_echo ? c->prompt_len : 0;
    char *t = malloc(elen + (to - from) + 1);
    if (t) {
        memcpy(t, c->prompt, elen);
        if (to > from) /* text is NULL until the first byte arrives */
            memcpy(t + elen, c->text + from, to - from);
        t[elen + to - from] = '\0';
    }
    cJSON_AddStringToObject(o, "text", t ? t : "");
    free(t);
    cJSON_AddNumberToObject(o, "index", (double)c->index);
    if (k->q.logprobs >= 0) {
        lp_lists l;
        cJSON *lp = lp_begin(&l);
        if (with_echo)
            lp_add_prompt(&l, k, c);
        lp_add_generated(&l, k, c, from, to, from_char);
        cJSON_AddItemToObject(o, "logprobs", lp);
    } else {
        cJSON_AddNullToObject(o, "logprobs");
    }
    if (finish)
        cJSON_AddStringToObject(o, "finish_reason", finish);
    else
        cJSON_AddNullToObject(o, "finish_reason");
    return o;
}

/* The request's bookkeeping once every choice has ended. */
static void record(req_ctx *rc, completion *k)
{
    size_t gen = 0, scored = 0;
    for (size_t i = 0; i < k->nch; i++) {
        gen += k->ch[i].res.generated_chars;
        rc->cached_chars += k->ch[i].res.cached_chars;
        if (k->q.echo && k->q.logprobs >= 0 && k->ch[i].prompt_chars > 0)
            scored += k->ch[i].prompt_chars - 1;
    }
    rc->generated_chars = gen;
    rc->finish = k->nch ? finish_reason(&k->ch[0]) : "length";
    metrics_generated(rc->srv->met, rc->model, gen);
    if (scored)
        metrics_scored(rc->srv->met, rc->model, scored);
}

/* 1 when a choice ended without a result to show (queue timeout, shutdown). */
static int failed(const choice *c)
{
    return c->ended && c->job &&
        (c->res.end == JOB_QUEUE_TIMEOUT || c->res.end == JOB_SHUTDOWN ||
         c->res.end == JOB_CANCELLED);
}

/* The mean log-probability per generated character of a candidate (those
 * with one: an unprimed text's first character has none); -inf for none. */
static double mean_logprob(const choice *c)
{
    return records_mean_logprob(c->rec + c->scored, c->nrec - c->scored);
}

/* order[0..m) = the candidates of one prompt, best first when ranking (by
 * mean_logprob; ties by lower candidate), else in order. */
static void rank_candidates(const choice *c, size_t m, int ranking, size_t *order)
{
    double score[V1_MAX_CHOICES];
    for (size_t i = 0; i < m; i++) {
        order[i] = i;
        score[i] = ranking ? mean_logprob(&c[i]) : 0.0;
    }
    for (size_t i = 1; i < m; i++) /* insertion sort: stable, m <= 64 */
        for (size_t j = i; j > 0 && score[order[j]] > score[order[j - 1]]; j--) {
            size_t t = order[j];
            order[j] = order[j - 1], order[j - 1] = t;
        }
}

static enum MHD_Result respond_whole(req_ctx *rc, completion *k)
{
    engine *e = rc->srv->eng;
    for (size_t i = 0; i < k->nch; i++) {
        choice *c = &k->ch[i];
        while (!c->ended) {
            if (pull(e, c, k->q.logprobs, WAIT_MS))
                return respond_fail(rc, 500, "server_error", NULL, "out of memory");
            if (!c->ended && client_gone(rc)) {
                release_jobs(e, k);
                rc->finish = "cancelled";
                return MHD_NO;
            }
        }
        if (failed(c)) {
            rc->finish = c->res.end == JOB_QUEUE_TIMEOUT ? "queue_timeout" : "shutdown";
            return respond_fail(rc, 503, "unavailable_error", NULL,
                                c->res.end == JOB_QUEUE_TIMEOUT
                                    ? "timed out waiting for a free generation slot"
                                    : "the server is shutting down");
        }
    }
    record(rc, k);
    cJSON *o = envelope(k);
    cJSON *arr = cJSON_AddArrayToObject(o, "choices");
    const size_t n = (size_t)k->q.n;
    for (size_t p = 0; p < k->q.n_prompt; p++) {
        choice *first = &k->ch[p * k->cand];
        size_t order[V1_MAX_CHOICES];
        rank_candidates(first, k->cand, n < k->cand, order);
        for (size_t r = 0; r < n; r++) {
            choice *c = &first[order[r]];
            c->index = p * n + r;
            c->keep = text_to_keep(k, c);
            cJSON_AddItemToArray(arr,
                                 choice_json(k, c, k->q.echo, 0, c->keep, 0, finish_reason(c)));
        }
    }
    add_usage(o, k);
    cJSON_AddItemToObject(o, "seed", raw_u64(k->q.seed));
    return respond_json(rc, 200, o);
}

/* ---- streaming ---- */

/* A chunk: the envelope with one choice. */
static int chunk_event(req_ctx *rc, completion *k, cJSON *choice_obj)
{
    cJSON *o = envelope(k);
    cJSON *arr = cJSON_AddArrayToObject(o, "choices");
    cJSON_AddItemToArray(arr, choice_obj);
    if (k->q.include_usage)
        cJSON_AddNullToObject(o, "usage");
    return sse_set_json(rc, o);
}

/* The next event of choice c, if one is due: 1 when set, 0 when none, -1 on error. */
static int choice_event(req_ctx *rc, completion *k, choice *c)
{
    if (c->final_sent)
        return 0;
    int echo_due = k->q.echo && !c->echo_sent;
    if (echo_due && k->q.logprobs >= 0 && !c->ended && c->nrec < c->scored)
        return 0; /* the prompt's log-probabilities are not all in yet */
    size_t avail;
    if (c->ended) {
        avail = c->keep = text_to_keep(k, c);
    } else {
        avail = c->len > k->hold ? c->len - k->hold : 0;
        avail = avail > c->bytes_sent
            ? c->bytes_sent + utf8_whole(c->text + c->bytes_sent, avail - c->bytes_sent)
            : c->bytes_sent;
    }
    if (!c->ended && avail == c->bytes_sent && !echo_due)
        return 0;
    if (!c->ended && !echo_due && k->q.logprobs >= 0) {
        /* send only characters whose records are in (they are appended first) */
        size_t chars = utf8_chars(c->text + c->bytes_sent, avail - c->bytes_sent);
        if (c->nrec < c->scored + c->chars_sent + chars)
            return 0;
    }
    size_t chars = utf8_chars(c->text + c->bytes_sent, avail - c->bytes_sent);
    cJSON *o = choice_json(k, c, echo_due, c->bytes_sent, avail, c->chars_sent,
                           c->ended ? finish_reason(c) : NULL);
    c->echo_sent = 1;
    c->bytes_sent = avail;
    c->chars_sent += chars;
    if (c->ended)
        c->final_sent = 1;
    return chunk_event(rc, k, o) == 0 ? 1 : -1;
}

static int error_event(req_ctx *rc, const char *message)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *eo = cJSON_AddObjectToObject(o, "error");
    cJSON_AddStringToObject(eo, "message", message);
    cJSON_AddStringToObject(eo, "type", "unavailable_error");
    cJSON_AddNullToObject(eo, "param");
    cJSON_AddNullToObject(eo, "code");
    return sse_set_json(rc, o);
}

/* Makes the next event; 1 when one is pending, 0 at the end, -1 to abort. */
static int next_event(req_ctx *rc)
{
    completion *k = rc->v1;
    engine *e = rc->srv->eng;
    if (k->over)
        return 0;
    sse_pace(rc);
    for (;;) {
        int all_final = 1;
        for (size_t step = 0; step < k->nch; step++) {
            choice *c = &k->ch[(k->cursor + step) % k->nch];
            if (pull(e, c, k->q.logprobs, 0))
                return -1;
            if (failed(c)) {
                record(rc, k);
                rc->finish = c->res.end == JOB_CANCELLED ? "cancelled" : "unavailable";
                if (c->res.end == JOB_CANCELLED)
                    return -1;
                k->over = 1;
                return error_event(rc,
                                   c->res.end == JOB_QUEUE_TIMEOUT
                                       ? "timed out waiting for a free generation slot"
                                       : "the server is shutting down") == 0
                    ? 1
                    : -1;
            }
            int r = choice_event(rc, k, c);
            if (r != 0) {
                k->cursor = (k->cursor + step + 1) % k->nch;
                return r;
            }
            all_final &= c->final_sent;
        }
        if (all_final) {
            if (!k->usage_sent) {
                k->usage_sent = 1;
                record(rc, k);
                if (k->q.include_usage) {
                    cJSON *o = envelope(k);
                    cJSON_AddArrayToObject(o, "choices");
                    add_usage(o, k);
                    return sse_set_json(rc, o) == 0 ? 1 : -1;
                }
            }
            k->over = 1;
            char *done = strdup("[DONE]");
            return sse_set_text(rc, done) == 0 ? 1 : -1;
        }
        /* nothing due: wait on a running choice, then look again */
        for (size_t i = 0; i < k->nch; i++)
            if (!k->ch[i].ended && k->ch[i].job) {
                int ended;
                char b[1];
                engine_job_read(e, k->ch[i].job, k->ch[i].len, b, 0, k->nch > 1 ? POLL_MS : WAIT_MS,
                                &ended);
                break;
            }
        if (client_gone(rc)) {
            release_jobs(e, k);
            rc->finish = "cancelled";
            return -1;
        }
        int ka = sse_keepalive(rc);
        if (ka != 0)
            return ka;
    }
}

/* ---- the handler ---- */

/* The /v1 name of a sampling field (the library's names, except these two). */
static const char *v1_field_name(charrnn_sample_field f)
{
    return f == CHARRNN_SAMPLE_PRIME ? "prompt"
        : f == CHARRNN_SAMPLE_LENGTH ? "max_tokens"
                                     : charrnn_sample_field_name(f);
}

static size_t max_stop_len(const completion_request *q)
{
    size_t m = 0;
    for (size_t i = 0; i < q->p.n_stop; i++)
        m = strlen(q->stop[i]) > m ? strlen(q->stop[i]) : m;
    return m;
}

enum MHD_Result handle_v1_completions(req_ctx *rc)
{
    server *srv = rc->srv;
    api_error err;
    completion *k = calloc(1, sizeof *k);
    if (!k)
        return respond_fail(rc, 500, "server_error", NULL, "out of memory");
    if (completion_request_parse(rc->body ? rc->body : "", rc->body_len, &srv->cfg, &k->q, &err)) {
        free(k);
        return respond_error(rc, &err);
    }
    completion_request *q = &k->q;
    echo_str(rc->user, sizeof rc->user, q->user); /* for the access log */
    enum MHD_Result ret;
    const store_model *ver;
    if (gen_acquire(rc, q->model, &ver, &ret) != 0 || gen_seed(rc, q->has_seed, &q->seed, &ret)) {
        store_release(ver);
        completion_free(k);
        return ret;
    }
    rc->stream = q->stream;
    rc->sampled = 1;
    char msg[CHARRNN_ERR_MAX];
    if (!q->model && !(q->model = strdup(rc->model))) { /* the default: responses name it */
        store_release(ver);
        completion_free(k);
        return respond_fail(rc, 500, "server_error", NULL, "out of memory");
    }
    if (charrnn_vocab_copy(ver->model->vocab, &k->vocab, msg, sizeof msg) != CHARRNN_OK) {
        store_release(ver);
        completion_free(k);
        return respond_fail(rc, 500, "server_error", NULL, "out of memory");
    }
    snprintf(k->id, sizeof k->id, "cmpl-%s", rc->request_id);
    k->created = (long long)time(NULL);
    snprintf(k->fingerprint, sizeof k->fingerprint, "fp_%.16s", ver->sha256);
    size_t ms = max_stop_len(q);
    k->hold = ms > 1 ? ms - 1 : 0;
    k->cand = q->best_of > q->n ? (size_t)q->best_of : (size_t)q->n;
    k->nch = q->n_prompt * k->cand;
    k->ch = calloc(k->nch, sizeof *k->ch);
    if (!k->ch) {
        store_release(ver);
        completion_free(k);
        return respond_fail(rc, 500, "server_error", NULL, "out of memory");
    }
    rc->v1 = k;
    rc->v1_free = v1_ctx_free;
    int score = q->echo && q->logprobs >= 0;
    int run = q->p.length > 0 || score;
    int failed_setup = 0;
    for (size_t i = 0; i < k->nch && !failed_setup; i++) {
        choice *c = &k->ch[i];
        c->index = i;
        c->prompt_idx = i / k->cand;
        c->prompt = q->prompt[c->prompt_idx];
        c->prompt_len = q->prompt_len[c->prompt_idx];
        c->prompt_chars = utf8_chars(c->prompt, c->prompt_len);
        c->seed = q->seed + (uint64_t)i;
        c->scored = score && c->prompt_chars > 0 ? c->prompt_chars - 1 : 0;
        rc->prime_chars += c->prompt_chars;
        if (!run)
            continue;
        charrnn_sample_params p = completion_choice_params(q, c->prompt_idx, c->seed);
        if (k->cand > (size_t)q->n)
            p.logprobs = 1; /* the ranking's numbers (returned only when asked for) */
        failed_setup = !(c->job = gen_prepare(rc, ver, &p, v1_field_name, &ret));
    }
    store_release(ver);
    /* Admitted together: a request runs whole or not at all, and its client's
     * share is checked for all its choices at once. */
    gen_job **jobs = run && !failed_setup ? malloc(k->nch * sizeof *jobs) : NULL;
    if (run && !failed_setup && !jobs) {
        ret = respond_fail(rc, 500, "server_error", NULL, "out of memory");
        failed_setup = 1;
    }
    for (size_t i = 0; jobs && i < k->nch; i++)
        jobs[i] = k->ch[i].job;
    if (jobs && gen_admit(rc, jobs, k->nch, &ret) != 0)
        failed_setup = 1;
    free(jobs);
    if (failed_setup) {
        release_jobs(srv->eng, k);
        return ret;
    }
    return q->stream ? sse_start(rc, next_event) : respond_whole(rc, k);
}

/* ---- /v1/models ---- */

static cJSON *v1_model_json(const store_entry *e)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", e->name);
    cJSON_AddStringToObject(o, "object", "model");
    cJSON_AddNumberToObject(o, "created", floor(e->current->loaded_at));
    cJSON_AddStringToObject(o, "owned_by", "charrnn");
    return o;
}

enum MHD_Result handle_v1_models(req_ctx *rc)
{
    store_entry *list = NULL;
    size_t n = 0;
    if (store_list(rc->srv->store, &list, &n) != CHARRNN_OK)
        return respond_fail(rc, 500, "server_error", NULL, "out of memory");
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "object", "list");
    cJSON *arr = cJSON_AddArrayToObject(root, "data");
    for (size_t i = 0; i < n; i++)
        if (list[i].current)
            cJSON_AddItemToArray(arr, v1_model_json(&list[i]));
    store_list_free(list, n);
    return respond_json(rc, 200, root);
}

enum MHD_Result handle_v1_model(req_ctx *rc)
{
    const char *id = rc->name;
    store_entry *list = NULL;
    size_t n = 0;
    cJSON *o = NULL;
    store_list(rc->srv->store, &list, &n);
    for (size_t i = 0; i < n && !o; i++)
        if (list[i].current && !strcmp(list[i].name, id))
            o = v1_model_json(&list[i]);
    store_list_free(list, n);
    if (!o)
        return respond_fail(rc, 404, "not_found_error", "model", "model '%s' not found", id);
    return respond_json(rc, 200, o);
}

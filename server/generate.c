/* The one generation path (generate.h). */
#include "generate.h"

#include "charrnn/rng.h"

#include "conn_guard.h"
#include "echo.h"
#include "log.h"
#include "random_bytes.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#define GEN_WAIT_MS 100 /* how often a waiting handler looks for its client */

int gen_acquire(req_ctx *c, const char *model, const store_model **ver, enum MHD_Result *ret)
{
    server *srv = c->srv;
    *ver = NULL;
    if (atomic_load(&srv->draining)) {
        *ret = respond_fail(c, 503, "unavailable_error", NULL, "the server is shutting down");
        return -1;
    }
    if (model) {
        /* for the access log; the store looks up the name itself, uncut */
        echo_str(c->model, sizeof c->model, model);
    } else if (!default_model(srv, c->model, sizeof c->model)) {
        *ret = respond_fail(c, 400, "invalid_request_error", "model",
                            "no 'model' given and no default model is configured");
        return -1;
    }
    char msg[CHARRNN_ERR_MAX];
    if (store_acquire(srv->store, model ? model : c->model, ver, msg, sizeof msg) != CHARRNN_OK) {
        *ret = respond_fail(c, 404, "not_found_error", "model", "%s", msg);
        return -1;
    }
    c->model_version = (*ver)->version;
    metrics_model_request(srv->met, c->model, c->route);
    return 0;
}

int gen_seed(req_ctx *c, int has_seed, uint64_t *seed, enum MHD_Result *ret)
{
    if (!has_seed && random_bytes(seed, sizeof *seed) != 0) {
        int e = errno;
        cJSON *f = cJSON_CreateObject();
        cJSON_AddStringToObject(f, "error", strerror(e));
        log_json("error", "getrandom failed: no random seed", f);
        *ret = respond_fail(c, 500, "server_error", "seed",
                            "cannot draw a random seed (%s); give a 'seed'", strerror(e));
        return -1;
    }
    if (!has_seed)
        *seed = charrnn_user_seed(*seed);
    c->seed = *seed;
    return 0;
}

/* The client the request's generations count for (generate.h): "key:LABEL"
 * or "ip:" and the connection limits' address key in hex. */
static void client_of(const req_ctx *c, char out[ENGINE_CLIENT_MAX])
{
    if (c->key_label[0]) {
        snprintf(out, ENGINE_CLIENT_MAX, "key:%s", c->key_label);
        return;
    }
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    uint8_t key[16];
    if (!ci || !ci->client_addr || !conn_guard_key(ci->client_addr, key)) {
        snprintf(out, ENGINE_CLIENT_MAX, "other");
        return;
    }
    int o = snprintf(out, ENGINE_CLIENT_MAX, "ip:");
    for (int i = 0; i < 16; i++)
        o += snprintf(out + o, ENGINE_CLIENT_MAX - (size_t)o, "%02x", key[i]);
}

gen_job *gen_prepare(req_ctx *c, const store_model *ver, const charrnn_sample_params *p,
                     gen_field_name_fn name, enum MHD_Result *ret)
{
    char msg[CHARRNN_ERR_MAX];
    charrnn_sample_field bad = CHARRNN_SAMPLE_NONE;
    charrnn_stream *st = NULL;
    /* The parsers checked every field against the same table; the stream
     * checks them again against the model (naming the field should they ever
     * disagree), then the prime's characters and the regex. */
    int rc = charrnn_stream_create_field(ver->model, p, &st, &bad, msg, sizeof msg);
    if (rc != CHARRNN_OK) {
        if (rc == CHARRNN_ENOMEM) {
            *ret = respond_fail(c, 500, "server_error", NULL, "%s", msg);
            return NULL;
        }
        *ret = respond_fail(c, 400, "invalid_request_error", bad ? name(bad) : NULL, "%s", msg);
        return NULL;
    }
    gen_job *job = engine_job_create(st, store_retain(ver), p->logprobs ? p->top_logprobs : 0);
    if (!job) {
        charrnn_stream_free(st);
        store_release(ver);
        *ret = respond_fail(c, 500, "server_error", NULL, "out of memory");
        return NULL;
    }
    char client[ENGINE_CLIENT_MAX];
    client_of(c, client);
    engine_job_set_client(job, client);
    return job;
}

int gen_admit(req_ctx *c, gen_job *const *jobs, size_t n, enum MHD_Result *ret)
{
    int rc = engine_submit_all(c->srv->eng, jobs, n);
    if (rc == 0)
        return 0;
    c->finish = "rejected";
    if (rc == ENGINE_SHARE) {
        *ret = respond_fail(c, 429, "rate_limit_error", NULL,
                            "this client may hold %d generations at once, running and queued "
                            "(--max-client-share), and this request asks for %zu more; retry "
                            "when one ends",
                            c->srv->cfg.max_client_share, n);
        return -1;
    }
    engine_stats s;
    engine_stats_get(c->srv->eng, &s);
    *ret = respond_fail(c, 503, "unavailable_error", NULL,
                        "the server is busy (%d generations running, %d queued); retry later",
                        s.active, s.queued);
    return -1;
}

gen_job *gen_submit(req_ctx *c, const store_model *ver, const charrnn_sample_params *p,
                    gen_field_name_fn name, enum MHD_Result *ret)
{
    gen_job *job = gen_prepare(c, ver, p, name, ret);
    if (job && gen_admit(c, &job, 1, ret) != 0) {
        engine_job_release(c->srv->eng, job);
        return NULL;
    }
    return job;
}

int gen_wait(req_ctx *c, gen_job *job, const char *what, job_result *res, enum MHD_Result *ret)
{
    engine *e = c->srv->eng;
    while (!engine_job_wait(e, job, GEN_WAIT_MS)) {
        if (client_gone(c)) {
            engine_cancel(e, job);
            c->finish = "cancelled";
            *ret = MHD_NO;
            return -1;
        }
    }
    engine_job_result(e, job, res);
    if (res->end == JOB_QUEUE_TIMEOUT || res->end == JOB_SHUTDOWN || res->end == JOB_TIMEOUT) {
        c->finish = res->end == JOB_TIMEOUT ? "timeout" : "unavailable";
        *ret = res->end == JOB_TIMEOUT
            ? respond_fail(c, 503, "unavailable_error", NULL, "%s ran past the time limit", what)
            : respond_fail(c, 503, "unavailable_error", NULL,
                           "the server is busy or shutting down");
        return -1;
    }
    if (res->end != JOB_FINISHED) {
        *ret = MHD_NO;
        return -1;
    }
    return 0;
}

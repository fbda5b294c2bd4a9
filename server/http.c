/* The HTTP layer: libmicrohttpd in thread-per-connection mode, routing (by
 * the table in routes.c), request bodies, responses, per-request metrics and the access log.
 *
 * Thread per connection lets a handler block while its generation runs (it
 * wakes every 100 ms to notice a client that went away) and lets a streaming
 * response's reader block until the next chunk is ready. */
#define _GNU_SOURCE /* POLLRDHUP */
#include "charrnn/vocab.h"
#include "conn_guard.h"
#include "echo.h"
#include "framing.h"
#include "origin.h"
#include "log.h"
#include "routes.h"
#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

void add_common_headers(req_ctx *c, struct MHD_Response *r)
{
    MHD_add_response_header(r, "Server", "charrnn-serve/" CHARRNN_VERSION);
    MHD_add_response_header(r, "X-Request-Id", c->request_id);
    /* A browser takes each body for its Content-Type only (a JSON error that
     * echoes a client's text is never run as HTML), and no page of ours tells
     * another site where its user came from. */
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
    if (c->sampled) { /* the seed used, given or drawn: every output can be reproduced */
        char seed[24];
        snprintf(seed, sizeof seed, "%llu", (unsigned long long)c->seed);
        MHD_add_response_header(r, "X-Seed", seed);
    }
    if (atomic_load(&c->srv->draining) || c->must_close)
        MHD_add_response_header(r, "Connection", "close");
    if (c->srv->cfg.cors_origins[0])
        MHD_add_response_header(r, "Vary", "Origin");
    if (c->cors_origin[0])
        MHD_add_response_header(r, "Access-Control-Allow-Origin", c->cors_origin);
}

static enum MHD_Result queue(req_ctx *c, unsigned status, struct MHD_Response *r)
{
    if (!r)
        return MHD_NO;
    add_common_headers(c, r);
    c->status = status;
    c->responded = 1;
    key_slot_give(c); /* a whole answer: its generation has ended */
    enum MHD_Result ret = MHD_queue_response(c->conn, status, r);
    MHD_destroy_response(r);
    return ret;
}

/* A response of text (taken, freed with it), or NULL (text freed). */
static struct MHD_Response *text_response(const char *type, char *text, size_t len)
{
    if (!text)
        return NULL;
    struct MHD_Response *r = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(text);
        return NULL;
    }
    MHD_add_response_header(r, "Content-Type", type);
    MHD_add_response_header(r, "Cache-Control", "no-store");
    return r;
}

enum MHD_Result respond_text(req_ctx *c, unsigned status, const char *type, char *text, size_t len)
{
    return queue(c, status, text_response(type, text, len));
}

enum MHD_Result respond_html(req_ctx *c, char *page, size_t len, const char *csp)
{
    struct MHD_Response *r = text_response("text/html; charset=utf-8", page, len);
    if (r)
        MHD_add_response_header(r, "Content-Security-Policy", csp);
    return queue(c, 200, r);
}

enum MHD_Result respond_json(req_ctx *c, unsigned status, cJSON *body)
{
    char *s = body ? cJSON_PrintUnformatted(body) : NULL;
    cJSON_Delete(body);
    if (!s)
        return MHD_NO;
    size_t n = strlen(s);
    char *t = realloc(s, n + 2);
    if (!t) {
        free(s);
        return MHD_NO;
    }
    t[n] = '\n';
    t[n + 1] = '\0';
    return respond_text(c, status, "application/json; charset=utf-8", t, n + 1);
}

static const char *reason_phrase(unsigned status)
{
    switch (status) {
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Error";
    }
}

/* An error response; allow, if not NULL, is a 405's Allow header. */
static enum MHD_Result error_response(req_ctx *c, const api_error *e, const char *allow)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *o = cJSON_AddObjectToObject(root, "error");
    if (e->status == 401 && c->endpoint && c->endpoint->keyed) {
        cJSON_AddStringToObject(o, "code", "invalid_api_key"); /* OpenAI's, on every route */
    } else if (e->status == 429) {
        cJSON_AddStringToObject(o, "code", "rate_limit_exceeded");
    } else if (!strncmp(c->path, "/v1/", 4)) {
        /* OpenAI's shape: code is a string or null, the status is the HTTP one */
        if (e->status == 404 && !strcmp(e->param, "model"))
            cJSON_AddStringToObject(o, "code", "model_not_found");
        else
            cJSON_AddNullToObject(o, "code");
    } else {
        cJSON_AddNumberToObject(o, "code", e->status);
    }
    cJSON_AddStringToObject(o, "type", e->type ? e->type : "invalid_request_error");
    cJSON_AddStringToObject(o, "message", e->message[0] ? e->message : reason_phrase(e->status));
    if (e->param[0])
        cJSON_AddStringToObject(o, "param", e->param);
    else
        cJSON_AddNullToObject(o, "param");
    char *s = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!s)
        return MHD_NO;
    size_t n = strlen(s);
    struct MHD_Response *r = MHD_create_response_from_buffer(n, s, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(s);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", "application/json; charset=utf-8");
    MHD_add_response_header(r, "Cache-Control", "no-store");
    if (e->status == 503 || e->status == 429) {
        char ra[16];
        snprintf(ra, sizeof ra, "%d", c->srv->cfg.retry_after);
        MHD_add_response_header(r, "Retry-After", ra);
    }
    if (e->status == 401)
        MHD_add_response_header(r, "WWW-Authenticate", "Bearer");
    if (allow)
        MHD_add_response_header(r, "Allow", allow);
    return queue(c, e->status, r);
}

enum MHD_Result respond_error(req_ctx *c, const api_error *e)
{
    return error_response(c, e, NULL);
}

enum MHD_Result respond_fail(req_ctx *c, unsigned status, const char *type, const char *param,
                             const char *fmt, ...)
{
    api_error e;
    va_list ap;
    va_start(ap, fmt);
    api_failv(&e, status, type, param, fmt, ap);
    va_end(ap);
    return respond_error(c, &e);
}

static enum MHD_Result method_not_allowed(req_ctx *c, const char *allow)
{
    api_error e;
    api_fail(&e, 405, "invalid_request_error", NULL, "method %s is not allowed on %s (allowed: %s)",
             c->method, c->path, allow);
    return error_response(c, &e, allow);
}

int client_gone(const req_ctx *c)
{
    if (c->fd < 0)
        return 0;
    struct pollfd p = {.fd = c->fd, .events = POLLRDHUP};
    if (poll(&p, 1, 0) <= 0)
        return 0;
    return (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) != 0;
}

static void access_log(req_ctx *c, double seconds, int aborted)
{
    cJSON *f = cJSON_CreateObject();
    cJSON_AddStringToObject(f, "method", c->method);
    cJSON_AddStringToObject(f, "path", c->path);
    cJSON_AddStringToObject(f, "route", c->route);
    cJSON_AddNumberToObject(f, "status", c->status);
    cJSON_AddNumberToObject(f, "duration_ms", round(seconds * 1e6) / 1e3);
    cJSON_AddStringToObject(f, "remote", c->remote);
    cJSON_AddStringToObject(f, "request_id", c->request_id);
    if (c->user[0])
        cJSON_AddStringToObject(f, "user", c->user);
    if (c->key_label[0])
        cJSON_AddStringToObject(f, "key", c->key_label);
    if (c->sampled) {
        cJSON_AddStringToObject(f, "model", c->model);
        cJSON_AddNumberToObject(f, "model_version", (double)c->model_version);
        char seed[24];
        snprintf(seed, sizeof seed, "%llu", (unsigned long long)c->seed);
        cJSON_AddItemToObject(f, "seed", cJSON_CreateRaw(seed));
        cJSON_AddBoolToObject(f, "stream", c->stream);
        cJSON_AddNumberToObject(f, "prime_chars", (double)c->prime_chars);
        cJSON_AddNumberToObject(f, "cached_chars", (double)c->cached_chars);
        cJSON_AddNumberToObject(f, "generated_chars", (double)c->generated_chars);
    }
    if (c->finish)
        cJSON_AddStringToObject(f, "finish_reason", c->finish);
    if (aborted)
        cJSON_AddBoolToObject(f, "client_aborted", 1);
    log_json("info", "request", f);
}

void key_slot_give(req_ctx *c)
{
    if (atomic_exchange(&c->key_slot, 0))
        api_keys_give(c->srv->keys, c->key_label);
}

void ctx_release(req_ctx *c)
{
    if (atomic_fetch_sub(&c->refs, 1) != 1)
        return;
    if (c->job) {
        engine_cancel(c->srv->eng, c->job);
        engine_job_release(c->srv->eng, c->job);
    }
    key_slot_give(c);
    if (c->v1_free)
        c->v1_free(c);
    free(c->body);
    free(c->pending);
    free(c);
}

static void completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                      enum MHD_RequestTerminationCode toe)
{
    server *srv = cls;
    req_ctx *c = *con_cls;
    if (!c)
        return;
    *con_cls = NULL;
    if ((c->job || c->v1) && toe != MHD_REQUEST_TERMINATED_COMPLETED_OK) {
        if (c->job)
            engine_cancel(srv->eng, c->job);
        if (!c->finish || c->stream)
            c->finish = "cancelled";
    }
    double dt = charrnn_clock_mono() - c->t0;
    int aborted = toe != MHD_REQUEST_TERMINATED_COMPLETED_OK;
    unsigned status = c->responded ? c->status : 499; /* nginx's "client closed request" */
    c->status = status;
    metrics_observe(srv->met, c->route, status, dt);
    if (c->key_label[0])
        metrics_key_observe(srv->met, c->key_label, c->route, status, c->generated_chars);
    if (srv->cfg.access_log)
        access_log(c, dt, aborted);
    conn_guard_response_out(conn);
    atomic_fetch_sub(&srv->inflight, 1);
    ctx_release(c);
}

/* The body is always parsed as JSON. application/json is the contract; the
 * form type is what `curl -d '{...}'` sends by default, and the README's
 * one-line examples must work as typed, so it is taken as JSON too - but only
 * without an Origin header: a browser sends one with every cross-site POST,
 * and a form-encoded POST is what a page may send without a CORS preflight.
 * Anything else (text/plain, multipart, none) is 415. */
static int content_type_is_json(const char *ct, int from_browser)
{
    if (!ct)
        return 0;
    while (*ct == ' ')
        ct++;
    size_t n = strcspn(ct, "; \t");
    return (n == 16 && !strncasecmp(ct, "application/json", 16)) ||
        (!from_browser && n == 33 && !strncasecmp(ct, "application/x-www-form-urlencoded", 33));
}

/* The body limit of the request's route. */
static size_t max_body(const req_ctx *c)
{
    size_t m = c->endpoint->max_body;
    return m == ROUTE_MAX_BODY ? c->srv->cfg.max_body : m;
}

/* Checks that can answer before the body is read. Returns 1 if a response was queued. */
/* The token of "Authorization: Bearer TOKEN", or NULL. */
static const char *bearer_token(const req_ctx *c)
{
    const char *auth = MHD_lookup_connection_value(c->conn, MHD_HEADER_KIND, "Authorization");
    if (!auth || strncasecmp(auth, "Bearer ", 7))
        return NULL;
    for (auth += 7; *auth == ' ';)
        auth++;
    return auth;
}

/* The presented API key: "Authorization: Bearer KEY" (OpenAI clients) or
 * "X-API-Key: KEY"; NULL when neither is there. */
static const char *presented_key(req_ctx *c)
{
    const char *key = bearer_token(c);
    return key ? key : MHD_lookup_connection_value(c->conn, MHD_HEADER_KIND, "X-API-Key");
}

/* With --api-key-file, a keyed route needs one of the keys (401), and a route
 * that runs generations one of its key's slots (429 at max_active). The key
 * is checked before the body is read; it is never logged, only its label. */
static int key_checks(req_ctx *c, enum MHD_Result *ret)
{
    server *srv = c->srv;
    int keyed = c->endpoint->keyed == ROUTE_KEY_METRICS ? srv->cfg.metrics_key : c->endpoint->keyed;
    if (!keyed || !api_keys_enabled(srv->keys))
        return 0;
    const char *key = presented_key(c);
    if (!key || api_keys_check(srv->keys, key, strlen(key), c->key_label) != 0) {
        c->key_label[0] = '\0';
        *ret = respond_fail(c, 401, "invalid_request_error", NULL,
                            key ? "incorrect API key provided"
                                : "an API key is required: Authorization: Bearer KEY or X-API-Key");
        return 1;
    }
    if (c->endpoint->keyed == ROUTE_KEY_GEN) {
        if (api_keys_take(srv->keys, c->key_label) != 0) {
            *ret = respond_fail(c, 429, "rate_limit_error", NULL,
                                "the key '%s' runs as many generations as it may at once; retry "
                                "when one ends",
                                c->key_label);
            return 1;
        }
        atomic_store(&c->key_slot, 1);
    }
    return 0;
}

static int early_checks(req_ctx *c, const route_match *m, enum MHD_Result *ret)
{
    if (!m->route) {
        *ret = m->allow[0] ? method_not_allowed(c, m->allow)
                           : respond_fail(c, 404, "not_found_error", NULL,
                                          "no such endpoint: %s %s", c->method, c->path);
        return 1;
    }
    if (m->route->json) {
        const char *ct = MHD_lookup_connection_value(c->conn, MHD_HEADER_KIND, "Content-Type");
        const char *origin = MHD_lookup_connection_value(c->conn, MHD_HEADER_KIND, "Origin");
        char shown[101];
        if (!content_type_is_json(ct, origin != NULL)) {
            *ret = respond_fail(c, 415, "invalid_request_error", NULL,
                                "Content-Type must be application/json (got %s)",
                                ct ? echo_str(shown, sizeof shown, ct) : "none");
            return 1;
        }
    }
    if (key_checks(c, ret))
        return 1;
    const char *cl = MHD_lookup_connection_value(c->conn, MHD_HEADER_KIND, "Content-Length");
    if (cl && strtoull(cl, NULL, 10) > max_body(c)) {
        *ret = respond_fail(c, 413, "invalid_request_error", NULL,
                            "the body is %s bytes; the limit is %zu", cl, max_body(c));
        return 1;
    }
    return 0;
}

/* Constant-time comparison (time depends only on the lengths). */
static int token_equal(const char *given, const char *want)
{
    size_t a = strlen(given), b = strlen(want);
    unsigned char diff = (unsigned char)(a != b);
    for (size_t i = 0; i < b; i++)
        diff |= (unsigned char)(given[i < a ? i : 0] ^ want[i]);
    if (a == 0)
        diff |= 1;
    return diff == 0;
}

/* 1 if the request may use its route: no token needed, none configured, or
 * the right bearer token given. */
static int authorized(const req_ctx *c)
{
    const char *want = c->srv->cfg.admin_token;
    if (!c->endpoint->needs_token || !want[0])
        return 1;
    const char *tok = bearer_token(c);
    return token_equal(tok ? tok : "", want);
}

static void remote_of(struct MHD_Connection *conn, char *out, size_t n)
{
    snprintf(out, n, "-");
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (!ci || !ci->client_addr)
        return;
    const struct sockaddr *sa = ci->client_addr;
    char host[INET6_ADDRSTRLEN] = "";
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
        snprintf(out, n, "%s:%u", host, ntohs(in->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
        snprintf(out, n, "[%s]:%u", host, ntohs(in6->sin6_port));
    }
}

/* A CORS preflight (OPTIONS with Origin and Access-Control-Request-Method):
 * 204 with the methods the path accepts when the origin is in --cors-origin,
 * 403 otherwise (the browser then does not send the request). */
static enum MHD_Result preflight(req_ctx *c, const char *url)
{
    server *srv = c->srv;
    const char *want =
        MHD_lookup_connection_value(c->conn, MHD_HEADER_KIND, "Access-Control-Request-Method");
    char msg[256], name[STORE_NAME_MAX + 2];
    int cors = 0;
    int st = origin_check(c->conn, srv->loopback, srv->cfg.cors_origins, &cors, msg, sizeof msg);
    if (st)
        return respond_fail(c, (unsigned)st, "permission_error", NULL, "%s", msg);
    if (!cors)
        return respond_fail(c, 403, "permission_error", NULL,
                            "this origin may not call the API from a browser page (see "
                            "--cors-origin)");
    route_match m;
    route_find(want, url, name, sizeof name, &m);
    if (!m.allow[0])
        return respond_fail(c, 404, "not_found_error", NULL, "no such endpoint: %s", c->path);
    snprintf(c->cors_origin, sizeof c->cors_origin, "%s",
             MHD_lookup_connection_value(c->conn, MHD_HEADER_KIND, "Origin"));
    struct MHD_Response *r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Access-Control-Allow-Methods", m.allow);
    MHD_add_response_header(r, "Access-Control-Allow-Headers",
                            "Content-Type, Authorization, X-API-Key");
    MHD_add_response_header(r, "Access-Control-Max-Age", "600");
    return queue(c, 204, r);
}

/* A new request's context: who asked what (method, path, route, remote
 * address, request id), the clock started. NULL when out of memory. */
static req_ctx *req_new(server *srv, struct MHD_Connection *conn, const char *url,
                        const char *method, route_match *m)
{
    req_ctx *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    atomic_init(&c->refs, 1);
    c->srv = srv;
    c->conn = conn;
    c->t0 = charrnn_clock_mono();
    c->fd = -1;
    /* libmicrohttpd percent-decodes the path: it may hold any bytes */
    echo_str(c->method, sizeof c->method, method);
    echo_str(c->path, sizeof c->path, url);
    route_find(method, url, c->name, sizeof c->name, m);
    char name[sizeof c->name];
    snprintf(name, sizeof name, "%s", c->name);
    echo_str(c->name, sizeof c->name, name);
    c->endpoint = m->route;
    c->route = m->label;
    remote_of(conn, c->remote, sizeof c->remote);
    request_id_assign(MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Request-Id"),
                      c->request_id);
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (ci)
        c->fd = ci->connect_fd;
    return c;
}

/* The checks that need only the headers, in order: framing, the reserved
 * connection slots, a CORS preflight, the origin, then early_checks. Answers
 * the request when one fails (or when it is a preflight). */
static enum MHD_Result headers_arrived(req_ctx *c, const char *url, const char *method,
                                       const route_match *m)
{
    server *srv = c->srv;
    struct MHD_Connection *conn = c->conn;
    char why[256];
    if (http_framing_error(conn, why, sizeof why)) {
        c->must_close = 1;
        return respond_fail(c, 400, "invalid_request_error", NULL, "%s", why);
    }
    if (conn_guard_reserved(conn) && strcmp(c->route, "/healthz") && strcmp(c->route, "/readyz") &&
        strcmp(c->route, "/metrics")) {
        c->must_close = 1;
        return respond_fail(c, 503, "unavailable_error", NULL,
                            "every connection slot is taken (the last ones are kept for "
                            "/healthz, /readyz and /metrics); retry later");
    }
    if (!strcmp(method, "OPTIONS") &&
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Origin") &&
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Access-Control-Request-Method"))
        return preflight(c, url);
    int cors = 0;
    int st = origin_check(conn, srv->loopback, srv->cfg.cors_origins, &cors, why, sizeof why);
    if (st)
        return respond_fail(c, (unsigned)st, "permission_error", NULL, "%s", why);
    if (cors)
        snprintf(c->cors_origin, sizeof c->cors_origin, "%s",
                 MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Origin"));
    enum MHD_Result ret = MHD_YES;
    if (early_checks(c, m, &ret))
        return ret;
    return MHD_YES;
}

/* A piece of the body: kept, or only counted once past the limit (the
 * request is then answered 413 when it is complete). */
static enum MHD_Result body_arrived(req_ctx *c, const char *data, size_t n)
{
    if (c->body_len + n > max_body(c)) {
        c->body_len = max_body(c) + 1; /* remembered as too large */
        return MHD_YES;
    }
    char *b = realloc(c->body, c->body_len + n + 1);
    if (!b)
        return MHD_NO;
    memcpy(b + c->body_len, data, n);
    c->body = b;
    c->body_len += n;
    c->body[c->body_len] = '\0';
    return MHD_YES;
}

/* The whole request arrived: its size, the admin token's rules, then the
 * endpoint's handler. */
static enum MHD_Result request_complete(req_ctx *c)
{
    server *srv = c->srv;
    conn_guard_request_in(c->conn); /* all of it arrived: no deadline while it is answered */
    if (c->body_len > max_body(c))
        return respond_fail(c, 413, "invalid_request_error", NULL,
                            "the body is larger than the limit of %zu bytes", max_body(c));
    if (c->endpoint->needs_token && !srv->cfg.admin_token[0] && !srv->loopback)
        return respond_fail(c, 403, "permission_error", NULL,
                            "without an admin token this endpoint answers only on a loopback "
                            "address; set --admin-token (CHARRNN_ADMIN_TOKEN) to use it on %s",
                            srv->bound);
    if (!authorized(c))
        return respond_fail(c, 401, "authentication_error", NULL,
                            "a valid admin bearer token is required");
    return c->endpoint->handler(c);
}

/* libmicrohttpd calls this once with the headers, then once per piece of the
 * body, then once with none left. */
static enum MHD_Result access_handler(void *cls, struct MHD_Connection *conn, const char *url,
                                      const char *method, const char *version,
                                      const char *upload_data, size_t *upload_data_size,
                                      void **con_cls)
{
    server *srv = cls;
    req_ctx *c = *con_cls;
    if (!c) {
        route_match m;
        if (!(c = req_new(srv, conn, url, method, &m)))
            return MHD_NO;
        *con_cls = c;
        atomic_fetch_add(&srv->inflight, 1);
        return headers_arrived(c, url, method, &m);
    }
    if (c->responded) { /* rejected early: discard whatever body follows */
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        return body_arrived(c, upload_data, n);
    }
    return request_complete(c);
}

/* 1 if the socket is bound to a loopback address (127.0.0.0/8, ::1 or
 * ::ffff:127.0.0.0/104): then only this machine can reach it. A wildcard
 * address (0.0.0.0, ::) is not. */
static int is_loopback(int fd)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0)
        return 0;
    if (ss.ss_family == AF_INET)
        return (ntohl(((struct sockaddr_in *)&ss)->sin_addr.s_addr) >> 24) == 127;
    if (ss.ss_family == AF_INET6) {
        const struct in6_addr *a = &((struct sockaddr_in6 *)&ss)->sin6_addr;
        return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
    }
    return 0;
}

/* Opens the listening socket for HOST:PORT ([v6]:port accepted). */
static int open_listener(const char *spec, char *bound, size_t boundlen, char *err, size_t errlen)
{
    char host[256], port[16];
    const char *colon = strrchr(spec, ':');
    if (!colon || colon == spec || !colon[1] || strlen(colon + 1) >= sizeof port) {
        snprintf(err, errlen, "--listen '%s' is not HOST:PORT", spec);
        return -1;
    }
    size_t hl = (size_t)(colon - spec);
    if (spec[0] == '[' && hl >= 2 && spec[hl - 1] == ']') {
        spec++;
        hl -= 2;
    }
    if (hl >= sizeof host) {
        snprintf(err, errlen, "--listen host too long");
        return -1;
    }
    memcpy(host, spec, hl);
    host[hl] = '\0';
    snprintf(port, sizeof port, "%s", colon + 1);
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int gai = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
    if (gai != 0) {
        snprintf(err, errlen, "--listen %s: %s", spec, gai_strerror(gai));
        return -1;
    }
    int fd = -1;
    char why[256] = "no address";
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0)
            continue;
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        /* A deep accept queue: a burst of connections (many clients at once, or
         * an abusive one refused by the connection limits) must not overflow it,
         * or a health probe's SYN is dropped and retried a second later. The
         * kernel caps it at net.core.somaxconn. */
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, SOMAXCONN) == 0)
            break;
        snprintf(why, sizeof why, "%s", strerror(errno));
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        snprintf(err, errlen, "cannot listen on %s: %s", spec, why);
        return -1;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    char h[INET6_ADDRSTRLEN] = "?";
    unsigned p = 0;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET) {
            struct sockaddr_in *in = (struct sockaddr_in *)&ss;
            inet_ntop(AF_INET, &in->sin_addr, h, sizeof h);
            p = ntohs(in->sin_port);
            snprintf(bound, boundlen, "%s:%u", h, p);
        } else {
            struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
            inet_ntop(AF_INET6, &in6->sin6_addr, h, sizeof h);
            p = ntohs(in6->sin6_port);
            snprintf(bound, boundlen, "[%s]:%u", h, p);
        }
    }
    return fd;
}

static void mhd_logger(void *cls, const char *fmt, va_list ap)
{
    char buf[512];
    vsnprintf(buf, sizeof buf, fmt, ap);
    size_t n = strlen(buf);
    while (n && buf[n - 1] == '\n')
        buf[--n] = '\0';
    cJSON *f = cJSON_CreateObject();
    cJSON_AddStringToObject(f, "detail", buf);
    log_json("warn", "libmicrohttpd", f);
}

int http_start(server *srv, char *err, size_t errlen)
{
    srv->listen_fd = open_listener(srv->cfg.listen, srv->bound, sizeof srv->bound, err, errlen);
    if (srv->listen_fd < 0)
        return -1;
    srv->loopback = is_loopback(srv->listen_fd);
    srv->guard = conn_guard_create(srv->cfg.max_connections, srv->cfg.max_connections_per_ip,
                                   srv->cfg.request_timeout);
    if (!srv->guard) {
        snprintf(err, errlen, "cannot start the connection guard");
        close(srv->listen_fd);
        srv->listen_fd = -1;
        return -1;
    }
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC |
        MHD_USE_POLL | MHD_USE_ERROR_LOG;
    srv->mhd = MHD_start_daemon(
        flags, 0, conn_guard_accept, srv->guard, access_handler, srv, MHD_OPTION_EXTERNAL_LOGGER,
        mhd_logger, NULL, MHD_OPTION_LISTEN_SOCKET, (MHD_socket)srv->listen_fd,
        MHD_OPTION_NOTIFY_COMPLETED, completed, srv, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)(srv->cfg.max_connections + CONN_GUARD_RESERVE),

        MHD_OPTION_NOTIFY_CONNECTION, conn_guard_notify, srv->guard, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)60, MHD_OPTION_END);
    if (!srv->mhd) {
        snprintf(err, errlen, "cannot start the HTTP daemon on %s", srv->bound);
        conn_guard_free(srv->guard);
        srv->guard = NULL;
        close(srv->listen_fd);
        srv->listen_fd = -1;
        return -1;
    }
    return 0;
}

void http_quiesce(server *srv)
{
    if (!srv->mhd)
        return;
    MHD_quiesce_daemon(srv->mhd);
    /* Refuse new connections now instead of leaving them in the backlog until
     * exit. The descriptor itself stays open until MHD_stop_daemon, as MHD
     * requires. */
    if (srv->listen_fd >= 0)
        shutdown(srv->listen_fd, SHUT_RDWR);
}

void http_stop(server *srv)
{
    if (srv->mhd)
        MHD_stop_daemon(srv->mhd);
    srv->mhd = NULL;
    conn_guard_free(srv->guard);
    srv->guard = NULL;
    if (srv->listen_fd >= 0)
        close(srv->listen_fd);
    srv->listen_fd = -1;
}

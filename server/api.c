/* The small endpoints: models, reload, health, readiness, metrics. */
#define _GNU_SOURCE /* memmem */
#include "charrnn/lowp.h"
#include "charrnn/sha256.h"
#include "log.h"
#include "server.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void rfc3339(double t, char *out, size_t n)
{
    time_t s = (time_t)t;
    struct tm tm;
    gmtime_r(&s, &tm);
    size_t k = strftime(out, n, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + k, n - k, ".%03dZ", (int)((t - (double)s) * 1000));
}

/* The default model given the store's list: the configured one, or the only one. */
static int default_of(const server *srv, const store_entry *list, size_t cnt, char *out, size_t n)
{
    if (srv->cfg.default_model[0]) {
        snprintf(out, n, "%s", srv->cfg.default_model);
        return 1;
    }
    if (cnt != 1)
        return 0;
    snprintf(out, n, "%s", list[0].name);
    return 1;
}

int default_model(server *srv, char *out, size_t n)
{
    if (srv->cfg.default_model[0])
        return default_of(srv, NULL, 0, out, n);
    store_entry *list = NULL;
    size_t cnt = 0;
    store_list(srv->store, &list, &cnt);
    int ok = default_of(srv, list, cnt, out, n);
    store_list_free(list, cnt);
    return ok;
}

cJSON *model_json(const store_entry *e, const char *def)
{
    char when[40];
    int has_def = def[0] != '\0';
    cJSON *o = cJSON_CreateObject();
    const store_model *v = e->current;
    cJSON_AddStringToObject(o, "name", e->name);
    cJSON_AddStringToObject(o, "status", v ? "ready" : "unavailable");
    cJSON_AddBoolToObject(o, "default", has_def && !strcmp(def, e->name));
    if (v) {
        const charrnn_config *cfg = &v->model->cfg;
        cJSON_AddNumberToObject(o, "version", (double)v->version);
        cJSON_AddStringToObject(o, "cell", charrnn_cell_name(cfg->cell));
        cJSON_AddNumberToObject(o, "num_layers", cfg->num_layers);
        cJSON_AddNumberToObject(o, "hidden_size", cfg->hidden_size);
        cJSON_AddNumberToObject(o, "vocab_size", cfg->vocab_size);
        cJSON_AddNumberToObject(o, "num_params", (double)v->model->num_params);
        cJSON_AddStringToObject(o, "dtype", charrnn_dtype_name(v->model->dtype));
        if (isnan(v->val_loss))
            cJSON_AddNullToObject(o, "val_loss");
        else
            cJSON_AddNumberToObject(o, "val_loss", v->val_loss);
        rfc3339(v->loaded_at, when, sizeof when);
        cJSON_AddStringToObject(o, "loaded_at", when);
        cJSON_AddNumberToObject(o, "file_size", (double)v->file_size);
        cJSON_AddStringToObject(o, "sha256", v->sha256);
    } else {
        cJSON_AddNullToObject(o, "version");
    }
    cJSON_AddNumberToObject(o, "loads", (double)e->loads);
    cJSON_AddNumberToObject(o, "load_failures", (double)e->load_failures);
    if (e->last_error[0]) {
        cJSON *le = cJSON_AddObjectToObject(o, "last_error");
        cJSON_AddStringToObject(le, "message", e->last_error);
        rfc3339(e->last_error_at, when, sizeof when);
        cJSON_AddStringToObject(le, "at", when);
    } else {
        cJSON_AddNullToObject(o, "last_error");
    }
    return o;
}

enum MHD_Result handle_models(req_ctx *c)
{
    store_entry *list = NULL;
    size_t n = 0;
    if (store_list(c->srv->store, &list, &n) != CHARRNN_OK)
        return respond_fail(c, 500, "server_error", NULL, "out of memory");
    /* One list for the whole answer (the default model was once looked up
     * per entry, listing the store again each time: quadratic). */
    char def[STORE_NAME_MAX + 1] = "";
    default_of(c->srv, list, n, def, sizeof def);
    cJSON *root = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(root, "models");
    for (size_t i = 0; i < n; i++)
        cJSON_AddItemToArray(arr, model_json(&list[i], def));
    store_list_free(list, n);
    if (def[0])
        cJSON_AddStringToObject(root, "default_model", def);
    else
        cJSON_AddNullToObject(root, "default_model");
    return respond_json(c, 200, root);
}

/* The entry of name as JSON, or NULL when the store has no such name. */
static cJSON *find_model(server *srv, const char *name)
{
    store_entry *list = NULL;
    size_t n = 0;
    cJSON *o = NULL;
    store_list(srv->store, &list, &n);
    char def[STORE_NAME_MAX + 1] = "";
    default_of(srv, list, n, def, sizeof def);
    for (size_t i = 0; i < n && !o; i++)
        if (!strcmp(list[i].name, name))
            o = model_json(&list[i], def);
    store_list_free(list, n);
    return o;
}

enum MHD_Result handle_model(req_ctx *c)
{
    const char *name = c->name;
    cJSON *o = store_name_valid(name) ? find_model(c->srv, name) : NULL;
    if (!o)
        return respond_fail(c, 404, "not_found_error", "model", "model '%s' not found", name);
    return respond_json(c, 200, o);
}

/* The vocabulary of the serving version of a model: each character with its
 * id, the id logit_bias takes (ids are the vocabulary's order, sorted code
 * points). "codepoint" spells out characters a JSON string shows poorly. */
enum MHD_Result handle_model_vocab(req_ctx *c)
{
    const char *name = c->name;
    const store_model *v = NULL;
    char err[CHARRNN_ERR_MAX];
    if (!store_name_valid(name) ||
        store_acquire(c->srv->store, name, &v, err, sizeof err) != CHARRNN_OK)
        return respond_fail(c, 404, "not_found_error", "model", "model '%s' not found", name);
    const charrnn_vocab *vocab = v->model->vocab;
    const size_t n = charrnn_vocab_size(vocab);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "model", name);
    cJSON_AddNumberToObject(o, "version", (double)v->version);
    cJSON_AddNumberToObject(o, "vocab_size", (double)n);
    cJSON *arr = cJSON_AddArrayToObject(o, "chars");
    int ok = o && arr;
    for (size_t i = 0; i < n && ok; i++) {
        char ch[5] = {0};
        uint32_t cp = charrnn_vocab_codepoint(vocab, i);
        charrnn_utf8_encode(cp, ch);
        cJSON *e = cJSON_CreateObject();
        ok = e && cJSON_AddNumberToObject(e, "id", (double)i) &&
            cJSON_AddStringToObject(e, "char", ch) &&
            cJSON_AddNumberToObject(e, "codepoint", (double)cp);
        if (e)
            cJSON_AddItemToArray(arr, e);
    }
    store_release(v);
    if (!ok) {
        cJSON_Delete(o);
        return respond_fail(c, 500, "server_error", NULL, "out of memory");
    }
    return respond_json(c, 200, o);
}

enum MHD_Result handle_reload(req_ctx *c)
{
    server *srv = c->srv;
    const char *name = c->name;
    if (!store_name_valid(name))
        return respond_fail(c, 404, "not_found_error", "model", "model '%s' not found", name);
    char err[CHARRNN_ERR_MAX];
    int rc = store_reload(srv->store, name, err, sizeof err);
    if (rc == CHARRNN_ENOTFOUND)
        return respond_fail(c, 404, "not_found_error", "model", "model '%s' not found: %s", name,
                            err);
    cJSON *o = find_model(srv, name);
    if (rc != CHARRNN_OK) {
        cJSON_Delete(o);
        return respond_fail(c, 500, "model_load_error", "model",
                            "reload of '%s' failed (the previous version, if any, keeps "
                            "serving): %s",
                            name, err);
    }
    if (!o)
        return respond_fail(c, 404, "not_found_error", "model", "model '%s' not found", name);
    return respond_json(c, 200, o);
}

/* Generated at build time from server/playground/playground.html by embed_file. */
extern const unsigned char charrnn_playground_html[];
extern const unsigned long charrnn_playground_html_len;

/* Appends " 'sha256-<base64>'" for the text of each inline element of the
 * page (between open and close, exactly as the browser hashes it). */
static void add_inline_hashes(const char *page, size_t n, const char *open, const char *close,
                              char *out, size_t outlen)
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const char *end = page + n, *p = page;
    while ((p = memmem(p, (size_t)(end - p), open, strlen(open))) != NULL) {
        p += strlen(open);
        const char *q = memmem(p, (size_t)(end - p), close, strlen(close));
        if (!q)
            break;
        char hex[65];
        unsigned char d[33] = {0}; /* the digest and a zero byte: 11 whole groups of 3 */
        charrnn_sha256_hex(p, (size_t)(q - p), hex);
        for (int i = 0; i < 32; i++)
            sscanf(hex + 2 * i, "%2hhx", &d[i]);
        char enc[45];
        for (int i = 0, o = 0; i < 33; i += 3) {
            unsigned v = (unsigned)d[i] << 16 | (unsigned)d[i + 1] << 8 | d[i + 2];
            for (int k = 3; k >= 0; k--)
                enc[o++] = b64[(v >> (6 * k)) & 63];
        }
        enc[43] = '='; /* 32 bytes: 43 characters and one pad */
        enc[44] = '\0';
        size_t used = strlen(out);
        snprintf(out + used, outlen - used, " 'sha256-%s'", enc);
        p = q + strlen(close);
    }
}

static char playground_csp[1024];
static pthread_once_t playground_csp_once = PTHREAD_ONCE_INIT;

/* The page's policy: its own inline <script> and <style> by hash (computed
 * from the embedded page, so it stays true when the page changes), requests
 * to this origin only, and never in a frame. */
static void playground_csp_build(void)
{
    const char *page = (const char *)charrnn_playground_html;
    size_t n = charrnn_playground_html_len, k;
    char *o = playground_csp;
    snprintf(o, sizeof playground_csp, "default-src 'self'; script-src");
    add_inline_hashes(page, n, "<script>", "</script>", o, sizeof playground_csp);
    k = strlen(o);
    snprintf(o + k, sizeof playground_csp - k, "; style-src");
    add_inline_hashes(page, n, "<style>", "</style>", o, sizeof playground_csp);
    k = strlen(o);
    snprintf(o + k, sizeof playground_csp - k,
             "; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'");
}

enum MHD_Result handle_playground(req_ctx *c)
{
    pthread_once(&playground_csp_once, playground_csp_build);
    char *page = malloc(charrnn_playground_html_len);
    if (!page)
        return MHD_NO;
    memcpy(page, charrnn_playground_html, charrnn_playground_html_len);
    return respond_html(c, page, charrnn_playground_html_len, playground_csp);
}

enum MHD_Result handle_healthz(req_ctx *c)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "status", "ok");
    return respond_json(c, 200, o);
}

enum MHD_Result handle_readyz(req_ctx *c)
{
    store_entry *list = NULL;
    size_t n = 0, loaded = 0;
    store_list(c->srv->store, &list, &n);
    for (size_t i = 0; i < n; i++)
        loaded += list[i].current != NULL;
    store_list_free(list, n);
    cJSON *o = cJSON_CreateObject();
    int draining = atomic_load(&c->srv->draining);
    int ready = loaded > 0 && !draining;
    cJSON_AddStringToObject(o, "status", ready ? "ready" : "not_ready");
    cJSON_AddNumberToObject(o, "models_loaded", (double)loaded);
    if (!ready)
        cJSON_AddStringToObject(o, "reason", draining ? "shutting down" : "no model is loaded");
    return respond_json(c, ready ? 200 : 503, o);
}

enum MHD_Result handle_metrics(req_ctx *c)
{
    size_t len = 0;
    char *text = metrics_render(c->srv->met, c->srv->eng, c->srv->cache, c->srv->store, &len);
    if (!text)
        return respond_fail(c, 500, "server_error", NULL, "out of memory");
    return respond_text(c, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
}

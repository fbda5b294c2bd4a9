/* charrnn-serve: the sampling daemon.
 *
 * Startup: configuration, model store (first scan), generation engine, HTTP.
 * The main thread then owns the signals (blocked everywhere else) and the
 * store's change polling: SIGHUP reloads every model, SIGTERM/SIGINT drain
 * in-flight requests and exit 0. */
#include "log.h"
#include "rescan.h"
#include "server.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void on_store_event(void *ctx, const store_event *ev)
{
    server *srv = ctx;
    /* A new or removed version: the old one's cached states are never read again. */
    if (ev->kind == STORE_LOADED)
        state_cache_retire(srv->cache, ev->name, ev->load_id);
    else if (ev->kind == STORE_REMOVED)
        state_cache_retire(srv->cache, ev->name, ev->load_id + 1);
    cJSON *f = cJSON_CreateObject();
    cJSON_AddStringToObject(f, "model", ev->name);
    switch (ev->kind) {
    case STORE_LOADED:
        cJSON_AddNumberToObject(f, "version", (double)ev->version);
        cJSON_AddNumberToObject(f, "load_ms", round(ev->seconds * 1e6) / 1e3);
        if (ev->unchanged) /* the same bytes: the version serving stays */
            cJSON_AddTrueToObject(f, "unchanged");
        log_json("info", "model loaded", f);
        break;
    case STORE_LOAD_FAILED:
        cJSON_AddStringToObject(f, "error", ev->error ? ev->error : "");
        if (ev->version)
            cJSON_AddNumberToObject(f, "serving_version", (double)ev->version);
        else
            cJSON_AddNullToObject(f, "serving_version");
        log_json("error", "model load failed", f);
        break;
    case STORE_REMOVED:
        cJSON_AddNumberToObject(f, "version", (double)ev->version);
        log_json("info", "model removed", f);
        break;
    }
}

/* Writes the bound address to --address-file (write a temporary file, then
 * rename: a reader sees the old line or the new one, never half). A failure
 * is a warning, not fatal: the daemon serves, and the log says why a health
 * check that relies on the file may knock on the wrong port. */
static void write_address_file(const server *srv)
{
    const char *path = srv->cfg.address_file;
    char tmp[4096 + 16];
    if (!path[0])
        return;
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    int ok = f && fprintf(f, "%s\n", srv->bound) > 0;
    ok = f && fclose(f) == 0 && ok;
    if (ok && rename(tmp, path) == 0)
        return;
    int e = errno;
    unlink(tmp);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "file", path);
    cJSON_AddStringToObject(j, "error", strerror(e));
    log_json("warn", "cannot write --address-file", j);
}

/* Loads --api-key-file: at start a bad file stops the daemon (2); on SIGHUP
 * the keys in use stay and the log says why. Returns 0 or -1. */
static int load_keys(server *srv)
{
    char err[512];
    size_t n = 0;
    cJSON *f = cJSON_CreateObject();
    if (api_keys_load(srv->keys, srv->cfg.api_key_file, &n, err, sizeof err) != CHARRNN_OK) {
        cJSON_AddStringToObject(f, "error", err);
        log_json("error", "api keys not loaded (the keys in use, if any, stay)", f);
        return -1;
    }
    cJSON_AddNumberToObject(f, "keys", (double)n);
    log_json("info", "api keys loaded", f);
    return 0;
}

static void drain(server *srv)
{
    atomic_store(&srv->draining, 1);
    http_quiesce(srv);
    double t0 = charrnn_clock_mono();
    cJSON *f = cJSON_CreateObject();
    cJSON_AddNumberToObject(f, "inflight", atomic_load(&srv->inflight));
    log_json("info", "draining", f);
    while (atomic_load(&srv->inflight) > 0 && charrnn_clock_mono() - t0 < srv->cfg.drain_timeout) {
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
    }
    int left = atomic_load(&srv->inflight);
    if (left > 0) {
        f = cJSON_CreateObject();
        cJSON_AddNumberToObject(f, "inflight", left);
        log_json("warn", "drain timeout: ending remaining requests", f);
    }
    /* Generations still running end now; give their responses a moment to
     * go out (a stream's last event says the server is shutting down). */
    engine_shutdown(srv->eng);
    t0 = charrnn_clock_mono();
    while (atomic_load(&srv->inflight) > 0 && charrnn_clock_mono() - t0 < 2) {
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
    http_stop(srv);
}

int main(int argc, char **argv)
{
    static server srv;
    char err[1024];
    int rc = serve_config_parse(&srv.cfg, argc, argv, err, sizeof err);
    if (rc > 0)
        return 0;
    if (rc < 0) {
        fprintf(stderr, "charrnn-serve: %s\n", err);
        return 2;
    }
    srv.listen_fd = -1;
    if (charrnn_kernel_init(err, sizeof err) != CHARRNN_OK) {
        fprintf(stderr, "charrnn-serve: CHARRNN_KERNEL: %s\n", err);
        return 2;
    }

    /* Signals go to the main thread only: block them before any thread starts. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (store_open(srv.cfg.models, &srv.store, err, sizeof err) != CHARRNN_OK) {
        cJSON *f = cJSON_CreateObject();
        cJSON_AddStringToObject(f, "error", err);
        log_json("fatal", "cannot open the model directory", f);
        return 1;
    }
    if (srv.cfg.state_cache_mb > 0 &&
        !(srv.cache = state_cache_create((size_t)srv.cfg.state_cache_mb << 20))) {
        log_json("fatal", "cannot allocate the prefix-state cache", NULL);
        return 1;
    }
    if (!(srv.keys = api_keys_create())) {
        log_json("fatal", "out of memory", NULL);
        return 1;
    }
    if (srv.cfg.api_key_file[0] && load_keys(&srv) != 0)
        return 2;
    store_set_listener(srv.store, on_store_event, &srv);
    rescan_once(srv.store, 0);

    engine_config ec = {srv.cfg.max_concurrent, srv.cfg.max_queue, srv.cfg.workers,
                        srv.cfg.max_batch,      srv.cfg.timeout,   srv.cfg.row_split,
                        srv.cfg.worker_nice,    srv.cache,         srv.cfg.max_client_share};
    srv.met = metrics_create();
    if (!srv.met || engine_create(&ec, &srv.eng) != 0) {
        log_json("fatal", "cannot start the generation engine", NULL);
        return 1;
    }
    if (http_start(&srv, err, sizeof err) != 0) {
        cJSON *f = cJSON_CreateObject();
        cJSON_AddStringToObject(f, "error", err);
        log_json("fatal", "cannot listen", f);
        engine_free(srv.eng);
        store_free(srv.store);
        metrics_free(srv.met);
        return 1;
    }
    cJSON *f = cJSON_CreateObject();
    cJSON_AddStringToObject(f, "addr", srv.bound);
    cJSON_AddStringToObject(f, "models", srv.cfg.models);
    cJSON_AddStringToObject(f, "version", CHARRNN_VERSION);
    cJSON_AddNumberToObject(f, "workers", srv.cfg.workers);
    cJSON_AddBoolToObject(f, "row_split", srv.cfg.row_split);
    cJSON_AddStringToObject(f, "kernel", charrnn_kernel_name());
    cJSON_AddNumberToObject(f, "max_concurrent", srv.cfg.max_concurrent);
    cJSON_AddNumberToObject(f, "max_queue", srv.cfg.max_queue);
    cJSON_AddNumberToObject(f, "state_cache_mb", (double)srv.cfg.state_cache_mb);
    log_json("info", "listening", f);
    write_address_file(&srv);
    if (!api_keys_enabled(srv.keys) && !srv.loopback)
        log_json("warn",
                 "no --api-key-file on a non-loopback listener: /sample, /score, /v1 and "
                 "/models are open to anyone who reaches the port",
                 NULL);

    /* Polling and SIGHUP reloads run on their own thread: however long a
     * scan takes, this thread answers signals at once. */
    rescan *rs = rescan_start(srv.store, srv.cfg.poll_interval);
    if (!rs) {
        log_json("fatal", "cannot start the model directory thread", NULL);
        return 1;
    }
    for (;;) {
        int sig = sigwaitinfo(&sigs, NULL);
        if (sig == SIGTERM || sig == SIGINT) {
            f = cJSON_CreateObject();
            cJSON_AddStringToObject(f, "signal", sig == SIGTERM ? "SIGTERM" : "SIGINT");
            log_json("info", "shutting down", f);
            break;
        }
        if (sig == SIGHUP) {
            if (srv.cfg.api_key_file[0])
                load_keys(&srv);
            rescan_force(rs);
        }
    }
    drain(&srv);
    int scan_over = rescan_stop(rs, 5);
    engine_free(srv.eng);
    if (scan_over) /* else a scan still uses it: the exit frees it */
        store_free(srv.store);
    metrics_free(srv.met);
    state_cache_free(srv.cache);
    api_keys_free(srv.keys);
    if (srv.cfg.address_file[0])
        unlink(srv.cfg.address_file);
    log_json("info", "stopped", NULL);
    return 0;
}

/* See rescan.h. */
#define _GNU_SOURCE /* pthread_timedjoin_np */
#include "rescan.h"

#include "charrnn/clock.h"
#include "charrnn/status.h"
#include "log.h"

#include <pthread.h>
#include <stdlib.h>
#include <time.h>

struct rescan {
    model_store *store;
    double poll_interval;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int force, stop;
    pthread_t thread;
};

void rescan_once(model_store *store, int force)
{
    char err[CHARRNN_ERR_MAX];
    if (store_scan(store, force, err, sizeof err) < 0) {
        cJSON *f = cJSON_CreateObject();
        cJSON_AddStringToObject(f, "error", err);
        log_json("error", "model directory scan failed", f);
    }
}

static void *run(void *arg)
{
    rescan *r = arg;
    pthread_mutex_lock(&r->mu);
    for (;;) {
        if (!r->force && !r->stop) {
            struct timespec ts;
            charrnn_clock_deadline(&ts, r->poll_interval > 0 ? r->poll_interval : 86400);
            int timed_out = pthread_cond_timedwait(&r->cv, &r->mu, &ts) != 0;
            if (!timed_out || r->poll_interval <= 0)
                continue; /* woken: look at force and stop again */
        }
        if (r->stop)
            break;
        int force = r->force;
        r->force = 0;
        pthread_mutex_unlock(&r->mu);
        if (force)
            log_json("info", "SIGHUP: reloading every model", NULL);
        rescan_once(r->store, force);
        pthread_mutex_lock(&r->mu);
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

rescan *rescan_start(model_store *store, double poll_interval)
{
    rescan *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->store = store;
    r->poll_interval = poll_interval;
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    if (pthread_create(&r->thread, NULL, run, r) != 0) {
        pthread_mutex_destroy(&r->mu);
        pthread_cond_destroy(&r->cv);
        free(r);
        return NULL;
    }
    return r;
}

void rescan_force(rescan *r)
{
    pthread_mutex_lock(&r->mu);
    r->force = 1;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

int rescan_stop(rescan *r, double wait_seconds)
{
    if (!r)
        return 1;
    pthread_mutex_lock(&r->mu);
    r->stop = 1;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
    struct timespec ts;
    charrnn_clock_deadline(&ts, wait_seconds);
    if (pthread_timedjoin_np(r->thread, NULL, &ts) != 0)
        return 0;
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    free(r);
    return 1;
}

/* Prometheus text exposition of charrnn-serve's state. Metric names follow
 * Prometheus conventions: charrnn_ prefix, base units in the name (_seconds,
 * _total for counters). */
#include "metrics.h"
#include "buf.h"

#include "charrnn/lowp.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const double buckets[] = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                 0.5,   1,     2.5,  5,     10,   30,  60};
#define NBUCKETS (sizeof buckets / sizeof buckets[0])

typedef struct route_stat {
    char route[48];
    unsigned status;
    unsigned long long count;
} route_stat;

typedef struct route_hist {
    char route[48];                      /* first: found by by_name */
    unsigned long long bucket[NBUCKETS]; /* non-cumulative */
    unsigned long long count;
    double sum;
} route_hist;

typedef struct model_chars {
    char model[STORE_NAME_MAX + 1]; /* first: found by by_name */
    unsigned long long chars, scored;
} model_chars;

typedef struct model_requests {
    char model[STORE_NAME_MAX + 1];
    char route[48];
    unsigned long long count;
} model_requests;

/* Per API key label (labels come only from the key file: bounded). */
typedef struct key_stat {
    char key[API_KEY_LABEL_MAX + 1];
    char route[48];
    unsigned status;
    unsigned long long count, chars;
} key_stat;

struct metrics {
    pthread_mutex_t mu;
    key_stat *keys;
    size_t nkeys, capkeys;
    route_stat *stats;
    size_t nstats, capstats;
    route_hist *hists;
    size_t nhists, caphists;
    model_chars *chars;
    size_t nchars, capchars;
    model_requests *mreq;
    size_t nmreq, capmreq;
};

metrics *metrics_create(void)
{
    metrics *m = calloc(1, sizeof *m);
    if (m)
        pthread_mutex_init(&m->mu, NULL);
    return m;
}

void metrics_free(metrics *m)
{
    if (!m)
        return;
    pthread_mutex_destroy(&m->mu);
    free(m->stats);
    free(m->hists);
    free(m->chars);
    free(m->mreq);
    free(m->keys);
    free(m);
}

/* Grows a table by one zeroed element; NULL on allocation failure. */
static void *grow(void **arr, size_t *n, size_t *cap, size_t elem)
{
    if (buf_reserve(arr, cap, *n + 1, elem))
        return NULL;
    void *e = (char *)*arr + (*n)++ * elem;
    memset(e, 0, elem);
    return e;
}

/* The element of a table of structs that start with a char[namelen] name
 * equal to name; added (zeroed, named) when missing. NULL on allocation failure. */
static void *by_name(void **arr, size_t *n, size_t *cap, size_t elem, size_t namelen,
                     const char *name)
{
    for (size_t i = 0; i < *n; i++) {
        char *e = (char *)*arr + i * elem;
        if (!strcmp(e, name))
            return e;
    }
    char *e = grow(arr, n, cap, elem);
    if (e)
        snprintf(e, namelen, "%s", name);
    return e;
}

void metrics_observe(metrics *m, const char *route, unsigned status, double seconds)
{
    pthread_mutex_lock(&m->mu);
    route_stat *s = NULL;
    for (size_t i = 0; i < m->nstats && !s; i++)
        if (m->stats[i].status == status && !strcmp(m->stats[i].route, route))
            s = &m->stats[i];
    if (!s && (s = grow((void **)&m->stats, &m->nstats, &m->capstats, sizeof *s))) {
        snprintf(s->route, sizeof s->route, "%s", route);
        s->status = status;
    }
    if (s)
        s->count++;
    route_hist *h =
        by_name((void **)&m->hists, &m->nhists, &m->caphists, sizeof *h, sizeof h->route, route);
    if (h) {
        size_t b = 0;
        while (b < NBUCKETS && seconds > buckets[b])
            b++;
        if (b < NBUCKETS)
            h->bucket[b]++;
        h->count++;
        h->sum += seconds;
    }
    pthread_mutex_unlock(&m->mu);
}

/* Adds n characters to model's generated (scored 0) or scored count. */
static void count_chars(metrics *m, const char *model, size_t n, int scored)
{
    pthread_mutex_lock(&m->mu);
    model_chars *c =
        by_name((void **)&m->chars, &m->nchars, &m->capchars, sizeof *c, sizeof c->model, model);
    if (c)
        *(scored ? &c->scored : &c->chars) += n;
    pthread_mutex_unlock(&m->mu);
}

void metrics_generated(metrics *m, const char *model, size_t chars)
{
    count_chars(m, model, chars, 0);
}

void metrics_scored(metrics *m, const char *model, size_t chars)
{
    count_chars(m, model, chars, 1);
}

void metrics_model_request(metrics *m, const char *model, const char *route)
{
    pthread_mutex_lock(&m->mu);
    model_requests *r = NULL;
    for (size_t i = 0; i < m->nmreq && !r; i++)
        if (!strcmp(m->mreq[i].model, model) && !strcmp(m->mreq[i].route, route))
            r = &m->mreq[i];
    if (!r && (r = grow((void **)&m->mreq, &m->nmreq, &m->capmreq, sizeof *r))) {
        snprintf(r->model, sizeof r->model, "%s", model);
        snprintf(r->route, sizeof r->route, "%s", route);
    }
    if (r)
        r->count++;
    pthread_mutex_unlock(&m->mu);
}

void metrics_key_observe(metrics *m, const char *key, const char *route, unsigned status,
                         size_t chars)
{
    pthread_mutex_lock(&m->mu);
    key_stat *k = NULL;
    for (size_t i = 0; i < m->nkeys && !k; i++)
        if (!strcmp(m->keys[i].key, key) && !strcmp(m->keys[i].route, route) &&
            m->keys[i].status == status)
            k = &m->keys[i];
    if (!k && (k = grow((void **)&m->keys, &m->nkeys, &m->capkeys, sizeof *k))) {
        snprintf(k->key, sizeof k->key, "%s", key);
        snprintf(k->route, sizeof k->route, "%s", route);
        k->status = status;
    }
    if (k) {
        k->count++;
        k->chars += chars;
    }
    pthread_mutex_unlock(&m->mu);
}

typedef struct sbuf {
    char *p;
    size_t len, cap;
    int oom;
} sbuf;

static void put(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(sbuf *b, const char *fmt, ...)
{
    if (b->oom)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = 1;
            return;
        }
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = 2 * b->cap + (size_t)n;
        char *q = realloc(b->p, cap);
        if (!q) {
            b->oom = 1;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
}

/* A label value with \, " and newline escaped as the format requires. */
static const char *esc(const char *s, char *out, size_t n)
{
    size_t k = 0;
    for (; *s && k + 3 < n; s++) {
        if (*s == '\\' || *s == '"')
            out[k++] = '\\', out[k++] = *s;
        else if (*s == '\n')
            out[k++] = '\\', out[k++] = 'n';
        else
            out[k++] = *s;
    }
    out[k] = '\0';
    return out;
}

static void header(sbuf *b, const char *name, const char *type, const char *help)
{
    put(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void fmt_double(char *out, size_t n, double v)
{
    if (isnan(v))
        snprintf(out, n, "NaN");
    else if (isinf(v))
        snprintf(out, n, v > 0 ? "+Inf" : "-Inf");
    else
        snprintf(out, n, "%.17g", v);
}

static void hist(sbuf *b, const char *name, const char *help, const engine_hist *h)
{
    char num[64];
    header(b, name, "histogram", help);
    unsigned long long cum = 0;
    for (size_t k = 0; k < ENGINE_HIST_N; k++) {
        cum += h->bucket[k];
        put(b, "%s_bucket{le=\"%g\"} %llu\n", name, engine_hist_le[k], cum);
    }
    put(b, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)h->count);
    fmt_double(num, sizeof num, h->sum);
    put(b, "%s_sum %s\n", name, num);
    put(b, "%s_count %llu\n", name, (unsigned long long)h->count);
}

/* The prefix-state cache's counters (state_cache.h); all zero without one. */
/* One unlabelled sample per family: name, type, help and its value. */
typedef struct scalar {
    const char *name, *type, *help;
    uint64_t v;
} scalar;

static void render_scalars(sbuf *b, const scalar *rows, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        header(b, rows[i].name, rows[i].type, rows[i].help);
        put(b, "%s %llu\n", rows[i].name, (unsigned long long)rows[i].v);
    }
}

static void render_state_cache(sbuf *b, state_cache *c)
{
    state_cache_stats s;
    state_cache_stats_get(c, &s);
    const scalar rows[] = {
        {"charrnn_state_cache_hits_total", "counter",
         "Generations that resumed from a cached prefix of their prime.", s.hits},
        {"charrnn_state_cache_misses_total", "counter",
         "Generations that found no cached prefix of their prime.", s.misses},
        {"charrnn_state_cache_resumed_chars_total", "counter",
         "Prime characters read from the cache instead of computed.", s.hit_chars},
        {"charrnn_state_cache_inserts_total", "counter", "States kept.", s.inserts},
        {"charrnn_state_cache_evictions_total", "counter",
         "States dropped, least recently used first, to stay within --state-cache-mb.",
         s.evictions},
        {"charrnn_state_cache_retired_total", "counter",
         "States dropped because their model version was reloaded or removed.", s.retired},
        {"charrnn_state_cache_entries", "gauge", "States in the cache now.", s.entries},
        {"charrnn_state_cache_bytes", "gauge", "Memory the cached states take now.", s.bytes},
        {"charrnn_state_cache_budget_bytes", "gauge", "--state-cache-mb in bytes (0: off).",
         s.budget},
    };
    render_scalars(b, rows, sizeof rows / sizeof *rows);
}

/* The counters kept here, by route, model and key. Under m->mu. */
static void render_requests(sbuf *b, const metrics *m)
{
    char e1[512], e2[512], num[64];
    header(b, "charrnn_requests_total", "counter", "HTTP requests by route and status code.");
    for (size_t i = 0; i < m->nstats; i++)
        put(b, "charrnn_requests_total{route=\"%s\",status=\"%u\"} %llu\n",
            esc(m->stats[i].route, e1, sizeof e1), m->stats[i].status, m->stats[i].count);
    header(b, "charrnn_request_duration_seconds", "histogram",
           "Time from the start of a request to the end of its response.");
    for (size_t i = 0; i < m->nhists; i++) {
        const route_hist *h = &m->hists[i];
        esc(h->route, e1, sizeof e1);
        unsigned long long cum = 0;
        for (size_t k = 0; k < NBUCKETS; k++) {
            cum += h->bucket[k];
            put(b, "charrnn_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} %llu\n", e1,
                buckets[k], cum);
        }
        put(b, "charrnn_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} %llu\n", e1,
            h->count);
        fmt_double(num, sizeof num, h->sum);
        put(b, "charrnn_request_duration_seconds_sum{route=\"%s\"} %s\n", e1, num);
        put(b, "charrnn_request_duration_seconds_count{route=\"%s\"} %llu\n", e1, h->count);
    }
    header(b, "charrnn_request_generated_chars_total", "counter",
           "Characters returned by finished sampling requests, by model.");
    for (size_t i = 0; i < m->nchars; i++)
        put(b, "charrnn_request_generated_chars_total{model=\"%s\"} %llu\n",
            esc(m->chars[i].model, e1, sizeof e1), m->chars[i].chars);
    header(b, "charrnn_request_scored_chars_total", "counter",
           "Characters whose log-probability finished requests reported for given text "
           "(/score, /v1 echo), by model.");
    for (size_t i = 0; i < m->nchars; i++)
        put(b, "charrnn_request_scored_chars_total{model=\"%s\"} %llu\n",
            esc(m->chars[i].model, e1, sizeof e1), m->chars[i].scored);
    header(b, "charrnn_key_requests_total", "counter",
           "Requests that presented a valid API key, by key label, route and status.");
    for (size_t i = 0; i < m->nkeys; i++)
        put(b, "charrnn_key_requests_total{key=\"%s\",route=\"%s\",status=\"%u\"} %llu\n",
            esc(m->keys[i].key, e1, sizeof e1), esc(m->keys[i].route, e2, sizeof e2),
            m->keys[i].status, m->keys[i].count);
    header(b, "charrnn_key_generated_chars_total", "counter",
           "Characters generated for requests of a key, by key label and route.");
    for (size_t i = 0; i < m->nkeys; i++)
        if (m->keys[i].chars)
            put(b,
                "charrnn_key_generated_chars_total{key=\"%s\",route=\"%s\",status=\"%u\"} "
                "%llu\n",
                esc(m->keys[i].key, e1, sizeof e1), esc(m->keys[i].route, e2, sizeof e2),
                m->keys[i].status, m->keys[i].chars);
    header(b, "charrnn_model_requests_total", "counter",
           "Requests that ran on a model (sampling, completions, scoring), by model and route.");
    for (size_t i = 0; i < m->nmreq; i++)
        put(b, "charrnn_model_requests_total{model=\"%s\",route=\"%s\"} %llu\n",
            esc(m->mreq[i].model, e1, sizeof e1), esc(m->mreq[i].route, e2, sizeof e2),
            m->mreq[i].count);
}

static void render_engine(sbuf *b, engine *e)
{
    engine_stats es;
    engine_stats_get(e, &es);
    const scalar before[] = {
        {"charrnn_generated_chars_total", "counter",
         "Characters generated by the engine (cancelled requests included).", es.generated_chars},
        {"charrnn_active_requests", "gauge", "Generations running now.", (uint64_t)es.active},
        {"charrnn_queued_requests", "gauge", "Generations waiting for a slot.",
         (uint64_t)es.queued},
        {"charrnn_clients_with_work", "gauge",
         "Clients (API keys, or addresses) with generations running or queued.",
         (uint64_t)es.clients},
        {"charrnn_client_share_rejected_total", "counter",
         "Requests refused with 429 because their client would hold more than "
         "--max-client-share generations.",
         es.share_rejected},
    };
    render_scalars(b, before, sizeof before / sizeof *before);
    hist(b, "charrnn_time_to_first_char_seconds",
         "Time from a generation's admission request to its first generated character "
         "(queueing and priming included).",
         &es.first_char);
    hist(b, "charrnn_inter_char_seconds",
         "Time between consecutive generated characters of one generation.", &es.inter_char);
    const scalar steps[] = {
        {"charrnn_inference_steps_total", "counter",
         "Batched step calls (one per batch per generated or primed character).", es.steps},
        {"charrnn_inference_stream_steps_total", "counter",
         "Stream advances; divided by charrnn_inference_steps_total it is the mean batch size.",
         es.batched_streams},
        {"charrnn_inference_split_steps_total", "counter",
         "Steps whose matrix rows idle workers helped compute (--row-split).", es.split_steps},
    };
    render_scalars(b, steps, sizeof steps / sizeof *steps);
}

/* The store's models: one sample per model for each family. */
static void render_store(sbuf *b, model_store *store)
{
    char e1[512], e2[512], num[64];
    store_entry *list = NULL;
    size_t n = 0;
    store_list(store, &list, &n);
    store_stats st;
    store_stats_get(store, &st);
    size_t loaded = 0;
    for (size_t i = 0; i < n; i++)
        loaded += list[i].current != NULL;
    const scalar totals[] = {
        {"charrnn_models_loaded", "gauge", "Models with a version serving.", loaded},
        {"charrnn_model_versions_live", "gauge",
         "Model versions in memory: serving, or held by a generation still running.",
         st.versions_live},
    };
    render_scalars(b, totals, sizeof totals / sizeof *totals);
    header(b, "charrnn_model_loads_total", "counter", "Successful checkpoint loads, by model.");
    for (size_t i = 0; i < n; i++)
        put(b, "charrnn_model_loads_total{model=\"%s\"} %llu\n", esc(list[i].name, e1, sizeof e1),
            (unsigned long long)list[i].loads);
    header(b, "charrnn_model_load_failures_total", "counter",
           "Checkpoint loads that failed validation or I/O, by model.");
    for (size_t i = 0; i < n; i++)
        put(b, "charrnn_model_load_failures_total{model=\"%s\"} %llu\n",
            esc(list[i].name, e1, sizeof e1), (unsigned long long)list[i].load_failures);
    const scalar lifetime[] = {
        {"charrnn_store_loads_total", "counter",
         "Successful loads over the process lifetime (removed models included).", st.loads},
        {"charrnn_store_load_failures_total", "counter",
         "Failed loads over the process lifetime (removed models included).", st.load_failures},
    };
    render_scalars(b, lifetime, sizeof lifetime / sizeof *lifetime);
    header(b, "charrnn_model_last_load_failed", "gauge",
           "1 when the last load attempt of a model failed (an older version may still serve).");
    for (size_t i = 0; i < n; i++)
        put(b, "charrnn_model_last_load_failed{model=\"%s\"} %d\n",
            esc(list[i].name, e1, sizeof e1), list[i].last_error[0] != '\0');
    header(b, "charrnn_model_info", "gauge", "The version serving, as labels; value 1.");
    for (size_t i = 0; i < n; i++) {
        const store_model *v = list[i].current;
        if (!v)
            continue;
        put(b,
            "charrnn_model_info{model=\"%s\",version=\"%llu\",cell=\"%s\",num_layers=\"%d\","
            "hidden_size=\"%d\",vocab_size=\"%d\",dtype=\"%s\",sha256=\"%s\"} 1\n",
            esc(list[i].name, e1, sizeof e1), (unsigned long long)v->version,
            charrnn_cell_name(v->model->cfg.cell), v->model->cfg.num_layers,
            v->model->cfg.hidden_size, v->model->cfg.vocab_size,
            charrnn_dtype_name(v->model->dtype), esc(v->sha256, e2, sizeof e2));
    }
    header(b, "charrnn_model_parameters", "gauge", "Parameter count of the version serving.");
    for (size_t i = 0; i < n; i++)
        if (list[i].current)
            put(b, "charrnn_model_parameters{model=\"%s\"} %zu\n", esc(list[i].name, e1, sizeof e1),
                list[i].current->model->num_params);
    header(b, "charrnn_model_loaded_timestamp_seconds", "gauge",
           "Unix time the version serving was loaded.");
    for (size_t i = 0; i < n; i++)
        if (list[i].current) {
            fmt_double(num, sizeof num, list[i].current->loaded_at);
            put(b, "charrnn_model_loaded_timestamp_seconds{model=\"%s\"} %s\n",
                esc(list[i].name, e1, sizeof e1), num);
        }
    store_list_free(list, n);
}

char *metrics_render(metrics *m, engine *e, state_cache *cache, model_store *store, size_t *len)
{
    sbuf b = {malloc(8192), 0, 8192, 0};
    if (!b.p)
        return NULL;
    pthread_mutex_lock(&m->mu);
    render_requests(&b, m);
    pthread_mutex_unlock(&m->mu);
    render_engine(&b, e);
    render_state_cache(&b, cache);
    render_store(&b, store);
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    *len = b.len;
    return b.p;
}

/* Command-line and environment configuration of charrnn-serve. */
#include "config.h"

#include "origin.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* OPT_ORIGINS: a list of origins; the flag repeats, the variable separates
 * them with spaces or commas. */
typedef enum opt_kind {
    OPT_STR,
    OPT_SIZE,
    OPT_LONG,
    OPT_INT,
    OPT_DOUBLE,
    OPT_BOOL,
    OPT_ORIGINS
} opt_kind;

typedef struct opt {
    const char *flag;
    const char *env;
    opt_kind kind;
    size_t offset, size;
    double min, max;
    const char *arg, *help;
} opt;

#define S(field) offsetof(serve_config, field), sizeof(((serve_config *)0)->field)

static const opt opts[] = {
    {"listen", "CHARRNN_LISTEN", OPT_STR, S(listen), 0, 0, "HOST:PORT",
     "address to listen on; port 0 picks a free port (default 127.0.0.1:8080)"},
    {"address-file", "CHARRNN_ADDRESS_FILE", OPT_STR, S(address_file), 0, 0, "FILE",
     "once listening, write the address actually bound (HOST:PORT, a line) to FILE, replacing "
     "it atomically, so a health check or a script finds the port whatever --listen said "
     "(the image's health check reads it); removed at exit (default: none)"},
    {"models", "CHARRNN_MODELS", OPT_STR, S(models), 0, 0, "DIR",
     "model directory: every NAME.safetensors in it is model NAME (default ./models)"},
    {"default-model", "CHARRNN_DEFAULT_MODEL", OPT_STR, S(default_model), 0, 0, "NAME",
     "model used when a request names none (default: the only model, if there is one)"},
    {"admin-token", "CHARRNN_ADMIN_TOKEN", OPT_STR, S(admin_token), 0, 0, "TOKEN",
     "bearer token required by POST /models/{name}/reload (default: none; then only a loopback "
     "listener answers it, any other gets 403)"},
    {"max-body", "CHARRNN_MAX_BODY", OPT_SIZE, S(max_body), 64, 1 << 30, "BYTES",
     "largest request body accepted (default 65536)"},
    {"max-length", "CHARRNN_MAX_LENGTH", OPT_LONG, S(max_length), 1, 100000000, "N",
     "largest \"length\" of a request, in characters (default 10000)"},
    {"max-prime", "CHARRNN_MAX_PRIME", OPT_LONG, S(max_prime), 0, 100000000, "N",
     "longest \"prime\", in characters (default 10000)"},
    {"max-score-chars", "CHARRNN_MAX_SCORE_CHARS", OPT_LONG, S(max_score_chars), 2, 100000000, "N",
     "longest \"text\" of POST /score and POST /inspect, in characters (default 10000)"},
    {"max-logprob-entries", "CHARRNN_MAX_LOGPROB_ENTRIES", OPT_LONG, S(max_logprob_entries), 1,
     1000000000, "N",
     "log-probabilities one response may carry, characters x (1 + alternatives) over all its "
     "choices (default 200000)"},
    {"max-concurrent", "CHARRNN_MAX_CONCURRENT", OPT_INT, S(max_concurrent), 1, 100000, "N",
     "generations running at once (default 64)"},
    {"max-queue", "CHARRNN_MAX_QUEUE", OPT_INT, S(max_queue), 0, 1000000, "N",
     "generations waiting for a slot before 503 (default 256)"},
    {"max-client-share", "CHARRNN_MAX_CLIENT_SHARE", OPT_INT, S(max_client_share), 0, 1000000, "N",
     "generations one client may hold, running and queued together, so one client cannot take "
     "every slot; beyond it 429. A client is its API key, or without --api-key-file its IPv4 "
     "address or IPv6 /64; 0 = no limit (default: half of --max-concurrent)"},
    {"max-choices-per-request", "CHARRNN_MAX_CHOICES_PER_REQUEST", OPT_INT, S(max_choices), 1,
     1000000, "N",
     "choices one /v1/completions request may ask for, prompts x n (or x best_of), up to 64, "
     "and candidates of a /sample best_of; at "
     "most --max-client-share (default: a quarter of --max-concurrent)"},
    {"workers", "CHARRNN_WORKERS", OPT_INT, S(workers), 1, 1024, "N",
     "threads stepping generations (default: number of CPUs)"},
    {"worker-nice", "CHARRNN_WORKER_NICE", OPT_INT, S(worker_nice), 0, 19, "N",
     "nice levels the generation threads run below the HTTP threads, so probes answer at once "
     "under full load (default 10; 0 on a host shared with other busy programs and no cgroups, "
     "where the workers would yield to those too)"},
    {"max-batch", "CHARRNN_MAX_BATCH", OPT_INT, S(max_batch), 1, 4096, "N",
     "generations advanced by one step call (default 32)"},
    {"timeout", "CHARRNN_TIMEOUT", OPT_DOUBLE, S(timeout), 0, 1e9, "SECONDS",
     "time limit per request, queueing included; 0 = none (default 300)"},
    {"poll-interval", "CHARRNN_POLL_INTERVAL", OPT_DOUBLE, S(poll_interval), 0, 1e9, "SECONDS",
     "how often the model directory is checked for changes; 0 = never (default 2)"},
    {"drain-timeout", "CHARRNN_DRAIN_TIMEOUT", OPT_DOUBLE, S(drain_timeout), 0, 1e9, "SECONDS",
     "how long SIGTERM waits for in-flight requests (default 30)"},
    {"max-connections", "CHARRNN_MAX_CONNECTIONS", OPT_INT, S(max_connections), 1, 1000000, "N",
     "open connections at most (default 512)"},
    {"max-connections-per-ip", "CHARRNN_MAX_CONNECTIONS_PER_IP", OPT_INT, S(max_connections_per_ip),
     0, 1000000, "N",
     "open connections from one client (an IPv4 address or an IPv6 /64), so one client cannot "
     "take them all; 0 = no limit (default: half of --max-connections)"},
    {"request-timeout", "CHARRNN_REQUEST_TIMEOUT", OPT_DOUBLE, S(request_timeout), 0.1, 3600,
     "SECONDS",
     "time a request may take to arrive whole, head and body, counted from the connection's "
     "start or the previous response (default 30)"},
    {"retry-after", "CHARRNN_RETRY_AFTER", OPT_INT, S(retry_after), 0, 86400, "SECONDS",
     "Retry-After of 503 responses (default 1)"},
    {"access-log", "CHARRNN_ACCESS_LOG", OPT_BOOL, S(access_log), 0, 1, "on|off",
     "one JSON line per request on stderr (default on)"},
    {"row-split", "CHARRNN_ROW_SPLIT", OPT_BOOL, S(row_split), 0, 1, "on|off",
     "while fewer batches run than there are workers, idle workers compute rows of their "
     "steps, so one stream uses every core, where timing shows that it pays (default on)"},
    {"state-cache-mb", "CHARRNN_STATE_CACHE_MB", OPT_LONG, S(state_cache_mb), 0, 1048576, "MIB",
     "memory for the prefix-state cache: the model's state after texts it has read (primes, "
     "every 256 characters along them, prime + generated text), so a request that extends a "
     "text seen before reads only the new characters; least recently used states go first; "
     "0 = off (default 64)"},
    {"api-key-file", "CHARRNN_API_KEY_FILE", OPT_STR, S(api_key_file), 0, 0, "FILE",
     "API keys, one \"label:key[:max_active]\" per line ('#' comments): with it, /sample, "
     "/score, /inspect, /v1/* and /models need Authorization: Bearer KEY (or X-API-Key); reloaded "
     "on "
     "SIGHUP (default: none, the routes are open)"},
    {"metrics-key", "CHARRNN_METRICS_KEY", OPT_BOOL, S(metrics_key), 0, 1, "on|off",
     "with --api-key-file, /metrics needs a key too (default off: a scraper needs none)"},
    {"cors-origin", "CHARRNN_CORS_ORIGIN", OPT_ORIGINS, S(cors_origins), 0, 0, "ORIGIN",
     "a web origin (http[s]://host[:port]) whose pages may call the API from a browser, with "
     "CORS answers and preflight; repeat the flag for more (the variable takes a list "
     "separated by spaces or commas). "
     "Requests from any other origin but the daemon's own get 403 (default: none)"},
};
#define NOPTS (sizeof opts / sizeof opts[0])

static void defaults(serve_config *c)
{
    memset(c, 0, sizeof *c);
    snprintf(c->listen, sizeof c->listen, "127.0.0.1:8080");
    snprintf(c->models, sizeof c->models, "models");
    c->max_body = 65536;
    c->max_length = 10000;
    c->max_prime = 10000;
    c->max_score_chars = 10000;
    c->max_logprob_entries = 200000;
    c->max_concurrent = 64;
    c->max_queue = 256;
    c->max_client_share = -1; /* derived from max_concurrent, once that is known */
    c->max_choices = -1;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    c->workers = ncpu > 0 ? (int)(ncpu < 64 ? ncpu : 64) : 1;
    c->max_batch = 32;
    c->worker_nice = 10;
    c->timeout = 300;
    c->poll_interval = 2;
    c->drain_timeout = 30;
    c->max_connections = 512;
    c->max_connections_per_ip = -1; /* half of max_connections, once that is known */
    c->retry_after = 1;
    c->request_timeout = 30;
    c->access_log = 1;
    c->row_split = 1;
    c->state_cache_mb = 64;
}

static int set(serve_config *c, const opt *o, const char *val, const char *from, char *err,
               size_t errlen)
{
    char *base = (char *)c + o->offset;
    char *end = NULL;
    if (o->kind == OPT_STR) {
        if (strlen(val) >= o->size) {
            snprintf(err, errlen, "%s: value too long", from);
            return -1;
        }
        memcpy(base, val, strlen(val) + 1);
        return 0;
    }
    if (o->kind == OPT_ORIGINS) {
        char one[300];
        for (const char *p = val; *p;) {
            p += strspn(p, " ,");
            size_t k = strcspn(p, " ,");
            if (!k)
                break;
            if (k >= sizeof one) {
                snprintf(err, errlen, "%s: origin too long", from);
                return -1;
            }
            memcpy(one, p, k);
            one[k] = '\0';
            if (!origin_valid(one)) {
                snprintf(err, errlen,
                         "%s: '%s' is not an origin (http://host[:port] or https://...)", from,
                         one);
                return -1;
            }
            size_t used = strlen(base);
            if (used + k + 2 > o->size) {
                snprintf(err, errlen, "%s: too many origins", from);
                return -1;
            }
            snprintf(base + used, o->size - used, "%s%s", used ? " " : "", one);
            p += k;
        }
        return 0;
    }
    if (o->kind == OPT_BOOL) {
        int v;
        if (!strcasecmp(val, "on") || !strcasecmp(val, "1") || !strcasecmp(val, "true") ||
            !strcasecmp(val, "yes"))
            v = 1;
        else if (!strcasecmp(val, "off") || !strcasecmp(val, "0") || !strcasecmp(val, "false") ||
                 !strcasecmp(val, "no"))
            v = 0;
        else {
            snprintf(err, errlen, "%s: expected on or off, got '%s'", from, val);
            return -1;
        }
        *(int *)(void *)base = v;
        return 0;
    }
    errno = 0;
    double d = strtod(val, &end);
    if (!val[0] || *end || errno || !isfinite(d)) {
        snprintf(err, errlen, "%s: '%s' is not a number", from, val);
        return -1;
    }
    if (o->kind != OPT_DOUBLE && d != floor(d)) {
        snprintf(err, errlen, "%s: '%s' is not an integer", from, val);
        return -1;
    }
    if (d < o->min || d > o->max) {
        snprintf(err, errlen, "%s: %s is out of range %g..%g", from, val, o->min, o->max);
        return -1;
    }
    switch (o->kind) {
    case OPT_SIZE: *(size_t *)(void *)base = (size_t)d; break;
    case OPT_LONG: *(long *)(void *)base = (long)d; break;
    case OPT_INT: *(int *)(void *)base = (int)d; break;
    default: *(double *)(void *)base = d; break;
    }
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: charrnn-serve [options]\n\n"
            "Serves character-level models over HTTP (POST /sample, POST /score,\n"
            "POST /v1/completions, GET /v1/models, GET /models, /healthz, /readyz, /metrics,\n"
            "POST /models/{name}/reload, and POST /inspect: a layer's cell or hidden state after\n"
            "each character, the units that follow a feature of the text, LSTMVis's span match).\n"
            "Every option may also be set\n"
            "with the environment variable shown; a flag overrides it.\n\n");
    for (size_t i = 0; i < NOPTS; i++)
        fprintf(f, "  --%s %s\n      %s\n      [env %s]\n", opts[i].flag, opts[i].arg, opts[i].help,
                opts[i].env);
    fprintf(f,
            "  --help      this text\n  --version   print the version\n\n"
            "Signals: SIGHUP reloads every model; SIGTERM/SIGINT stop accepting, finish\n"
            "in-flight requests (up to --drain-timeout) and exit 0.\n");
}

int serve_config_parse(serve_config *c, int argc, char **argv, char *err, size_t errlen)
{
    defaults(c);
    for (size_t i = 0; i < NOPTS; i++) {
        const char *v = getenv(opts[i].env);
        if (v && set(c, &opts[i], v, opts[i].env, err, errlen) != 0)
            return -1;
    }
    char lists_from_flags[NOPTS] = {0};
    for (int a = 1; a < argc; a++) {
        const char *arg = argv[a];
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            usage(stdout);
            return 1;
        }
        if (!strcmp(arg, "--version")) {
            printf("charrnn-serve %s\n", CHARRNN_VERSION);
            return 1;
        }
        if (strncmp(arg, "--", 2) != 0) {
            snprintf(err, errlen, "unexpected argument '%s' (see --help)", arg);
            return -1;
        }
        const char *name = arg + 2, *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        const opt *o = NULL;
        for (size_t i = 0; i < NOPTS && !o; i++)
            if (strlen(opts[i].flag) == nlen && !strncmp(opts[i].flag, name, nlen))
                o = &opts[i];
        if (!o) {
            snprintf(err, errlen, "unknown option '%s' (see --help)", arg);
            return -1;
        }
        const char *val = eq ? eq + 1 : NULL;
        if (!val) {
            if (a + 1 >= argc) {
                snprintf(err, errlen, "--%s needs a value (%s)", o->flag, o->arg);
                return -1;
            }
            val = argv[++a];
        }
        char from[64];
        snprintf(from, sizeof from, "--%s", o->flag);
        if (o->kind == OPT_ORIGINS && !lists_from_flags[o - opts]) {
            lists_from_flags[o - opts] = 1; /* flags replace the variable's list */
            ((char *)c + o->offset)[0] = '\0';
        }
        if (set(c, o, val, from, err, errlen) != 0)
            return -1;
    }
    if (c->max_connections_per_ip < 0)
        c->max_connections_per_ip = c->max_connections > 1 ? c->max_connections / 2 : 1;
    /* A client's share and a request's choices: below the capacity, so one
     * client (or one request) leaves slots for others. */
    int explicit_choices = c->max_choices > 0;
    if (c->max_client_share < 0)
        c->max_client_share = c->max_concurrent > 1 ? c->max_concurrent / 2 : 1;
    if (!explicit_choices)
        c->max_choices = c->max_concurrent > 3 ? c->max_concurrent / 4 : 1;
    if (c->max_client_share > 0 && c->max_choices > c->max_client_share) {
        if (explicit_choices) { /* such a request could never be admitted */
            snprintf(err, errlen,
                     "--max-choices-per-request (%d) is more than --max-client-share (%d)",
                     c->max_choices, c->max_client_share);
            return -1;
        }
        c->max_choices = c->max_client_share;
    }
    return 0;
}

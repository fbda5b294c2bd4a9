/* charrnn-serve's settings: every one a command-line flag and a CHARRNN_*
 * environment variable (flags win). */
#ifndef CHARRNN_SERVE_CONFIG_H
#define CHARRNN_SERVE_CONFIG_H

#include <stddef.h>

typedef struct serve_config {
    char listen[256];         /* HOST:PORT */
    char address_file[4096];  /* "" = none; else the bound address is written there */
    char models[4096];        /* model directory */
    char default_model[129];  /* "" = the only model, if there is exactly one */
    char admin_token[512];    /* "" = reload endpoint open */
    size_t max_body;          /* bytes */
    long max_length;          /* characters per request */
    long max_prime;           /* characters */
    long max_score_chars;     /* characters of a /score text */
    long max_logprob_entries; /* log-probabilities in one response: characters x (1 + K) */
    int max_concurrent;       /* generations running at once */
    int max_queue;            /* generations waiting */
    int max_client_share;     /* generations (running + queued) per client; 0 = no limit */
    int max_choices;          /* choices (prompts x n or best_of) per /v1 request */
    int workers;              /* stepping threads */
    int worker_nice;          /* niceness the workers add to the daemon's (0..19) */
    int max_batch;            /* streams per step call */
    double timeout;           /* seconds per request (queue + generation) */
    double poll_interval;     /* seconds between store scans; 0 = only SIGHUP/endpoint */
    double drain_timeout;     /* seconds SIGTERM waits for in-flight requests */
    int max_connections;
    int max_connections_per_ip; /* per IPv4 address or IPv6 /64; 0 = no limit */
    double request_timeout;     /* seconds for a request (head and body) to arrive */
    int retry_after;            /* seconds, in 503 responses */
    int access_log;             /* 1 = one JSON line per request */
    int row_split;              /* 1 = idle workers help step a lone batch */
    long state_cache_mb;        /* prefix-state cache budget in MiB; 0 = no cache */
    char api_key_file[4096];    /* "" = the inference routes are open */
    int metrics_key;            /* 1 = /metrics needs an API key too */
    char cors_origins[2048];    /* origins allowed cross-origin, space-separated; "" = none */
} serve_config;

/* Fills cfg from the environment then argv. Returns 0 to run, 1 when --help or
 * --version was printed (exit 0), -1 on a bad setting (message in err). */
int serve_config_parse(serve_config *cfg, int argc, char **argv, char *err, size_t errlen);

#endif

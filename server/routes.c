/* The route table (see routes.h) and the matching of a request against it. */
#include "routes.h"

#include <stdio.h>
#include <string.h>

/* clang-format off */
static const route routes[] = {
    /* method  pattern                  handler            token key            json body limit */
    {"GET",  "/",                      handle_playground, 0, 0,             0, ROUTE_MAX_BODY},
    {"POST", "/sample",                handle_sample,     0, ROUTE_KEY_GEN, 1, ROUTE_MAX_BODY},
    {"POST", "/score",                 handle_score,      0, ROUTE_KEY_GEN, 1, ROUTE_MAX_BODY},
    {"POST", "/inspect",               handle_inspect,    0, ROUTE_KEY_GEN, 1, ROUTE_MAX_BODY},
    {"POST", "/v1/completions",        handle_v1_completions, 0, ROUTE_KEY_GEN, 1, ROUTE_MAX_BODY},
    {"GET",  "/v1/models",             handle_v1_models,  0, ROUTE_KEY,     0, ROUTE_MAX_BODY},
    {"GET",  "/v1/models/{name}",      handle_v1_model,   0, ROUTE_KEY,     0, ROUTE_MAX_BODY},
    {"GET",  "/models",                handle_models,     0, ROUTE_KEY,     0, ROUTE_MAX_BODY},
    {"GET",  "/models/{name}",         handle_model,      0, ROUTE_KEY,     0, ROUTE_MAX_BODY},
    {"GET",  "/models/{name}/vocab",   handle_model_vocab, 0, ROUTE_KEY,    0, ROUTE_MAX_BODY},
    {"POST", "/models/{name}/reload",  handle_reload,     1, 0,             0, ROUTE_MAX_BODY},
    {"GET",  "/healthz",               handle_healthz,    0, 0,             0, ROUTE_MAX_BODY},
    {"GET",  "/readyz",                handle_readyz,     0, 0,             0, ROUTE_MAX_BODY},
    {"GET",  "/metrics",               handle_metrics,    0, ROUTE_KEY_METRICS, 0, ROUTE_MAX_BODY},
};
/* clang-format on */
#define NROUTES (sizeof routes / sizeof routes[0])

/* 1 if path matches pattern, with the {name} segment copied into name. */
static int match(const char *pattern, const char *path, char *name, size_t n)
{
    while (*pattern) {
        if (!strncmp(pattern, "{name}", 6)) {
            size_t len = strcspn(path, "/");
            if (len == 0 || len >= n)
                return 0;
            memcpy(name, path, len);
            name[len] = '\0';
            path += len;
            pattern += 6;
        } else if (*pattern++ != *path++) {
            return 0;
        }
    }
    return *path == '\0';
}

/* Appends a method to a comma-separated list, once. */
static void allow_add(char *allow, size_t n, const char *method)
{
    size_t len = strlen(allow), m = strlen(method);
    for (const char *p = allow; (p = strstr(p, method)) != NULL; p += m)
        if ((p == allow || p[-1] == ' ') && (p[m] == ',' || p[m] == '\0'))
            return;
    snprintf(allow + len, n - len, "%s%s", len ? ", " : "", method);
}

void route_find(const char *method, const char *path, char *name, size_t n, route_match *out)
{
    out->route = NULL;
    out->label = "other";
    out->allow[0] = '\0';
    int head = !strcmp(method, "HEAD");
    for (size_t i = 0; i < NROUTES; i++) {
        const route *r = &routes[i];
        if (!match(r->pattern, path, name, n))
            continue;
        int get = !strcmp(r->method, "GET");
        allow_add(out->allow, sizeof out->allow, r->method);
        if (get)
            allow_add(out->allow, sizeof out->allow, "HEAD");
        if (!out->route && (!strcmp(method, r->method) || (head && get))) {
            out->route = r;
            out->label = r->pattern;
        } else if (!out->route && !strcmp(out->label, "other")) {
            out->label = r->pattern;
        }
    }
    if (!out->allow[0])
        name[0] = '\0';
}

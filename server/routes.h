/* The daemon's endpoints in one table (routes.c): each row is a method, a path
 * pattern, the handler, whether the admin token is needed and the body limit.
 * The table alone decides routing, 404 and 405 (with Allow), the token check,
 * the body checks and the route label of metrics and access logs, so adding
 * an endpoint is one row plus its handler. */
#ifndef CHARRNN_SERVE_ROUTES_H
#define CHARRNN_SERVE_ROUTES_H

#include "server.h"

#include <stddef.h>

/* Body limit of a route: --max-body. */
#define ROUTE_MAX_BODY 0
#define ROUTE_KEY 1
#define ROUTE_KEY_GEN 2
#define ROUTE_KEY_METRICS 3 /* needs a key only with --metrics-key on */

typedef struct route {
    const char *method;                     /* "GET" (answers HEAD too) or "POST" */
    const char *pattern;                    /* "/models/{name}": {name} is one segment */
    enum MHD_Result (*handler)(req_ctx *c); /* {name} is in c->name */
    int needs_token;                        /* 1: --admin-token, when set, is required */
    int keyed;       /* with --api-key-file: ROUTE_KEY needs a key, ROUTE_KEY_GEN also runs
                  generations (counted against the key's max_active), ROUTE_KEY_METRICS
                  needs one with --metrics-key on; 0: open */
    int json;        /* 1: the body is JSON (Content-Type checked, else 415) */
    size_t max_body; /* bytes; ROUTE_MAX_BODY: the --max-body setting */
} route;

/* What the table says about one request. */
typedef struct route_match {
    const route *route; /* NULL: no row for this method (404 if allow is "", else 405) */
    const char *label;  /* the pattern the path matched, or "other" */
    char allow[64];     /* methods the path accepts, for a 405's Allow: "GET, HEAD" */
} route_match;

/* Matches a request against the table; the {name} segment, if any, goes into
 * name (n bytes; a longer segment matches nothing). */
void route_find(const char *method, const char *path, char *name, size_t n, route_match *out);

#endif

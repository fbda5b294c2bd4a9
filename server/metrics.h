/* Request metrics (counters and a latency histogram per route), rendered with
 * the engine's and the store's state in the Prometheus text format 0.0.4. */
#ifndef CHARRNN_SERVE_METRICS_H
#define CHARRNN_SERVE_METRICS_H

#include "store.h"
#include "api_keys.h"
#include "engine.h"

#include <stddef.h>

typedef struct metrics metrics;

metrics *metrics_create(void);
void metrics_free(metrics *m); /* accepts NULL */

/* One finished request: route is a template ("/sample", "/models/{name}", ...). */
void metrics_observe(metrics *m, const char *route, unsigned status, double seconds);
/* Characters a finished request generated, by model. */
void metrics_generated(metrics *m, const char *model, size_t chars);
/* Characters of given text whose log-probability a finished request reported. */
void metrics_scored(metrics *m, const char *model, size_t chars);
/* A request that acquired a model (counted once per request, by route template). */
void metrics_model_request(metrics *m, const char *model, const char *route);

/* A request that presented the API key labelled key, with the characters it
 * generated (0 for other routes). */
void metrics_key_observe(metrics *m, const char *key, const char *route, unsigned status,
                         size_t chars);

/* The full exposition. Caller frees with free(). NULL on allocation failure. */
char *metrics_render(metrics *m, engine *e, state_cache *cache, model_store *store, size_t *len);

#endif

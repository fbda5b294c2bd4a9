/* API keys for the inference routes (--api-key-file): who may sample, under
 * which name, how much.
 *
 * The file has one key per line, "label:key" or "label:key:max_active", with
 * blank lines and lines starting with '#' ignored. A label is
 * [A-Za-z0-9._-]{1,64} and names the key in logs and metrics (the key itself
 * is never logged); a key is 16..256 printable ASCII characters without
 * spaces or ':'; max_active (1..100000) bounds the generations one key runs
 * at once. Labels and keys are unique in the file. Any other line is an
 * error naming its line number.
 *
 * A presented key is checked against every key, in time that does not depend
 * on how much of it is right: both sides are compared as SHA-256 digests,
 * byte by byte without an early exit, over all keys.
 *
 * Thread safety: every function may be called from any thread. A reload
 * replaces the whole set atomically; requests already admitted keep running.
 * The per-label counts of running generations survive reloads (a revoked
 * label's running requests finish and give their slots back). */
#ifndef CHARRNN_SERVE_API_KEYS_H
#define CHARRNN_SERVE_API_KEYS_H

#include <stddef.h>

#define API_KEY_LABEL_MAX 64

typedef struct api_keys api_keys;

/* An empty set (no keys: every route is open). NULL on allocation failure. */
api_keys *api_keys_create(void);
void api_keys_free(api_keys *k); /* accepts NULL */

/* Reads path and replaces the keys with its keys. On error (unreadable,
 * malformed: err names the line, or no key at all) nothing changes and
 * CHARRNN_EIO / CHARRNN_EFORMAT is returned. *count gets the number of keys
 * loaded (may be NULL). */
int api_keys_load(api_keys *k, const char *path, size_t *count, char *err, size_t errlen);

/* 1 once keys are loaded. */
int api_keys_enabled(api_keys *k);

/* Checks a presented key (len bytes, not necessarily NUL-terminated): 0 with
 * its label (API_KEY_LABEL_MAX + 1 bytes) when it is one of the keys, else -1. */
int api_keys_check(api_keys *k, const char *key, size_t len, char *label);

/* Takes one running generation for label: 0, or -1 when its max_active is
 * reached (then nothing is taken). A label without a limit always succeeds. */
int api_keys_take(api_keys *k, const char *label);
/* Gives back what api_keys_take took. */
void api_keys_give(api_keys *k, const char *label);

#endif

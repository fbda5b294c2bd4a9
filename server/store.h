/* The model store: a directory of checkpoints, loaded, shared and hot-swapped.
 *
 * Every DIR/NAME.safetensors is model NAME. Names match [A-Za-z0-9._-]+ and do
 * not start with '.' (hidden and temporary files are ignored); a symlink is
 * followed only when it resolves to a regular file inside DIR.
 *
 * A loaded checkpoint is a version: an immutable, reference-counted snapshot.
 * store_acquire() returns the current version of a name and keeps it
 * alive until store_release(), whatever reloads happen meanwhile.
 * A reload reads and fully validates the file (charrnn_checkpoint_model), then
 * swaps the new version in atomically (or keeps the one serving when the file's
 * bytes have not changed); a reload that fails keeps the previous version serving and records the error (store_entry.last_error).
 *
 * The store does not watch by itself: store_scan() stats every file
 * (device, inode, size, mtime) and reloads what changed, loads what is new and
 * drops what disappeared; the caller runs it on a timer and on SIGHUP.
 * store_reload() reloads one name unconditionally.
 *
 * Thread safety: every function may be called from any thread. Loads are
 * serialised among themselves but never block acquire/release/list. */
#ifndef CHARRNN_SERVE_STORE_H
#define CHARRNN_SERVE_STORE_H

#include "charrnn/model.h"

#include <stddef.h>
#include <stdint.h>

#define STORE_NAME_MAX 128

/* One loaded version. All fields are immutable while the version is held. */
typedef struct store_model {
    const char *name;
    /* What a client sees: 1 for the first content a name was loaded with in
     * this store, + 1 each time a load finds different content (the file's
     * bytes: tensors and metadata). A reload of unchanged bytes keeps the
     * version serving, so it is not a new version. Counted per name, on
     * across a removal and a return of the name. */
    uint64_t version;
    /* Unique over every model and load of the store, and growing with each:
     * what caches of per-version data key on (state_cache.h). */
    uint64_t load_id;
    const charrnn_model *model;
    const char *train_json; /* the checkpoint's "train" metadata, or NULL */
    double val_loss;        /* from train_json ("val_loss"), NaN when absent */
    double loaded_at;       /* Unix time in seconds */
    uint64_t file_size;     /* bytes */
    char sha256[65];        /* hex digest of the file */
} store_model;

typedef struct model_store model_store;

/* Opens a store over dir (which must exist and be a directory). Loads nothing:
 * call store_scan() next. On error *out is NULL. */
int store_open(const char *dir, model_store **out, char *err, size_t errlen);
/* Releases the store's own references; versions still held by callers stay
 * valid until they are released. Accepts NULL. */
void store_free(model_store *s);

/* 1 if name is a valid model name, else 0. */
int store_name_valid(const char *name);

/* Current version of name, with a reference the caller must release.
 * CHARRNN_EINVAL for an invalid name, CHARRNN_ENOTFOUND when no version of it
 * is loaded (err says whether the file is missing or failed to load). */
int store_acquire(model_store *s, const char *name, const store_model **out, char *err,
                  size_t errlen);
/* Releases a reference from acquire or list. Accepts NULL. */
void store_release(const store_model *v);
/* Takes one more reference on a held version. */
const store_model *store_retain(const store_model *v);

/* Compares the directory with the store and loads new or changed files, drops
 * removed ones. force reloads every file, changed or not. Returns the number
 * of loads attempted (>= 0) or a negative status if the directory cannot be
 * read (the store is then left as it was). */
int store_scan(model_store *s, int force, char *err, size_t errlen);
/* Loads DIR/name.safetensors now, changed or not. On success the file's
 * content is current: a new version, or the one serving when the bytes are
 * the same (then nothing is swapped). On failure the old version (if any) keeps serving, the error is
 * recorded and returned; CHARRNN_ENOTFOUND when the file does not exist (a
 * loaded version of it is then dropped). */
int store_reload(model_store *s, const char *name, char *err, size_t errlen);

/* A snapshot of one name's state. */
typedef struct store_entry {
    char name[STORE_NAME_MAX + 1];
    const store_model *current; /* a held reference, NULL if nothing is loaded */
    uint64_t loads;             /* successful loads of this name */
    uint64_t load_failures;
    char last_error[512]; /* "" unless the last load attempt failed */
    double last_error_at; /* Unix time of that failure, 0 if none */
} store_entry;

/* Snapshot of every name, sorted by name. The caller frees with
 * store_list_free (which releases the references). *out may be NULL
 * when *n is 0. */
int store_list(model_store *s, store_entry **out, size_t *n);
void store_list_free(store_entry *list, size_t n);

/* Totals over the store's lifetime (names removed since included). */
typedef struct store_stats {
    uint64_t loads, load_failures, removals;
    /* Versions in memory, serving or still held by a request (counted over
     * every store of the process): a version no request needs any more is
     * freed at once, so a number above the models loaded means held ones. */
    uint64_t versions_live;
} store_stats;
void store_stats_get(model_store *s, store_stats *out);

/* What happened, for the caller's logs. Called synchronously from the thread
 * that loads (scan or reload), outside the store's locks except the load lock:
 * it must not call scan or reload. */
typedef enum store_event_kind {
    STORE_LOADED = 0,
    STORE_LOAD_FAILED,
    STORE_REMOVED
} store_event_kind;

typedef struct store_event {
    store_event_kind kind;
    const char *name;
    uint64_t version;  /* LOADED: the new version; otherwise the one still serving (0: none) */
    uint64_t load_id;  /* that version's store_model.load_id (0: none) */
    int unchanged;     /* LOADED: the file's bytes were those of the version serving, kept */
    double seconds;    /* LOADED / LOAD_FAILED: load duration */
    const char *error; /* LOAD_FAILED: the message */
} store_event;

typedef void (*store_event_fn)(void *ctx, const store_event *ev);
void store_set_listener(model_store *s, store_event_fn fn, void *ctx);

#endif

/* The model store: named checkpoints in one directory, reference-counted
 * versions, atomic swap on reload, change detection by stat. */
#include "store.h"

#include "charrnn/checkpoint.h"
#include "charrnn/clock.h"
#include "charrnn/fileio.h"
#include "charrnn/safetensors.h"
#include "charrnn/sha256.h"
#include "charrnn/status.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SUFFIX ".safetensors"
#define SUFFIX_LEN (sizeof(SUFFIX) - 1)

/* What a file looked like when it was last (attempted to be) loaded. */
typedef struct file_sig {
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime, ctime;
} file_sig;

typedef struct version {
    store_model pub; /* first: the public view is a pointer to this */
    atomic_long refs;
    charrnn_model *model;
    char *train_json;
    char name[STORE_NAME_MAX + 1];
} version;

typedef struct entry {
    char name[STORE_NAME_MAX + 1];
    version *current;
    file_sig sig;
    int have_sig;
    uint64_t loads, failures;
    char last_error[512];
    double last_error_at;
} entry;

struct model_store {
    char *dir;               /* canonical (realpath) */
    pthread_mutex_t mu;      /* entries, counters */
    pthread_mutex_t load_mu; /* serialises scans and reloads */
    entry **entries;         /* sorted by name */
    size_t n, cap;
    uint64_t next_load_id;
    struct name_seq *seqs; /* the last version of every name ever loaded; under mu */
    store_stats stats;
    store_event_fn listener;
    void *listener_ctx;
    struct reload_slot *reloads; /* reloads in flight or awaited, by name; under mu */
    pthread_cond_t reloaded;     /* a reload finished */
};

/* A name's last version number, kept past the name's removal so that a
 * version number never names two contents of one name. */
typedef struct name_seq {
    char name[STORE_NAME_MAX + 1];
    uint64_t last;
    struct name_seq *next;
} name_seq;

/* Concurrent reloads of one name coalesce: a request that arrives while a
 * load of the name runs waits for it to end, then either finds that a load
 * that started after it arrived has finished (and takes its outcome) or runs
 * one itself for everyone who came meanwhile. So a burst costs at most two
 * loads, and each answer comes from a load that began after its request. */
typedef struct reload_slot {
    char name[STORE_NAME_MAX + 1];
    uint64_t requested; /* tickets handed out */
    uint64_t done;      /* every ticket up to this one has its outcome */
    int loading, users;
    int rc;
    char msg[CHARRNN_ERR_MAX];
    struct reload_slot *next;
} reload_slot;

/* ---- helpers ---- */

static double now_unix(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

int store_name_valid(const char *name)
{
    if (!name || !name[0] || name[0] == '.')
        return 0;
    size_t n = 0;
    for (const char *p = name; *p; p++, n++) {
        char c = *p;
        int ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '.' || c == '_' || c == '-';
        if (!ok)
            return 0;
    }
    return n <= STORE_NAME_MAX;
}

static void sig_from_stat(file_sig *sig, const struct stat *st)
{
    memset(sig, 0, sizeof *sig);
    sig->dev = st->st_dev;
    sig->ino = st->st_ino;
    sig->size = st->st_size;
    sig->mtime = st->st_mtim;
    sig->ctime = st->st_ctim;
}

static int sig_equal(const file_sig *a, const file_sig *b)
{
    return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
        a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec &&
        a->ctime.tv_sec == b->ctime.tv_sec && a->ctime.tv_nsec == b->ctime.tv_nsec;
}

/* Versions allocated and not yet freed (store_stats.versions_live). */
static atomic_ulong versions_live;

static void version_free(version *v)
{
    if (!v)
        return;
    atomic_fetch_sub(&versions_live, 1);
    charrnn_model_free(v->model);
    free(v->train_json);
    free(v);
}

const store_model *store_retain(const store_model *pub)
{
    if (pub)
        atomic_fetch_add(&((version *)(uintptr_t)pub)->refs, 1);
    return pub;
}

void store_release(const store_model *pub)
{
    if (!pub)
        return;
    version *v = (version *)(uintptr_t)pub;
    if (atomic_fetch_sub(&v->refs, 1) == 1)
        version_free(v);
}

/* Index of name in the sorted entry table, or the insertion point as -(i+1). */
static long entry_find(const model_store *s, const char *name)
{
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(s->entries[mid]->name, name);
        if (c == 0)
            return (long)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -(long)lo - 1;
}

/* Finds or inserts the entry of name; NULL on allocation failure. Under mu. */
static entry *entry_get(model_store *s, const char *name)
{
    long i = entry_find(s, name);
    if (i >= 0)
        return s->entries[i];
    size_t at = (size_t)(-i - 1);
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 16;
        entry **e = realloc(s->entries, cap * sizeof *e);
        if (!e)
            return NULL;
        s->entries = e;
        s->cap = cap;
    }
    entry *e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    snprintf(e->name, sizeof e->name, "%s", name);
    memmove(s->entries + at + 1, s->entries + at, (s->n - at) * sizeof *s->entries);
    s->entries[at] = e;
    s->n++;
    return e;
}

/* Removes name's entry and returns its current version (to release outside mu). */
static version *entry_remove(model_store *s, const char *name, int *existed)
{
    long i = entry_find(s, name);
    *existed = i >= 0;
    if (i < 0)
        return NULL;
    entry *e = s->entries[i];
    version *v = e->current;
    memmove(s->entries + i, s->entries + i + 1, (s->n - (size_t)i - 1) * sizeof *s->entries);
    s->n--;
    free(e);
    if (v)
        s->stats.removals++;
    return v;
}

static void emit(model_store *s, const store_event *ev)
{
    if (s->listener)
        s->listener(s->listener_ctx, ev);
}

/* The removal of name, whose version old was serving (NULL: none). */
static void emit_removed(model_store *s, const char *name, const version *old)
{
    store_event ev = {
        STORE_REMOVED, name, old ? old->pub.version : 0, old ? old->pub.load_id : 0, 0, 0, NULL};
    emit(s, &ev);
}

/* name's version counter, created at 0 on first use. Under mu. */
static name_seq *name_seq_get(model_store *s, const char *name)
{
    for (name_seq *q = s->seqs; q; q = q->next)
        if (!strcmp(q->name, name))
            return q;
    name_seq *q = calloc(1, sizeof *q);
    if (!q)
        return NULL;
    snprintf(q->name, sizeof q->name, "%s", name);
    q->next = s->seqs;
    s->seqs = q;
    return q;
}

/* Replaces every occurrence of the absolute path abs in msg by rel. Load
 * errors are shown to anonymous clients (GET /models, a 404's message): they
 * name files relative to the model directory, never where it is. */
static void replace_path(char *msg, size_t n, const char *abs, const char *rel)
{
    size_t al = strlen(abs), rl = strlen(rel);
    if (al == 0 || n == 0)
        return;
    char out[CHARRNN_ERR_MAX];
    size_t o = 0;
    for (const char *p = msg; *p && o + 1 < sizeof out;) {
        if (!strncmp(p, abs, al)) {
            size_t k = rl < sizeof out - 1 - o ? rl : sizeof out - 1 - o;
            memcpy(out + o, rel, k);
            o += k;
            p += al;
        } else {
            out[o++] = *p++;
        }
    }
    out[o] = '\0';
    snprintf(msg, n, "%s", out);
}

/* Resolves DIR/name.safetensors to a path inside DIR, refusing symlinks that
 * leave it. On success path holds the file to open. */
static int resolve(const model_store *s, const char *name, char *path, size_t pathlen, char *err,
                   size_t errlen)
{
    char link[PATH_MAX];
    if ((size_t)snprintf(link, sizeof link, "%s/%s" SUFFIX, s->dir, name) >= sizeof link)
        return charrnn_fail(err, errlen, CHARRNN_EINVAL, "path of model '%s' is too long", name);
    struct stat st;
    if (lstat(link, &st) != 0) {
        if (errno == ENOENT)
            return charrnn_fail(err, errlen, CHARRNN_ENOTFOUND, "no file %s" SUFFIX, name);
        return charrnn_fail(err, errlen, CHARRNN_EIO, "%s" SUFFIX ": %s", name, strerror(errno));
    }
    if (!S_ISLNK(st.st_mode)) {
        if (!S_ISREG(st.st_mode))
            return charrnn_fail(err, errlen, CHARRNN_EINVAL, "%s" SUFFIX " is not a regular file",
                                name);
        snprintf(path, pathlen, "%s", link);
        return CHARRNN_OK;
    }
    char real[PATH_MAX];
    if (!realpath(link, real)) {
        if (errno == ENOENT)
            return charrnn_fail(err, errlen, CHARRNN_ENOTFOUND,
                                "%s" SUFFIX " is a dangling symlink", name);
        return charrnn_fail(err, errlen, CHARRNN_EIO, "%s" SUFFIX ": %s", name, strerror(errno));
    }
    size_t dl = strlen(s->dir);
    if (strncmp(real, s->dir, dl) != 0 || (real[dl] != '/' && strcmp(s->dir, "/") != 0))
        return charrnn_fail(err, errlen, CHARRNN_EINVAL,
                            "%s" SUFFIX " is a symlink that leads outside the model directory",
                            name);
    snprintf(path, pathlen, "%s", real);
    return CHARRNN_OK;
}

static double train_val_loss(const char *train_json)
{
    double loss = NAN;
    cJSON *j = train_json ? cJSON_Parse(train_json) : NULL;
    const char *keys[] = {"val_loss", "best_val_loss"};
    for (size_t i = 0; j && i < 2 && isnan(loss); i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, keys[i]);
        if (cJSON_IsNumber(v))
            loss = v->valuedouble;
    }
    cJSON_Delete(j);
    return loss;
}

/* Reads, validates and builds one version (not yet numbered). sig receives the
 * stat of the file that was read, when one was opened. */
static int load_version(const model_store *s, const char *name, version **out, file_sig *sig,
                        int *have_sig, char *err, size_t errlen)
{
    char path[PATH_MAX];
    *out = NULL;
    *have_sig = 0;
    int rc = resolve(s, name, path, sizeof path, err, errlen);
    if (rc != CHARRNN_OK)
        return rc;
    uint8_t *buf = NULL;
    size_t len = 0;
    struct stat st;
    /* resolve() has followed any symlink already: the file itself must not be one. */
    rc = charrnn_file_read(path, CHARRNN_FILE_NOFOLLOW, &buf, &len, &st, err, errlen);
    if (rc != CHARRNN_OK) {
        char rel[STORE_NAME_MAX + sizeof SUFFIX];
        snprintf(rel, sizeof rel, "%s" SUFFIX, name);
        replace_path(err, errlen, path, rel);
        return rc;
    }
    sig_from_stat(sig, &st);
    *have_sig = 1;

    version *v = calloc(1, sizeof *v);
    if (v)
        atomic_fetch_add(&versions_live, 1);
    charrnn_st_file *f = NULL;
    char msg[CHARRNN_ERR_MAX] = "";
    if (!v) {
        rc = charrnn_fail(err, errlen, CHARRNN_ENOMEM, "out of memory");
        goto fail;
    }
    charrnn_sha256_hex(buf, len, v->pub.sha256);
    rc = charrnn_st_parse(buf, len, &f, msg, sizeof msg);
    free(buf);
    buf = NULL;
    if (rc == CHARRNN_OK)
        rc = charrnn_checkpoint_model(f, &v->model, msg, sizeof msg);
    if (rc != CHARRNN_OK) {
        charrnn_fail(err, errlen, rc, "%s" SUFFIX ": %s", name, msg);
        goto fail;
    }
    const char *train = charrnn_st_meta_get(f, "train");
    if (train && !(v->train_json = strdup(train))) {
        rc = charrnn_fail(err, errlen, CHARRNN_ENOMEM, "out of memory");
        goto fail;
    }
    charrnn_st_free(f);
    snprintf(v->name, sizeof v->name, "%s", name);
    atomic_init(&v->refs, 1);
    v->pub.name = v->name;
    v->pub.model = v->model;
    v->pub.train_json = v->train_json;
    v->pub.val_loss = train_val_loss(v->train_json);
    v->pub.loaded_at = now_unix();
    v->pub.file_size = (uint64_t)len;
    *out = v;
    return CHARRNN_OK;
fail:
    free(buf);
    charrnn_st_free(f);
    version_free(v);
    return rc;
}

/* Loads name and records the outcome. Under load_mu. */
static int load_one(model_store *s, const char *name, char *err, size_t errlen)
{
    char msg[512];
    version *v = NULL;
    file_sig sig;
    int have_sig = 0;
    double t0 = charrnn_clock_mono();
    int rc = load_version(s, name, &v, &sig, &have_sig, msg, sizeof msg);
    double dt = charrnn_clock_mono() - t0;

    if (rc == CHARRNN_ENOTFOUND) {
        int existed;
        pthread_mutex_lock(&s->mu);
        version *old = entry_remove(s, name, &existed);
        pthread_mutex_unlock(&s->mu);
        if (existed)
            emit_removed(s, name, old);
        store_release(old ? &old->pub : NULL);
        return charrnn_fail(err, errlen, rc, "%s", msg);
    }

    pthread_mutex_lock(&s->mu);
    entry *e = entry_get(s, name);
    if (!e) {
        pthread_mutex_unlock(&s->mu);
        version_free(v);
        return charrnn_fail(err, errlen, CHARRNN_ENOMEM, "out of memory");
    }
    e->have_sig = have_sig;
    if (have_sig)
        e->sig = sig;
    version *old = NULL;
    uint64_t serving = 0, serving_id = 0;
    int unchanged = 0;
    if (rc == CHARRNN_OK && e->current && !strcmp(e->current->pub.sha256, v->pub.sha256)) {
        /* The same bytes: the version serving stays, with the states cached for it. */
        unchanged = 1;
        old = v;
        e->loads++;
        e->last_error[0] = '\0';
        s->stats.loads++;
    } else if (rc == CHARRNN_OK) {
        name_seq *q = name_seq_get(s, name);
        if (!q) {
            pthread_mutex_unlock(&s->mu);
            version_free(v);
            return charrnn_fail(err, errlen, CHARRNN_ENOMEM, "out of memory");
        }
        v->pub.version = ++q->last;
        v->pub.load_id = ++s->next_load_id;
        old = e->current;
        e->current = v;
        e->loads++;
        e->last_error[0] = '\0';
        s->stats.loads++;
    } else {
        e->failures++;
        snprintf(e->last_error, sizeof e->last_error, "%s", msg);
        e->last_error_at = now_unix();
        s->stats.load_failures++;
    }
    if (e->current) {
        serving = e->current->pub.version;
        serving_id = e->current->pub.load_id;
    }
    pthread_mutex_unlock(&s->mu);
    store_release(old ? &old->pub : NULL);

    store_event ev = {STORE_LOADED, name, serving, serving_id, unchanged, dt, NULL};
    if (rc == CHARRNN_OK) {
        emit(s, &ev);
        return CHARRNN_OK;
    }
    ev.kind = STORE_LOAD_FAILED;
    ev.error = msg;
    emit(s, &ev);
    return charrnn_fail(err, errlen, rc, "%s", msg);
}

int store_open(const char *dir, model_store **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!dir || !dir[0])
        return charrnn_fail(err, errlen, CHARRNN_EINVAL, "no model directory");
    char real[PATH_MAX];
    struct stat st;
    if (!realpath(dir, real) || stat(real, &st) != 0)
        return charrnn_fail(err, errlen, errno == ENOENT ? CHARRNN_ENOTFOUND : CHARRNN_EIO,
                            "model directory %s: %s", dir, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return charrnn_fail(err, errlen, CHARRNN_EINVAL, "model directory %s is not a directory",
                            dir);
    model_store *s = calloc(1, sizeof *s);
    if (!s || !(s->dir = strdup(real))) {
        free(s);
        return charrnn_fail(err, errlen, CHARRNN_ENOMEM, "out of memory");
    }
    pthread_mutex_init(&s->mu, NULL);
    pthread_mutex_init(&s->load_mu, NULL);
    pthread_cond_init(&s->reloaded, NULL);
    *out = s;
    return CHARRNN_OK;
}

void store_free(model_store *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++) {
        if (s->entries[i]->current)
            store_release(&s->entries[i]->current->pub);
        free(s->entries[i]);
    }
    free(s->entries);
    while (s->seqs) {
        name_seq *q = s->seqs;
        s->seqs = q->next;
        free(q);
    }
    pthread_mutex_destroy(&s->mu);
    pthread_mutex_destroy(&s->load_mu);
    pthread_cond_destroy(&s->reloaded);
    free(s->dir);
    free(s);
}

void store_set_listener(model_store *s, store_event_fn fn, void *ctx)
{
    pthread_mutex_lock(&s->load_mu);
    s->listener = fn;
    s->listener_ctx = ctx;
    pthread_mutex_unlock(&s->load_mu);
}

int store_acquire(model_store *s, const char *name, const store_model **out, char *err,
                  size_t errlen)
{
    *out = NULL;
    if (!store_name_valid(name))
        return charrnn_fail(err, errlen, CHARRNN_EINVAL, "invalid model name");
    pthread_mutex_lock(&s->mu);
    long i = entry_find(s, name);
    int rc = CHARRNN_OK;
    if (i >= 0 && s->entries[i]->current) {
        *out = store_retain(&s->entries[i]->current->pub);
    } else if (i >= 0) {
        rc = charrnn_fail(err, errlen, CHARRNN_ENOTFOUND, "model '%s' failed to load: %s", name,
                          s->entries[i]->last_error);
    } else {
        rc = charrnn_fail(err, errlen, CHARRNN_ENOTFOUND, "model '%s' not found", name);
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

typedef struct dir_item {
    char name[STORE_NAME_MAX + 1];
    file_sig sig;
    int have_sig;
} dir_item;

static int item_cmp(const void *a, const void *b)
{
    return strcmp(((const dir_item *)a)->name, ((const dir_item *)b)->name);
}

/* The candidate files of the directory, sorted by name. */
static int list_dir(const model_store *s, dir_item **out, size_t *n, char *err, size_t errlen)
{
    DIR *d = opendir(s->dir);
    if (!d)
        return charrnn_fail(err, errlen, CHARRNN_EIO, "model directory %s: %s", s->dir,
                            strerror(errno));
    dir_item *items = NULL;
    size_t cnt = 0, cap = 0;
    struct dirent *de;
    int rc = CHARRNN_OK;
    while ((de = readdir(d))) {
        size_t len = strlen(de->d_name);
        if (len <= SUFFIX_LEN || strcmp(de->d_name + len - SUFFIX_LEN, SUFFIX) != 0)
            continue;
        char name[STORE_NAME_MAX + 1];
        if (len - SUFFIX_LEN > STORE_NAME_MAX)
            continue;
        memcpy(name, de->d_name, len - SUFFIX_LEN);
        name[len - SUFFIX_LEN] = '\0';
        if (!store_name_valid(name))
            continue;
        if (cnt == cap) {
            cap = cap ? 2 * cap : 16;
            dir_item *p = realloc(items, cap * sizeof *p);
            if (!p) {
                rc = charrnn_fail(err, errlen, CHARRNN_ENOMEM, "out of memory");
                break;
            }
            items = p;
        }
        dir_item *it = &items[cnt++];
        memset(it, 0, sizeof *it);
        memcpy(it->name, name, len - SUFFIX_LEN + 1);
        char path[PATH_MAX];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", s->dir, de->d_name);
        /* stat follows a symlink, so retargeting it counts as a change. */
        if (stat(path, &st) == 0) {
            sig_from_stat(&it->sig, &st);
            it->have_sig = 1;
        }
    }
    closedir(d);
    if (rc != CHARRNN_OK) {
        free(items);
        return rc;
    }
    if (cnt)
        qsort(items, cnt, sizeof *items, item_cmp);
    *out = items;
    *n = cnt;
    return CHARRNN_OK;
}

int store_scan(model_store *s, int force, char *err, size_t errlen)
{
    pthread_mutex_lock(&s->load_mu);
    dir_item *items = NULL;
    size_t n = 0;
    int rc = list_dir(s, &items, &n, err, errlen);
    if (rc != CHARRNN_OK) {
        pthread_mutex_unlock(&s->load_mu);
        return rc;
    }

    /* Names that vanished from the directory. */
    for (;;) {
        char gone[STORE_NAME_MAX + 1] = "";
        pthread_mutex_lock(&s->mu);
        for (size_t i = 0; i < s->n && !gone[0]; i++) {
            dir_item key;
            snprintf(key.name, sizeof key.name, "%s", s->entries[i]->name);
            if (!n || !bsearch(&key, items, n, sizeof *items, item_cmp))
                snprintf(gone, sizeof gone, "%s", s->entries[i]->name);
        }
        int existed = 0;
        version *old = gone[0] ? entry_remove(s, gone, &existed) : NULL;
        pthread_mutex_unlock(&s->mu);
        if (!gone[0])
            break;
        emit_removed(s, gone, old);
        store_release(old ? &old->pub : NULL);
    }

    int attempts = 0;
    for (size_t i = 0; i < n; i++) {
        pthread_mutex_lock(&s->mu);
        long k = entry_find(s, items[i].name);
        const entry *e = k >= 0 ? s->entries[k] : NULL;
        int changed =
            force || !e || !e->have_sig || !items[i].have_sig || !sig_equal(&e->sig, &items[i].sig);
        pthread_mutex_unlock(&s->mu);
        if (!changed)
            continue;
        attempts++;
        load_one(s, items[i].name, NULL, 0);
    }
    free(items);
    pthread_mutex_unlock(&s->load_mu);
    return attempts;
}

int store_reload(model_store *s, const char *name, char *err, size_t errlen)
{
    if (!store_name_valid(name))
        return charrnn_fail(err, errlen, CHARRNN_EINVAL, "invalid model name");
    pthread_mutex_lock(&s->mu);
    reload_slot *r = s->reloads;
    while (r && strcmp(r->name, name))
        r = r->next;
    if (!r) {
        if (!(r = calloc(1, sizeof *r))) {
            pthread_mutex_unlock(&s->mu);
            return charrnn_fail(err, errlen, CHARRNN_ENOMEM, "out of memory");
        }
        snprintf(r->name, sizeof r->name, "%s", name);
        r->next = s->reloads;
        s->reloads = r;
    }
    r->users++;
    uint64_t ticket = ++r->requested;
    while (r->loading)
        pthread_cond_wait(&s->reloaded, &s->mu);
    if (r->done < ticket) { /* no load began after this request: run one */
        uint64_t upto = r->requested;
        r->loading = 1;
        pthread_mutex_unlock(&s->mu);
        char msg[CHARRNN_ERR_MAX] = "";
        pthread_mutex_lock(&s->load_mu);
        int rc = load_one(s, name, msg, sizeof msg);
        pthread_mutex_unlock(&s->load_mu);
        pthread_mutex_lock(&s->mu);
        r->rc = rc;
        snprintf(r->msg, sizeof r->msg, "%s", msg);
        r->done = upto;
        r->loading = 0;
        pthread_cond_broadcast(&s->reloaded);
    }
    int rc = r->rc;
    if (rc != CHARRNN_OK)
        charrnn_fail(err, errlen, rc, "%s", r->msg);
    if (--r->users == 0) {
        reload_slot **p = &s->reloads;
        while (*p != r)
            p = &(*p)->next;
        *p = r->next;
        free(r);
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

int store_list(model_store *s, store_entry **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    pthread_mutex_lock(&s->mu);
    store_entry *list = s->n ? calloc(s->n, sizeof *list) : NULL;
    if (s->n && !list) {
        pthread_mutex_unlock(&s->mu);
        return CHARRNN_ENOMEM;
    }
    for (size_t i = 0; i < s->n; i++) {
        const entry *e = s->entries[i];
        store_entry *o = &list[i];
        snprintf(o->name, sizeof o->name, "%s", e->name);
        o->current = e->current ? store_retain(&e->current->pub) : NULL;
        o->loads = e->loads;
        o->load_failures = e->failures;
        snprintf(o->last_error, sizeof o->last_error, "%s", e->last_error);
        o->last_error_at = e->last_error_at;
    }
    *n = s->n;
    pthread_mutex_unlock(&s->mu);
    *out = list;
    return CHARRNN_OK;
}

void store_list_free(store_entry *list, size_t n)
{
    if (!list)
        return;
    for (size_t i = 0; i < n; i++)
        store_release(list[i].current);
    free(list);
}

void store_stats_get(model_store *s, store_stats *out)
{
    pthread_mutex_lock(&s->mu);
    *out = s->stats;
    pthread_mutex_unlock(&s->mu);
    out->versions_live = atomic_load(&versions_live);
}

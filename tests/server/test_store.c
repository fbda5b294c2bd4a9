/* Check suite of the model store (server/store.h): names, scanning,
 * reference-counted versions across reloads, failed reloads, removals,
 * symlinks, events, and acquire/release racing reloads. */
#include "charrnn/checkpoint.h"
#include "charrnn/status.h"
#include "check_run.h"
#include "store.h"

#include <check.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[256];

static void path_of(char *out, size_t n, const char *file)
{
    snprintf(out, n, "%s/%s", dir, file);
}

/* Writes a small random checkpoint; hidden size H tells versions apart. */
static void make_ckpt(const char *file, int H, uint64_t seed)
{
    const char *text = "hello world, a tiny text";
    char err[CHARRNN_ERR_MAX];
    charrnn_vocab *v = NULL;
    ck_assert_int_eq(charrnn_vocab_build((const uint8_t *)text, strlen(text), &v, err, sizeof err),
                     CHARRNN_OK);
    charrnn_config cfg = {CHARRNN_CELL_LSTM, (int)charrnn_vocab_size(v), H, 1};
    charrnn_model *m = NULL;
    ck_assert_int_eq(charrnn_model_create(&cfg, v, &m, err, sizeof err), CHARRNN_OK);
    charrnn_rng rng;
    charrnn_rng_seed(&rng, seed);
    charrnn_model_init(m, &rng);
    char path[512];
    path_of(path, sizeof path, file);
    ck_assert_msg(charrnn_checkpoint_save(path, m, "{\"val_loss\": 1.25}", NULL, err, sizeof err) ==
                      CHARRNN_OK,
                  "%s", err);
    charrnn_model_free(m);
}

static void write_bytes(const char *file, const char *bytes)
{
    char path[512];
    path_of(path, sizeof path, file);
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    fputs(bytes, f);
    fclose(f);
}

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/charrnn-store-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

static model_store *open_scanned(void)
{
    model_store *s = NULL;
    char err[CHARRNN_ERR_MAX];
    ck_assert_int_eq(store_open(dir, &s, err, sizeof err), CHARRNN_OK);
    ck_assert_int_ge(store_scan(s, 0, err, sizeof err), 0);
    return s;
}

START_TEST(names)
{
    ck_assert(store_name_valid("shakespeare"));
    ck_assert(store_name_valid("a-b_c.d9"));
    ck_assert(!store_name_valid(""));
    ck_assert(!store_name_valid(NULL));
    ck_assert(!store_name_valid(".hidden"));
    ck_assert(!store_name_valid("a/b"));
    ck_assert(!store_name_valid("../x"));
    ck_assert(!store_name_valid("sp ace"));
    ck_assert(!store_name_valid("caf\xc3\xa9"));
    char longname[200];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    ck_assert(!store_name_valid(longname));
}
END_TEST

START_TEST(open_errors)
{
    model_store *s = (model_store *)1;
    char err[CHARRNN_ERR_MAX];
    ck_assert_int_eq(store_open("/nonexistent/dir", &s, err, sizeof err), CHARRNN_ENOTFOUND);
    ck_assert_ptr_null(s);
    write_bytes("file", "x");
    char path[512];
    path_of(path, sizeof path, "file");
    ck_assert_int_eq(store_open(path, &s, err, sizeof err), CHARRNN_EINVAL);
    store_free(NULL);
    store_release(NULL);
    store_list_free(NULL, 0);
}
END_TEST

START_TEST(scan_and_acquire)
{
    make_ckpt("b.safetensors", 8, 1);
    make_ckpt("a.safetensors", 4, 2);
    write_bytes(".hidden.safetensors", "junk");
    write_bytes("bad name.safetensors", "junk");
    write_bytes("notes.txt", "junk");
    write_bytes("x.safetensors.tmp.123456", "junk");
    model_store *s = open_scanned();
    store_entry *list;
    size_t n;
    ck_assert_int_eq(store_list(s, &list, &n), CHARRNN_OK);
    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq(list[0].name, "a");
    ck_assert_str_eq(list[1].name, "b");
    ck_assert_ptr_nonnull(list[0].current);
    ck_assert_int_eq(list[0].current->model->cfg.hidden_size, 4);
    ck_assert_double_eq_tol(list[0].current->val_loss, 1.25, 1e-9);
    ck_assert_uint_eq(strlen(list[0].current->sha256), 64);
    store_list_free(list, n);

    const store_model *v = NULL;
    char err[CHARRNN_ERR_MAX];
    ck_assert_int_eq(store_acquire(s, "b", &v, err, sizeof err), CHARRNN_OK);
    ck_assert_str_eq(v->name, "b");
    ck_assert_int_eq(v->model->cfg.hidden_size, 8);
    ck_assert_uint_gt(v->version, 0);
    store_release(v);
    ck_assert_int_eq(store_acquire(s, "zzz", &v, err, sizeof err), CHARRNN_ENOTFOUND);
    ck_assert_ptr_null(v);
    ck_assert_int_eq(store_acquire(s, "../a", &v, err, sizeof err), CHARRNN_EINVAL);
    /* nothing changed: a scan loads nothing */
    ck_assert_int_eq(store_scan(s, 0, err, sizeof err), 0);
    ck_assert_int_eq(store_scan(s, 1, err, sizeof err), 2);
    store_free(s);
}
END_TEST

START_TEST(held_version_survives_reload_and_free)
{
    make_ckpt("m.safetensors", 4, 1);
    model_store *s = open_scanned();
    const store_model *old = NULL;
    char err[CHARRNN_ERR_MAX];
    ck_assert_int_eq(store_acquire(s, "m", &old, err, sizeof err), CHARRNN_OK);
    make_ckpt("m.safetensors", 6, 2); /* atomic replacement */
    ck_assert_int_eq(store_scan(s, 0, err, sizeof err), 1);
    const store_model *cur = NULL;
    ck_assert_int_eq(store_acquire(s, "m", &cur, err, sizeof err), CHARRNN_OK);
    ck_assert_ptr_ne(cur, old);
    ck_assert_uint_gt(cur->version, old->version);
    ck_assert_int_eq(cur->model->cfg.hidden_size, 6);
    ck_assert_int_eq(old->model->cfg.hidden_size, 4);
    ck_assert_str_ne(cur->sha256, old->sha256);
    store_free(s); /* held versions stay valid */
    ck_assert_int_eq(old->model->cfg.hidden_size, 4);
    ck_assert(isfinite(old->model->params[0]));
    store_release(old);
    ck_assert_int_eq(cur->model->cfg.hidden_size, 6);
    store_release(cur);
}
END_TEST

static int events[3];
static char last_error[CHARRNN_ERR_MAX];

static void listener(void *ctx, const store_event *ev)
{
    (void)ctx;
    events[ev->kind]++;
    if (ev->kind == STORE_LOAD_FAILED)
        snprintf(last_error, sizeof last_error, "%s", ev->error);
}

START_TEST(failed_reload_keeps_old_version)
{
    make_ckpt("m.safetensors", 4, 1);
    model_store *s = NULL;
    char err[CHARRNN_ERR_MAX];
    ck_assert_int_eq(store_open(dir, &s, err, sizeof err), CHARRNN_OK);
    memset(events, 0, sizeof events);
    store_set_listener(s, listener, NULL);
    ck_assert_int_eq(store_scan(s, 0, err, sizeof err), 1);
    ck_assert_int_eq(events[STORE_LOADED], 1);
    const store_model *v1 = NULL;
    ck_assert_int_eq(store_acquire(s, "m", &v1, err, sizeof err), CHARRNN_OK);
    uint64_t ver = v1->version;
    store_release(v1);

    write_bytes("m.safetensors", "\x08\x00\x00\x00\x00\x00\x00\x00{broken}");
    ck_assert_int_eq(store_scan(s, 0, err, sizeof err), 1);
    ck_assert_int_eq(events[STORE_LOAD_FAILED], 1);
    ck_assert(strstr(last_error, "m.safetensors") != NULL);
    const store_model *v = NULL;
    ck_assert_int_eq(store_acquire(s, "m", &v, err, sizeof err), CHARRNN_OK);
    ck_assert_uint_eq(v->version, ver);
    store_release(v);
    /* the failure is recorded, and not retried until the file changes */
    store_entry *list;
    size_t n;
    store_list(s, &list, &n);
    ck_assert_uint_eq(n, 1);
    ck_assert_uint_eq(list[0].load_failures, 1);
    ck_assert_uint_eq(list[0].loads, 1);
    ck_assert(list[0].last_error[0] != '\0');
    ck_assert(list[0].last_error_at > 0);
    store_list_free(list, n);
    ck_assert_int_eq(store_scan(s, 0, err, sizeof err), 0);
    ck_assert_int_ne(store_reload(s, "m", err, sizeof err), CHARRNN_OK);
    store_stats st;
    store_stats_get(s, &st);
    ck_assert_uint_eq(st.loads, 1);
    ck_assert_uint_eq(st.load_failures, 2);

    make_ckpt("m.safetensors", 5, 3);
    ck_assert_int_eq(store_scan(s, 0, err, sizeof err), 1);
    store_list(s, &list, &n);
    ck_assert_str_eq(list[0].last_error, "");
    ck_assert_int_eq(list[0].current->model->cfg.hidden_size, 5);
    ck_assert_uint_gt(list[0].current->version, ver);
    store_list_free(list, n);
    store_free(s);
}
END_TEST

START_TEST(never_loaded_file_is_listed_unavailable)
{
    write_bytes("bad.safetensors", "not a checkpoint");
    model_store *s = open_scanned();
    store_entry *list;
    size_t n;
    store_list(s, &list, &n);
    ck_assert_uint_eq(n, 1);
    ck_assert_ptr_null(list[0].current);
    ck_assert(list[0].last_error[0] != '\0');
    store_list_free(list, n);
    const store_model *v = NULL;
    char err[CHARRNN_ERR_MAX];
    ck_assert_int_eq(store_acquire(s, "bad", &v, err, sizeof err), CHARRNN_ENOTFOUND);
    ck_assert(strstr(err, "failed to load") != NULL);
    store_free(s);
}
END_TEST

START_TEST(removal_and_reload_by_name)
{
    make_ckpt("m.safetensors", 4, 1);
    model_store *s = open_scanned();
    char err[CHARRNN_ERR_MAX], path[512];
    const store_model *held = NULL;
    ck_assert_int_eq(store_acquire(s, "m", &held, err, sizeof err), CHARRNN_OK);
    path_of(path, sizeof path, "m.safetensors");
    ck_assert_int_eq(unlink(path), 0);
    ck_assert_int_eq(store_scan(s, 0, err, sizeof err), 0);
    const store_model *v = NULL;
    ck_assert_int_eq(store_acquire(s, "m", &v, err, sizeof err), CHARRNN_ENOTFOUND);
    ck_assert_int_eq(held->model->cfg.hidden_size, 4);
    store_release(held);
    store_stats st;
    store_stats_get(s, &st);
    ck_assert_uint_eq(st.removals, 1);

    ck_assert_int_eq(store_reload(s, "m", err, sizeof err), CHARRNN_ENOTFOUND);
    ck_assert_int_eq(store_reload(s, "../etc", err, sizeof err), CHARRNN_EINVAL);
    make_ckpt("m.safetensors", 3, 1);
    ck_assert_int_eq(store_reload(s, "m", err, sizeof err), CHARRNN_OK);
    ck_assert_int_eq(store_acquire(s, "m", &v, err, sizeof err), CHARRNN_OK);
    ck_assert_int_eq(v->model->cfg.hidden_size, 3);
    store_release(v);
    store_free(s);
}
END_TEST

START_TEST(symlinks)
{
    char outside[300], target[512], link[512];
    snprintf(outside, sizeof outside, "%s.outside.safetensors", dir);
    make_ckpt("real.safetensors", 4, 1);
    path_of(target, sizeof target, "real.safetensors");
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", target, outside);
    ck_assert_int_eq(system(cmd), 0);
    path_of(link, sizeof link, "out.safetensors");
    ck_assert_int_eq(symlink(outside, link), 0);
    path_of(link, sizeof link, "alias.safetensors");
    ck_assert_int_eq(symlink("real.safetensors", link), 0);
    model_store *s = open_scanned();
    const store_model *v = NULL;
    char err[CHARRNN_ERR_MAX];
    ck_assert_int_eq(store_acquire(s, "alias", &v, err, sizeof err), CHARRNN_OK);
    store_release(v);
    ck_assert_int_eq(store_acquire(s, "out", &v, err, sizeof err), CHARRNN_ENOTFOUND);
    ck_assert_msg(strstr(err, "outside") != NULL, "%s", err);
    store_free(s);
    unlink(outside);
}
END_TEST

typedef struct race {
    model_store *s;
    int stop; /* atomic */
    long acquired;
} race;

static void *acquirer(void *arg)
{
    race *r = arg;
    char err[CHARRNN_ERR_MAX];
    while (!__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE)) {
        const store_model *v = NULL;
        if (store_acquire(r->s, "m", &v, err, sizeof err) != CHARRNN_OK)
            continue;
        /* touch the weights: they must stay valid while held */
        float sum = 0;
        for (size_t i = 0; i < v->model->num_params; i++)
            sum += v->model->params[i];
        if (!isfinite(sum))
            abort();
        store_release(v);
        __atomic_add_fetch(&r->acquired, 1, __ATOMIC_RELAXED);
    }
    return NULL;
}

START_TEST(acquire_races_reload)
{
    make_ckpt("m.safetensors", 8, 1);
    race r = {open_scanned(), 0, 0};
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, acquirer, &r);
    char err[CHARRNN_ERR_MAX];
    for (int i = 0; i < 40; i++) {
        if (i % 2)
            make_ckpt("m.safetensors", 8 + i % 3, (uint64_t)i);
        ck_assert_int_eq(store_reload(r.s, "m", err, sizeof err), CHARRNN_OK);
    }
    __atomic_store_n(&r.stop, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    ck_assert_int_gt(r.acquired, 0);
    store_free(r.s);
}
END_TEST

/* Concurrent reloads of one name: the first load is held (in the listener,
 * which runs in the loading thread) until every thread has asked, so the
 * other seven all arrive while it runs and must share one more load. */
enum { RELOADERS = 8 };
static int arrived;
static int held_once;

static void hold_first_load(void *ctx, const store_event *ev)
{
    (void)ctx;
    (void)ev;
    if (__atomic_exchange_n(&held_once, 1, __ATOMIC_ACQ_REL))
        return;
    while (__atomic_load_n(&arrived, __ATOMIC_ACQUIRE) < RELOADERS)
        usleep(1000);
    usleep(200 * 1000); /* time for the last ones to start waiting */
}

static void *reloader(void *arg)
{
    model_store *s = arg;
    char err[CHARRNN_ERR_MAX];
    __atomic_add_fetch(&arrived, 1, __ATOMIC_ACQ_REL);
    if (store_reload(s, "m", err, sizeof err) != CHARRNN_OK)
        abort();
    return NULL;
}

START_TEST(concurrent_reloads_coalesce)
{
    make_ckpt("m.safetensors", 8, 1);
    model_store *s = open_scanned();
    store_stats before, after;
    store_stats_get(s, &before);
    arrived = held_once = 0;
    store_set_listener(s, hold_first_load, NULL);
    pthread_t t[RELOADERS];
    for (int i = 0; i < RELOADERS; i++)
        pthread_create(&t[i], NULL, reloader, s);
    for (int i = 0; i < RELOADERS; i++)
        pthread_join(t[i], NULL);
    store_stats_get(s, &after);
    ck_assert_uint_le(after.loads - before.loads, 2);
    ck_assert_uint_ge(after.loads - before.loads, 1);
    /* and a reload after them loads again (nothing is cached) */
    char err[CHARRNN_ERR_MAX];
    ck_assert_int_eq(store_reload(s, "m", err, sizeof err), CHARRNN_OK);
    store_stats_get(s, &before);
    ck_assert_uint_eq(before.loads, after.loads + 1);
    store_free(s);
}
END_TEST

static uint64_t version_of(model_store *s, const char *name, uint64_t *load_id)
{
    const store_model *v = NULL;
    char err[CHARRNN_ERR_MAX];
    ck_assert_int_eq(store_acquire(s, name, &v, err, sizeof err), CHARRNN_OK);
    uint64_t ver = v->version;
    if (load_id)
        *load_id = v->load_id;
    store_release(v);
    return ver;
}

static int unchanged_events;

static void count_unchanged(void *ctx, const store_event *ev)
{
    (void)ctx;
    unchanged_events += ev->kind == STORE_LOADED && ev->unchanged;
}

/* A version is a content of one name: numbered from 1 per name, kept by a
 * reload of the same bytes (even a rewritten file), + 1 when the bytes change,
 * and not reused after the name leaves and comes back. load_ids stay unique. */
START_TEST(versions_count_content_per_model)
{
    make_ckpt("a.safetensors", 4, 1);
    make_ckpt("b.safetensors", 4, 2);
    model_store *s = open_scanned();
    char err[CHARRNN_ERR_MAX];
    uint64_t ida, idb, id;
    ck_assert_uint_eq(version_of(s, "a", &ida), 1);
    ck_assert_uint_eq(version_of(s, "b", &idb), 1);
    ck_assert_uint_ne(ida, idb);

    unchanged_events = 0;
    store_set_listener(s, count_unchanged, NULL);
    ck_assert_int_eq(store_reload(s, "a", err, sizeof err), CHARRNN_OK);
    make_ckpt("a.safetensors", 4, 1); /* rewritten, same bytes: the scan reads it */
    ck_assert_int_eq(store_scan(s, 0, err, sizeof err), 1);
    ck_assert_uint_eq(version_of(s, "a", &id), 1);
    ck_assert_uint_eq(id, ida);
    ck_assert_int_eq(unchanged_events, 2);

    make_ckpt("a.safetensors", 4, 3); /* new weights, same shape */
    ck_assert_int_eq(store_scan(s, 0, err, sizeof err), 1);
    ck_assert_uint_eq(version_of(s, "a", &id), 2);
    ck_assert_uint_gt(id, idb);
    ck_assert_uint_eq(version_of(s, "b", NULL), 1);

    char path[512];
    path_of(path, sizeof path, "a.safetensors");
    ck_assert_int_eq(unlink(path), 0);
    ck_assert_int_eq(store_scan(s, 0, err, sizeof err), 0);
    make_ckpt("a.safetensors", 4, 1);
    ck_assert_int_eq(store_scan(s, 0, err, sizeof err), 1);
    ck_assert_uint_eq(version_of(s, "a", NULL), 3);
    store_free(s);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("store");
    TCase *core = ADD_CASE(s, "core", names, open_errors, scan_and_acquire, symlinks);
    TCase *reload =
        ADD_CASE(s, "reload", held_version_survives_reload_and_free,
                 failed_reload_keeps_old_version, never_loaded_file_is_listed_unavailable,
                 removal_and_reload_by_name, versions_count_content_per_model);
    TCase *conc = ADD_CASE(s, "concurrency", acquire_races_reload, concurrent_reloads_coalesce);
    tcase_set_timeout(conc, 60);
    TCase *all[] = {core, reload, conc};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        tcase_add_checked_fixture(all[i], setup, teardown);
    return run_suite(s);
}

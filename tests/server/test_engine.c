/* Check suite of charrnn-serve's generation engine (server/engine.c):
 * batched output equals charrnn_sample_run, admission and queue bounds,
 * fair admission between clients and their share, cancellation, timeouts,
 * and shutdown with workers busy. */
#include "engine.h"

#include "charrnn/checkpoint.h"
#include "charrnn/clock.h"
#include "charrnn/status.h"
#include "check_run.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static model_store *store;
static const store_model *ver;
static char dir[64];

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/charrnn-engine-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    const char *text = "the quick brown fox jumps over the lazy dog; THE END.\n";
    char err[CHARRNN_ERR_MAX], path[128];
    charrnn_vocab *v = NULL;
    ck_assert_int_eq(charrnn_vocab_build((const uint8_t *)text, strlen(text), &v, err, sizeof err),
                     CHARRNN_OK);
    charrnn_config cfg = {CHARRNN_CELL_LSTM, (int)charrnn_vocab_size(v), 16, 2};
    charrnn_model *m = NULL;
    ck_assert_int_eq(charrnn_model_create(&cfg, v, &m, err, sizeof err), CHARRNN_OK);
    charrnn_rng rng;
    charrnn_rng_seed(&rng, 7);
    charrnn_model_init(m, &rng);
    snprintf(path, sizeof path, "%s/m.safetensors", dir);
    ck_assert_int_eq(charrnn_checkpoint_save(path, m, NULL, NULL, err, sizeof err), CHARRNN_OK);
    charrnn_model_free(m);
    ck_assert_int_eq(store_open(dir, &store, err, sizeof err), CHARRNN_OK);
    ck_assert_int_eq(store_scan(store, 0, err, sizeof err), 1);
    ck_assert_int_eq(store_acquire(store, "m", &ver, err, sizeof err), CHARRNN_OK);
}

static void teardown(void)
{
    store_release(ver);
    store_free(store);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

static charrnn_sample_params params(uint64_t seed, size_t length)
{
    charrnn_sample_params p = charrnn_sample_defaults();
    p.prime = "the ";
    p.prime_len = 4;
    p.length = length;
    p.seed = seed;
    p.temperature = 0.9f;
    return p;
}

static gen_job *new_job(uint64_t seed, size_t length)
{
    charrnn_sample_params p = params(seed, length);
    charrnn_stream *s = NULL;
    char err[CHARRNN_ERR_MAX];
    ck_assert_int_eq(charrnn_stream_create(ver->model, &p, &s, err, sizeof err), CHARRNN_OK);
    gen_job *j = engine_job_create(s, store_retain(ver), 0);
    ck_assert_ptr_nonnull(j);
    return j;
}

typedef struct text {
    char buf[8192];
    size_t len;
} text;

static int collect(void *ctx, const char *bytes, size_t len)
{
    text *t = ctx;
    memcpy(t->buf + t->len, bytes, len);
    t->len += len;
    return 0;
}

static void reference(uint64_t seed, size_t length, text *out)
{
    charrnn_sample_params p = params(seed, length);
    charrnn_stream *s = NULL;
    char err[CHARRNN_ERR_MAX];
    ck_assert_int_eq(charrnn_stream_create(ver->model, &p, &s, err, sizeof err), CHARRNN_OK);
    out->len = 0;
    ck_assert_int_eq(charrnn_sample_run(s, ver->model, collect, out), CHARRNN_OK);
    charrnn_stream_free(s);
}

/* An engine on cfg (copied: a test may change its cfg and start another). */
static engine *started(const engine_config *cfg)
{
    engine *e = NULL;
    ck_assert_int_eq(engine_create(cfg, &e), 0);
    return e;
}

/* Waits up to 30 s (wakeups come with every new character, so count time). */
static void wait_end(engine *e, gen_job *j)
{
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (!engine_job_wait(e, j, 10)) {
        clock_gettime(CLOCK_MONOTONIC, &t);
        ck_assert_msg(t.tv_sec - t0.tv_sec < 30, "job did not end");
    }
}

START_TEST(batched_equals_sample_run)
{
    engine_config cfg = {64, 64, 2, 5, 0, 1, 0, NULL, 0};
    engine *e = started(&cfg);
    enum { N = 16 };
    gen_job *jobs[N];
    for (int i = 0; i < N; i++) {
        jobs[i] = new_job(100 + (uint64_t)i, 200 + 10 * (size_t)i);
        ck_assert_int_eq(engine_submit(e, jobs[i]), 0);
    }
    for (int i = 0; i < N; i++) {
        wait_end(e, jobs[i]);
        job_result r;
        engine_job_result(e, jobs[i], &r);
        ck_assert_int_eq(r.end, JOB_FINISHED);
        ck_assert_int_eq(r.finish, CHARRNN_FINISH_LENGTH);
        ck_assert_uint_eq(r.generated_chars, 200 + 10 * (size_t)i);
        ck_assert_uint_eq(r.prime_chars, 4);
        text want;
        reference(100 + (uint64_t)i, 200 + 10 * (size_t)i, &want);
        ck_assert_uint_eq(r.text_len, want.len);
        ck_assert(memcmp(r.text, want.buf, want.len) == 0);
        engine_job_release(e, jobs[i]);
    }
    engine_stats st;
    engine_stats_get(e, &st);
    ck_assert_int_eq(st.active, 0);
    ck_assert_uint_gt(st.batched_streams, st.steps); /* some steps advanced several streams */
    engine_free(e);
}
END_TEST

START_TEST(streamed_reads_equal_the_text)
{
    engine_config cfg = {4, 4, 1, 4, 0, 1, 0, NULL, 0};
    engine *e = started(&cfg);
    gen_job *j = new_job(5, 3000);
    ck_assert_int_eq(engine_submit(e, j), 0);
    text got = {{0}, 0};
    int ended = 0;
    while (!ended) {
        char buf[7];
        size_t n = engine_job_read(e, j, got.len, buf, sizeof buf, 50, &ended);
        memcpy(got.buf + got.len, buf, n);
        got.len += n;
    }
    text want;
    reference(5, 3000, &want);
    ck_assert_uint_eq(got.len, want.len);
    ck_assert(memcmp(got.buf, want.buf, want.len) == 0);
    engine_job_release(e, j);
    engine_free(e);
}
END_TEST

START_TEST(admission_queue_and_cancel)
{
    engine_config cfg = {1, 1, 1, 8, 0, 1, 0, NULL, 0};
    engine *e = started(&cfg);
    gen_job *a = new_job(1, 100000000), *b = new_job(2, 10), *c = new_job(3, 10);
    ck_assert_int_eq(engine_submit(e, a), 0);
    ck_assert_int_eq(engine_submit(e, b), 0);
    ck_assert_int_eq(engine_submit(e, c), -1); /* queue full */
    engine_job_release(e, c);
    engine_stats st;
    engine_stats_get(e, &st);
    ck_assert_int_eq(st.active, 1);
    ck_assert_int_eq(st.queued, 1);
    /* b waits until a leaves */
    ck_assert_int_eq(engine_job_wait(e, b, 50), 0);
    engine_cancel(e, a);
    wait_end(e, a);
    job_result r;
    engine_job_result(e, a, &r);
    ck_assert_int_eq(r.end, JOB_CANCELLED);
    engine_job_release(e, a);
    wait_end(e, b);
    engine_job_result(e, b, &r);
    ck_assert_int_eq(r.end, JOB_FINISHED);
    ck_assert_uint_eq(r.generated_chars, 10);
    engine_job_release(e, b);
    /* cancelling a queued job ends it at once */
    gen_job *x = new_job(4, 100000000), *y = new_job(5, 10);
    ck_assert_int_eq(engine_submit(e, x), 0);
    ck_assert_int_eq(engine_submit(e, y), 0);
    engine_cancel(e, y);
    ck_assert_int_eq(engine_job_wait(e, y, 0), 1);
    engine_stats_get(e, &st);
    ck_assert_int_eq(st.queued, 0);
    engine_cancel(e, x);
    engine_job_release(e, x);
    engine_job_release(e, y);
    engine_free(e);
}
END_TEST

/* b, submitted right after a into the one slot, starts no earlier than a
 * leaves it: its queue time covers a's whole run but the time between the two
 * submits, which the test measures (no sleep, no figure of the machine's). */
static void check_waited_for(const job_result *a, const job_result *b, double gap)
{
    ck_assert_msg(b->queue_seconds >= a->total_seconds - gap,
                  "b waited %.6f s, a ran %.6f s, submitted %.6f s apart", b->queue_seconds,
                  a->total_seconds, gap);
}

START_TEST(timeouts)
{
    /* a runs past the timeout and keeps its text; b waits for its slot */
    engine_config cfg = {1, 4, 1, 8, 0.3, 1, 0, NULL, 0};
    engine *e = started(&cfg);
    gen_job *a = new_job(1, 100000000), *b = new_job(2, 10);
    double t0 = charrnn_clock_mono();
    ck_assert_int_eq(engine_submit(e, a), 0);
    ck_assert_int_eq(engine_submit(e, b), 0); /* waits for a's slot */
    double gap = charrnn_clock_mono() - t0;
    wait_end(e, a);
    job_result ra, rb;
    engine_job_result(e, a, &ra);
    ck_assert_int_eq(ra.end, JOB_TIMEOUT);
    ck_assert_uint_gt(ra.generated_chars, 0);
    ck_assert_uint_eq(ra.text_len, ra.generated_chars); /* ASCII vocabulary */
    wait_end(e, b);
    engine_job_result(e, b, &rb);
    /* b's deadline is a's plus the gap: it may start with time left or not */
    ck_assert(rb.end == JOB_FINISHED || rb.end == JOB_TIMEOUT || rb.end == JOB_QUEUE_TIMEOUT);
    check_waited_for(&ra, &rb, gap);
    engine_job_release(e, a);
    engine_job_release(e, b);
    engine_free(e);

    /* without a timeout, b starts when a ends and runs whole */
    cfg.timeout = 0;
    e = started(&cfg);
    a = new_job(3, 20000);
    b = new_job(4, 10);
    t0 = charrnn_clock_mono();
    ck_assert_int_eq(engine_submit(e, a), 0);
    ck_assert_int_eq(engine_submit(e, b), 0);
    gap = charrnn_clock_mono() - t0;
    wait_end(e, b);
    engine_job_result(e, a, &ra);
    engine_job_result(e, b, &rb);
    ck_assert_int_eq(ra.end, JOB_FINISHED);
    ck_assert_int_eq(rb.end, JOB_FINISHED);
    ck_assert_uint_eq(rb.generated_chars, 10);
    check_waited_for(&ra, &rb, gap);
    engine_job_release(e, a);
    engine_job_release(e, b);
    engine_free(e);
}
END_TEST

static gen_job *client_job(const char *client, uint64_t seed, size_t length)
{
    gen_job *j = new_job(seed, length);
    engine_job_set_client(j, client);
    return j;
}

/* Waits up to 30 s for j's first generated byte (it has started). */
static void wait_output(engine *e, gen_job *j)
{
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    char c;
    int ended;
    while (engine_job_read(e, j, 0, &c, 1, 10, &ended) == 0) {
        clock_gettime(CLOCK_MONOTONIC, &t);
        ck_assert_msg(t.tv_sec - t0.tv_sec < 30, "job did not start");
    }
}

/* Submits jobs[0..n) in order; each must be admitted or queued. */
static void submit_each(engine *e, gen_job *const *jobs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        ck_assert_int_eq(engine_submit(e, jobs[i]), 0);
}

static void cancel_release(engine *e, gen_job *const *jobs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        engine_cancel(e, jobs[i]);
        engine_job_release(e, jobs[i]);
    }
}

enum { LONG = 100000000 }; /* characters: runs until cancelled */

START_TEST(fair_queue_between_clients)
{
    /* One slot. Client a runs a1 and queues a2 and a3 before client b's short
     * b1 arrives: when a1 leaves, b1 starts first (a's latest start is more
     * recent than b's none), then a2 before a3. Under a FIFO queue b1 would
     * wait behind a2, which runs until cancelled: wait_end(b1) fails. */
    engine_config cfg = {1, 8, 1, 8, 0, 1, 0, NULL, 0};
    engine *e = started(&cfg);
    gen_job *a[3] = {client_job("a", 1, LONG), client_job("a", 2, LONG), client_job("a", 3, LONG)},
            *b1 = client_job("b", 4, 10);
    submit_each(e, a, 3);
    submit_each(e, &b1, 1);
    engine_stats st;
    engine_stats_get(e, &st);
    ck_assert_int_eq(st.active, 1);
    ck_assert_int_eq(st.queued, 3);
    ck_assert_int_eq(st.clients, 2);
    engine_cancel(e, a[0]);
    wait_end(e, b1);
    job_result r;
    engine_job_result(e, b1, &r);
    ck_assert_int_eq(r.end, JOB_FINISHED);
    wait_output(e, a[1]); /* a's own jobs in their order: a2, not a3 */
    ck_assert_int_eq(engine_job_wait(e, a[2], 0), 0);
    engine_stats_get(e, &st);
    ck_assert_int_eq(st.active, 1);
    ck_assert_int_eq(st.queued, 1);
    ck_assert_int_eq(st.clients, 1);
    engine_job_release(e, b1);
    cancel_release(e, a, 3);

    /* Two slots, each client runs one and queues one (a's first): when b's
     * running job leaves, b has fewer running jobs than a, so b's queued job
     * starts although a's came earlier. */
    gen_job *j[4] = {client_job("a", 5, LONG), client_job("b", 6, LONG), client_job("a", 7, LONG),
                     client_job("b", 8, LONG)};
    engine_free(e);
    cfg.max_active = 2;
    e = started(&cfg);
    submit_each(e, j, 4);
    engine_cancel(e, j[1]);
    wait_output(e, j[3]);
    ck_assert_int_eq(engine_job_wait(e, j[2], 0), 0);
    engine_stats_get(e, &st);
    ck_assert_int_eq(st.queued, 1); /* a's second */
    cancel_release(e, j, 4);
    engine_free(e);
}
END_TEST

START_TEST(client_share_and_all_or_none)
{
    engine_config cfg = {1, 2, 1, 8, 0, 1, 0, NULL, 2};
    engine *e = started(&cfg);
    gen_job *a[3] = {client_job("a", 1, LONG), client_job("a", 2, LONG), client_job("a", 3, LONG)};
    submit_each(e, a, 2);
    ck_assert_int_eq(engine_submit(e, a[2]), ENGINE_SHARE); /* a holds its 2 */
    engine_job_release(e, a[2]);
    /* b's two jobs fit its share but not the one queue place left: neither
     * is taken; one alone fits */
    gen_job *b[2] = {client_job("b", 4, LONG), client_job("b", 5, LONG)};
    ck_assert_int_eq(engine_submit_all(e, b, 2), ENGINE_FULL);
    engine_stats st;
    engine_stats_get(e, &st);
    ck_assert_int_eq(st.active + st.queued, 2);
    ck_assert_int_eq(engine_submit(e, b[0]), 0);
    engine_stats_get(e, &st);
    ck_assert_int_eq(st.queued, 2);
    ck_assert_uint_eq(st.share_rejected, 1);
    /* a job that ends gives its share back */
    engine_cancel(e, a[1]);
    a[2] = client_job("a", 6, LONG);
    ck_assert_int_eq(engine_submit(e, a[2]), 0);
    engine_job_release(e, b[1]);
    cancel_release(e, a, 3);
    cancel_release(e, b, 1);
    engine_free(e);
}
END_TEST

START_TEST(free_with_busy_workers)
{
    /* three workers, two single-stream batches: one worker is idle while
     * the others step when the engine stops; none may be left waiting */
    for (int round = 0; round < 20; round++) {
        engine_config cfg = {8, 8, 3, 1, 0, 1, 0, NULL, 0};
        engine *e = started(&cfg);
        gen_job *a = new_job(1, 100000000), *b = new_job(2, 100000000);
        ck_assert_int_eq(engine_submit(e, a), 0);
        ck_assert_int_eq(engine_submit(e, b), 0);
        usleep(5000);
        engine_shutdown(e);
        engine_job_release(e, a);
        engine_job_release(e, b);
        engine_free(e); /* hangs (test timeout) if a worker is stranded */
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("engine");
    TCase *core = ADD_CASE(s, "core", batched_equals_sample_run, streamed_reads_equal_the_text,
                           admission_queue_and_cancel, fair_queue_between_clients,
                           client_share_and_all_or_none, timeouts, free_with_busy_workers);
    tcase_add_checked_fixture(core, setup, teardown);
    tcase_set_timeout(core, 60);
    return run_suite(s);
}

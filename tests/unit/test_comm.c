/* Data parallelism over processes without MPI: ranks are threads here, the
 * transport is in-memory mailboxes. The collectives of include/charrnn/comm.h
 * give the bits of one process's left fold, trainers spread over ranks give
 * the bits of one trainer with as many shards, and the agreement checks name
 * the ranks that differ. */
#include "charrnn/comm.h"
#include "charrnn/optim.h"
#include "charrnn/trainer.h"
#include "dist_check.h"
#include "testutil.h"

#include <pthread.h>
#include <string.h>

#define MAXR 4

/* ---- an in-memory transport: one FIFO per ordered pair of ranks ---- */
typedef struct msg {
    struct msg *next;
    size_t n;
    char data[];
} msg;

typedef struct world {
    int size;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    msg *head[MAXR][MAXR], *tail[MAXR][MAXR]; /* [from][to] */
    const char *hosts[MAXR];
} world;

typedef struct endpoint {
    world *w;
    int rank;
} endpoint;

static int w_send(void *ctx, int to, const void *buf, size_t n)
{
    endpoint *e = ctx;
    msg *m = malloc(sizeof *m + n);
    ck_assert_ptr_nonnull(m);
    m->next = NULL, m->n = n;
    memcpy(m->data, buf, n);
    pthread_mutex_lock(&e->w->mu);
    if (e->w->tail[e->rank][to])
        e->w->tail[e->rank][to]->next = m;
    else
        e->w->head[e->rank][to] = m;
    e->w->tail[e->rank][to] = m;
    pthread_cond_broadcast(&e->w->cv);
    pthread_mutex_unlock(&e->w->mu);
    return 0;
}

static int w_recv(void *ctx, int from, void *buf, size_t n)
{
    endpoint *e = ctx;
    pthread_mutex_lock(&e->w->mu);
    while (!e->w->head[from][e->rank])
        pthread_cond_wait(&e->w->cv, &e->w->mu);
    msg *m = e->w->head[from][e->rank];
    if (!(e->w->head[from][e->rank] = m->next))
        e->w->tail[from][e->rank] = NULL;
    pthread_mutex_unlock(&e->w->mu);
    int rc = m->n == n ? 0 : -1; /* a size mismatch is a protocol error */
    memcpy(buf, m->data, m->n < n ? m->n : n);
    free(m);
    return rc;
}

static int w_bcast(void *ctx, int root, void *buf, size_t n)
{
    endpoint *e = ctx;
    if (e->rank != root)
        return w_recv(ctx, root, buf, n);
    for (int r = 0; r < e->w->size; r++)
        if (r != root && w_send(ctx, r, buf, n))
            return -1;
    return 0;
}

typedef struct rank_job {
    charrnn_comm comm;
    endpoint ep;
    void (*fn)(struct rank_job *);
    void *arg;
    int status;
    char err[CHARRNN_ERR_MAX];
} rank_job;

static void *rank_main(void *p)
{
    rank_job *j = p;
    j->fn(j);
    return NULL;
}

/* Runs fn on `size` ranks (threads) over one world; jobs[r].arg is set by the caller. */
static void run_world(int size, rank_job *jobs, void (*fn)(rank_job *))
{
    static const char *names[MAXR] = {"h0", "h1", "h2", "h3"};
    world w = {.size = size};
    pthread_mutex_init(&w.mu, NULL);
    pthread_cond_init(&w.cv, NULL);
    for (int r = 0; r < size; r++)
        w.hosts[r] = names[r];
    pthread_t th[MAXR];
    for (int r = 0; r < size; r++) {
        jobs[r].ep = (endpoint){&w, r};
        jobs[r].comm = (charrnn_comm){r, size, w.hosts, &jobs[r].ep, w_send, w_recv, w_bcast};
        jobs[r].fn = fn;
        ck_assert_int_eq(pthread_create(&th[r], NULL, rank_main, &jobs[r]), 0);
    }
    for (int r = 0; r < size; r++)
        pthread_join(th[r], NULL);
    for (int a = 0; a < size; a++)
        for (int b = 0; b < size; b++)
            ck_assert_msg(!w.head[a][b], "a message from %d to %d was never received", a, b);
    pthread_mutex_destroy(&w.mu);
    pthread_cond_destroy(&w.cv);
}

/* ---- the chain sum ---- */
#define NSUM ((size_t)600000) /* more than two chunks of the chain, and a remainder */
#define PARTS 7

static float *part_data(int k)
{
    float *p = malloc(NSUM * sizeof *p);
    charrnn_rng g;
    charrnn_rng_seed(&g, 100 + (uint64_t)k);
    /* Mixed magnitudes, so that another association changes bits. */
    for (size_t i = 0; i < NSUM; i++)
        p[i] = (charrnn_rng_uniform_f(&g) - 0.5f) * (float)(1 << (i % 20));
    return p;
}

typedef struct sum_arg {
    float *parts[PARTS];
    int first[MAXR + 1]; /* rank r holds parts [first[r], first[r+1]) */
    float *acc;
} sum_arg;

static void sum_rank(rank_job *j)
{
    sum_arg *a = (sum_arg *)j->arg;
    const int r = j->comm.rank, b = a->first[r], e = a->first[r + 1];
    float *acc = malloc(NSUM * sizeof *acc);
    const float *mine[PARTS];
    int n = 0;
    if (r == 0)
        memcpy(acc, a->parts[0], NSUM * sizeof *acc);
    else
        memset(acc, 0x7f, NSUM * sizeof *acc); /* garbage: must be overwritten */
    for (int k = r == 0 ? 1 : b; k < e; k++)
        mine[n++] = a->parts[k];
    j->status = charrnn_comm_chain_sum(&j->comm, acc, mine, n, NSUM);
    j->arg = acc; /* hand the result back */
}

START_TEST(chain_sum_is_the_left_fold)
{
    static const int layouts[][MAXR + 1] = {{0, 7},       {0, 3, 7},       {0, 1, 7},
                                            {0, 2, 4, 7}, {0, 1, 2, 3, 7}, {0, 2, 4, 6, 7}};
    static const int sizes[] = {1, 2, 2, 3, 4, 4};
    sum_arg a;
    for (int k = 0; k < PARTS; k++)
        a.parts[k] = part_data(k);
    float *want = malloc(NSUM * sizeof *want);
    memcpy(want, a.parts[0], NSUM * sizeof *want);
    for (int k = 1; k < PARTS; k++)
        for (size_t i = 0; i < NSUM; i++)
            want[i] += a.parts[k][i];
    for (size_t l = 0; l < sizeof sizes / sizeof *sizes; l++) {
        memcpy(a.first, layouts[l], sizeof a.first);
        rank_job jobs[MAXR] = {0};
        for (int r = 0; r < sizes[l]; r++)
            jobs[r].arg = &a;
        run_world(sizes[l], jobs, sum_rank);
        for (int r = 0; r < sizes[l]; r++) {
            ck_assert_int_eq(jobs[r].status, 0);
            ck_assert_msg(!memcmp(jobs[r].arg, want, NSUM * sizeof *want),
                          "layout %zu (%d ranks): rank %d's sum is not the left fold's bits", l,
                          sizes[l], r);
            free(jobs[r].arg);
        }
    }
    /* The check can fail: a pairwise sum differs from the left fold somewhere. */
    int differs = 0;
    for (size_t i = 0; i < NSUM && !differs; i++) {
        float pair = (a.parts[0][i] + a.parts[1][i]) + (a.parts[2][i] + a.parts[3][i]);
        for (int k = 4; k < PARTS; k++)
            pair += a.parts[k][i];
        differs = memcmp(&pair, &want[i], sizeof pair) != 0;
    }
    ck_assert_msg(differs, "the data cannot tell summation orders apart");
    for (int k = 0; k < PARTS; k++)
        free(a.parts[k]);
    free(want);
}
END_TEST

/* ---- allgather, any ---- */
static void gather_rank(rank_job *j)
{
    int mine[2] = {j->comm.rank * 10, j->comm.rank == 2}, all[2 * MAXR];
    j->status = charrnn_comm_allgather(&j->comm, mine, all, sizeof mine);
    for (int r = 0; r < j->comm.size && !j->status; r++)
        if (all[2 * r] != r * 10)
            j->status = 100 + r;
    int flag = mine[1];
    if (!j->status && charrnn_comm_any(&j->comm, &flag))
        j->status = -2;
    if (!j->status && flag != (j->comm.size > 2))
        j->status = -3;
}

START_TEST(allgather_and_any)
{
    for (int size = 1; size <= MAXR; size++) {
        rank_job jobs[MAXR] = {0};
        run_world(size, jobs, gather_rank);
        for (int r = 0; r < size; r++)
            ck_assert_msg(jobs[r].status == 0, "%d ranks: rank %d status %d", size, r,
                          jobs[r].status);
    }
}
END_TEST

/* ---- the agreement checks ---- */
static void params_rank(rank_job *j)
{
    float p[100];
    for (int i = 0; i < 100; i++)
        p[i] = (float)i;
    if (j->comm.rank == 1 || j->comm.rank == 3)
        p[57] = nextafterf(p[57], 100.0f); /* one bit */
    j->status = charrnn_dist_check_params(&j->comm, p, 100, 7, j->err, sizeof j->err);
}

/* Runs fn on a world of size ranks: every rank must end with status and the
 * message want (each names the same ranks). */
static void expect_every_rank(int size, void (*fn)(rank_job *), int status, const char *want)
{
    rank_job jobs[MAXR] = {0};
    run_world(size, jobs, fn);
    for (int r = 0; r < size; r++) {
        ck_assert_int_eq(jobs[r].status, status);
        ck_assert_str_eq(jobs[r].err, want);
    }
}

START_TEST(params_mismatch_names_the_ranks)
{
    expect_every_rank(4, params_rank, CHARRNN_EFORMAT,
                      "ranks 1 (h1), 3 (h3) hold other parameters after iteration 7 than rank "
                      "0 (h0)");
}
END_TEST

static void start_rank(rank_job *j)
{
    charrnn_vocab *v = letters_vocab(5);
    float p[10] = {0};
    const char *sha = j->comm.rank == 2 ? "bbbbbbbbbbbbbbbbbbbb" : "aaaaaaaaaaaaaaaaaaaa";
    j->status =
        charrnn_dist_check_start(&j->comm, sha, v, "x=1 y=2", p, 10, 1, j->err, sizeof j->err);
    charrnn_vocab_free(v);
}

START_TEST(start_mismatch_names_the_ranks)
{
    expect_every_rank(3, start_rank, CHARRNN_EINVAL,
                      "rank 2 (h2) read other training data than rank 0 (h0): "
                      "sha256 bbbbbbbbbbbb... vs aaaaaaaaaaaa...");
}
END_TEST

/* ---- trainers over ranks = one trainer with as many shards ---- */
#define TB 7 /* streams: uneven shards */
#define TT 5
#define STEPS 3

typedef struct train_arg {
    int threads; /* per rank */
    float *out;  /* rank 0: final parameters (num_params) */
    size_t nout;
    float loss[STEPS];
} train_arg;

static charrnn_model *tiny_model(void)
{
    charrnn_config cfg = {CHARRNN_CELL_LSTM, 6, 8, 2};
    charrnn_model *m = NULL;
    ck_assert_int_eq(charrnn_model_create(&cfg, letters_vocab(6), &m, NULL, 0), CHARRNN_OK);
    charrnn_rng g;
    charrnn_rng_seed(&g, 5);
    charrnn_model_init(m, &g);
    return m;
}

/* Runs STEPS steps with dropout; comm NULL = one process with `shards` shards. */
static void train_steps(const charrnn_comm *c, int shards, train_arg *a)
{
    charrnn_model *m = tiny_model();
    charrnn_optim_config oc = charrnn_optim_defaults(CHARRNN_OPT_ADAM);
    charrnn_trainer *tr = NULL;
    ck_assert_int_eq(charrnn_trainer_create(m, TB, TT, 0.4f, &oc, 9, &tr, NULL, 0), CHARRNN_OK);
    char err[CHARRNN_ERR_MAX];
    if (c)
        ck_assert_int_eq(charrnn_trainer_set_layout(tr, c, c->size * a->threads,
                                                    c->rank * a->threads, a->threads, err,
                                                    sizeof err),
                         CHARRNN_OK);
    else
        ck_assert_int_eq(charrnn_trainer_set_shards(tr, shards, err, sizeof err), CHARRNN_OK);
    uint16_t x[TB * TT], y[TB * TT];
    for (int s = 0; s < STEPS; s++) {
        for (int i = 0; i < TB * TT; i++)
            x[i] = (uint16_t)((i * 7 + s) % 6), y[i] = (uint16_t)((i * 5 + s + 1) % 6);
        a->loss[s] = charrnn_trainer_step(tr, x, y, 2e-2f, 5.0f);
    }
    if (!c || c->rank == 0) {
        a->nout = m->num_params;
        a->out = malloc(m->num_params * sizeof *a->out);
        memcpy(a->out, m->params, m->num_params * sizeof *a->out);
    }
    ck_assert_int_eq(charrnn_trainer_comm_failed(tr), 0);
    charrnn_trainer_free(tr);
    charrnn_model_free(m);
}

static void train_rank(rank_job *j)
{
    train_steps(&j->comm, 0, j->arg);
}

START_TEST(ranks_equal_one_process)
{
    static const int ranks[] = {2, 3, 2, 3};
    static const int threads[] = {1, 1, 2, 2};
    for (size_t l = 0; l < sizeof ranks / sizeof *ranks; l++) {
        const int total = ranks[l] * threads[l];
        train_arg one = {0}, per[MAXR] = {{0}};
        train_steps(NULL, total, &one);
        rank_job jobs[MAXR] = {0};
        for (int r = 0; r < ranks[l]; r++)
            per[r].threads = threads[l], jobs[r].arg = &per[r];
        run_world(ranks[l], jobs, train_rank);
        ck_assert_uint_eq(per[0].nout, one.nout);
        ck_assert_msg(!memcmp(per[0].out, one.out, one.nout * sizeof *one.out),
                      "%d ranks x %d threads: other parameters than 1 process x %d shards",
                      ranks[l], threads[l], total);
        for (int r = 0; r < ranks[l]; r++)
            ck_assert_msg(!memcmp(per[r].loss, one.loss, sizeof one.loss),
                          "%d ranks x %d threads: rank %d's losses differ", ranks[l], threads[l],
                          r);
        free(one.out), free(per[0].out);
    }
}
END_TEST

START_TEST(layout_errors)
{
    charrnn_model *m = tiny_model();
    charrnn_optim_config oc = charrnn_optim_defaults(CHARRNN_OPT_ADAM);
    charrnn_trainer *tr = NULL;
    ck_assert_int_eq(charrnn_trainer_create(m, TB, TT, 0.0f, &oc, 9, &tr, NULL, 0), CHARRNN_OK);
    charrnn_comm c = {0, 2, NULL, NULL, w_send, w_recv, w_bcast};
    char err[CHARRNN_ERR_MAX];
    ck_assert_int_eq(charrnn_trainer_set_layout(tr, &c, 8, 0, 4, err, sizeof err), CHARRNN_ERANGE);
    ck_assert_str_eq(err, "a batch of 7 streams cannot be split into 8 shards");
    ck_assert_int_eq(charrnn_trainer_set_layout(tr, &c, 4, 3, 2, err, sizeof err), CHARRNN_EINVAL);
    ck_assert_int_eq(charrnn_trainer_set_layout(tr, NULL, 4, 0, 2, err, sizeof err),
                     CHARRNN_EINVAL);
    ck_assert_int_eq(charrnn_trainer_set_layout(tr, &c, 4, 0, 9, err, sizeof err), CHARRNN_EINVAL);
    /* Still usable with its old layout. */
    uint16_t x[TB * TT] = {0}, y[TB * TT] = {0};
    ck_assert(isfinite(charrnn_trainer_step(tr, x, y, 1e-2f, 5.0f)));
    charrnn_trainer_free(tr);
    charrnn_model_free(m);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("comm");
    tcase_set_timeout(ADD_CASE(s, "collectives", chain_sum_is_the_left_fold, allgather_and_any),
                      120);
    ADD_CASE(s, "checks", params_mismatch_names_the_ranks, start_mismatch_names_the_ranks);
    tcase_set_timeout(ADD_CASE(s, "trainer", ranks_equal_one_process, layout_errors), 120);
    return run_suite(s);
}

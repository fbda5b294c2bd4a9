/* Check suite for the batched inference step (charrnn_infer_step): n streams
 * stepped together give exactly the bytes each gives stepped alone, for n
 * across the tile of 16 (1, 5, 16, 17, 40), any order, streams leaving the
 * batch as they finish, and shapes that exercise every blocking path of the
 * row kernel (hidden sizes with and without a tail of 16, row counts with
 * and without a remainder of 8, LSTM/GRU/RNN, 1-3 layers), in every build of
 * the kernel (AVX-512, AVX2, plain C) that this CPU runs, for f32, bf16 and
 * int8 weights; with a step's rows split across helper threads
 * (charrnn/rowsplit.h), every text the same bytes as without; and a step
 * refuses streams of another model. */
#include "testutil.h"

#include "charrnn/lowp.h"
#include "charrnn/model.h"
#include "charrnn/rng.h"
#include "charrnn/rowsplit.h"
#include "charrnn/sampler.h"
#include "charrnn/status.h"
#include "charrnn/vocab.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

enum { NS = 40, MAXTEXT = 2048 };

typedef struct {
    char text[MAXTEXT];
    size_t len;
} out;

/* When not NULL, steps go through charrnn_infer_step_split with it. */
static charrnn_rowsplit *split;

/* Stream i's request: mixed primes, lengths, temperatures, top_k/top_p, seeds. */
static charrnn_sample_params request(int i)
{
    static const char *primes[] = {NULL, "the ", "\xC3\xA9t\xC3\xA9 ", "WIZARDS",
                                   "q",  NULL,   "lazy dogs; "};
    static const float temps[] = {1.0f, 0.0f, 0.7f, 1.4f, 0.9f};
    charrnn_sample_params p = charrnn_sample_defaults();
    p.prime = primes[i % 7];
    p.prime_len = p.prime ? strlen(p.prime) : 0;
    p.length = 30 + (size_t)((i * 37) % 270);
    p.temperature = temps[i % 5];
    p.top_k = i % 4 == 1 ? 2 + i % 9 : 0;
    p.top_p = i % 3 == 2 ? 0.85f : 1.0f;
    p.seed = 1000003ull * (uint64_t)i + 17;
    return p;
}

typedef struct batch {
    const int *idx;
    out *o;
} batch;

/* After a step: stream k's character onto the text of request idx[k]. */
static void append(void *ctx, int k, charrnn_stream *s)
{
    batch *b = ctx;
    out *t = &b->o[b->idx[k]];
    char c[8];
    int len = charrnn_stream_emit(s, c);
    ck_assert_uint_lt(t->len + (size_t)len, MAXTEXT);
    memcpy(t->text + t->len, c, (size_t)len);
    t->len += (size_t)len;
}

/* Steps streams idx[0..n) together until all are done; finished streams
 * leave the batch (the rest keep their relative order). */
static void run_batch(const charrnn_model *m, const int *idx, int n, out *o)
{
    charrnn_sample_params ps[NS];
    for (int k = 0; k < n; k++) {
        ps[k] = request(idx[k]);
        o[idx[k]].len = 0;
    }
    step_together(m, ps, n, split, append, &(batch){idx, o});
}

static void check_model(charrnn_model *m, const char *what)
{
    static out alone[NS], together[NS];
    for (int i = 0; i < NS; i++)
        run_batch(m, &i, 1, alone);
    int idx[NS];
    static const int sizes[] = {1, 5, 16, 17, 40};
    for (size_t z = 0; z < sizeof sizes / sizeof sizes[0]; z++) {
        const int n = sizes[z];
        for (int order = 0; order < 2; order++) {
            /* Every stream once, in consecutive batches of n: forward, then
             * reversed (a stream sits at another position of another tile). */
            for (int i = 0; i < NS; i++)
                idx[i] = order ? NS - 1 - i : i;
            for (int k = 0; k < NS; k += n)
                run_batch(m, idx + k, NS - k < n ? NS - k : n, together);
            for (int i = 0; i < NS; i++)
                ck_assert_msg(together[i].len == alone[i].len &&
                                  memcmp(together[i].text, alone[i].text, alone[i].len) == 0,
                              "%s: stream %d differs in batches of %d (order %d)", what, i, n,
                              order);
        }
    }
    /* Every build of the kernel this CPU runs gives the same bytes as the
     * default one (batches of 17: full and partial tiles). */
    static const char *kernels[] = {"avx512", "avx2", "portable"};
    const char *def = charrnn_kernel_name();
    int tested = 0;
    for (size_t k = 0; k < sizeof kernels / sizeof *kernels; k++) {
        if (charrnn_kernel_select(kernels[k], NULL, 0) != CHARRNN_OK)
            continue; /* not built for this CPU family, or this CPU lacks it */
        tested++;
        for (int i = 0; i < NS; i++)
            idx[i] = i;
        for (int j = 0; j < NS; j += 17)
            run_batch(m, idx + j, NS - j < 17 ? NS - j : 17, together);
        for (int i = 0; i < NS; i++)
            ck_assert_msg(together[i].len == alone[i].len &&
                              memcmp(together[i].text, alone[i].text, alone[i].len) == 0,
                          "%s: stream %d differs with kernel %s (default %s)", what, i, kernels[k],
                          def);
    }
    ck_assert_int_eq(charrnn_kernel_select(def, NULL, 0), CHARRNN_OK);
#if defined(__x86_64__) && defined(__GNUC__)
    /* An x86-64 build has all three; this CPU runs at least avx2 and portable. */
    ck_assert_int_ge(tested, __builtin_cpu_supports("avx2") ? 2 : 1);
#else
    ck_assert_int_ge(tested, 1);
#endif
    charrnn_model_free(m);
}

/* The models every kernel must agree on, batched and alone: a row per shape
 * (45 = 2 x 16 + 13: the tail reaches into the second group of 8 lanes),
 * with f32 weights and, where the row says, bf16 and int8 ones too, which
 * give the same bits per file under every kernel. */
enum { WITH_BF16 = 1, WITH_INT8 = 2 };
static const struct {
    charrnn_cell cell;
    int hidden, layers;
    uint64_t seed;
    const char *what;
    int lowp; /* WITH_BF16 | WITH_INT8 */
} shapes[] = {
    {CHARRNN_CELL_LSTM, 32, 2, 1, "lstm 2x32", 0},
    {CHARRNN_CELL_LSTM, 100, 3, 2, "lstm 3x100", WITH_BF16 | WITH_INT8},
    {CHARRNN_CELL_GRU, 24, 2, 3, "gru 2x24", 0},
    {CHARRNN_CELL_RNN, 19, 1, 4, "rnn 1x19", WITH_BF16},
    {CHARRNN_CELL_LSTM, 8, 1, 5, "lstm 1x8", WITH_INT8},
    {CHARRNN_CELL_GRU, 45, 2, 7, "gru 2x45", WITH_BF16 | WITH_INT8},
};
#define NSHAPES ((int)(sizeof shapes / sizeof shapes[0]))

START_TEST(shape_batch_invariant) /* a loop test: _i is the row of shapes */
{
    static const struct {
        charrnn_dtype dt;
        int with;
    } dtypes[] = {
        {CHARRNN_DTYPE_F32, 0}, {CHARRNN_DTYPE_BF16, WITH_BF16}, {CHARRNN_DTYPE_INT8, WITH_INT8}};
    for (size_t d = 0; d < sizeof dtypes / sizeof dtypes[0]; d++) {
        if (dtypes[d].with && !(shapes[_i].lowp & dtypes[d].with))
            continue;
        charrnn_model *m =
            chaotic_model(shapes[_i].cell, shapes[_i].hidden, shapes[_i].layers, shapes[_i].seed);
        char what[64];
        snprintf(what, sizeof what, "%s %s", charrnn_dtype_name(dtypes[d].dt), shapes[_i].what);
        check_model(dtypes[d].with ? reduced_model(m, dtypes[d].dt) : m, what);
    }
}
END_TEST

/* Texts with a step's rows split across two helpers and the stepping thread
 * are the bytes of the texts without (each row's dot product is computed as
 * it always is): for each dtype, alone and in batches. 136 = 8 x 17: blocks
 * of 64 rows end inside the kernel's groups of 8 and the rows have a tail. */
static void check_split(charrnn_dtype dt, int hidden, int layers)
{
    static out plain[NS], shared[NS];
    charrnn_model *m = chaotic_model(CHARRNN_CELL_LSTM, hidden, layers, 9);
    if (dt != CHARRNN_DTYPE_F32)
        m = reduced_model(m, dt);
    int idx[NS];
    for (int i = 0; i < NS; i++)
        idx[i] = i;
    for (int i = 0; i < NS; i++)
        run_batch(m, &i, 1, plain);
    split_helpers h;
    split_helpers_start(&h);
    split = h.rs;
    for (int i = 0; i < NS; i++)
        run_batch(m, &i, 1, shared);
    for (int i = 0; i < NS; i++)
        ck_assert_msg(shared[i].len == plain[i].len &&
                          memcmp(shared[i].text, plain[i].text, plain[i].len) == 0,
                      "%s: stream %d differs with split rows", charrnn_dtype_name(dt), i);
    for (int k = 0; k < NS; k += 17)
        run_batch(m, idx + k, NS - k < 17 ? NS - k : 17, shared);
    split = NULL;
    split_helpers_stop(&h);
    for (int i = 0; i < NS; i++)
        ck_assert_msg(shared[i].len == plain[i].len &&
                          memcmp(shared[i].text, plain[i].text, plain[i].len) == 0,
                      "%s: stream %d differs with split rows in batches of 17",
                      charrnn_dtype_name(dt), i);
    charrnn_model_free(m);
}

START_TEST(split_rows)
{
    check_split(CHARRNN_DTYPE_F32, 136, 2);
    check_split(CHARRNN_DTYPE_BF16, 136, 2);
    check_split(CHARRNN_DTYPE_INT8, 136, 3);
}
END_TEST

/* A batch holding the same request several times gives it the same text in
 * every slot, including slots in different tiles. */
START_TEST(duplicates_in_one_batch)
{
    charrnn_model *m = chaotic_model(CHARRNN_CELL_LSTM, 48, 2, 6);
    static out o[NS];
    int idx[NS];
    for (int i = 0; i < NS; i++)
        idx[i] = i;
    run_batch(m, idx, 1, o); /* o[0]: request 0 alone */
    out want = o[0];
    charrnn_stream *s[33];
    char err[CHARRNN_ERR_MAX];
    charrnn_sample_params p = request(0);
    static out got[33];
    for (int k = 0; k < 33; k++) {
        ck_assert_int_eq(charrnn_stream_create(m, &p, &s[k], err, sizeof err), CHARRNN_OK);
        got[k].len = 0;
    }
    while (!charrnn_stream_done(s[0])) {
        ck_assert_int_eq(charrnn_infer_step(m, 33, s), CHARRNN_OK);
        for (int k = 0; k < 33; k++)
            got[k].len += (size_t)charrnn_stream_emit(s[k], got[k].text + got[k].len);
    }
    for (int k = 0; k < 33; k++) {
        ck_assert_msg(got[k].len == want.len && memcmp(got[k].text, want.text, want.len) == 0,
                      "slot %d differs", k);
        charrnn_stream_free(s[k]);
    }
    charrnn_model_free(m);
}
END_TEST

static int count_chunks(void *ctx, const char *bytes, size_t len)
{
    (void)bytes, (void)len;
    ++*(int *)ctx;
    return 0;
}

/* A step runs the model it is given: a stream created from another model
 * (same shapes, other weights) is refused with CHARRNN_EINVAL and no stream
 * of the call moves; the stream then generates exactly its text. */
START_TEST(streams_of_another_model)
{
    charrnn_model *a = chaotic_model(CHARRNN_CELL_GRU, 24, 2, 8);
    charrnn_model *b = chaotic_model(CHARRNN_CELL_GRU, 24, 2, 9);
    static out want[NS];
    int idx[1] = {3};
    run_batch(a, idx, 1, want);
    char err[CHARRNN_ERR_MAX];
    charrnn_sample_params p = request(3);
    charrnn_stream *s[2];
    ck_assert_int_eq(charrnn_stream_create(a, &p, &s[0], err, sizeof err), CHARRNN_OK);
    ck_assert_int_eq(charrnn_stream_create(b, &p, &s[1], err, sizeof err), CHARRNN_OK);
    ck_assert_int_eq(charrnn_infer_step(a, 2, s), CHARRNN_EINVAL);
    ck_assert_int_eq(charrnn_infer_step(b, 2, s), CHARRNN_EINVAL);
    int chunks = 0;
    ck_assert_int_eq(charrnn_sample_run(s[1], a, count_chunks, &chunks), CHARRNN_EINVAL);
    ck_assert_int_eq(chunks, 0);
    static out got;
    got.len = 0;
    while (!charrnn_stream_done(s[0])) {
        ck_assert_int_eq(charrnn_infer_step(a, 1, &s[0]), CHARRNN_OK);
        got.len += (size_t)charrnn_stream_emit(s[0], got.text + got.len);
    }
    ck_assert_msg(got.len == want[3].len && memcmp(got.text, want[3].text, got.len) == 0,
                  "a refused step moved the stream");
    ck_assert_int_eq(charrnn_sample_run(s[1], b, count_chunks, &chunks), CHARRNN_OK);
    ck_assert_int_gt(chunks, 0);
    charrnn_stream_free(s[0]), charrnn_stream_free(s[1]);
    charrnn_model_free(a), charrnn_model_free(b);
}
END_TEST

START_TEST(kernel_select_errors)
{
    char err[CHARRNN_ERR_MAX];
    ck_assert_int_eq(charrnn_kernel_select("avx1024", err, sizeof err), CHARRNN_EINVAL);
    ck_assert_msg(strstr(err, "unknown inference kernel 'avx1024' (auto, ") != NULL, "%s", err);
    ck_assert_msg(strstr(err, "portable") != NULL, "%s", err);
    ck_assert_int_eq(charrnn_kernel_select("portable", err, sizeof err), CHARRNN_OK);
    ck_assert_str_eq(charrnn_kernel_name(), "portable");
    ck_assert_int_eq(charrnn_kernel_select("auto", err, sizeof err), CHARRNN_OK);
    const char *best = charrnn_kernel_name();
    ck_assert_int_eq(charrnn_kernel_select(NULL, err, sizeof err), CHARRNN_OK);
    ck_assert_str_eq(charrnn_kernel_name(), best);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("infer_step");
    TCase *tc = ADD_CASE(s, "batch_invariance", duplicates_in_one_batch, streams_of_another_model,
                         kernel_select_errors, split_rows);
    tcase_add_loop_test(tc, shape_batch_invariant, 0, NSHAPES);
    tcase_set_timeout(tc, 300);
    return run_suite(s);
}

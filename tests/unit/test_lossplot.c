/* The loss plot's history: bounded by merging, exact averages, and a JSON
 * round trip that a resumed run restores (validated: it comes from a file). */
#include "testutil.h"

#include <cjson/cJSON.h>
#include <string.h>
#include <unistd.h>

/* Parses p's history; checks every train point averages the raw losses
 * loss(i) = i of the iterations it covers (end - stride, end]. */
static void check_train_points(const charrnn_lossplot *p, int want_stride, int max_points)
{
    char *h = charrnn_lossplot_history(p);
    ck_assert_ptr_nonnull(h);
    cJSON *j = cJSON_Parse(h);
    ck_assert_ptr_nonnull(j);
    const cJSON *tr = cJSON_GetObjectItem(j, "train");
    ck_assert_int_eq(cJSON_GetObjectItem(tr, "stride")->valueint, want_stride);
    const cJSON *pts = cJSON_GetObjectItem(tr, "points");
    ck_assert_int_le(cJSON_GetArraySize(pts), max_points);
    ck_assert_int_gt(cJSON_GetArraySize(pts), max_points / 2);
    long prev = 0;
    const cJSON *pt;
    cJSON_ArrayForEach(pt, pts)
    {
        long end = (long)cJSON_GetArrayItem(pt, 0)->valuedouble;
        double loss = cJSON_GetArrayItem(pt, 1)->valuedouble;
        ck_assert_int_eq(end - prev, want_stride); /* consecutive, no gap or overlap */
        ck_assert_double_eq_tol(loss, (double)end - (want_stride - 1) / 2.0, 1e-3);
        prev = end;
    }
    cJSON_Delete(j);
    free(h);
}

START_TEST(history_is_bounded_and_averages_exactly)
{
    charrnn_lossplot *p = charrnn_lossplot_create();
    ck_assert_ptr_nonnull(p);
    for (long i = 1; i <= 2048; i++)
        charrnn_lossplot_add_train(p, i, (float)i);
    check_train_points(p, 1, 2048);
    for (long i = 2049; i <= 5000; i++) /* merged twice: stride 4 */
        charrnn_lossplot_add_train(p, i, (float)i);
    check_train_points(p, 4, 2048);
    /* A NaN is skipped: the next point still averages 5001..5004. */
    charrnn_lossplot_add_train(p, 5001, NAN);
    for (long i = 5001; i <= 5004; i++)
        charrnn_lossplot_add_train(p, i, (float)i);
    check_train_points(p, 4, 2048);
    charrnn_lossplot_free(p);
}
END_TEST

START_TEST(history_round_trip)
{
    charrnn_lossplot *a = charrnn_lossplot_create(), *b = charrnn_lossplot_create();
    for (long i = 1; i <= 3000; i++) {
        charrnn_lossplot_add_train(a, i, 4.0f / (float)i + 0.001f * (float)(i % 7));
        if (i % 100 == 0)
            charrnn_lossplot_add_val(a, i, 3.0f / (float)i);
        if (i % 100 == 0)
            charrnn_lossplot_add_stream(a, i, 3.5f / (float)i);
    }
    char *h = charrnn_lossplot_history(a);
    ck_assert_ptr_nonnull(strstr(h, "\"stream\":{\"stride\":1,\"points\":[[100,"));
    ck_assert_int_eq(charrnn_lossplot_restore(b, h, 3000), CHARRNN_OK);
    char *h2 = charrnn_lossplot_history(b);
    ck_assert_msg(!strcmp(h, h2), "the restored history differs");
    /* The restored plot keeps growing like the original. */
    for (long i = 3001; i <= 3100; i++) {
        charrnn_lossplot_add_train(a, i, 1.0f), charrnn_lossplot_add_train(b, i, 1.0f);
    }
    free(h), free(h2);
    h = charrnn_lossplot_history(a), h2 = charrnn_lossplot_history(b);
    ck_assert_msg(!strcmp(h, h2), "the restored history differs");
    char path[] = "/tmp/charrnn-lossplot-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    ck_assert_int_eq(charrnn_lossplot_write(b, path, "t<1>", NULL, 0), CHARRNN_OK);
    FILE *f = fopen(path, "r");
    char buf[256] = {0};
    ck_assert_uint_gt(fread(buf, 1, sizeof buf - 1, f), 0);
    fclose(f);
    unlink(path);
    ck_assert_ptr_nonnull(strstr(buf, "<svg"));
    free(h), free(h2);
    charrnn_lossplot_free(a), charrnn_lossplot_free(b);
}
END_TEST

/* Saved and restored between points (values pending) after merges, a plot
 * continues exactly like one that never stopped. */
START_TEST(restore_mid_stride_continues_exactly)
{
    charrnn_lossplot *straight = charrnn_lossplot_create(), *first = charrnn_lossplot_create();
    charrnn_lossplot *resumed = charrnn_lossplot_create();
    for (long i = 1; i <= 9000; i++) {
        float loss = 3.0f - (float)i * 1e-4f + 0.01f * (float)(i % 3);
        charrnn_lossplot_add_train(straight, i, loss);
        charrnn_lossplot_add_train(i <= 4098 ? first : resumed, i, loss);
        if (i % 7 == 0) {
            charrnn_lossplot_add_val(straight, i, loss);
            charrnn_lossplot_add_val(i <= 4098 ? first : resumed, i, loss);
        }
        if (i == 4098) {
            char *h = charrnn_lossplot_history(first);
            /* merged twice (stride 4), with 4097 and 4098 pending */
            cJSON *j = cJSON_Parse(h), *tr = cJSON_GetObjectItem(j, "train");
            ck_assert_int_eq(cJSON_GetObjectItem(tr, "stride")->valueint, 4);
            ck_assert_int_eq(cJSON_GetArrayItem(cJSON_GetObjectItem(tr, "pending"), 1)->valueint,
                             2);
            cJSON_Delete(j);
            ck_assert_int_eq(charrnn_lossplot_restore(resumed, h, 4098), CHARRNN_OK);
            free(h);
        }
    }
    char *a = charrnn_lossplot_history(straight), *b = charrnn_lossplot_history(resumed);
    ck_assert_msg(!strcmp(a, b), "the resumed history differs from the straight one");
    free(a), free(b);
    charrnn_lossplot_free(straight), charrnn_lossplot_free(first), charrnn_lossplot_free(resumed);
}
END_TEST

START_TEST(restore_rejects_bad_history)
{
#define EMPTY "{\"stride\":1,\"points\":[],\"pending\":[0,0]}"
#define WITH(train) "{\"train\":" train ",\"val\":" EMPTY "}"
#define PTS(points) "{\"stride\":1,\"points\":[" points "],\"pending\":[0,0]}"
    static const char *bad[] = {
        "",
        "not json",
        "[]",
        "{\"train\":" EMPTY "}", /* no val */
        WITH("{\"stride\":0,\"points\":[],\"pending\":[0,0]}"),
        WITH("{\"stride\":1.5,\"points\":[],\"pending\":[0,0]}"),
        WITH("{\"stride\":1,\"points\":[]}"),                   /* no pending */
        WITH("{\"stride\":4,\"points\":[],\"pending\":[3,4]}"), /* pending >= stride */
        WITH("{\"stride\":4,\"points\":[],\"pending\":[3,1.5]}"),
        WITH("{\"stride\":4,\"points\":[],\"pending\":[-1,1]}"),
        WITH(PTS("[2,1],[1,1]")),   /* descending */
        WITH(PTS("[1,1],[1,1]")),   /* repeated */
        WITH(PTS("[0,1]")),         /* before the first iteration */
        WITH(PTS("[1,1],[101,1]")), /* beyond upto */
        WITH(PTS("[1.5,1]")),
        WITH(PTS("[-1,1]")),
        WITH(PTS("[1,1e999]")), /* inf */
        WITH(PTS("[1,1e39]")),  /* finite double, inf as a float */
        WITH(PTS("[1,-0.5]")),  /* a loss is never negative */
        WITH(PTS("[1,\"x\"]")),
        WITH(PTS("[1]")),
        WITH(PTS("1,2")),
        "{\"train\":" EMPTY ",\"val\":" PTS("[7,1,2]") "}",
        "{\"train\":" EMPTY ",\"val\":" EMPTY ",\"stream\":" PTS("[1,-1]") "}",
        "{\"train\":" EMPTY ",\"val\":" EMPTY ",\"stream\":[]}",
    };
    /* The same frame with good contents is accepted (the list above tests one flaw each),
     * with a one-stream series and without (histories from before it was measured). */
    charrnn_lossplot *good = charrnn_lossplot_create();
    ck_assert_int_eq(charrnn_lossplot_restore(good, WITH(PTS("[1,1],[100,0]")), 100), CHARRNN_OK);
    ck_assert_int_eq(
        charrnn_lossplot_restore(
            good, "{\"train\":" EMPTY ",\"val\":" EMPTY ",\"stream\":" PTS("[50,2]") "}", 100),
        CHARRNN_OK);
    charrnn_lossplot_free(good);
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        charrnn_lossplot *p = charrnn_lossplot_create();
        charrnn_lossplot_add_train(p, 1, 2.0f);
        ck_assert_msg(charrnn_lossplot_restore(p, bad[k], 100) == CHARRNN_EFORMAT, "accepted %s",
                      bad[k]);
        char *h = charrnn_lossplot_history(p); /* left empty */
        ck_assert_str_eq(h, "{\"train\":" EMPTY ",\"val\":" EMPTY ",\"stream\":" EMPTY "}");
        free(h);
        charrnn_lossplot_free(p);
    }
    /* More points than the history ever holds. */
    size_t cap = 128 + 2049 * 16;
    char *big = malloc(cap), *w = big;
    w += sprintf(w, "{\"train\":{\"stride\":1,\"points\":[");
    for (int i = 1; i <= 2049; i++)
        w += sprintf(w, "%s[%d,1]", i > 1 ? "," : "", i);
    sprintf(w, "],\"pending\":[0,0]},\"val\":" EMPTY "}");
    charrnn_lossplot *p = charrnn_lossplot_create();
    ck_assert_int_eq(charrnn_lossplot_restore(p, big, 5000), CHARRNN_EFORMAT);
    charrnn_lossplot_free(p);
    free(big);
}
END_TEST

int main(void)
{
    RUN_TESTS("lossplot", history_is_bounded_and_averages_exactly, history_round_trip,
              restore_mid_stride_continues_exactly, restore_rejects_bad_history);
}

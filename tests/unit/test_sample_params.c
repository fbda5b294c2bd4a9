/* Check suite of the sampling parameters' table and validation
 * (model/core/sample_params.c): each bad value is reported as its field, by enum,
 * whatever the message says; the limits are inclusive or open as the API
 * documents; charrnn_stream_create refuses exactly what the check refuses. */
#include "testutil.h"

#include <float.h>
#include <stdlib.h>
#include <string.h>

static charrnn_sample_params good(void)
{
    charrnn_sample_params p = charrnn_sample_defaults();
    p.prime = "AB";
    p.prime_len = 2;
    p.length = 5;
    return p;
}

/* A 4-letter model (A..D) of the given cell, untrained: only validation matters. */
static charrnn_model *tiny_model(charrnn_cell cell)
{
    charrnn_config cfg = {cell, 4, 8, 1};
    charrnn_model *m = NULL;
    char err[CHARRNN_ERR_MAX];
    ck_assert_int_eq(charrnn_model_create(&cfg, letters_vocab(4), &m, err, sizeof err), CHARRNN_OK);
    return m;
}

/* The API names: charrnn-serve sends them as an error's "param". */
START_TEST(field_names)
{
    static const struct {
        charrnn_sample_field f;
        const char *name;
    } want[] = {
        {CHARRNN_SAMPLE_NONE, ""},         {CHARRNN_SAMPLE_PRIME, "prime"},
        {CHARRNN_SAMPLE_LENGTH, "length"}, {CHARRNN_SAMPLE_TEMPERATURE, "temperature"},
        {CHARRNN_SAMPLE_SEED, "seed"},     {CHARRNN_SAMPLE_TOP_K, "top_k"},
        {CHARRNN_SAMPLE_TOP_P, "top_p"},   {CHARRNN_SAMPLE_STOP, "stop"},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        ck_assert_str_eq(charrnn_sample_field_name(want[i].f), want[i].name);
    ck_assert_str_eq(charrnn_sample_field_name((charrnn_sample_field)99), "");
    ck_assert_ptr_null(charrnn_sample_limit_of(CHARRNN_SAMPLE_PRIME));
    ck_assert_ptr_null(charrnn_sample_limit_of(CHARRNN_SAMPLE_SEED));
    ck_assert_ptr_nonnull(charrnn_sample_limit_of(CHARRNN_SAMPLE_TOP_P));
}
END_TEST

/* One bad value at a time: the check names its field; a stream is refused. */
START_TEST(each_bad_field_is_named)
{
    static char long_stop[CHARRNN_MAX_STOP_LEN + 2];
    memset(long_stop, 'x', CHARRNN_MAX_STOP_LEN + 1);
    static const char *empty_stop[] = {""};
    static const char *long_stops[] = {"ok", long_stop};
    static const char *null_stop[] = {NULL};
    static const char *many_stops[CHARRNN_MAX_STOP + 1];
    for (int i = 0; i <= CHARRNN_MAX_STOP; i++)
        many_stops[i] = "s";
    charrnn_model *m = tiny_model(CHARRNN_CELL_GRU);
    char err[CHARRNN_ERR_MAX];
    for (int c = 0; c < 13; c++) {
        charrnn_sample_params p = good();
        charrnn_sample_field want = CHARRNN_SAMPLE_NONE;
        switch (c) {
        case 0: p.length = 0, want = CHARRNN_SAMPLE_LENGTH; break;
        case 1: p.temperature = -0.001f, want = CHARRNN_SAMPLE_TEMPERATURE; break;
        case 2: p.temperature = nextafterf(10.0f, 11.0f), want = CHARRNN_SAMPLE_TEMPERATURE; break;
        case 3: p.temperature = NAN, want = CHARRNN_SAMPLE_TEMPERATURE; break;
        case 4: p.top_k = -1, want = CHARRNN_SAMPLE_TOP_K; break;
        case 5: p.top_k = CHARRNN_MAX_VOCAB + 1, want = CHARRNN_SAMPLE_TOP_K; break;
        case 6: p.top_p = 0.0f, want = CHARRNN_SAMPLE_TOP_P; break;
        case 7: p.top_p = nextafterf(1.0f, 2.0f), want = CHARRNN_SAMPLE_TOP_P; break;
        case 8: p.stop = empty_stop, p.n_stop = 1, want = CHARRNN_SAMPLE_STOP; break;
        case 9: p.stop = long_stops, p.n_stop = 2, want = CHARRNN_SAMPLE_STOP; break;
        case 10: p.stop = null_stop, p.n_stop = 1, want = CHARRNN_SAMPLE_STOP; break;
        case 11:
            p.stop = many_stops, p.n_stop = CHARRNN_MAX_STOP + 1, want = CHARRNN_SAMPLE_STOP;
            break;
        case 12: /* several bad: the first in the table's order */
            p.top_p = 2.0f, p.temperature = 20.0f, want = CHARRNN_SAMPLE_TEMPERATURE;
            break;
        }
        charrnn_sample_field got = CHARRNN_SAMPLE_PRIME;
        ck_assert_int_eq(charrnn_sample_params_check(&p, &got, err, sizeof err), CHARRNN_ERANGE);
        ck_assert_msg(got == want, "case %d: field %s, expected %s (%s)", c,
                      charrnn_sample_field_name(got), charrnn_sample_field_name(want), err);
        ck_assert_msg(
            !strncmp(err, charrnn_sample_field_name(want), strlen(charrnn_sample_field_name(want))),
            "case %d: %s", c, err);
        ck_assert_int_eq(charrnn_sample_params_check(&p, NULL, NULL, 0), CHARRNN_ERANGE);
        charrnn_stream *s = (charrnn_stream *)&got;
        ck_assert_int_eq(charrnn_stream_create(m, &p, &s, err, sizeof err), CHARRNN_ERANGE);
        ck_assert_ptr_null(s);
    }
    charrnn_model_free(m);
}
END_TEST

/* The edges of every range, accepted, by the check and by a stream. */
START_TEST(limits_are_inclusive_where_documented)
{
    static char max_stop[CHARRNN_MAX_STOP_LEN + 1];
    memset(max_stop, 'A', CHARRNN_MAX_STOP_LEN);
    static const char *stops[CHARRNN_MAX_STOP];
    for (int i = 0; i < CHARRNN_MAX_STOP; i++)
        stops[i] = i ? "B" : max_stop;
    charrnn_model *m = tiny_model(CHARRNN_CELL_LSTM);
    char err[CHARRNN_ERR_MAX];
    for (int c = 0; c < 9; c++) {
        charrnn_sample_params p = good();
        switch (c) {
        case 0: p.length = 1; break;
        case 1: p.temperature = 0.0f; break;
        case 2: p.temperature = 10.0f; break;
        case 3: p.top_k = CHARRNN_MAX_VOCAB; break;
        case 4: p.top_p = FLT_MIN; break;
        case 5: p.top_p = 1.0f; break;
        case 6: p.stop = stops, p.n_stop = CHARRNN_MAX_STOP; break;
        case 7: p.length = (size_t)1 << 40; break; /* no upper bound in the library */
        case 8: p.prime = NULL, p.prime_len = 0; break;
        }
        charrnn_sample_field got = CHARRNN_SAMPLE_TOP_P;
        ck_assert_msg(charrnn_sample_params_check(&p, &got, err, sizeof err) == CHARRNN_OK,
                      "case %d: %s", c, err);
        ck_assert_int_eq(got, CHARRNN_SAMPLE_NONE);
        charrnn_stream *s = NULL;
        ck_assert_msg(charrnn_stream_create(m, &p, &s, err, sizeof err) == CHARRNN_OK,
                      "case %d: %s", c, err);
        charrnn_stream_free(s);
    }
    charrnn_model_free(m);
}
END_TEST

/* Numbers as a front end read them (doubles, before conversion). */
START_TEST(numbers)
{
    char err[CHARRNN_ERR_MAX];
    ck_assert_int_eq(charrnn_sample_check_number(CHARRNN_SAMPLE_TEMPERATURE, 10.0, err, sizeof err),
                     CHARRNN_OK);
    /* Would round to 10.0f: refused before the conversion. */
    ck_assert_int_eq(
        charrnn_sample_check_number(CHARRNN_SAMPLE_TEMPERATURE, 10.0000001, err, sizeof err),
        CHARRNN_ERANGE);
    ck_assert_str_eq(err, "10.0000001 is out of range [0, 10]");
    ck_assert_int_eq(charrnn_sample_check_number(CHARRNN_SAMPLE_TOP_P, 0.0, err, sizeof err),
                     CHARRNN_ERANGE);
    ck_assert_str_eq(err, "0 is out of range (0, 1]");
    ck_assert_int_eq(charrnn_sample_check_number(CHARRNN_SAMPLE_TOP_K, 1.5, err, sizeof err),
                     CHARRNN_ERANGE);
    ck_assert_str_eq(err, "1.5 is not an integer");
    ck_assert_int_eq(charrnn_sample_check_number(CHARRNN_SAMPLE_TOP_K, 1e300, err, sizeof err),
                     CHARRNN_ERANGE);
    ck_assert_int_eq(charrnn_sample_check_number(CHARRNN_SAMPLE_LENGTH, 0, err, sizeof err),
                     CHARRNN_ERANGE);
    ck_assert_str_eq(err, "0 is out of range (at least 1)");
    ck_assert_int_eq(charrnn_sample_check_number(CHARRNN_SAMPLE_LENGTH, INFINITY, err, sizeof err),
                     CHARRNN_ERANGE);
    ck_assert_int_eq(charrnn_sample_check_number(CHARRNN_SAMPLE_STOP, 17, err, sizeof err),
                     CHARRNN_ERANGE);
    ck_assert_str_eq(err, "17 strings is out of range 0..16");
    ck_assert_int_eq(charrnn_sample_check_number(CHARRNN_SAMPLE_SEED, 1, err, sizeof err),
                     CHARRNN_EINVAL);
    ck_assert_int_eq(charrnn_sample_check_stop("", err, sizeof err), CHARRNN_ERANGE);
    ck_assert_str_eq(err, "a string of 0 bytes is out of range 1..256");
    ck_assert_int_eq(charrnn_sample_check_stop(NULL, NULL, 0), CHARRNN_ERANGE);
    /* Only valid UTF-8: a stray continuation byte would match inside a
     * character of the text and cut it. */
    ck_assert_int_eq(charrnn_sample_check_stop("e\x94", err, sizeof err), CHARRNN_EINVAL);
    ck_assert_str_eq(err, "a string that is not valid UTF-8 (byte 2 of 2, 0x94)");
    static const char *const bad[] = {"\xff", "\xe2\x80", "\xc0\xaf", "\xed\xa0\x80",
                                      "ok\xf4\x90\x80\x80"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_int_eq(charrnn_sample_check_stop(bad[i], NULL, 0), CHARRNN_EINVAL);
    ck_assert_int_eq(charrnn_sample_check_stop("\xe2\x80\x94 \xf0\x9f\x99\x82", err, sizeof err),
                     CHARRNN_OK);
}
END_TEST

/* logit_bias ids: distinct and below CHARRNN_MAX_VOCAB, found in one pass.
 * charrnn-serve checks the parameters of every stream of a request (up to 64)
 * and a body may hold every id: 64 checks of 65536 ids plus a repeat finish
 * at once, where comparing each id with all before it took minutes (Check's
 * timeout fails the test). */
START_TEST(logit_bias_ids_are_checked_in_linear_time)
{
    const size_t n = CHARRNN_MAX_VOCAB + 1;
    int *id = malloc(n * sizeof *id);
    float *val = calloc(n, sizeof *val);
    ck_assert(id && val);
    for (size_t i = 0; i < n; i++)
        id[i] = (int)((i * 40503u) % CHARRNN_MAX_VOCAB); /* every id once, then id[0] again */
    charrnn_sample_params p = good();
    p.bias_id = id, p.bias_val = val;
    char err[CHARRNN_ERR_MAX];
    charrnn_sample_field f = CHARRNN_SAMPLE_NONE;
    for (int r = 0; r < 64; r++) {
        p.n_bias = n - 1;
        ck_assert_int_eq(charrnn_sample_params_check(&p, &f, err, sizeof err), CHARRNN_OK);
        p.n_bias = n;
        ck_assert_int_eq(charrnn_sample_params_check(&p, &f, err, sizeof err), CHARRNN_ERANGE);
        ck_assert_int_eq(f, CHARRNN_SAMPLE_LOGIT_BIAS);
        ck_assert_str_eq(err, "logit_bias: character id 0 appears twice");
    }
    int far[2] = {3, CHARRNN_MAX_VOCAB};
    p.bias_id = far, p.n_bias = 2;
    ck_assert_int_eq(charrnn_sample_params_check(&p, &f, err, sizeof err), CHARRNN_ERANGE);
    ck_assert_int_eq(f, CHARRNN_SAMPLE_LOGIT_BIAS);
    free(id), free(val);
}
END_TEST

int main(void)
{
    RUN_TESTS("sample_params", field_names, each_bad_field_is_named,
              limits_are_inclusive_where_documented, numbers,
              logit_bias_ids_are_checked_in_linear_time);
}

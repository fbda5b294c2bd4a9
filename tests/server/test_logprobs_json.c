/* Check suite of the log-probability JSON (server/logprobs_json.c): every
 * number /sample, /score and /v1/completions write for a log-probability
 * goes through json_float, which writes null where a float is not a number
 * JSON can hold (NaN, +-Inf: printf's "-nan" and "inf" are not JSON). */
#include "check_run.h"
#include "logprobs_json.h"

#include <check.h>
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static void expect_json(cJSON *item, const char *want)
{
    ck_assert_ptr_nonnull(item);
    char *s = cJSON_PrintUnformatted(item);
    ck_assert_str_eq(s, want);
    free(s);
    cJSON_Delete(item);
}

START_TEST(json_float_writes_null_for_non_finite)
{
    expect_json(json_float(NAN), "null");
    expect_json(json_float(-NAN), "null");
    expect_json(json_float(INFINITY), "null");
    expect_json(json_float(-INFINITY), "null");
    /* Finite floats keep 9 significant digits: they read back exactly. */
    expect_json(json_float(-0.25f), "-0.25");
    expect_json(json_float(-1.17549435e-38f), "-1.17549435e-38");
    expect_json(json_float(-3.40282347e+38f), "-3.40282347e+38");
}
END_TEST

START_TEST(records_with_non_finite_logprobs_stay_json)
{
    charrnn_vocab *v;
    ck_assert_int_eq(charrnn_vocab_build((const uint8_t *)"ab", 2, &v, NULL, 0), 0);
    const job_rec rec[3] = {{0, 0, 1, NAN}, {1, 0, 1, -INFINITY}, {0, 0, 1, -0.5f}};
    const int top_id[6] = {0, 1, 1, 0, 0, 1};
    const float top_lp[6] = {NAN, NAN, 0.0f, -INFINITY, -0.5f, -1.0f};
    cJSON *arr = logprobs_native(v, rec, top_id, top_lp, 2, 3);
    char *s = cJSON_PrintUnformatted(arr);
    cJSON *back = cJSON_Parse(s); /* valid JSON */
    ck_assert_msg(back != NULL, "%s", s);
    ck_assert_str_eq(s,
                     "[{\"char\":\"a\",\"logprob\":null,\"top\":[{\"char\":\"a\",\"logprob\":null},"
                     "{\"char\":\"b\",\"logprob\":null}]},"
                     "{\"char\":\"b\",\"logprob\":null,\"top\":[{\"char\":\"b\",\"logprob\":0},"
                     "{\"char\":\"a\",\"logprob\":null}]},"
                     "{\"char\":\"a\",\"logprob\":-0.5,\"top\":[{\"char\":\"a\",\"logprob\":-0.5},"
                     "{\"char\":\"b\",\"logprob\":-1}]}]");
    cJSON_Delete(back);
    free(s);
    cJSON_Delete(arr);
    charrnn_vocab_free(v);
}
END_TEST

int main(void)
{
    RUN_TESTS("logprobs_json", json_float_writes_null_for_non_finite,
              records_with_non_finite_logprobs_stay_json);
}

/* Check suite of POST /sample parsing (server/request.c): every rejected value
 * names its field in "param", taken from the library's field table and never
 * from a message's wording, and the limits are the library's (with the
 * server's --max-length and --max-prime on top). */
#include "charrnn/sampler.h"
#include "charrnn/status.h"
#include "check_run.h"
#include "config.h"
#include "openai_request.h"
#include "request.h"

#include <check.h>
#include <stdio.h>
#include <string.h>

static serve_config config(void)
{
    serve_config c;
    memset(&c, 0, sizeof c);
    c.max_length = 5000;
    c.max_prime = 100;
    return c;
}

START_TEST(bad_values_name_their_field)
{
    static const struct {
        const char *body, *param;
    } cases[] = {
        {"{\"length\": 0}", "length"},
        {"{\"length\": 5001}", "length"},
        {"{\"length\": 2.5}", "length"},
        {"{\"length\": \"10\"}", "length"},
        {"{\"temperature\": -0.1}", "temperature"},
        {"{\"temperature\": 10.0000001}", "temperature"},
        {"{\"temperature\": 1e999}", "temperature"},
        {"{\"top_k\": -1}", "top_k"},
        {"{\"top_k\": 65537}", "top_k"},
        {"{\"top_k\": 1.5}", "top_k"},
        {"{\"top_p\": 0}", "top_p"},
        {"{\"top_p\": 1.01}", "top_p"},
        {"{\"stop\": [\"\"]}", "stop"},
        {"{\"stop\": [\"a\",\"b\",\"c\",\"d\",\"e\",\"f\",\"g\",\"h\",\"i\",\"j\",\"k\",\"l\","
         "\"m\",\"n\",\"o\",\"p\",\"q\"]}",
         "stop"},
        {"{\"stop\": [3]}", "stop"},
        {"{\"seed\": -1}", "seed"},
        {"{\"prime\": 5}", "prime"},
        {"{\"model\": \"shakespeare\\u0000x\"}", "model"}, /* not "shakespeare" */
        {"{\"stream\": 1}", "stream"},
        {"{\"logprobs\": -1}", "logprobs"},
        {"{\"logprobs\": 1.5}", "logprobs"},
        {"{\"logprobs\": 65537}", "logprobs"},
        {"{\"logprobs\": true}", "logprobs"},
        {"{\"length\": 5, \"top_p\": 7}", "top_p"},
        {"{\"top_k\": 1, \"top_k\": 2}", "top_k"},
        {"{\"nope\": 1}", "nope"},
        {"[1]", ""},
    };
    serve_config cfg = config();
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sample_request r;
        api_error e;
        memset(&e, 0, sizeof e);
        int rc = sample_request_parse(cases[i].body, strlen(cases[i].body), &cfg, &r, &e);
        ck_assert_msg(rc == -1, "%s was accepted", cases[i].body);
        ck_assert_uint_eq(e.status, 400);
        ck_assert_msg(!strcmp(e.param, cases[i].param), "%s: param '%s', expected '%s' (%s)",
                      cases[i].body, e.param, cases[i].param, e.message);
    }
}
END_TEST

/* The edges the library's table allows, and the server's own limits. */
START_TEST(edges_are_accepted)
{
    static const char *bodies[] = {
        "{\"length\": 5000, \"temperature\": 10, \"top_k\": 65536, \"top_p\": 1}",
        "{\"length\": 1, \"temperature\": 0, \"top_k\": 0, \"top_p\": 1e-30}",
        "{\"stop\": [\"a\",\"b\",\"c\",\"d\",\"e\",\"f\",\"g\",\"h\",\"i\",\"j\",\"k\",\"l\","
        "\"m\",\"n\",\"o\",\"p\"]}",
    };
    serve_config cfg = config();
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        sample_request r;
        api_error e;
        int rc = sample_request_parse(bodies[i], strlen(bodies[i]), &cfg, &r, &e);
        ck_assert_msg(rc == 0, "%s: %s", bodies[i], e.message);
        charrnn_sample_params p = sample_request_params(&r);
        char err[CHARRNN_ERR_MAX];
        ck_assert_msg(charrnn_sample_params_check(&p, NULL, err, sizeof err) == 0, "%s: %s",
                      bodies[i], err);
        sample_request_clear(&r);
    }
}
END_TEST

/* POST /v1/completions (server/openai_request.c): a string cJSON would cut
 * at a \u0000 escape is refused, never used shortened (a stop "a\u0000b"
 * would otherwise stop at every "a", a model "shakespeare\u0000x" would be
 * served by "shakespeare"). */
START_TEST(v1_nul_is_refused_not_cut)
{
    static const struct {
        const char *body, *param;
    } cases[] = {
        {"{\"prompt\": \"x\", \"stop\": \"a\\u0000b\"}", "stop"},
        {"{\"prompt\": \"x\", \"stop\": [\"q\", \"a\\u0000\"]}", "stop"},
        {"{\"prompt\": \"x\\u0000y\"}", "prompt"},
        {"{\"model\": \"shakespeare\\u0000x\", \"prompt\": \"x\"}", "model"},
    };
    serve_config cfg = config();
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        completion_request r;
        api_error e;
        memset(&e, 0, sizeof e);
        int rc = completion_request_parse(cases[i].body, strlen(cases[i].body), &cfg, &r, &e);
        if (rc == 0)
            completion_request_clear(&r);
        ck_assert_msg(rc == -1, "%s was accepted", cases[i].body);
        ck_assert_uint_eq(e.status, 400);
        ck_assert_msg(!strcmp(e.param, cases[i].param), "%s: param '%s', expected '%s' (%s)",
                      cases[i].body, e.param, cases[i].param, e.message);
    }
    const char *ok = "{\"prompt\": \"x\", \"stop\": [\"a\\\\u0000\"]}"; /* an escaped backslash */
    completion_request r;
    api_error e;
    ck_assert_int_eq(completion_request_parse(ok, strlen(ok), &cfg, &r, &e), 0);
    ck_assert_uint_eq(r.n_stop, 1);
    ck_assert_str_eq(r.stop[0], "a\\u0000");
    completion_request_clear(&r);
}
END_TEST

int main(void)
{
    RUN_TESTS("request", bad_values_name_their_field, edges_are_accepted,
              v1_nul_is_refused_not_cut);
}

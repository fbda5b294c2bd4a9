/* Check suite of POST /sample parsing (server/request.c): every rejected value
 * names its field in "param", taken from the library's field table and never
 * from a message's wording, and the limits are the library's (with the
 * server's --max-length and --max-prime on top). */
#include "charrnn/sampler.h"
#include "charrnn/status.h"
#include "check_run.h"
#include "config.h"
#include "echo.h"
#include "openai_request.h"
#include "sample_request.h"

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
        {"{\"min_p\": -0.1}", "min_p"},
        {"{\"min_p\": 1.5}", "min_p"},
        {"{\"repetition_penalty\": 0}", "repetition_penalty"},
        {"{\"repetition_penalty\": 10.5}", "repetition_penalty"},
        {"{\"presence_penalty\": -2.1}", "presence_penalty"},
        {"{\"frequency_penalty\": 2.1}", "frequency_penalty"},
        {"{\"frequency_penalty\": \"1\"}", "frequency_penalty"},
        {"{\"penalty_window\": 0}", "penalty_window"},
        {"{\"penalty_window\": 4097}", "penalty_window"},
        {"{\"penalty_window\": 2.5}", "penalty_window"},
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
        "{\"min_p\": 1, \"repetition_penalty\": 10, \"presence_penalty\": -2, "
        "\"frequency_penalty\": 2, \"penalty_window\": 4096}",
        "{\"min_p\": 0, \"repetition_penalty\": 1e-30, \"penalty_window\": 1}",
        "{\"stop\": [\"a\",\"b\",\"c\",\"d\",\"e\",\"f\",\"g\",\"h\",\"i\",\"j\",\"k\",\"l\","
        "\"m\",\"n\",\"o\",\"p\"]}",
    };
    serve_config cfg = config();
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        sample_request r;
        api_error e;
        int rc = sample_request_parse(bodies[i], strlen(bodies[i]), &cfg, &r, &e);
        ck_assert_msg(rc == 0, "%s: %s", bodies[i], e.message);
        char err[CHARRNN_ERR_MAX];
        ck_assert_msg(charrnn_sample_params_check(&r.p, NULL, err, sizeof err) == 0, "%s: %s",
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
    ck_assert_uint_eq(r.p.n_stop, 1);
    ck_assert_str_eq(r.stop[0], "a\\u0000");
    completion_request_clear(&r);
}
END_TEST

/* A raw control byte (< 0x20) inside a JSON string: RFC 8259 forbids it and
 * cJSON keeps it, cutting the string at a NUL (a model "tiny<NUL>-other"
 * would be served by "tiny", a stop "e<NUL>zz" would act as "e"). Every body
 * passes through json_object_parse, which refuses it naming the top-level
 * field, whatever the endpoint's own checks; as whitespace between tokens the
 * same bytes are fine, and so are escapes. */
enum body_kind { SAMPLE, V1, OBJECT };

static int accept_member(void *ctx, const cJSON *v, span src, api_error *err)
{
    (void)v;
    (void)src;
    (void)err;
    ++*(int *)ctx;
    return 0;
}

static int parse_as(enum body_kind kind, const char *body, size_t len, api_error *e)
{
    static const char *const fields[] = {"model", "text", "top_logprobs"}; /* /score's */
    serve_config cfg = config();
    int rc;
    if (kind == SAMPLE) {
        sample_request r;
        if ((rc = sample_request_parse(body, len, &cfg, &r, e)) == 0)
            sample_request_clear(&r);
    } else if (kind == V1) {
        completion_request r;
        if ((rc = completion_request_parse(body, len, &cfg, &r, e)) == 0)
            completion_request_clear(&r);
    } else {
        int members = 0;
        rc = json_object_parse(body, len, fields, 3, accept_member, &members, e);
    }
    return rc;
}

#define BODY(s) s, sizeof(s) - 1 /* with the NUL bytes inside it */

START_TEST(raw_control_bytes_are_refused)
{
    static const struct {
        enum body_kind kind;
        const char *body;
        size_t len;
        const char *param;
    } refused[] = {
        {SAMPLE, BODY("{\"model\": \"tiny\0-other\", \"length\": 3}"), "model"},
        {SAMPLE, BODY("{\"prime\": \"th\0zz\"}"), "prime"},
        {SAMPLE, BODY("{\"prime\": \"a\nb\"}"), "prime"},
        {SAMPLE, BODY("{\"prime\": \"\x01\"}"), "prime"},
        {SAMPLE, BODY("{\"length\": 3, \"stop\": [\"q\", \"e\0zz\"]}"), "stop"},
        {SAMPLE, BODY("{\"stop\": [\"a\x1f\"]}"), "stop"},
        {SAMPLE, BODY("{\"model\0x\": \"tiny\"}"), "model"}, /* a key cut to "model" */
        {V1, BODY("{\"model\": \"tiny\0-other\", \"prompt\": \"x\"}"), "model"},
        {V1, BODY("{\"prompt\": \"x\0y\"}"), "prompt"},
        {V1, BODY("{\"prompt\": [\"ok\", \"a\tb\"]}"), "prompt"},
        {V1, BODY("{\"prompt\": \"x\", \"stop\": \"e\0zz\"}"), "stop"},
        {V1, BODY("{\"prompt\": \"x\", \"user\": \"u\0v\"}"), "user"},
        {V1, BODY("{\"prompt\": \"x\", \"logit_bias\": {\"1\r\": 5}}"), "logit_bias"},
        {OBJECT, BODY("{\"model\": \"tiny\0-other\", \"text\": \"ab\"}"), "model"},
        {OBJECT, BODY("{\"text\": \"the\0 cat\"}"), "text"},
        {OBJECT, BODY("{\"text\": \"ab\", \"top_logprobs\": 1, \"model\": \"\x7f\x1b\"}"), "model"},
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        api_error e;
        memset(&e, 0, sizeof e);
        int rc = parse_as(refused[i].kind, refused[i].body, refused[i].len, &e);
        ck_assert_msg(rc == -1, "case %zu (%.*s) was accepted", i, (int)refused[i].len,
                      refused[i].body);
        ck_assert_uint_eq(e.status, 400);
        ck_assert_msg(!strcmp(e.param, refused[i].param),
                      "case %zu: param '%s', expected '%s' (%s)", i, e.param, refused[i].param,
                      e.message);
        ck_assert_msg(strstr(e.message, "control character"), "case %zu: %s", i, e.message);
    }
    static const struct {
        enum body_kind kind;
        const char *body;
        size_t len;
    } accepted[] = {
        {SAMPLE, BODY("{\x01\"prime\"\x1f:\n\"a\\nb\\t\\u0001\",\r\"length\":\t3\0}")},
        {V1, BODY("{\"prompt\": [\"a\\r\", \"\\u001f\"],\x0b\"stop\":\"\\n\"}")},
        {OBJECT, BODY("{\"text\":\f\"caf\xc3\xa9 \x7f\"}")},
    };
    for (size_t i = 0; i < sizeof accepted / sizeof accepted[0]; i++) {
        api_error e;
        memset(&e, 0, sizeof e);
        ck_assert_msg(parse_as(accepted[i].kind, accepted[i].body, accepted[i].len, &e) == 0,
                      "accepted case %zu: %s", i, e.message);
    }
}
END_TEST

/* A stop string that is not valid UTF-8 is a 400 naming "stop" on both
 * endpoints (through charrnn_sample_check_stop); a valid non-ASCII one is fine. */
START_TEST(stop_must_be_utf8)
{
    static const struct {
        enum body_kind kind;
        const char *body;
        size_t len;
    } refused[] = {
        {SAMPLE, BODY("{\"stop\": [\"\xff\"]}")},
        {SAMPLE, BODY("{\"stop\": [\"q\", \"e\x94\"]}")},
        {V1, BODY("{\"prompt\": \"x\", \"stop\": \"\x94\"}")},
        {V1, BODY("{\"prompt\": \"x\", \"stop\": [\"a\", \"\xe2\x80\"]}")},
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        api_error e;
        memset(&e, 0, sizeof e);
        ck_assert_msg(parse_as(refused[i].kind, refused[i].body, refused[i].len, &e) == -1,
                      "case %zu accepted", i);
        ck_assert_uint_eq(e.status, 400);
        ck_assert_str_eq(e.param, "stop");
        ck_assert_msg(strstr(e.message, "not valid UTF-8"), "case %zu: %s", i, e.message);
    }
    api_error e;
    ck_assert_int_eq(parse_as(V1, BODY("{\"prompt\": \"x\", \"stop\": \"\xe2\x80\x94\"}"), &e), 0);
}
END_TEST

/* Client bytes in an error (an unknown field's name, a model name) come out
 * as valid UTF-8: invalid bytes as \xNN, long text cut between characters,
 * the 31-byte param included. */
START_TEST(echoed_client_bytes_are_utf8)
{
    char out[8];
    ck_assert_str_eq(echo_text(out, sizeof out, "a\xff\n", 3), "a\\xFF"); /* no room for \x0A */
    ck_assert_str_eq(echo_str(out, sizeof out, "\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac"),
                     "\xe2\x82\xac\xe2\x82\xac");                      /* 6 of 7 bytes: never 7 */
    ck_assert_str_eq(echo_str(out, sizeof out, "a\\xFFb"), "a\\xFFb"); /* an echo is kept */
    char key[100] = "{\"";
    for (int i = 0; i < 20; i++)
        strcat(key, "\xe2\x82\xac");
    strcat(key, "\xff\": 1}");
    for (int kind = SAMPLE; kind <= V1; kind++) {
        api_error e;
        ck_assert_int_eq(parse_as((enum body_kind)kind, key, strlen(key), &e), -1);
        ck_assert(utf8_valid(e.param, strlen(e.param)) && utf8_valid(e.message, strlen(e.message)));
        ck_assert_uint_eq(strlen(e.param), 30); /* 10 whole characters of 3 bytes */
        ck_assert_msg(strstr(e.message, "\xe2\x82\xac\\xFF"), "%s", e.message);
    }
    char model[400] = "{\"prompt\": \"x\", \"model\": \"";
    for (int i = 0; i < 100; i++)
        strcat(model, "\xe2\x82\xac");
    strcat(model, "\"}");
    api_error e;
    ck_assert_int_eq(parse_as(V1, model, strlen(model), &e), -1);
    ck_assert_uint_eq(e.status, 404);
    ck_assert_msg(utf8_valid(e.message, strlen(e.message)) && !strstr(e.message, "\\x"), "%s",
                  e.message);
}
END_TEST

int main(void)
{
    RUN_TESTS("request", bad_values_name_their_field, edges_are_accepted, v1_nul_is_refused_not_cut,
              raw_control_bytes_are_refused, stop_must_be_utf8, echoed_client_bytes_are_utf8);
}

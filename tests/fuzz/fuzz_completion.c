/* libFuzzer harness: POST /v1/completions bodies (server/openai_request.c),
 * then, for an accepted one, every prompt run as its choices would be
 * (log-probabilities, echo scoring, logit_bias, stop) on a small fixed model,
 * so that whatever the parser accepts is also handled safely by the sampler.
 *
 * Invariants beyond "no sanitizer report": an accepted request is in range
 * (1..V1_MAX_PROMPTS prompts, n 1..V1_MAX_N, at most --max-choices-per-request
 * choices and at most that many best_of candidates,
 * max_tokens <= max_length and 0 only with echo, logprobs -1..5, at most
 * V1_MAX_STOP stop strings, each valid UTF-8, biases in [-100, 100]); a
 * rejection is a 4xx with a message and a param that make a valid UTF-8 JSON
 * body; a stream the library accepts yields exactly one record
 * per scored prompt character and per generated character, each log-probability
 * <= 0 and its alternatives most likely first. */
#include "charrnn/sampler.h"
#include "charrnn/vocab.h"
#include "config.h"
#include "fuzz_json.h"
#include "fuzz_model.h"
#include "openai_request.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static serve_config cfg;
static charrnn_model *model;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_config(&cfg, "48");
    model = fuzz_model(CHARRNN_CELL_GRU, 1);
    return 0;
}

/* Runs one prompt as a /v1 choice does and checks its records. */
static void run_choice(const completion_request *r, size_t i)
{
    /* the daemon's one mapping, so every control the request carries is fuzzed */
    charrnn_sample_params p = completion_choice_params(r, i, r->seed + i);
    if (p.length == 0 && !p.score_prime)
        return; /* echo of the prompt only: nothing runs */
    char err[512];
    charrnn_sample_field bad = CHARRNN_SAMPLE_NONE;
    charrnn_stream *s = NULL;
    int rc = charrnn_sample_params_check_model(&p, model, &bad, err, sizeof err);
    if (rc == 0)
        rc = charrnn_stream_create(model, &p, &s, err, sizeof err);
    if (rc) {
        if (!err[0])
            abort(); /* a rejection always says why */
        return;
    }
    size_t records = 0;
    while (!charrnn_stream_done(s)) {
        if (charrnn_infer_step(model, 1, &s))
            abort();
        char out[8];
        charrnn_stream_emit(s, out);
        charrnn_logprob lp;
        if (!charrnn_stream_logprob(s, &lp))
            continue;
        records++;
        if (!p.logprobs || (lp.has_logprob && !(lp.logprob <= 0.0f)))
            abort();
        for (int k = 1; k < lp.n_top; k++)
            if (lp.top_lp[k] > lp.top_lp[k - 1])
                abort();
    }
    size_t prime = charrnn_stream_prime_chars(s);
    size_t want = p.logprobs
        ? (p.score_prime && prime > 0 ? prime - 1 : 0) + charrnn_stream_generated_chars(s)
        : 0;
    if (records != want || charrnn_stream_generated_chars(s) > p.length)
        abort();
    charrnn_stream_free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Exactly size bytes, not NUL-terminated: an over-read is an ASan report. */
    char *body = malloc(size ? size : 1);
    if (!body)
        return 0;
    memcpy(body, data, size);
    completion_request r;
    api_error e;
    memset(&e, 0, sizeof e);
    if (completion_request_parse(body, size, &cfg, &r, &e) != 0) {
        fuzz_check_error(&e);
        free(body);
        return 0;
    }
    free(body);
    if (r.n_prompt < 1 || r.n_prompt > V1_MAX_PROMPTS || r.n < 1 || r.n > V1_MAX_N ||
        r.n_prompt * (size_t)r.n > (size_t)cfg.max_choices ||
        (r.best_of > r.n && r.n_prompt * (size_t)r.best_of > (size_t)cfg.max_choices))
        abort();
    if ((long)r.p.length > cfg.max_length || (r.p.length == 0 && !r.echo))
        abort();
    if (r.logprobs < -1 || r.logprobs > V1_MAX_LOGPROBS || r.p.n_stop > V1_MAX_STOP)
        abort();
    for (size_t i = 0; i < r.p.n_stop; i++)
        if (!utf8_valid(r.stop[i], strlen(r.stop[i])))
            abort(); /* only a valid stop is sure to cut between characters */
    char user[65];   /* as the access log shows it */
    fuzz_check_text(echo_str(user, sizeof user, r.user), strlen(user), 0, "user not UTF-8");
    for (size_t i = 0; i < r.p.n_bias; i++)
        if (!(r.bias_val[i] >= -100 && r.bias_val[i] <= 100))
            abort();
    for (size_t i = 0; i < r.n_prompt; i++) {
        if (strlen(r.prompt[i]) != r.prompt_len[i])
            abort();
        run_choice(&r, i);
    }
    completion_request_clear(&r);
    return 0;
}

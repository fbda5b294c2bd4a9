/* Validation loss of a model over a split (charrnn/evaluate.h). */
#include "charrnn/evaluate.h"

#include "charrnn/lowp.h"
#include "charrnn/sampler.h"
#include "charrnn/status.h"
#include "charrnn/trainer.h"
#include "charrnn/vocab.h"

#include <stdlib.h>

int charrnn_evaluate(charrnn_model *m, const charrnn_split *s, int threads, double *loss, char *err,
                     size_t errlen)
{
    if (m->dtype != CHARRNN_DTYPE_F32)
        return charrnn_fail(err, errlen, CHARRNN_EINVAL,
                            "evaluate an f32 model (widen the %s one first)",
                            charrnn_dtype_name(m->dtype));
    if (s->nbatches == 0)
        return charrnn_fail(err, errlen, CHARRNN_ERANGE,
                            "the split (%zu characters) holds no window of %d x %d", s->n, s->B,
                            s->T);
    charrnn_optim_config oc = charrnn_optim_defaults(CHARRNN_OPT_ADAM);
    charrnn_trainer *tr;
    int rc = charrnn_trainer_create(m, s->B, s->T, 0.0f, &oc, 0, &tr, err, errlen);
    if (rc)
        return rc;
    if (threads > 1 && (rc = charrnn_trainer_set_shards(tr, threads, err, errlen))) {
        charrnn_trainer_free(tr);
        return rc;
    }
    size_t n = (size_t)s->B * (size_t)s->T;
    uint16_t *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
    if (!x || !y) {
        free(x), free(y);
        charrnn_trainer_free(tr);
        return charrnn_fail(err, errlen, CHARRNN_ENOMEM, "out of memory");
    }
    charrnn_trainer_reset_state(tr, CHARRNN_MODE_EVAL);
    double sum = 0.0;
    for (size_t j = 0; j < s->nbatches; j++) {
        charrnn_split_batch(s, j, x, y);
        sum += charrnn_trainer_forward(tr, x, y, CHARRNN_MODE_EVAL);
    }
    *loss = sum / (double)s->nbatches;
    free(x), free(y);
    charrnn_trainer_free(tr);
    return CHARRNN_OK;
}

/* Stream b's characters of the split, as char-rnn batches them (data.h): the
 * n = nbatches * T inputs from b * n, and the target after the last. */
static char *stream_text(const charrnn_model *m, const charrnn_split *s, int b, size_t *len)
{
    const size_t n = s->nbatches * (size_t)s->T;
    char *t = malloc((n + 1) * 4 + 1);
    if (!t)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i <= n; i++)
        k += (size_t)charrnn_utf8_encode(
            charrnn_vocab_codepoint(m->vocab, s->tok[(size_t)b * n + i]), t + k);
    *len = k;
    return t;
}

int charrnn_evaluate_served(const charrnn_model *m, const charrnn_split *s, double *loss, char *err,
                            size_t errlen)
{
    if (s->nbatches == 0)
        return charrnn_fail(err, errlen, CHARRNN_ERANGE,
                            "the split (%zu characters) holds no window of %d x %d", s->n, s->B,
                            s->T);
    /* All B streams in one step: charrnn_infer_step tiles them as the server
     * batches (16 at a time), and every stream's numbers are its own. */
    charrnn_stream **st = calloc((size_t)s->B, sizeof *st);
    if (!st)
        return charrnn_fail(err, errlen, CHARRNN_ENOMEM, "out of memory");
    double sum = 0.0;
    size_t count = 0;
    int rc = CHARRNN_OK;
    for (int b = 0; b < s->B && rc == CHARRNN_OK; b++) {
        size_t len;
        char *text = stream_text(m, s, b, &len);
        if (!text) {
            rc = charrnn_fail(err, errlen, CHARRNN_ENOMEM, "out of memory");
            break;
        }
        charrnn_sample_params p = charrnn_sample_defaults();
        p.prime = text, p.prime_len = len, p.length = 0;
        p.logprobs = 1, p.score_prime = 1;
        rc = charrnn_stream_create(m, &p, &st[b], err, errlen);
        free(text);
    }
    while (rc == CHARRNN_OK && !charrnn_stream_done(st[0])) {
        /* Equal lengths: every stream ends at the same step. */
        if ((rc = charrnn_infer_step(m, (size_t)s->B, st)) != CHARRNN_OK)
            charrnn_fail(err, errlen, rc, "inference step failed");
        for (int b = 0; b < s->B && rc == CHARRNN_OK; b++) {
            charrnn_logprob lp;
            if (charrnn_stream_logprob(st[b], &lp) && lp.has_logprob)
                sum -= (double)lp.logprob, count++;
        }
    }
    for (int b = 0; b < s->B; b++)
        charrnn_stream_free(st[b]);
    free(st);
    if (rc == CHARRNN_OK)
        *loss = sum / (double)count;
    return rc;
}

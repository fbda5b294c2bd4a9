/* Validation loss of a model over a split (charrnn/evaluate.h). */
#include "charrnn/evaluate.h"

#include "charrnn/lowp.h"
#include "charrnn/status.h"
#include "charrnn/trainer.h"

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

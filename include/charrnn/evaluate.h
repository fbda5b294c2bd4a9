/* Loss of a model on a split, as training reports validation loss: the mean
 * over the split's (B, T) windows of the cross-entropy in nats per character,
 * the hidden state carried from window to window, no dropout. */
#ifndef CHARRNN_EVALUATE_H
#define CHARRNN_EVALUATE_H

#include "charrnn/data.h"
#include "charrnn/model.h"

#include <stddef.h>

/* m must be f32 (evaluate a bf16 or int8 model through charrnn_model_widen).
 * Threads: `threads` shards of the batch (1..8). CHARRNN_ERANGE when the
 * split holds no window. */
int charrnn_evaluate(charrnn_model *m, const charrnn_split *s, int threads, double *loss, char *err,
                     size_t errlen);

#endif

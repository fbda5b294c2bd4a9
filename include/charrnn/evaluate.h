/* Loss of a model on a split, as training reports validation loss: the mean
 * over the split's (B, T) windows of the cross-entropy in nats per character,
 * the hidden state carried from window to window, no dropout. */
#ifndef CHARRNN_EVALUATE_H
#define CHARRNN_EVALUATE_H

#include "charrnn/data.h"
#include "charrnn/model.h"

#include <stddef.h>

/* m must be f32 (score a bf16 or int8 model with charrnn_evaluate_served
 * below, as it is served, or through charrnn_model_widen, as its values).
 * Threads: `threads` shards of the batch (1..8). CHARRNN_ERANGE when the
 * split holds no window. */
int charrnn_evaluate(charrnn_model *m, const charrnn_split *s, int threads, double *loss, char *err,
                     size_t errlen);

/* The same loss computed as the model serves: each of the split's B streams
 * scored through charrnn_infer_step (all in one batch), any dtype. It measures
 * what users get from a reduced model (int8 also quantizes its inputs,
 * rowdot.h). Equals charrnn_evaluate up to the rounding of the two code
 * paths for an f32 model. */
int charrnn_evaluate_served(const charrnn_model *m, const charrnn_split *s, double *loss, char *err,
                            size_t errlen);

#endif

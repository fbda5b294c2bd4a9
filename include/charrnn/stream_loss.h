/* The loss of a model used the way it is served: one continuous stream.
 *
 * Training validates with B parallel streams whose state is carried over a
 * few hundred characters each; a sampler or a server runs one stream for as
 * long as the text goes. A model can look fine the first way and fall into
 * an absorbing state the second way (after some context it predicts one
 * character forever), so the trainer measures both. */
#ifndef CHARRNN_STREAM_LOSS_H
#define CHARRNN_STREAM_LOSS_H

#include "charrnn/model.h"

#include <stddef.h>
#include <stdint.h>

/* Mean cross-entropy (nats/char) of predicting tok[t + 1] from tok[0..t] for
 * t = 0 .. n - 2, one stream from a zero state, computed in windows with the
 * state carried (the same arithmetic as the trainer's forward pass, batch 1).
 * n >= 2 and an f32 model (EINVAL otherwise); ENOMEM when the window
 * buffers cannot be had. */
int charrnn_stream_loss(const charrnn_model *m, const uint16_t *tok, size_t n, float *loss,
                        char *err, size_t errlen);

#endif

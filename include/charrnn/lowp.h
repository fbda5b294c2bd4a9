/* Reduced-precision weights for serving: bf16 and int8 with a float scale per
 * row.
 *
 * What is reduced: every matrix the inference step multiplies by a vector
 * (rnn.weight_hh_l{k}, rnn.weight_ih_l{k} for k >= 1, decoder.weight), which
 * is where a step's memory traffic goes. Biases and rnn.weight_ih_l0 (layer
 * 0's input: one column is gathered per character, a few KB a step) stay f32.
 *
 *   bf16: the upper 16 bits of the f32, rounded to nearest, ties to even.
 *         Widening back (bits << 16) is exact.
 *   int8: per row r, scale[r] = max_c |W[r][c]| / 127 (a float) and
 *         q[r][c] = round(W[r][c] / scale[r]) in -127..127 (a row of zeros
 *         has scale 0); the value is q[r][c] * scale[r].
 *
 * Training always keeps f32 masters: a reduced model is made from an f32 one
 * (charrnn_model_reduce) or loaded from a serving checkpoint, and is only
 * sampled from, saved (charrnn_checkpoint_save) or widened back to f32. */
#ifndef CHARRNN_LOWP_H
#define CHARRNN_LOWP_H

#include "charrnn/model.h"

#include <stddef.h>
#include <stdint.h>

/* "f32", "bf16", "int8". */
const char *charrnn_dtype_name(charrnn_dtype dt);
/* Bytes per weight of a matrix stored in dt: 4, 2 or 1. */
size_t charrnn_dtype_bytes(charrnn_dtype dt);
/* Parses one of those names; CHARRNN_EINVAL with a message otherwise. */
int charrnn_dtype_parse(const char *name, charrnn_dtype *out, char *err, size_t errlen);

/* The reduced matrix that tensor i of m's layout is, or NULL when tensor i
 * stays f32 (a bias, rnn.weight_ih_l0). Its shape is m->tensors[i].shape. */
const charrnn_matrix *charrnn_model_matrix(const charrnn_model *m, int i);

/* The largest |pre-activation| a gate row or logit of m can reach, whatever
 * the input, from the zero state: for each row r of layer l's gates
 * |b_ih[r]| + |b_hh[r]| + X + sum_c |W_hh[r][c]|, where X is max_c
 * |W_ih[r][c]| for layer 0 (its input is one character's column) and
 * sum_c |W_ih[r][c]| above it; for the decoder's row r |b[r]| +
 * sum_c |W[r][c]|. The weights are the values the step reads (bf16 widened,
 * int8 as q * scale), summed in double. It holds because every cell's output
 * h is in [-1, 1] while its pre-activations are finite (LSTM o * tanh(c),
 * GRU a mix of tanh and the previous h, tanh RNN). *tensor and *row name the
 * worst row (*tensor the index of its weight in m->tensors); NaN if a weight
 * is NaN. */
double charrnn_model_activation_bound(const charrnn_model *m, int *tensor, size_t *row);

/* bf16 bits of x, rounded to nearest even (a finite x too large for bf16
 * becomes an infinity: callers check). */
uint16_t charrnn_bf16_from_f32(float x);
float charrnn_bf16_to_f32(uint16_t b);
/* One row of int8: q (n) and *scale as described above. */
void charrnn_int8_quantize_row(const float *w, size_t n, int8_t *q, float *scale);

/* A model with zeroed parameters whose matrices are stored in dt (f32: the
 * same as charrnn_model_create). Takes ownership of vocab on success. */
int charrnn_model_create_lowp(const charrnn_config *cfg, charrnn_vocab *vocab, charrnn_dtype dt,
                              charrnn_model **out, char *err, size_t errlen);

/* A copy of the f32 model src with its matrices reduced to dt.
 * CHARRNN_EINVAL if src is not f32; CHARRNN_ERANGE if a weight overflows
 * bf16. On error *out is NULL. */
int charrnn_model_reduce(const charrnn_model *src, charrnn_dtype dt, charrnn_model **out, char *err,
                         size_t errlen);

/* An f32 model holding exactly the values src's weights stand for (bf16
 * widened; int8 as the float product q * scale), e.g. to evaluate its loss
 * with the training forward pass. On error *out is NULL. */
int charrnn_model_widen(const charrnn_model *src, charrnn_model **out, char *err, size_t errlen);

#endif

/* A network in training: gradients, optimizer moments, the activations of one
 * (B, T) window (planned and allocated once, up front) and the hidden state
 * carried from one window to the next (truncated BPTT, as char-rnn does).
 *
 * Tokens are time-major: x[t*B + b] is stream b at step t; y is x shifted by
 * one character. Two carried states exist: one for training windows and one
 * for evaluation, so evaluating never disturbs training (as in char-rnn). */
#ifndef CHARRNN_TRAINER_H
#define CHARRNN_TRAINER_H

#include "charrnn/model.h"
#include "charrnn/optim.h"
#include "charrnn/rng.h"

#include <stddef.h>
#include <stdint.h>

typedef struct charrnn_trainer charrnn_trainer;
struct charrnn_comm;

typedef enum charrnn_mode { CHARRNN_MODE_TRAIN = 0, CHARRNN_MODE_EVAL = 1 } charrnn_mode;

/* The model is borrowed and must outlive the trainer. dropout in [0, 1). */
int charrnn_trainer_create(charrnn_model *m, int batch, int seq, float dropout,
                           const charrnn_optim_config *opt, uint64_t seed, charrnn_trainer **out,
                           char *err, size_t errlen);
void charrnn_trainer_free(charrnn_trainer *tr);

/* Splits the batch into n shards (contiguous ranges of streams, at most 8 and
 * at most B) that run forward and backward on n threads with their own
 * activations; gradients are summed in shard order, so results are
 * deterministic for a given n (not bitwise equal across different n). Call
 * BLAS single-threaded when n > 1. Default 1. On allocation failure the
 * trainer keeps one shard and returns CHARRNN_ENOMEM. */
int charrnn_trainer_set_shards(charrnn_trainer *tr, int n, char *err, size_t errlen);
int charrnn_trainer_shards(const charrnn_trainer *tr);

/* The arithmetic of the recurrent layers' products (the input side, the
 * recurrent step, their input gradients and the weight gradients). F32: the
 * trainer's f32 GEMM, the same bits on every instruction set. BF16: operands
 * rounded to bf16 and summed in f32 by AVX512-BF16 (model/core/gemm.h); the
 * master weights, gradients, optimizer state and everything else stay f32;
 * the bits are fixed per CPU feature set. */
typedef enum charrnn_precision {
    CHARRNN_PRECISION_F32 = 0,
    CHARRNN_PRECISION_BF16 = 1
} charrnn_precision;
/* "f32" or "bf16"; 0, or -1 for anything else (*out unchanged). */
int charrnn_precision_parse(const char *s, charrnn_precision *out);
const char *charrnn_precision_name(charrnn_precision p);
/* CHARRNN_OK when this build, CPU and CHARRNN_KERNEL run p; else
 * CHARRNN_EINVAL with the reason (bf16: no AVX512-BF16 in the CPU or the
 * build, or another kernel forced). */
int charrnn_precision_ready(charrnn_precision p, char *err, size_t errlen);
/* Switches the trainer to p (default f32), reallocating the shards' scratch
 * (call it before training; the layout is kept). Errors: those of
 * charrnn_precision_ready (nothing changes), CHARRNN_ENOMEM as set_layout. */
int charrnn_trainer_set_precision(charrnn_trainer *tr, charrnn_precision p, char *err,
                                  size_t errlen);

/* Data parallelism over processes: the batch is split into `total` shards by
 * the same rule as set_shards (shard g gets streams [g*B/total,
 * (g+1)*B/total)) and this process runs shards [first, first + n) on n
 * threads (n <= 8). Ranks hold consecutive ranges in rank order. The
 * gradient sum over shards, the loss and hence every update are the same
 * bits on every rank and the same as one process running all `total` shards
 * (set_shards(total)). The dropout masks of the whole batch are drawn on
 * every rank, so the RNG state stays the same everywhere. comm is borrowed
 * and must outlive the trainer; NULL requires first == 0 and n == total.
 * Errors: CHARRNN_EINVAL for a bad layout, CHARRNN_ERANGE when total > B,
 * CHARRNN_ENOMEM (the trainer then keeps one local shard and no comm). */
int charrnn_trainer_set_layout(charrnn_trainer *tr, const struct charrnn_comm *comm, int total,
                               int first, int n, char *err, size_t errlen);
/* Non-zero once a transport call failed: the last loss is NaN or the
 * gradients are not the sum; the run cannot continue. */
int charrnn_trainer_comm_failed(const charrnn_trainer *tr);
/* With a layout over several ranks: collects every rank's rows of the
 * carried TRAIN state onto rank 0 (a collective: all ranks call it), so that
 * rank 0's charrnn_trainer_state() is the whole batch's, as a checkpoint
 * needs. Returns CHARRNN_OK, or CHARRNN_EIO on a transport failure. */
int charrnn_trainer_gather_state(charrnn_trainer *tr);

/* Forward over one window from the mode's carried state; the final state
 * becomes the new carried state. Dropout is active only in TRAIN mode.
 * Returns the mean cross-entropy in nats per character. */
float charrnn_trainer_forward(charrnn_trainer *tr, const uint16_t *x, const uint16_t *y,
                              charrnn_mode mode);
/* Backward of the last TRAIN forward; adds into the gradient block. */
void charrnn_trainer_backward(charrnn_trainer *tr);
void charrnn_trainer_zero_grad(charrnn_trainer *tr);
/* Clips (value, char-rnn style; clip <= 0 = off) and applies one optimizer update. */
void charrnn_trainer_update(charrnn_trainer *tr, float lr, float grad_clip);
/* zero_grad + forward + backward + update; returns the training loss. */
float charrnn_trainer_step(charrnn_trainer *tr, const uint16_t *x, const uint16_t *y, float lr,
                           float grad_clip);
/* Zeroes the carried state of a mode. */
void charrnn_trainer_reset_state(charrnn_trainer *tr, charrnn_mode mode);

/* Gradient block of the last backward (num_params), for tests. */
float *charrnn_trainer_grads(charrnn_trainer *tr);
/* Last forward's probabilities (T*B, V) (softmax of the logits); valid until
 * the next backward, which consumes them. With a layout over several ranks
 * only this rank's streams' rows are filled. */
const float *charrnn_trainer_probs(charrnn_trainer *tr);

/* What exact resume needs beyond the model's parameters: the optimizer's
 * update count and moments, the dropout RNG and the carried TRAIN state. */
typedef struct charrnn_trainer_snapshot {
    uint64_t optimizer_steps;
    charrnn_rng rng;                /* draws the dropout masks */
    const float *moment1, *moment2; /* (num_params) Adam m and v (RMSProp: v only) */
    const float *carry;             /* (carry_len) layers x (h, c for LSTM) x (B, H) */
    size_t num_params, carry_len;
} charrnn_trainer_snapshot;

/* Fills s; its arrays point into the trainer and change with its next step
 * (copy them to keep them). */
void charrnn_trainer_save_state(const charrnn_trainer *tr, charrnn_trainer_snapshot *s);
/* Makes s the trainer's state, copying the arrays; a NULL array leaves that
 * part as it is. Sizes that do not match this trainer give CHARRNN_EINVAL
 * and change nothing. */
int charrnn_trainer_restore_state(charrnn_trainer *tr, const charrnn_trainer_snapshot *s, char *err,
                                  size_t errlen);

#endif

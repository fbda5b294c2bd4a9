/* A whole training run, as charrnn-train performs it: data, model, the
 * iteration loop with char-rnn's learning-rate schedule, periodic validation,
 * checkpoints (named like char-rnn's: lm_<cell>_epoch<E>_<val>.safetensors,
 * plus best.safetensors and latest.safetensors), publishing, test loss, exact
 * resume from a checkpoint, and a clean stop on request.
 *
 * Resume (init_from a checkpoint with training state) continues the run at
 * the checkpoint's iteration; max_iters and max_epochs still count from
 * iteration 0, so a limit the checkpoint has already reached is refused
 * (nothing would be trained). The start callback's info says "resumed
 * exactly" only when every setting that changes the bits (data, dropout,
 * learning rate and its schedule, optimizer, gradient clip, the split, the
 * shards: threads x ranks) equals the checkpoint's; otherwise "continued
 * with changes: " and each change, old -> new.
 *
 * The library never prints: progress reaches the caller through callbacks. */
#ifndef CHARRNN_SESSION_H
#define CHARRNN_SESSION_H

#include "charrnn/model.h"
#include "charrnn/optim.h"
#include "charrnn/trainer.h"

#include <signal.h>
#include <stdint.h>

struct charrnn_comm;

typedef struct charrnn_train_opts {
    const char *data_path;
    const char *checkpoint_dir;
    const char *init_from; /* NULL or a checkpoint to resume from (exactly, if it has state) */
    const char *publish;   /* NULL or a path to publish the best model to (slim file) */
    charrnn_dtype publish_dtype; /* the published file's weights (f32, or bf16/int8 to serve) */
    charrnn_cell cell;
    int rnn_size, num_layers;
    float dropout;
    int seq_length, batch_size;
    double max_epochs;
    long max_iters; /* 0 = no limit (max_epochs decides) */
    float learning_rate;
    charrnn_optimizer optimizer;
    float lr_decay;
    double lr_decay_after;
    float grad_clip;
    double train_frac, val_frac;
    long eval_every;
    uint64_t seed;
    int threads; /* data-parallel shards of the batch (1..8); BLAS should be single-threaded */
    charrnn_precision precision; /* of the layers' products (charrnn/trainer.h); default f32 */
    charrnn_init init;           /* how a fresh model is drawn (unused with init_from) */
    long stream_eval_chars;      /* each validation also scores the first N characters of the
                               validation split as one stream (charrnn/stream_loss.h); 0 = off */
    /* NULL: one process. Otherwise every rank of comm runs this with the same
     * options and `threads` shards each, out of comm->size * threads shards
     * (the same bits as one process with that many threads); only rank 0
     * writes files and only its callbacks matter (the others' run too). */
    const struct charrnn_comm *comm;
    /* With init_from: the architecture the caller asked for explicitly
     * (CHARRNN_GIVEN_* bits; cell, rnn_size, num_layers above). A given value
     * that differs from the checkpoint's is refused, naming both: a resumed
     * model keeps its architecture. 0: nothing given, nothing checked. */
    unsigned given;
} charrnn_train_opts;

#define CHARRNN_GIVEN_CELL 1u
#define CHARRNN_GIVEN_RNN_SIZE 2u
#define CHARRNN_GIVEN_NUM_LAYERS 4u

/* char-rnn's defaults (and Adam). */
charrnn_train_opts charrnn_train_defaults(void);

typedef struct charrnn_progress {
    long iter, total_iters, iters_per_epoch;
    double epoch;
    float train_loss, lr;
    double chars_per_sec, eta_sec, elapsed_sec;
    float val_stream_loss; /* in on_eval: the one-stream validation loss (NaN if not measured) */
} charrnn_progress;

/* A one-stream validation loss this much (nats/char) above the batched one is
 * reported as a warning: the batched streams each see a few hundred
 * characters of context, so a model that degrades over a longer context (an
 * absorbing state: one character predicted forever) passes the batched
 * validation unnoticed. A healthy model's two losses differ by the text of
 * the two samples, a few hundredths to a tenth. */
#define CHARRNN_STREAM_GAP_WARN 0.5f

typedef struct charrnn_train_callbacks {
    void *ctx;
    void (*on_start)(void *ctx, const charrnn_model *m, long start_iter, long total_iters,
                     const char *info);
    void (*on_iter)(void *ctx, const charrnn_progress *p);
    void (*on_eval)(void *ctx, const charrnn_progress *p, float val_loss, const char *path);
    void (*on_done)(void *ctx, const charrnn_progress *p, float val_loss, float test_loss,
                    int interrupted);
    const volatile sig_atomic_t *stop; /* when non-zero: finish the step, checkpoint, return */
} charrnn_train_callbacks;

/* Runs training. Returns CHARRNN_OK on completion or on a requested stop. */
int charrnn_train_run(const charrnn_train_opts *o, const charrnn_train_callbacks *cb, char *err,
                      size_t errlen);

/* Learning rate at iteration i (1-based): base * decay^k where k counts the
 * epoch boundaries e*ipe < i with e >= decay_after (char-rnn's schedule). */
float charrnn_lr_at(float base, float decay, double decay_after, long iters_per_epoch, long i);

#endif

/* One step on several cores: the rows of each matrix-vector product of an
 * inference step split across threads in fixed blocks.
 *
 * A step is bound by reading the weights from memory; one core reads only a
 * part of what the machine can, so a lone stream (or a lone batch) leaves the
 * others idle. With a row split, the thread that steps (the poster) publishes
 * each product (a layer's two, then the decoder's) as blocks of 64 rows;
 * helpers and the poster claim blocks until none are left, and the poster
 * waits for the last. Every row's dot product is computed exactly as in
 * charrnn_infer_step (the kernel never mixes rows), so the text is the same
 * bits whoever computes which block: determinism and batch invariance hold.
 *
 * Threads: one poster at a time per charrnn_rowsplit (the caller ensures
 * it); any number of helpers. Helpers spin while the split is open (they are
 * meant to be threads that have nothing else to do), so close it when the
 * poster stops stepping. */
#ifndef CHARRNN_ROWSPLIT_H
#define CHARRNN_ROWSPLIT_H

#include "charrnn/sampler.h"

#include <stddef.h>

typedef struct charrnn_rowsplit charrnn_rowsplit;

/* A closed split. NULL on allocation failure. */
charrnn_rowsplit *charrnn_rowsplit_create(void);
/* Accepts NULL. No helper may be inside charrnn_rowsplit_help. */
void charrnn_rowsplit_free(charrnn_rowsplit *rs);

/* Opens (helpers may join and stay) or closes (helpers return) the split. */
void charrnn_rowsplit_open(charrnn_rowsplit *rs);
void charrnn_rowsplit_close(charrnn_rowsplit *rs);
int charrnn_rowsplit_is_open(const charrnn_rowsplit *rs);
/* Threads inside charrnn_rowsplit_help now. */
int charrnn_rowsplit_helpers(const charrnn_rowsplit *rs);

/* Helper: computes posted blocks until the split is closed (returns at once
 * when it is closed already). */
void charrnn_rowsplit_help(charrnn_rowsplit *rs);

/* charrnn_infer_step (same contract and return value) with the products
 * shared with the helpers that are in charrnn_rowsplit_help (with none, or rs
 * NULL, it is charrnn_infer_step). */
int charrnn_infer_step_split(const charrnn_model *m, size_t n, charrnn_stream *const *streams,
                             charrnn_rowsplit *rs);

/* charrnn_stream_prefill (same contract) with the products shared with the
 * helpers of rs. */
size_t charrnn_stream_prefill_split(const charrnn_model *m, charrnn_stream *s, size_t max,
                                    charrnn_rowsplit *rs);

/* charrnn_stream_prefill_split that also takes a stream scoring its prime
 * (score_prime): the record of every prime character it scores is passed to
 * cb in order, as charrnn_stream_logprob would have returned it after each
 * step (its arrays valid during the call only); the decoder runs over the
 * positions in tiles, like the input products. cb returning non-zero stops
 * the prefill after that record's block (the stream stays consistent: it has
 * read what it reports). Other streams ignore cb (NULL allowed). A stream
 * that scores its whole text ends here (done) when its last record is read. */
size_t charrnn_stream_prefill_scored(const charrnn_model *m, charrnn_stream *s, size_t max,
                                     charrnn_rowsplit *rs,
                                     int (*cb)(void *ctx, const charrnn_logprob *rec), void *ctx);

/* charrnn_sample_run (same contract) stepping through rs. */
int charrnn_sample_run_split(charrnn_stream *s, const charrnn_model *m, charrnn_rowsplit *rs,
                             int (*cb)(void *ctx, const char *bytes, size_t len), void *ctx);

#endif

/* Training text: read once (memory-mapped), vocabulary, encoding to indices,
 * the contiguous train/val/test split and char-rnn's batching.
 *
 * Batching: a split of n characters gives nb = (n - 1) / (B*T) windows; stream
 * b reads characters [b*nb*T, (b+1)*nb*T] in order, so window j continues
 * window j-1 of the same stream and the carried hidden state is meaningful. */
#ifndef CHARRNN_DATA_H
#define CHARRNN_DATA_H

#include "charrnn/sha256.h"
#include "charrnn/vocab.h"

#include <stddef.h>
#include <stdint.h>

typedef struct charrnn_corpus {
    charrnn_vocab *vocab; /* owned */
    uint16_t *tokens;     /* (n) owned */
    size_t n;             /* characters (BOM excluded) */
    size_t bytes;         /* file size */
    char sha256[65];      /* hex digest of the file */
} charrnn_corpus;

/* Reads a UTF-8 text file. With vocab == NULL the vocabulary is built from the
 * text; otherwise the text is encoded with a copy of the given one (resume)
 * and characters outside it are an error. Errors: missing/unreadable file
 * (EIO/ENOTFOUND), empty (EINVAL), invalid UTF-8 with its byte offset (EFORMAT). */
int charrnn_corpus_load(const char *path, const charrnn_vocab *vocab, charrnn_corpus **out,
                        char *err, size_t errlen);
void charrnn_corpus_free(charrnn_corpus *c);

typedef struct charrnn_split {
    const uint16_t *tok; /* first character of the split */
    size_t n;            /* characters in the split */
    size_t nbatches;     /* windows of (B, T) */
    int B, T;
} charrnn_split;

/* Splits contiguously: first train_frac, next val_frac, the rest test.
 * The training split must hold at least one (B, T) window (ERANGE otherwise,
 * with the sizes named); val/test may be empty (nbatches 0). */
int charrnn_split_make(const charrnn_corpus *c, double train_frac, double val_frac, int B, int T,
                       charrnn_split out[3], char *err, size_t errlen);

/* Window j (0 <= j < nbatches) as time-major x and y (T*B each). */
void charrnn_split_batch(const charrnn_split *s, size_t j, uint16_t *x, uint16_t *y);

#endif

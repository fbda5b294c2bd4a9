/* UTF-8 decoding and the character vocabulary.
 *
 * A vocabulary is the sorted set of Unicode code points of a training text
 * (a plain ASCII file gives exactly char-rnn's byte vocabulary). Index i is the
 * i-th smallest code point. A leading UTF-8 BOM is not a character; CR and LF
 * are kept as they are. */
#ifndef CHARRNN_VOCAB_H
#define CHARRNN_VOCAB_H

#include <stddef.h>
#include <stdint.h>

#define CHARRNN_MAX_VOCAB 65536 /* upper bound on distinct characters */

typedef struct charrnn_vocab charrnn_vocab;

/* Decodes one UTF-8 code point from s[0..n). On success returns the number of
 * bytes consumed (1..4) and stores the code point; returns 0 on invalid or
 * truncated input (overlongs, surrogates and > U+10FFFF are invalid). */
int charrnn_utf8_decode(const uint8_t *s, size_t n, uint32_t *cp);
/* Encodes cp into out (at least 4 bytes); returns the byte count (1..4). */
int charrnn_utf8_encode(uint32_t cp, char *out);
/* Length of a leading BOM (3) or 0. */
size_t charrnn_utf8_bom_len(const uint8_t *s, size_t n);

/* Builds the vocabulary of a UTF-8 text. Invalid UTF-8 and U+0000 (NUL, which
 * no text, vocabulary or response may hold: they are C strings) fail with
 * CHARRNN_EFORMAT and a message naming the byte offset; an empty text fails
 * with CHARRNN_EINVAL. On error *out is NULL. */
int charrnn_vocab_build(const uint8_t *text, size_t n, charrnn_vocab **out, char *err,
                        size_t errlen);
/* Builds a vocabulary from an explicit list of code points (strictly
 * increasing Unicode scalar values other than U+0000). Used by the
 * checkpoint loader. */
int charrnn_vocab_from_codepoints(const uint32_t *cps, size_t n, charrnn_vocab **out, char *err,
                                  size_t errlen);
/* A copy of v that the caller owns (a model and a corpus each own theirs).
 * CHARRNN_ENOMEM leaves *out NULL. */
int charrnn_vocab_copy(const charrnn_vocab *v, charrnn_vocab **out, char *err, size_t errlen);
void charrnn_vocab_free(charrnn_vocab *v);

size_t charrnn_vocab_size(const charrnn_vocab *v);
uint32_t charrnn_vocab_codepoint(const charrnn_vocab *v, size_t index);
/* Index of a code point, or -1 when it is not in the vocabulary. */
int charrnn_vocab_index(const charrnn_vocab *v, uint32_t cp);

/* Encodes UTF-8 text into indices. out must hold n entries (enough for any n
 * bytes); *count receives the number of characters. Fails with EFORMAT on
 * invalid UTF-8 or U+0000 (offset named) or EVOCAB naming the characters outside the
 * vocabulary. If skip_bom, a leading BOM is skipped. */
int charrnn_vocab_encode(const charrnn_vocab *v, const uint8_t *text, size_t n, int skip_bom,
                         uint16_t *out, size_t *count, char *err, size_t errlen);

#endif

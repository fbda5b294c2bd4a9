/* The vocabulary's JSON form: an array of one-character strings in index
 * order, as the checkpoint's "vocab" metadata stores it (libcharrnn, not the
 * core library: it needs cJSON). */
#ifndef CHARRNN_VOCAB_JSON_H
#define CHARRNN_VOCAB_JSON_H

#include "charrnn/vocab.h"

#include <stddef.h>

/* The vocabulary as a JSON array of one-character strings (the checkpoint's
 * "vocab" metadata). Caller frees with free(). NULL on allocation failure. */
char *charrnn_vocab_to_json(const charrnn_vocab *v);
/* Parses the JSON array form; every element must be a string of exactly one
 * code point, strictly increasing. */
int charrnn_vocab_from_json(const char *json, charrnn_vocab **out, char *err, size_t errlen);

#endif

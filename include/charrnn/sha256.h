/* SHA-256 (FIPS 180-4): the training file's digest in checkpoints and the
 * served file's digest in the model store. */
#ifndef CHARRNN_SHA256_H
#define CHARRNN_SHA256_H

#include <stddef.h>

/* SHA-256 of a buffer as lowercase hex (65 bytes with NUL). */
void charrnn_sha256_hex(const void *data, size_t len, char out[65]);

#endif

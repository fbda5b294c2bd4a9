/* What the ranks of a data-parallel run must agree on, checked collectively
 * (every rank calls these at the same point of the run). On a disagreement
 * every rank returns the same error, naming the ranks and their hosts. */
#ifndef CHARRNN_DIST_CHECK_H
#define CHARRNN_DIST_CHECK_H

#include "charrnn/comm.h"
#include "charrnn/vocab.h"

#include <stddef.h>

/* Before the first step: the same training file (sha256), vocabulary,
 * options (`options`: "name=value" words, at most 511 bytes; the first that
 * differs is named), starting parameters and threads per rank.
 * CHARRNN_EINVAL on a mismatch, CHARRNN_EIO on a transport failure. */
int charrnn_dist_check_start(const charrnn_comm *c, const char *sha256, const charrnn_vocab *v,
                             const char *options, const float *params, size_t nparams, int threads,
                             char *err, size_t errlen);

/* The parameters are the same bits on every rank (after iteration iter);
 * CHARRNN_EFORMAT on a mismatch, CHARRNN_EIO on a transport failure. */
int charrnn_dist_check_params(const charrnn_comm *c, const float *params, size_t nparams, long iter,
                              char *err, size_t errlen);

#endif

/* Umbrella header for libcharrnn: every public header of include/charrnn/
 * (the headers test fails when one is missing here). The math (charrnn_core)
 * is status, rng, vocab, model, layers, optim, trainer, sampler (with the
 * sampling parameters and the prefill of a prime), logprob, lowp, rowsplit,
 * stream_loss, comm, regex (the sampler's regex constraint) and inspect; the
 * rest is libcharrnn's formats and orchestration on
 * top of it. */
#ifndef CHARRNN_CHARRNN_H
#define CHARRNN_CHARRNN_H
#include "charrnn/checkpoint.h"
#include "charrnn/clock.h"
#include "charrnn/comm.h"
#include "charrnn/data.h"
#include "charrnn/evaluate.h"
#include "charrnn/fileio.h"
#include "charrnn/inspect.h"
#include "charrnn/layers.h"
#include "charrnn/logprob.h"
#include "charrnn/lossplot.h"
#include "charrnn/lowp.h"
#include "charrnn/model.h"
#include "charrnn/optim.h"
#include "charrnn/regex.h"
#include "charrnn/rng.h"
#include "charrnn/rowsplit.h"
#include "charrnn/safetensors.h"
#include "charrnn/sampler.h"
#include "charrnn/session.h"
#include "charrnn/sha256.h"
#include "charrnn/status.h"
#include "charrnn/stream_loss.h"
#include "charrnn/trainer.h"
#include "charrnn/vocab.h"
#include "charrnn/vocab_json.h"
#endif

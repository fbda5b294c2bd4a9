/* Umbrella header for libcharrnn. */
#ifndef CHARRNN_CHARRNN_H
#define CHARRNN_CHARRNN_H
#include "charrnn/checkpoint.h"
#include "charrnn/layers.h"
#include "charrnn/model.h"
#include "charrnn/optim.h"
#include "charrnn/rng.h"
#include "charrnn/safetensors.h"
#include "charrnn/sampler.h"
#include "charrnn/status.h"
#include "charrnn/trainer.h"
#include "charrnn/vocab.h"
#endif

/* Set-up shared by the harnesses that sample after parsing (fuzz_request,
 * fuzz_completion): the daemon's configuration with a small length limit, and
 * a small fixed model over a mixed ASCII / non-ASCII vocabulary whose weights
 * are a fixed non-zero pattern, so sampling is cheap and not degenerate.
 * Failures abort: they happen before any input is fuzzed. */
#ifndef CHARRNN_FUZZ_MODEL_H
#define CHARRNN_FUZZ_MODEL_H

#include "charrnn/model.h"
#include "charrnn/vocab.h"
#include "config.h"

#include <stdint.h>
#include <stdlib.h>

/* --max-length and --max-prime both set to max (a decimal string). */
static inline void fuzz_config(serve_config *cfg, const char *max)
{
    char err[256];
    char *args[] = {"fuzz", "--max-length", (char *)max, "--max-prime", (char *)max, NULL};
    if (serve_config_parse(cfg, 5, args, err, sizeof err) != 0)
        abort();
}

/* A model of the given cell and layers with 8 hidden units per layer. */
static inline charrnn_model *fuzz_model(charrnn_cell cell, int layers)
{
    char err[256];
    static const char text[] =
        "the quick brown fox jumps over the lazy dog\n\xc3\xa9\xce\xbb\xe2\x82\xac";
    charrnn_vocab *v = NULL;
    if (charrnn_vocab_build((const uint8_t *)text, sizeof text - 1, &v, err, sizeof err))
        abort();
    charrnn_config mc = {cell, (int)charrnn_vocab_size(v), 8, layers};
    charrnn_model *model = NULL;
    if (charrnn_model_create(&mc, v, &model, err, sizeof err))
        abort();
    for (size_t i = 0; i < model->num_params; i++)
        model->params[i] = (float)((int)(i * 2654435761u % 17) - 8) * 0.05f;
    return model;
}

#endif

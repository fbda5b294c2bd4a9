/* charrnn checkpoints: a safetensors file holding the model's parameters
 * (PyTorch names) and the metadata of docs/checkpoint-format.md, optionally with the training
 * state for exact resume (tensors "optim.m", "optim.v" (num_params) and
 * "state.carry" (the carried hidden state), and metadata "resume": a JSON
 * object the training session writes and reads (iteration, optimizer steps,
 * RNG state, batch and sequence size, best validation loss, loss history).
 *
 * Required metadata: format = "charrnn", format_version = "1", cell,
 * num_layers, hidden_size, vocab (JSON array of one-character strings),
 * train (JSON object as a string).
 *
 * Serving checkpoints with bf16 or int8 matrices (charrnn/lowp.h) have
 * format_version = "2" and metadata dtype = "bf16" or "int8" (int8 also
 * int8_scale = "row"); the same tensor names and shapes, the reduced matrices
 * as BF16 or I8, and for int8 an F32 tensor NAME.scale ([rows]) per reduced
 * matrix NAME. They hold no training state. */
#ifndef CHARRNN_CHECKPOINT_H
#define CHARRNN_CHECKPOINT_H

#include "charrnn/model.h"
#include "charrnn/safetensors.h"

#define CHARRNN_FORMAT_VERSION "1"

/* Optional training state saved alongside the parameters. */
typedef struct charrnn_resume_state {
    const float *m, *v; /* (num_params) optimizer moments (m may be NULL for RMSProp) */
    const float *carry; /* carried hidden state, carry_len floats */
    size_t carry_len;
    const char *json; /* resume metadata (JSON object) */
} charrnn_resume_state;

/* Saves atomically. train_json is the "train" metadata (a JSON object; "{}" if
 * NULL). resume may be NULL for a slim, serving-only file; it must be NULL for
 * a bf16 or int8 model (CHARRNN_EINVAL), which is saved in its dtype. */
int charrnn_checkpoint_save(const char *path, const charrnn_model *m, const char *train_json,
                            const charrnn_resume_state *resume, char *err, size_t errlen);

/* Builds and validates a model from a parsed file: format and version,
 * dtype, config ranges, vocab, every parameter present with the exact dtype
 * and shape, no NaN or Inf. Unknown tensors other than optim.* / state.* (f32
 * files only) are rejected. The model has the file's dtype. */
int charrnn_checkpoint_model(const charrnn_st_file *f, charrnn_model **out, char *err,
                             size_t errlen);

/* Reads, validates and builds the model in one call. On error *out is NULL. */
int charrnn_checkpoint_load(const char *path, charrnn_model **out, char *err, size_t errlen);

#endif

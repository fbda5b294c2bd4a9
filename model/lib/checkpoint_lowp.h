/* The bf16 and int8 serving checkpoints (charrnn/lowp.h), for checkpoint.c:
 * metadata, tensor list for saving, strict loading. Private to libcharrnn.
 *
 * A reduced file has format_version "2" and metadata dtype = "bf16" or
 * "int8" (and for int8 int8_scale = "row"); an f32 file stays version "1"
 * (dtype absent or "f32"), so older readers take every f32 file and refuse
 * the others by their version. Tensors: those of the f32 layout with the
 * same names and shapes, the reduced matrices as BF16 or I8, the rest F32;
 * for int8 each reduced matrix NAME has an F32 tensor NAME.scale of shape
 * [rows]. No optimizer or training state. */
#ifndef CHARRNN_CHECKPOINT_LOWP_H
#define CHARRNN_CHECKPOINT_LOWP_H

#include "charrnn/model.h"
#include "charrnn/safetensors.h"

#define CHARRNN_FORMAT_VERSION_LOWP "2"
#define CHARRNN_SCALE_SUFFIX ".scale"

/* The dtype a file says it holds, from format_version and dtype metadata;
 * CHARRNN_EFORMAT with a message for anything else. */
int charrnn_ckpt_dtype(const charrnn_st_file *f, charrnn_dtype *out, char *err, size_t errlen);

/* Tensors of a reduced model in file order (F32 first, then BF16 or I8, so
 * every tensor starts aligned to its element size). names holds the .scale
 * names (CHARRNN_MAX_TENSORS entries). Returns the count. */
size_t charrnn_ckpt_lowp_tensors(const charrnn_model *m, charrnn_st_tensor *t,
                                 char (*names)[CHARRNN_TENSOR_NAME_MAX + 8]);

/* Checks a file's tensors against the layout of cfg stored in dt, before
 * anything is allocated for the model: every tensor the model needs present
 * with its dtype and shape (int8: with its .scale), and nothing else (an f32
 * file may also hold optim.* and state.* resume state, all F32). The reader
 * (charrnn_st_parse) has already checked that each tensor's bytes lie in the
 * file and match its shape, so a file that passes holds every byte the model
 * will take: what a file makes the loader allocate is bounded by its size.
 * The sizes cannot overflow: cfg is within charrnn_config_check's ranges,
 * where the largest tensor has 4 * 8192 * 65536 = 2^31 elements. */
int charrnn_ckpt_check_tensors(const charrnn_st_file *f, const charrnn_config *cfg,
                               charrnn_dtype dt, char *err, size_t errlen);

/* Copies F32 tensor t (name in messages) to dst, refusing NaN and Inf. */
int charrnn_ckpt_copy_finite(const charrnn_st_tensor *t, const char *name, float *dst, char *err,
                             size_t errlen);

/* Builds a reduced model from a file whose dtype is dt (not f32) that passed
 * charrnn_ckpt_check_tensors: no NaN or Inf (bf16), no -128 (int8), scales
 * finite and >= 0. Takes ownership of vocab on success. */
int charrnn_ckpt_lowp_model(const charrnn_st_file *f, const charrnn_config *cfg,
                            charrnn_vocab *vocab, charrnn_dtype dt, charrnn_model **out, char *err,
                            size_t errlen);

#endif

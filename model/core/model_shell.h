/* The opening every model constructor shares (model.c's f32 models, lowp.c's
 * bf16/int8 ones): the configuration and vocabulary checked, the struct
 * allocated with its config, dtype and parameter layout; no parameters yet.
 * The vocabulary is not attached: the constructor does that on success (the
 * model owns it then). Private to libcharrnn_core. */
#ifndef CHARRNN_MODEL_SHELL_H
#define CHARRNN_MODEL_SHELL_H

#include "charrnn/model.h"

#include <stddef.h>

int charrnn_model_shell(const charrnn_config *cfg, const charrnn_vocab *vocab, charrnn_dtype dt,
                        charrnn_model **out, char *err, size_t errlen);

#endif

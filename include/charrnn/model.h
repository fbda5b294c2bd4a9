/* The network: configuration, the parameter block and its named tensors.
 *
 * Parameter names, shapes and gate order match PyTorch's nn.LSTM / nn.GRU /
 * nn.RNN state dict (rnn.weight_ih_l{k} (G*H, D), rnn.weight_hh_l{k} (G*H, H),
 * rnn.bias_ih_l{k} (G*H), rnn.bias_hh_l{k} (G*H); gates i,f,g,o for LSTM and
 * r,z,n for GRU) plus decoder.weight (V, H) and decoder.bias (V), so any
 * checkpoint loads into PyTorch unchanged. All parameters live in one
 * contiguous float block in that order (layer 0's four tensors, layer 1's, ...,
 * then the decoder), so gradients and optimizer moments share the layout. */
#ifndef CHARRNN_MODEL_H
#define CHARRNN_MODEL_H

#include "charrnn/rng.h"
#include "charrnn/vocab.h"

#include <stddef.h>

typedef enum charrnn_cell {
    CHARRNN_CELL_LSTM = 0,
    CHARRNN_CELL_GRU,
    CHARRNN_CELL_RNN
} charrnn_cell;

#define CHARRNN_MAX_LAYERS 16
#define CHARRNN_MAX_HIDDEN 8192
#define CHARRNN_MAX_TENSORS (4 * CHARRNN_MAX_LAYERS + 2)
#define CHARRNN_TENSOR_NAME_MAX 40
/* The largest |pre-activation| (gate input or logit) a loaded model may be
 * able to reach (charrnn_model_activation_bound). Trained models stay below
 * 1e3; 1e30 leaves eight orders of magnitude below FLT_MAX (3.4e38) for what
 * is done to a logit in float (logit_bias, a repetition penalty of 10, the
 * difference of two logits in a log-probability), so no logit, score or
 * log-probability of a loaded model is ever Inf or NaN. */
#define CHARRNN_MAX_ACTIVATION 1e30

typedef struct charrnn_config {
    charrnn_cell cell;
    int vocab_size;  /* V */
    int hidden_size; /* H */
    int num_layers;  /* L */
} charrnn_config;

/* One named tensor inside the parameter block. */
typedef struct charrnn_tensor_info {
    char name[CHARRNN_TENSOR_NAME_MAX];
    size_t offset; /* in floats, from the start of the block */
    size_t numel;
    int ndim; /* 1 or 2 */
    size_t shape[2];
} charrnn_tensor_info;

/* Views into one layer's parameters (or gradients: same layout). */
typedef struct charrnn_layer_params {
    float *w_ih; /* (G*H, D) D = V for layer 0, else H */
    float *w_hh; /* (G*H, H) */
    float *b_ih; /* (G*H) */
    float *b_hh; /* (G*H) */
} charrnn_layer_params;

typedef struct charrnn_param_views {
    charrnn_layer_params layer[CHARRNN_MAX_LAYERS];
    float *dec_w; /* (V, H) */
    float *dec_b; /* (V) */
} charrnn_param_views;

/* How the matrices that the inference step multiplies are stored (see
 * charrnn/lowp.h): f32 (the training format), bf16 or int8 with a float
 * scale per row (serving checkpoints). */
typedef enum charrnn_dtype {
    CHARRNN_DTYPE_F32 = 0,
    CHARRNN_DTYPE_BF16,
    CHARRNN_DTYPE_INT8
} charrnn_dtype;

/* A matrix as the inference step reads it: (R, D) row-major in the model's
 * dtype. W[r][c] = w[r][c] (f32), the float with bits w[r][c] << 16 (bf16),
 * w[r][c] * scale[r] (int8). */
typedef struct charrnn_matrix {
    const void *w;      /* (R, D) float, uint16_t or int8_t */
    const float *scale; /* (R) for int8, else NULL */
} charrnn_matrix;

typedef struct charrnn_model {
    charrnn_config cfg;
    charrnn_vocab *vocab; /* owned */
    /* f32: (num_params) owned, 64-byte aligned, the whole layout. bf16/int8:
     * only the tensors kept in f32 (biases, rnn.weight_ih_l0), and the views
     * of p of the reduced matrices are NULL: use the matrices below. */
    float *params;
    size_t num_params;     /* parameters of the network, whatever the dtype */
    charrnn_param_views p; /* pointers into params */
    int num_tensors;
    charrnn_tensor_info tensors[CHARRNN_MAX_TENSORS];
    charrnn_dtype dtype;
    /* The step's matrices in dtype (for f32 they point into params).
     * w_ih[0] is unused: layer 0's input is a column gather from p. */
    charrnn_matrix w_ih[CHARRNN_MAX_LAYERS], w_hh[CHARRNN_MAX_LAYERS], dec_w;
    void *lowp; /* owned storage of the reduced matrices (NULL for f32) */
    size_t lowp_bytes;
} charrnn_model;

/* Gates per cell: 4 (LSTM), 3 (GRU), 1 (RNN). */
int charrnn_cell_gates(charrnn_cell cell);
/* "lstm", "gru", "rnn". */
const char *charrnn_cell_name(charrnn_cell cell);
/* Parses a cell name; returns CHARRNN_EINVAL on an unknown name. */
int charrnn_cell_parse(const char *name, charrnn_cell *out);

/* Validates a configuration (ranges: V 1..65536, H 1..8192, L 1..16). */
int charrnn_config_check(const charrnn_config *cfg, char *err, size_t errlen);

/* Fills the tensor table of cfg and returns the total parameter count. */
size_t charrnn_param_layout(const charrnn_config *cfg, charrnn_tensor_info *tensors,
                            int *num_tensors);
/* Sets views to the tensors of cfg inside block (parameters or gradients). */
void charrnn_param_views_bind(const charrnn_config *cfg, float *block, charrnn_param_views *views);

/* Creates a model with zeroed parameters; takes ownership of vocab on success
 * (on failure vocab is left to the caller). cfg->vocab_size must equal the
 * vocabulary's size. */
int charrnn_model_create(const charrnn_config *cfg, charrnn_vocab *vocab, charrnn_model **out,
                         char *err, size_t errlen);
/* How fresh parameters are drawn: every parameter uniform in [-range, range),
 * then, for LSTM, the forget-gate block of each bias_ih (rows H..2H) set to
 * forget_bias unless that is NaN (left as drawn). range 0 means 1/sqrt(H),
 * PyTorch's default for nn.LSTM/GRU/RNN. */
typedef struct charrnn_init {
    float range;
    float forget_bias;
} charrnn_init;

/* The default initialisation: range 0.08 and forget_bias 0 (see
 * charrnn_init_defaults in model.c for the measurement that chose it). */
charrnn_init charrnn_init_defaults(void);
/* Checks an initialisation: range 0 or in (0, 10], forget_bias NaN (left as
 * drawn) or in [-100, 100]. CHARRNN_ERANGE with a message in err otherwise. */
int charrnn_init_check(const charrnn_init *init, char *err, size_t errlen);
/* The half-width actually used for hidden size H (resolves range 0). */
float charrnn_init_range(const charrnn_init *init, int hidden_size);
/* Draws the parameters as init says (init must pass charrnn_init_check). */
void charrnn_model_init_with(charrnn_model *m, charrnn_rng *rng, const charrnn_init *init);
/* charrnn_model_init_with the defaults. */
void charrnn_model_init(charrnn_model *m, charrnn_rng *rng);
void charrnn_model_free(charrnn_model *m);
/* Tensor of the given name, or NULL. */
const charrnn_tensor_info *charrnn_model_tensor(const charrnn_model *m, const char *name);

/* 64-byte-aligned zeroed float allocation (free with free()). NULL on failure. */
float *charrnn_alloc_floats(size_t n);

#endif

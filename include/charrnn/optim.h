/* Optimizers and gradient clipping over the flat parameter block.
 *
 * Adam matches torch.optim.Adam (bias-corrected, eps added after the square
 * root); RMSProp matches torch.optim.RMSprop (v = a*v + (1-a)*g^2,
 * p -= lr*g/(sqrt(v)+eps)) with char-rnn's default decay a = 0.95. */
#ifndef CHARRNN_OPTIM_H
#define CHARRNN_OPTIM_H

#include <stddef.h>
#include <stdint.h>

typedef enum charrnn_optimizer { CHARRNN_OPT_ADAM = 0, CHARRNN_OPT_RMSPROP } charrnn_optimizer;

typedef struct charrnn_optim_config {
    charrnn_optimizer kind;
    float beta1; /* Adam, default 0.9 */
    float beta2; /* Adam, default 0.999 */
    float alpha; /* RMSProp decay, default 0.95 */
    float eps;   /* default 1e-8 */
} charrnn_optim_config;

/* The defaults above for the given kind. */
charrnn_optim_config charrnn_optim_defaults(charrnn_optimizer kind);
const char *charrnn_optim_name(charrnn_optimizer kind);
int charrnn_optim_parse(const char *name, charrnn_optimizer *out);

/* One update. m and v have num_params entries (m unused by RMSProp); step is the
 * 1-based number of this update (Adam's bias correction). */
void charrnn_optim_update(const charrnn_optim_config *cfg, float *params, const float *grads,
                          float *m, float *v, size_t n, float lr, uint64_t step);

/* char-rnn's clipping: clamps every gradient element to [-clip, clip]
 * (torch.nn.utils.clip_grad_value_). clip <= 0 disables it. */
void charrnn_clip_grad_value(float *grads, size_t n, float clip);

#endif

/* Adam and RMSProp over the flat parameter block, and value clipping. */
#include "charrnn/optim.h"

#include "charrnn/status.h"

#include <math.h>
#include <string.h>

charrnn_optim_config charrnn_optim_defaults(charrnn_optimizer kind)
{
    charrnn_optim_config c = {kind, 0.9f, 0.999f, 0.95f, 1e-8f};
    return c;
}

const char *charrnn_optim_name(charrnn_optimizer kind)
{
    return kind == CHARRNN_OPT_RMSPROP ? "rmsprop" : "adam";
}

int charrnn_optim_parse(const char *name, charrnn_optimizer *out)
{
    if (name && strcmp(name, "adam") == 0)
        *out = CHARRNN_OPT_ADAM;
    else if (name && strcmp(name, "rmsprop") == 0)
        *out = CHARRNN_OPT_RMSPROP;
    else
        return CHARRNN_EINVAL;
    return CHARRNN_OK;
}

void charrnn_optim_update(const charrnn_optim_config *cfg, float *params, const float *grads,
                          float *m, float *v, size_t n, float lr, uint64_t step)
{
    if (cfg->kind == CHARRNN_OPT_ADAM) {
        const float b1 = cfg->beta1, b2 = cfg->beta2, eps = cfg->eps;
        /* As torch.optim.Adam: denom = sqrt(v)/sqrt(1-b2^t) + eps, step = lr/(1-b1^t). */
        const float bc2_sqrt = (float)sqrt(1.0 - pow((double)b2, (double)step));
        const float step_size = (float)((double)lr / (1.0 - pow((double)b1, (double)step)));
        for (size_t i = 0; i < n; i++) {
            float g = grads[i];
            m[i] = b1 * m[i] + (1.0f - b1) * g;
            v[i] = b2 * v[i] + (1.0f - b2) * g * g;
            params[i] -= step_size * m[i] / (sqrtf(v[i]) / bc2_sqrt + eps);
        }
    } else {
        const float a = cfg->alpha, eps = cfg->eps;
        for (size_t i = 0; i < n; i++) {
            float g = grads[i];
            v[i] = a * v[i] + (1.0f - a) * g * g;
            params[i] -= lr * g / (sqrtf(v[i]) + eps);
        }
    }
}

void charrnn_clip_grad_value(float *grads, size_t n, float clip)
{
    if (!(clip > 0.0f))
        return;
    for (size_t i = 0; i < n; i++)
        grads[i] = grads[i] > clip ? clip : grads[i] < -clip ? -clip : grads[i];
}

/* The network in training: one allocation plan for a (B, T) window, dropout
 * between layers, carried hidden state, gradients and optimizer moments.
 *
 * Data parallelism: the batch's B streams are split into shards (contiguous
 * stream ranges) that run forward and backward on their own threads with
 * their own activations, each GEMM single-threaded. The recurrent GEMMs of a
 * window are small (B rows) and many (T per layer and direction), so threads
 * inside each GEMM pay a wake-up and a barrier per call; whole shards only
 * meet once per window, to sum gradients (in a fixed order: deterministic).
 *
 * Across processes (set_layout), each process runs a consecutive range of
 * the batch's shards and the same left fold over shards continues along the
 * chain of processes (charrnn_comm_chain_sum), so the sum has the same bits
 * however the shards are placed. */
#include "charrnn/trainer.h"

#include "charrnn/comm.h"
#include "charrnn/layers.h"
#include "charrnn/status.h"
#include "gemm.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SHARDS 8 /* per process */
#define MAX_TOTAL_SHARDS 65536

typedef struct shard {
    struct charrnn_trainer *tr;
    int b0, B; /* streams [b0, b0 + B) of the batch */
    charrnn_layer_acts acts[CHARRNN_MAX_LAYERS];
    float *drop_x[CHARRNN_MAX_LAYERS]; /* (T*B, H) dropped-out input of layer l >= 1 */
    uint8_t *mask[CHARRNN_MAX_LAYERS]; /* (T*B*H) this shard's rows of the masks */
    float *dx;                         /* (T*B, H) gradient w.r.t. a layer's input */
    float *probs;                      /* (T*B, V) */
    float *grads; /* (num_params): tr->grads for the batch's first shard, own otherwise */
    int own;      /* grads is this shard's own allocation */
    charrnn_param_views g;
    uint16_t *x, *y; /* (T*B) this shard's tokens, time-major */
    float loss;
    charrnn_mode mode;
} shard;

struct charrnn_trainer {
    charrnn_model *m;
    int B, T;
    float dropout;
    charrnn_precision precision; /* of the layers' products (charrnn_trainer_set_precision) */
    charrnn_optim_config opt;
    uint64_t steps;
    charrnn_rng rng;

    float *grads, *m1, *m2; /* (num_params) each */
    int nshards;
    shard sh[MAX_SHARDS];
    const charrnn_comm *comm; /* NULL: this process runs every shard */
    int total_shards;         /* shards of the batch over all processes */
    int first_shard;          /* global index of sh[0] */
    float *all_losses;        /* (total_shards) with comm */
    int comm_failed;
    /* Backward progress of the local shards, so that the ranks sum a block of
     * gradients while the shards compute the blocks below (overlap). */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stage[MAX_SHARDS];                  /* blocks of gradients a shard has finished */
    uint8_t *mask_full[CHARRNN_MAX_LAYERS]; /* (T*B*H) dropout masks of the whole batch */
    float *probs;                           /* (T*B, V) the whole batch, assembled on request */
    float *carry[2];                        /* per mode: layers x {h, c} x (B, H) */
    size_t carry_len;
    int have_forward;
};

static size_t carry_stride(const charrnn_trainer *tr)
{
    return (size_t)(tr->m->cfg.cell == CHARRNN_CELL_LSTM ? 2 : 1) * tr->B * tr->m->cfg.hidden_size;
}

static void shard_free(shard *s)
{
    for (int l = 0; l < CHARRNN_MAX_LAYERS; l++) {
        charrnn_layer_acts *a = &s->acts[l];
        free(a->gates), free(a->dg), free(a->h), free(a->dh), free(a->dnext), free(a->c);
        free(a->hn), free(a->dg_hh), free(a->emb), free(a->demb), free(a->wpack);
        free(a->bf16_ih), free(a->bf16_hh);
        free(s->drop_x[l]), free(s->mask[l]);
    }
    free(s->dx), free(s->probs), free(s->x), free(s->y);
    if (s->own)
        free(s->grads);
    memset(s, 0, sizeof *s);
}

/* Allocates one shard's activations; returns 0 on allocation failure. */
static int shard_alloc(shard *s, const charrnn_trainer *tr)
{
    const charrnn_config *c = &tr->m->cfg;
    const size_t N = (size_t)s->B * tr->T, H = (size_t)c->hidden_size, V = (size_t)c->vocab_size;
    const size_t GH = (size_t)charrnn_cell_gates(c->cell) * H, B = (size_t)s->B;
    int ok = 1;
#define ALLOC(ptr, n) ok = ok && ((ptr) = charrnn_alloc_floats(n)) != NULL
    ALLOC(s->dx, N * H);
    ALLOC(s->probs, N * V);
    if (s->own)
        ALLOC(s->grads, tr->m->num_params);
    for (int l = 0; l < c->num_layers && ok; l++) {
        charrnn_layer_acts *a = &s->acts[l];
        ALLOC(a->gates, N * GH);
        ALLOC(a->dg, N * GH);
        ALLOC(a->h, N * H + B * H);
        ALLOC(a->dh, N * H);
        ALLOC(a->dnext, 2 * B * H);
        if (tr->precision == CHARRNN_PRECISION_BF16) { /* its own packs instead of wpack */
            const size_t ih = charrnn_layer_bf16_words((int)GH, l ? (int)H : 0);
            const size_t hh = charrnn_layer_bf16_words((int)GH, (int)H);
            ok = ok && (a->bf16_hh = malloc(hh * sizeof(uint32_t))) != NULL;
            ok = ok && (!l || (a->bf16_ih = malloc(ih * sizeof(uint32_t))) != NULL);
        } else {
            ALLOC(a->wpack, charrnn_layer_wpack_floats(charrnn_cell_gates(c->cell), (int)H));
        }
        if (c->cell == CHARRNN_CELL_LSTM)
            ALLOC(a->c, N * H + B * H);
        if (c->cell == CHARRNN_CELL_GRU) {
            ALLOC(a->hn, N * H);
            ALLOC(a->dg_hh, N * GH);
        }
        if (l == 0) {
            ALLOC(a->emb, V * GH);
            ALLOC(a->demb, V * GH);
        }
        if (l > 0 && tr->dropout > 0.0f) {
            ALLOC(s->drop_x[l], N * H);
            ok = ok && (s->mask[l] = malloc(N * H)) != NULL;
        }
    }
#undef ALLOC
    ok = ok && (s->x = calloc(N, sizeof *s->x)) && (s->y = calloc(N, sizeof *s->y));
    return ok;
}

int charrnn_trainer_create(charrnn_model *m, int batch, int seq, float dropout,
                           const charrnn_optim_config *opt, uint64_t seed, charrnn_trainer **out,
                           char *err, size_t errlen)
{
    *out = NULL;
    if (m->dtype != CHARRNN_DTYPE_F32) /* training keeps f32 masters */
        return charrnn_fail(err, errlen, CHARRNN_EINVAL,
                            "a bf16 or int8 serving model cannot be trained or evaluated; "
                            "widen it to f32 first");
    if (batch < 1 || seq < 1 || (size_t)batch * seq > (1u << 24))
        return charrnn_fail(err, errlen, CHARRNN_ERANGE, "batch %d x seq %d out of range", batch,
                            seq);
    if (!(dropout >= 0.0f && dropout < 1.0f))
        return charrnn_fail(err, errlen, CHARRNN_ERANGE, "dropout %g not in [0, 1)",
                            (double)dropout);
    charrnn_trainer *tr = calloc(1, sizeof *tr);
    if (!tr)
        return charrnn_fail(err, errlen, CHARRNN_ENOMEM, "out of memory");
    tr->m = m, tr->B = batch, tr->T = seq, tr->dropout = dropout, tr->opt = *opt;
    pthread_mutex_init(&tr->mu, NULL);
    pthread_cond_init(&tr->cv, NULL);
    charrnn_rng_seed(&tr->rng, seed);
    const charrnn_config *c = &m->cfg;
    const size_t N = (size_t)batch * seq, H = (size_t)c->hidden_size;
    int ok = (tr->grads = charrnn_alloc_floats(m->num_params)) &&
        (tr->m1 = charrnn_alloc_floats(m->num_params)) &&
        (tr->m2 = charrnn_alloc_floats(m->num_params)) &&
        (tr->probs = charrnn_alloc_floats(N * (size_t)c->vocab_size));
    tr->carry_len = carry_stride(tr) * c->num_layers;
    ok = ok && (tr->carry[0] = charrnn_alloc_floats(tr->carry_len)) &&
        (tr->carry[1] = charrnn_alloc_floats(tr->carry_len));
    for (int l = 1; ok && l < c->num_layers && dropout > 0.0f; l++)
        ok = (tr->mask_full[l] = malloc(N * H)) != NULL;
    tr->nshards = 1;
    tr->sh[0] = (shard){.tr = tr, .b0 = 0, .B = batch, .grads = tr->grads};
    tr->total_shards = 1;
    ok = ok && shard_alloc(&tr->sh[0], tr);
    if (!ok) {
        charrnn_trainer_free(tr);
        return charrnn_fail(err, errlen, CHARRNN_ENOMEM, "out of memory for the activations");
    }
    charrnn_param_views_bind(c, tr->grads, &tr->sh[0].g);
    *out = tr;
    return CHARRNN_OK;
}

int charrnn_trainer_set_shards(charrnn_trainer *tr, int n, char *err, size_t errlen)
{
    if (n < 1)
        n = 1;
    if (n > MAX_SHARDS)
        n = MAX_SHARDS;
    if (n > tr->B)
        n = tr->B;
    return charrnn_trainer_set_layout(tr, NULL, n, 0, n, err, errlen);
}

/* The one partition of the batch, whatever the placement: shard g of S gets
 * streams [g*B/S, (g+1)*B/S). */
static int shard_begin(int g, int total, int B)
{
    return (int)((long)g * B / total);
}

int charrnn_trainer_set_layout(charrnn_trainer *tr, const charrnn_comm *comm, int total, int first,
                               int n, char *err, size_t errlen)
{
    if (n < 1 || n > MAX_SHARDS || first < 0 || total > MAX_TOTAL_SHARDS || first + n > total ||
        (!comm && (first != 0 || n != total)))
        return charrnn_fail(err, errlen, CHARRNN_EINVAL,
                            "bad layout: shards %d..%d of %d (at most %d per process)", first,
                            first + n - 1, total, MAX_SHARDS);
    if (total > tr->B)
        return charrnn_fail(err, errlen, CHARRNN_ERANGE,
                            "a batch of %d streams cannot be split into %d shards", tr->B, total);
    float *losses = NULL;
    if (comm && !(losses = malloc((size_t)total * sizeof *losses)))
        return charrnn_fail(err, errlen, CHARRNN_ENOMEM, "out of memory");
    for (int k = 0; k < tr->nshards; k++)
        shard_free(&tr->sh[k]);
    free(tr->all_losses);
    tr->all_losses = losses;
    tr->comm = comm, tr->total_shards = total, tr->first_shard = first, tr->nshards = n;
    int ok = 1;
    for (int k = 0; k < n; k++) {
        const int g = first + k, b0 = shard_begin(g, total, tr->B);
        const int b1 = shard_begin(g + 1, total, tr->B);
        tr->sh[k] =
            (shard){.tr = tr, .b0 = b0, .B = b1 - b0, .grads = g ? NULL : tr->grads, .own = g != 0};
        ok = ok && shard_alloc(&tr->sh[k], tr);
        if (ok)
            charrnn_param_views_bind(&tr->m->cfg, tr->sh[k].grads, &tr->sh[k].g);
    }
    if (!ok) {
        for (int k = 0; k < n; k++)
            shard_free(&tr->sh[k]);
        free(tr->all_losses);
        tr->all_losses = NULL, tr->comm = NULL, tr->total_shards = 1, tr->first_shard = 0;
        tr->nshards = 1;
        tr->sh[0] = (shard){.tr = tr, .b0 = 0, .B = tr->B, .grads = tr->grads};
        if (shard_alloc(&tr->sh[0], tr))
            charrnn_param_views_bind(&tr->m->cfg, tr->grads, &tr->sh[0].g);
        return charrnn_fail(err, errlen, CHARRNN_ENOMEM, "out of memory for %d shards", n);
    }
    tr->have_forward = 0;
    return CHARRNN_OK;
}

static const char *const precision_names[] = {"f32", "bf16"};

int charrnn_precision_parse(const char *s, charrnn_precision *out)
{
    for (int k = 0; k < 2; k++)
        if (s && !strcmp(s, precision_names[k])) {
            *out = (charrnn_precision)k;
            return 0;
        }
    return -1;
}

const char *charrnn_precision_name(charrnn_precision p)
{
    return precision_names[p == CHARRNN_PRECISION_BF16];
}

int charrnn_precision_ready(charrnn_precision p, char *err, size_t errlen)
{
    return p == CHARRNN_PRECISION_BF16 ? charrnn_gemm_bf16_ready(err, errlen) : CHARRNN_OK;
}

int charrnn_trainer_set_precision(charrnn_trainer *tr, charrnn_precision p, char *err,
                                  size_t errlen)
{
    int rc = charrnn_precision_ready(p, err, errlen);
    if (rc || p == tr->precision)
        return rc;
    tr->precision = p; /* each shard's scratch is reallocated for it */
    return charrnn_trainer_set_layout(tr, tr->comm, tr->total_shards, tr->first_shard, tr->nshards,
                                      err, errlen);
}

int charrnn_trainer_shards(const charrnn_trainer *tr)
{
    return tr->nshards;
}

void charrnn_trainer_free(charrnn_trainer *tr)
{
    if (!tr)
        return;
    for (int k = 0; k < tr->nshards; k++)
        shard_free(&tr->sh[k]);
    free(tr->all_losses);
    for (int l = 0; l < CHARRNN_MAX_LAYERS; l++)
        free(tr->mask_full[l]);
    free(tr->grads), free(tr->m1), free(tr->m2), free(tr->probs);
    free(tr->carry[0]), free(tr->carry[1]);
    pthread_mutex_destroy(&tr->mu);
    pthread_cond_destroy(&tr->cv);
    free(tr);
}

/* Input of layer l (>= 1): the output of layer l-1, through dropout in TRAIN mode. */
static const float *layer_input(shard *s, int l)
{
    const charrnn_trainer *tr = s->tr;
    const size_t H = (size_t)tr->m->cfg.hidden_size, n = (size_t)s->B * tr->T * H;
    const float *h = s->acts[l - 1].h + (size_t)s->B * H;
    if (s->mode != CHARRNN_MODE_TRAIN || !(tr->dropout > 0.0f))
        return h;
    const float scale = 1.0f / (1.0f - tr->dropout);
    float *x = s->drop_x[l];
    const uint8_t *mask = s->mask[l];
    for (size_t k = 0; k < n; k++)
        x[k] = mask[k] ? h[k] * scale : 0.0f;
    return x;
}

/* Copies this shard's rows between a whole-batch (T*B, w) array and its own (T*Bs, w) one. */
static void rows_in(const shard *s, void *dst, const void *src, size_t w)
{
    const int B = s->tr->B;
    for (int t = 0; t < s->tr->T; t++)
        memcpy((char *)dst + (size_t)t * s->B * w, (const char *)src + ((size_t)t * B + s->b0) * w,
               (size_t)s->B * w);
}

static void rows_out(const shard *s, void *dst, const void *src, size_t w)
{
    const int B = s->tr->B;
    for (int t = 0; t < s->tr->T; t++)
        memcpy((char *)dst + ((size_t)t * B + s->b0) * w, (const char *)src + (size_t)t * s->B * w,
               (size_t)s->B * w);
}

static void shard_forward(shard *s, const uint16_t *x, const uint16_t *y)
{
    charrnn_trainer *tr = s->tr;
    const charrnn_config *c = &tr->m->cfg;
    const int B = s->B, T = tr->T, H = c->hidden_size, V = c->vocab_size, L = c->num_layers;
    const size_t BH = (size_t)B * H, stride = carry_stride(tr), off = (size_t)s->b0 * H;
    float *carry = tr->carry[s->mode];
    rows_in(s, s->x, x, sizeof *x);
    rows_in(s, s->y, y, sizeof *y);
    for (int l = 1; l < L && s->mode == CHARRNN_MODE_TRAIN && tr->dropout > 0.0f; l++)
        rows_in(s, s->mask[l], tr->mask_full[l], (size_t)H);
    for (int l = 0; l < L; l++) {
        charrnn_layer_acts *a = &s->acts[l];
        memcpy(a->h, carry + l * stride + off, BH * sizeof(float));
        if (a->c)
            memcpy(a->c, carry + l * stride + (size_t)tr->B * H + off, BH * sizeof(float));
        if (l == 0)
            charrnn_layer_forward(a, s->x, NULL, &tr->m->p.layer[0], c->cell, T, B, V, H);
        else
            charrnn_layer_forward(a, NULL, layer_input(s, l), &tr->m->p.layer[l], c->cell, T, B, H,
                                  H);
        memcpy(carry + l * stride + off, a->h + (size_t)T * BH, BH * sizeof(float));
        if (a->c)
            memcpy(carry + l * stride + (size_t)tr->B * H + off, a->c + (size_t)T * BH,
                   BH * sizeof(float));
    }
    s->loss = charrnn_decoder_forward(s->probs, s->acts[L - 1].h + BH, tr->m->p.dec_w,
                                      tr->m->p.dec_b, s->y, T * B, V, H);
}

/* This shard has finished `stage` blocks of its gradients (backward_blocks' order). */
static void report_stage(shard *s, int stage)
{
    charrnn_trainer *tr = s->tr;
    pthread_mutex_lock(&tr->mu);
    tr->stage[s - tr->sh] = stage;
    pthread_cond_broadcast(&tr->cv);
    pthread_mutex_unlock(&tr->mu);
}

static void shard_backward(shard *s)
{
    charrnn_trainer *tr = s->tr;
    const charrnn_config *c = &tr->m->cfg;
    const int B = s->B, T = tr->T, H = c->hidden_size, V = c->vocab_size, L = c->num_layers;
    const size_t BH = (size_t)B * H, n = (size_t)T * BH;
    if (s->grads != tr->grads)
        memset(s->grads, 0, tr->m->num_params * sizeof(float));
    /* The loss is the mean over the whole batch: this shard's rows weigh B/tr->B. */
    charrnn_decoder_backward_scaled(s->acts[L - 1].dh, s->g.dec_w, s->g.dec_b, s->probs,
                                    s->acts[L - 1].h + BH, tr->m->p.dec_w, s->y, T * B, V, H,
                                    1.0f / (float)((size_t)T * tr->B));
    report_stage(s, 1);
    for (int l = L - 1; l >= 0; l--) {
        charrnn_layer_acts *a = &s->acts[l];
        if (l == 0) {
            charrnn_layer_backward(a, NULL, &s->g.layer[0], s->x, NULL, &tr->m->p.layer[0], c->cell,
                                   T, B, V, H);
            report_stage(s, L + 1);
            break;
        }
        const float *xin =
            s->drop_x[l] && s->mode == CHARRNN_MODE_TRAIN ? s->drop_x[l] : s->acts[l - 1].h + BH;
        charrnn_layer_backward(a, s->dx, &s->g.layer[l], NULL, xin, &tr->m->p.layer[l], c->cell, T,
                               B, H, H);
        report_stage(s, L - l + 1);
        float *dh_below = s->acts[l - 1].dh;
        if (s->drop_x[l]) {
            const float scale = 1.0f / (1.0f - tr->dropout);
            const uint8_t *mask = s->mask[l];
            for (size_t k = 0; k < n; k++)
                dh_below[k] = mask[k] ? s->dx[k] * scale : 0.0f;
        } else {
            memcpy(dh_below, s->dx, n * sizeof(float));
        }
    }
}

typedef struct job {
    shard *s;
    const uint16_t *x, *y;
    int backward;
} job;

static void *run_job(void *arg)
{
    job *j = arg;
    if (j->backward)
        shard_backward(j->s);
    else
        shard_forward(j->s, j->x, j->y);
    return NULL;
}

/* Runs every shard's forward or backward, shard 0 on the calling thread. */
static void run_shards(charrnn_trainer *tr, const uint16_t *x, const uint16_t *y, int backward)
{
    job jobs[MAX_SHARDS];
    pthread_t th[MAX_SHARDS];
    int started[MAX_SHARDS] = {0};
    for (int k = 0; k < tr->nshards; k++)
        jobs[k] = (job){&tr->sh[k], x, y, backward};
    for (int k = 1; k < tr->nshards; k++)
        started[k] = pthread_create(&th[k], NULL, run_job, &jobs[k]) == 0;
    for (int k = 0; k < tr->nshards; k++)
        if (k == 0 || !started[k])
            run_job(&jobs[k]); /* a thread that could not start runs here instead */
    for (int k = 1; k < tr->nshards; k++)
        if (started[k])
            pthread_join(th[k], NULL);
}

float charrnn_trainer_forward(charrnn_trainer *tr, const uint16_t *x, const uint16_t *y,
                              charrnn_mode mode)
{
    const charrnn_config *c = &tr->m->cfg;
    if (mode == CHARRNN_MODE_TRAIN && tr->dropout > 0.0f) {
        /* Masks for the whole batch, drawn in one fixed order whatever the sharding. */
        const size_t n = (size_t)tr->B * tr->T * c->hidden_size;
        const float keep = 1.0f - tr->dropout;
        for (int l = 1; l < c->num_layers; l++)
            for (size_t k = 0; k < n; k++)
                tr->mask_full[l][k] = charrnn_rng_uniform_f(&tr->rng) < keep;
    }
    for (int k = 0; k < tr->nshards; k++)
        tr->sh[k].mode = mode;
    run_shards(tr, x, y, 0);
    double loss = 0.0;
    if (tr->comm && tr->comm->size > 1) {
        /* Every shard's loss on every rank, summed in shard order as below. */
        float mine[MAX_SHARDS];
        for (int k = 0; k < tr->nshards; k++)
            mine[k] = tr->sh[k].loss;
        if (charrnn_comm_allgather(tr->comm, mine, tr->all_losses,
                                   (size_t)tr->nshards * sizeof *mine)) {
            tr->comm_failed = 1;
            return NAN;
        }
        for (int g = 0; g < tr->total_shards; g++)
            loss += (double)tr->all_losses[g] *
                (shard_begin(g + 1, tr->total_shards, tr->B) -
                 shard_begin(g, tr->total_shards, tr->B));
    } else {
        for (int k = 0; k < tr->nshards; k++)
            loss += (double)tr->sh[k].loss * tr->sh[k].B;
    }
    tr->have_forward = mode == CHARRNN_MODE_TRAIN;
    return (float)(loss / tr->B);
}

/* The gradient vector as blocks in the order the backward pass finishes
 * them: the decoder, then layers L-1 .. 0. Each block runs from its first
 * tensor to the next block's start (or the end), so the blocks cover the
 * vector whatever the order of the layout. Returns the number of blocks. */
static int backward_blocks(const charrnn_trainer *tr, size_t *off, size_t *len)
{
    const charrnn_model *m = tr->m;
    const int L = m->cfg.num_layers;
    size_t start[CHARRNN_MAX_LAYERS + 1];
    start[0] = (size_t)(m->p.dec_w - m->params);
    for (int l = L - 1; l >= 0; l--)
        start[L - l] = (size_t)(m->p.layer[l].w_ih - m->params);
    for (int b = 0; b <= L; b++) {
        size_t end = m->num_params;
        for (int o = 0; o <= L; o++)
            if (start[o] > start[b] && start[o] < end)
                end = start[o];
        off[b] = start[b], len[b] = end - start[b];
    }
    /* Whatever precedes the lowest start (nothing in today's layout) joins the last block. */
    size_t lowest = m->num_params;
    for (int b = 0; b <= L; b++)
        lowest = start[b] < lowest ? start[b] : lowest;
    if (lowest > 0) {
        off[L + 1] = 0, len[L + 1] = lowest;
        return L + 2;
    }
    return L + 1;
}

/* Backward on every local shard in its own thread while this (the calling)
 * thread sums each block of gradients over all ranks as soon as every local
 * shard has finished it: the communication of the upper layers overlaps the
 * backward pass of the lower ones. Each element still sees the same
 * additions in the same order, so the bits are those of one process. */
static void backward_overlapped(charrnn_trainer *tr)
{
    size_t off[CHARRNN_MAX_LAYERS + 2], len[CHARRNN_MAX_LAYERS + 2];
    const int nblocks = backward_blocks(tr, off, len), L = tr->m->cfg.num_layers;
    job jobs[MAX_SHARDS];
    pthread_t th[MAX_SHARDS];
    int started[MAX_SHARDS] = {0};
    for (int k = 0; k < tr->nshards; k++) {
        tr->stage[k] = 0;
        jobs[k] = (job){&tr->sh[k], NULL, NULL, 1};
    }
    for (int k = 0; k < tr->nshards; k++)
        if (!(started[k] = pthread_create(&th[k], NULL, run_job, &jobs[k]) == 0))
            run_job(&jobs[k]); /* no thread: computed here first, no overlap for it */
    const float *parts[MAX_SHARDS];
    const int first = tr->sh[0].own ? 0 : 1;
    for (int b = 0; b < nblocks; b++) {
        const int need = b <= L ? b + 1 : L + 1;
        pthread_mutex_lock(&tr->mu);
        for (int k = 0; k < tr->nshards; k++)
            while (tr->stage[k] < need)
                pthread_cond_wait(&tr->cv, &tr->mu);
        pthread_mutex_unlock(&tr->mu);
        int np = 0;
        for (int k = first; k < tr->nshards; k++)
            parts[np++] = tr->sh[k].grads + off[b];
        if (!tr->comm_failed &&
            charrnn_comm_chain_sum(tr->comm, tr->grads + off[b], parts, np, len[b]))
            tr->comm_failed = 1;
    }
    for (int k = 0; k < tr->nshards; k++)
        if (started[k])
            pthread_join(th[k], NULL);
}

void charrnn_trainer_backward(charrnn_trainer *tr)
{
    if (!tr->have_forward)
        return;
    if (tr->comm && tr->comm->size > 1) {
        backward_overlapped(tr);
    } else {
        run_shards(tr, NULL, NULL, 1);
        for (int k = 1; k < tr->nshards; k++) {
            const float *g = tr->sh[k].grads;
            for (size_t i = 0; i < tr->m->num_params; i++)
                tr->grads[i] += g[i];
        }
    }
    tr->have_forward = 0;
}

void charrnn_trainer_zero_grad(charrnn_trainer *tr)
{
    memset(tr->grads, 0, tr->m->num_params * sizeof(float));
}

void charrnn_trainer_update(charrnn_trainer *tr, float lr, float grad_clip)
{
    charrnn_clip_grad_value(tr->grads, tr->m->num_params, grad_clip);
    tr->steps++;
    charrnn_optim_update(&tr->opt, tr->m->params, tr->grads, tr->m1, tr->m2, tr->m->num_params, lr,
                         tr->steps);
}

float charrnn_trainer_step(charrnn_trainer *tr, const uint16_t *x, const uint16_t *y, float lr,
                           float grad_clip)
{
    charrnn_trainer_zero_grad(tr);
    float loss = charrnn_trainer_forward(tr, x, y, CHARRNN_MODE_TRAIN);
    charrnn_trainer_backward(tr);
    charrnn_trainer_update(tr, lr, grad_clip);
    return loss;
}

void charrnn_trainer_reset_state(charrnn_trainer *tr, charrnn_mode mode)
{
    memset(tr->carry[mode], 0, tr->carry_len * sizeof(float));
}

int charrnn_trainer_comm_failed(const charrnn_trainer *tr)
{
    return tr->comm_failed;
}

int charrnn_trainer_gather_state(charrnn_trainer *tr)
{
    const charrnn_comm *c = tr->comm;
    if (!c || c->size == 1)
        return 0;
    /* Per rank: its first and last stream, then those rows of every (B, H) block. */
    const size_t H = (size_t)tr->m->cfg.hidden_size, block = (size_t)tr->B * H;
    const size_t nblocks = tr->carry_len / block;
    float *carry = tr->carry[CHARRNN_MODE_TRAIN];
    float *buf = malloc(tr->carry_len * sizeof *buf);
    int rc = buf ? 0 : -1;
    if (c->rank > 0 && rc == 0) {
        const int span[2] = {tr->sh[0].b0, tr->sh[tr->nshards - 1].b0 + tr->sh[tr->nshards - 1].B};
        const size_t rows = (size_t)(span[1] - span[0]) * H;
        for (size_t k = 0; k < nblocks; k++)
            memcpy(buf + k * rows, carry + k * block + (size_t)span[0] * H, rows * sizeof *buf);
        rc = c->send(c->ctx, 0, span, sizeof span) ||
            c->send(c->ctx, 0, buf, nblocks * rows * sizeof *buf);
    }
    for (int r = 1; c->rank == 0 && r < c->size && rc == 0; r++) {
        int span[2];
        if ((rc = c->recv(c->ctx, r, span, sizeof span)))
            break;
        if (span[0] < 0 || span[1] > tr->B || span[0] > span[1]) {
            rc = -1;
            break;
        }
        const size_t rows = (size_t)(span[1] - span[0]) * H;
        if ((rc = c->recv(c->ctx, r, buf, nblocks * rows * sizeof *buf)))
            break;
        for (size_t k = 0; k < nblocks; k++)
            memcpy(carry + k * block + (size_t)span[0] * H, buf + k * rows, rows * sizeof *buf);
    }
    free(buf);
    if (rc)
        tr->comm_failed = 1;
    return rc ? CHARRNN_EIO : CHARRNN_OK;
}

float *charrnn_trainer_grads(charrnn_trainer *tr)
{
    return tr->grads;
}
const float *charrnn_trainer_probs(charrnn_trainer *tr)
{
    if (tr->nshards == 1)
        return tr->sh[0].probs;
    for (int k = 0; k < tr->nshards; k++)
        rows_out(&tr->sh[k], tr->probs, tr->sh[k].probs,
                 sizeof(float) * (size_t)tr->m->cfg.vocab_size);
    return tr->probs;
}

void charrnn_trainer_save_state(const charrnn_trainer *tr, charrnn_trainer_snapshot *s)
{
    *s = (charrnn_trainer_snapshot){
        tr->steps,         tr->rng,      tr->m1, tr->m2, tr->carry[CHARRNN_MODE_TRAIN],
        tr->m->num_params, tr->carry_len};
}

int charrnn_trainer_restore_state(charrnn_trainer *tr, const charrnn_trainer_snapshot *s, char *err,
                                  size_t errlen)
{
    if (((s->moment1 || s->moment2) && s->num_params != tr->m->num_params) ||
        (s->carry && s->carry_len != tr->carry_len))
        return charrnn_fail(err, errlen, CHARRNN_EINVAL,
                            "the training state has %zu parameters and %zu carried values; this "
                            "trainer has %zu and %zu",
                            s->num_params, s->carry_len, tr->m->num_params, tr->carry_len);
    /* memmove: a snapshot of this very trainer may be restored into it. */
    if (s->moment1)
        memmove(tr->m1, s->moment1, tr->m->num_params * sizeof(float));
    if (s->moment2)
        memmove(tr->m2, s->moment2, tr->m->num_params * sizeof(float));
    if (s->carry)
        memmove(tr->carry[CHARRNN_MODE_TRAIN], s->carry, tr->carry_len * sizeof(float));
    tr->steps = s->optimizer_steps;
    tr->rng = s->rng;
    return CHARRNN_OK;
}

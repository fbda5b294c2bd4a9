/* The training run: data, model, loop, evaluation, checkpoints, resume. */
#include "charrnn/session.h"

#include "charrnn/checkpoint.h"
#include "charrnn/clock.h"
#include "charrnn/comm.h"
#include "charrnn/data.h"
#include "charrnn/fileio.h"
#include "charrnn/lossplot.h"
#include "charrnn/lowp.h"
#include "charrnn/status.h"
#include "charrnn/stream_loss.h"
#include "charrnn/trainer.h"
#include "dist_check.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

charrnn_train_opts charrnn_train_defaults(void)
{
    charrnn_train_opts o = {0};
    o.cell = CHARRNN_CELL_LSTM;
    o.rnn_size = 128, o.num_layers = 2;
    o.seq_length = 50, o.batch_size = 50;
    o.max_epochs = 50;
    o.learning_rate = 2e-3f;
    o.optimizer = CHARRNN_OPT_ADAM;
    o.lr_decay = 0.97f, o.lr_decay_after = 10;
    o.grad_clip = 5.0f;
    o.train_frac = 0.95, o.val_frac = 0.05;
    o.eval_every = 1000;
    o.seed = 123;
    o.threads = 1;
    o.init = charrnn_init_defaults();
    o.stream_eval_chars = 10000;
    return o;
}

float charrnn_lr_at(float base, float decay, double decay_after, long ipe, long i)
{
    if (!(decay < 1.0f) || ipe <= 0)
        return base;
    long boundaries = (i - 1) / ipe; /* epochs completed before iteration i */
    long first = decay_after <= 1.0 ? 1 : (long)ceil(decay_after);
    long k = boundaries >= first ? boundaries - first + 1 : 0;
    return (float)((double)base * pow((double)decay, (double)k));
}

typedef struct run {
    const charrnn_train_opts *o;
    charrnn_corpus *corpus;
    charrnn_model *model;
    charrnn_trainer *tr;
    charrnn_split split[3];
    uint16_t *x, *y;
    long iter, ipe, total;
    float best_val;
    float last_train;
    float last_stream;   /* the latest one-stream validation loss, NaN if none */
    size_t stream_chars; /* ... over this many predicted characters */
    uint64_t seed;
    charrnn_lossplot *plot; /* NULL if it could not be allocated: plotting is optional */
    int plot_lost;          /* the resumed checkpoint's loss history was unreadable */
    char *init_json;        /* {"range": R, "forget_bias": F or null}: how the weights began */
    char changes[400];      /* a resumed run's settings that differ from the checkpoint's */
} run;

/* Mean loss over a whole split from a zero state; NaN when the split is empty. */
static float evaluate(run *r, const charrnn_split *s)
{
    if (s->nbatches == 0)
        return NAN;
    charrnn_trainer_reset_state(r->tr, CHARRNN_MODE_EVAL);
    double sum = 0.0;
    for (size_t j = 0; j < s->nbatches; j++) {
        charrnn_split_batch(s, j, r->x, r->y);
        sum += charrnn_trainer_forward(r->tr, r->x, r->y, CHARRNN_MODE_EVAL);
    }
    return (float)(sum / (double)s->nbatches);
}

/* The shards the batch is split into: threads x ranks. The gradient's sum
 * order, so the trained bits, depend on it. */
static int shards_of(const charrnn_train_opts *o)
{
    return o->threads * (o->comm ? o->comm->size : 1);
}

static char *train_json(const run *r, float val)
{
    const charrnn_train_opts *o = r->o;
    cJSON *j = cJSON_CreateObject();
    if (!j)
        return NULL;
    cJSON_AddNumberToObject(j, "iteration", (double)r->iter);
    cJSON_AddNumberToObject(j, "epoch", (double)r->iter / (double)r->ipe);
    cJSON_AddNumberToObject(j, "train_loss", r->last_train);
    if (isfinite(val))
        cJSON_AddNumberToObject(j, "val_loss", val);
    else
        cJSON_AddNullToObject(j, "val_loss");
    if (isfinite(r->last_stream)) { /* from the same evaluation as val_loss */
        cJSON_AddNumberToObject(j, "val_stream_loss", r->last_stream);
        cJSON_AddNumberToObject(j, "val_stream_chars", (double)r->stream_chars);
    }
    cJSON_AddStringToObject(j, "data_sha256", r->corpus->sha256);
    cJSON_AddStringToObject(j, "data_path", o->data_path);
    cJSON_AddNumberToObject(j, "data_chars", (double)r->corpus->n);
    cJSON_AddNumberToObject(j, "num_params", (double)r->model->num_params);
    cJSON_AddStringToObject(j, "cell", charrnn_cell_name(r->model->cfg.cell));
    cJSON_AddNumberToObject(j, "rnn_size", r->model->cfg.hidden_size);
    cJSON_AddNumberToObject(j, "num_layers", r->model->cfg.num_layers);
    cJSON_AddNumberToObject(j, "dropout", o->dropout);
    cJSON_AddNumberToObject(j, "seq_length", o->seq_length);
    cJSON_AddNumberToObject(j, "batch_size", o->batch_size);
    cJSON_AddNumberToObject(j, "learning_rate", o->learning_rate);
    cJSON_AddStringToObject(j, "optimizer", charrnn_optim_name(o->optimizer));
    cJSON_AddNumberToObject(j, "lr_decay", o->lr_decay);
    cJSON_AddNumberToObject(j, "lr_decay_after", o->lr_decay_after);
    cJSON_AddNumberToObject(j, "grad_clip", o->grad_clip);
    cJSON_AddNumberToObject(j, "train_frac", o->train_frac);
    cJSON_AddNumberToObject(j, "val_frac", o->val_frac);
    cJSON_AddNumberToObject(j, "max_epochs", o->max_epochs);
    cJSON_AddNumberToObject(j, "max_iters", (double)o->max_iters);
    cJSON_AddNumberToObject(j, "shards", shards_of(o));
    cJSON_AddStringToObject(j, "precision", charrnn_precision_name(o->precision));
    char seed[24];
    snprintf(seed, sizeof seed, "%" PRIu64, r->seed);
    cJSON_AddStringToObject(j, "seed", seed);
    if (r->init_json) /* absent for a model from a checkpoint that did not record it */
        cJSON_AddRawToObject(j, "init", r->init_json);
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return s;
}

static char *resume_json(run *r)
{
    cJSON *j = cJSON_CreateObject();
    if (!j)
        return NULL;
    cJSON_AddNumberToObject(j, "iteration", (double)r->iter);
    charrnn_trainer_snapshot snap;
    charrnn_trainer_save_state(r->tr, &snap);
    char buf[24];
    snprintf(buf, sizeof buf, "%" PRIu64, snap.optimizer_steps);
    cJSON_AddStringToObject(j, "optimizer_steps", buf);
    cJSON *rng = cJSON_AddArrayToObject(j, "rng");
    for (int i = 0; i < 4; i++) {
        snprintf(buf, sizeof buf, "%016" PRIx64, snap.rng.s[i]);
        cJSON_AddItemToArray(rng, cJSON_CreateString(buf));
    }
    cJSON_AddNumberToObject(j, "batch_size", r->o->batch_size);
    cJSON_AddNumberToObject(j, "seq_length", r->o->seq_length);
    if (isfinite(r->best_val))
        cJSON_AddNumberToObject(j, "best_val_loss", r->best_val);
    /* The loss history, so that a resumed run's loss.svg shows the whole run. */
    char *plot = r->plot ? charrnn_lossplot_history(r->plot) : NULL;
    if (plot)
        cJSON_AddRawToObject(j, "plot", plot);
    free(plot);
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return s;
}

static int save(run *r, const char *path, float val, int with_state, char *err, size_t errlen)
{
    char *tj = train_json(r, val), *rj = with_state ? resume_json(r) : NULL;
    if (!tj || (with_state && !rj)) {
        free(tj), free(rj);
        return charrnn_fail(err, errlen, CHARRNN_ENOMEM, "out of memory");
    }
    charrnn_trainer_snapshot snap;
    charrnn_trainer_save_state(r->tr, &snap);
    charrnn_resume_state rs = {snap.moment1, snap.moment2, snap.carry, snap.carry_len, rj};
    int rc;
    if (!with_state && r->o->publish_dtype != CHARRNN_DTYPE_F32) {
        /* A serving copy in the chosen dtype; the f32 masters train on. */
        charrnn_model *low;
        rc = charrnn_model_reduce(r->model, r->o->publish_dtype, &low, err, errlen);
        if (rc == CHARRNN_OK)
            rc = charrnn_checkpoint_save(path, low, tj, NULL, err, errlen);
        charrnn_model_free(low);
    } else {
        rc = charrnn_checkpoint_save(path, r->model, tj, with_state ? &rs : NULL, err, errlen);
    }
    free(tj), free(rj);
    return rc;
}

/* The first o->stream_eval_chars predictions of the validation split as one
 * stream into r->last_stream (NaN when off or the split is too short). */
static int evaluate_stream(run *r, char *err, size_t errlen)
{
    const charrnn_split *s = &r->split[1];
    size_t want = (size_t)r->o->stream_eval_chars;
    r->last_stream = NAN, r->stream_chars = 0;
    if (want == 0 || s->n < 2)
        return CHARRNN_OK;
    size_t n = s->n - 1 < want ? s->n : want + 1;
    int rc = charrnn_stream_loss(r->model, s->tok, n, &r->last_stream, err, errlen);
    if (rc == CHARRNN_OK)
        r->stream_chars = n - 1;
    return rc;
}

/* Validation + checkpoint files after iteration r->iter. */
static int checkpoint(run *r, float *val_out, char *path, size_t pathlen, char *err, size_t errlen)
{
    float val = evaluate(r, &r->split[1]);
    *val_out = val;
    double epoch = (double)r->iter / (double)r->ipe;
    snprintf(path, pathlen, "%s/lm_%s_epoch%.2f_%.4f.safetensors", r->o->checkpoint_dir,
             charrnn_cell_name(r->model->cfg.cell), epoch, isfinite(val) ? val : r->last_train);
    const charrnn_comm *comm = r->o->comm;
    if (comm && comm->size > 1) { /* collectives, then only rank 0 writes */
        int rc = charrnn_dist_check_params(comm, r->model->params, r->model->num_params, r->iter,
                                           err, errlen);
        if (rc == CHARRNN_OK && charrnn_trainer_gather_state(r->tr))
            rc = charrnn_fail(err, errlen, CHARRNN_EIO, "lost contact with another rank");
        if (rc != CHARRNN_OK || comm->rank > 0)
            return rc;
    }
    /* The one-stream loss is rank 0's alone: it reports, it trains nothing. */
    int src = evaluate_stream(r, err, errlen);
    if (src)
        return src;
    if (r->plot)
        charrnn_lossplot_add_stream(r->plot, r->iter, r->last_stream);
    if (r->plot) /* before the saves: their loss history includes this evaluation */
        charrnn_lossplot_add_val(r->plot, r->iter, val);
    int rc = save(r, path, val, 1, err, errlen);
    char other[4096];
    if (rc == CHARRNN_OK) {
        snprintf(other, sizeof other, "%s/latest.safetensors", r->o->checkpoint_dir);
        rc = save(r, other, val, 1, err, errlen);
    }
    float score = isfinite(val) ? val : r->last_train;
    if (rc == CHARRNN_OK && r->plot) {
        /* The plot is a convenience: failing to draw it never stops training. */
        char title[160];
        snprintf(title, sizeof title, "charrnn %s %dx%d", charrnn_cell_name(r->model->cfg.cell),
                 r->model->cfg.num_layers, r->model->cfg.hidden_size);
        snprintf(other, sizeof other, "%s/loss.svg", r->o->checkpoint_dir);
        charrnn_lossplot_write(r->plot, other, title, NULL, 0);
    }
    if (rc == CHARRNN_OK && !(score >= r->best_val)) {
        r->best_val = score;
        snprintf(other, sizeof other, "%s/best.safetensors", r->o->checkpoint_dir);
        rc = save(r, other, val, 1, err, errlen);
        if (rc == CHARRNN_OK && r->o->publish)
            rc = save(r, r->o->publish, val, 0, err, errlen);
    }
    return rc;
}

static int parse_u64(const cJSON *j, uint64_t *out, int hex)
{
    const char *s = cJSON_GetStringValue(j);
    if (!s || !*s)
        return 0;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, hex ? 16 : 10);
    if (errno || *end)
        return 0;
    *out = v;
    return 1;
}

/* Restores parameters (and, when present, the exact training state). */
static int resume_from(run *r, const charrnn_st_file *f, int *have_state, char *err, size_t errlen)
{
    *have_state = 0;
    const char *rj = charrnn_st_meta_get(f, "resume");
    const charrnn_st_tensor *m1 = charrnn_st_get(f, "optim.m"), *m2 = charrnn_st_get(f, "optim.v");
    const charrnn_st_tensor *carry = charrnn_st_get(f, "state.carry");
    if (!rj)
        return CHARRNN_OK; /* a slim checkpoint: fine-tune from its weights */
    cJSON *j = cJSON_Parse(rj);
    int rc = CHARRNN_OK;
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(j, "iteration");
    const cJSON *bs = cJSON_GetObjectItemCaseSensitive(j, "batch_size");
    const cJSON *sl = cJSON_GetObjectItemCaseSensitive(j, "seq_length");
    const cJSON *rng = cJSON_GetObjectItemCaseSensitive(j, "rng");
    const cJSON *bv = cJSON_GetObjectItemCaseSensitive(j, "best_val_loss");
    charrnn_trainer_snapshot snap;
    charrnn_trainer_save_state(r->tr, &snap); /* for the sizes */
    const size_t carry_len = snap.carry_len;
    uint64_t steps = 0;
    if (!j || !cJSON_IsNumber(it) || !cJSON_IsNumber(bs) || !cJSON_IsNumber(sl) ||
        !cJSON_IsArray(rng) || cJSON_GetArraySize(rng) != 4 ||
        !parse_u64(cJSON_GetObjectItemCaseSensitive(j, "optimizer_steps"), &steps, 0) || !m1 ||
        !m2 || !carry) {
        rc = charrnn_fail(err, errlen, CHARRNN_EFORMAT,
                          "the checkpoint's resume state is incomplete");
    } else if (!(it->valuedouble >= 0 && it->valuedouble <= 9e15) ||
               it->valuedouble != floor(it->valuedouble)) {
        /* The data position is (iteration - 1) % iterations per epoch: a negative or
         * absurd count would index outside the corpus. */
        rc = charrnn_fail(err, errlen, CHARRNN_EFORMAT,
                          "the checkpoint's resume iteration %g is not a count 0..9e15",
                          it->valuedouble);
    } else if (bs->valueint != r->o->batch_size || sl->valueint != r->o->seq_length) {
        rc = charrnn_fail(err, errlen, CHARRNN_EINVAL,
                          "exact resume needs the checkpoint's --batch-size %d and --seq-length %d",
                          bs->valueint, sl->valueint);
    } else if (m1->ndim != 1 || m1->shape[0] != r->model->num_params || m2->ndim != 1 ||
               m2->shape[0] != r->model->num_params || carry->ndim != 1 ||
               carry->shape[0] != carry_len) {
        rc = charrnn_fail(err, errlen, CHARRNN_EFORMAT,
                          "the checkpoint's optimizer state has the wrong size");
    } else {
        for (int i = 0; i < 4 && rc == CHARRNN_OK; i++)
            if (!parse_u64(cJSON_GetArrayItem(rng, i), &snap.rng.s[i], 1))
                rc = charrnn_fail(err, errlen, CHARRNN_EFORMAT, "bad RNG state in the checkpoint");
    }
    if (rc == CHARRNN_OK) {
        snap.optimizer_steps = steps;
        snap.moment1 = m1->data, snap.moment2 = m2->data, snap.carry = carry->data;
        rc = charrnn_trainer_restore_state(r->tr, &snap, err, errlen);
    }
    if (rc == CHARRNN_OK) {
        r->iter = (long)it->valuedouble;
        if (cJSON_IsNumber(bv))
            r->best_val = (float)bv->valuedouble;
        /* Optional (older checkpoints lack it); a bad one costs only the plot.
         * Printed back to text because the plot's API speaks JSON text: its
         * public header does not expose cJSON. */
        const cJSON *plot = cJSON_GetObjectItemCaseSensitive(j, "plot");
        char *ptxt = plot && r->plot ? cJSON_PrintUnformatted(plot) : NULL;
        if (plot && r->plot)
            r->plot_lost = !ptxt || charrnn_lossplot_restore(r->plot, ptxt, r->iter) != CHARRNN_OK;
        free(ptxt);
        *have_state = 1;
    }
    cJSON_Delete(j);
    return rc;
}

/* A float as the shortest decimal of its 6 significant digits: the
 * metadata then says 0.08, not the float's 0.079999998211860657. */
static double decimal6(float x)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%.6g", (double)x);
    return strtod(buf, NULL);
}

/* The initialisation as recorded in the train metadata, range resolved. */
static char *init_record(const charrnn_init *init, int hidden_size)
{
    cJSON *j = cJSON_CreateObject();
    if (!j)
        return NULL;
    cJSON_AddNumberToObject(j, "range", decimal6(charrnn_init_range(init, hidden_size)));
    if (isnan(init->forget_bias))
        cJSON_AddNullToObject(j, "forget_bias");
    else
        cJSON_AddNumberToObject(j, "forget_bias", decimal6(init->forget_bias));
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return s;
}

/* A checkpoint's recorded initialisation, carried into the checkpoints of a
 * run that continues from it; NULL if it has none. */
static char *init_of(const charrnn_st_file *f)
{
    const char *tj = charrnn_st_meta_get(f, "train");
    cJSON *j = tj ? cJSON_Parse(tj) : NULL;
    const cJSON *init = cJSON_GetObjectItemCaseSensitive(j, "init");
    char *s = cJSON_IsObject(init) ? cJSON_PrintUnformatted(init) : NULL;
    cJSON_Delete(j);
    return s;
}

/* The architecture flags given with --init-from must be the checkpoint's. */
static int check_given_arch(const charrnn_train_opts *o, const charrnn_config *c, char *err,
                            size_t errlen)
{
    const char *why = "a model continued from a checkpoint keeps its architecture; leave the "
                      "flag out";
    if ((o->given & CHARRNN_GIVEN_CELL) && o->cell != c->cell)
        return charrnn_fail(err, errlen, CHARRNN_EINVAL,
                            "--cell %s differs from the checkpoint's %s: %s",
                            charrnn_cell_name(o->cell), charrnn_cell_name(c->cell), why);
    if ((o->given & CHARRNN_GIVEN_RNN_SIZE) && o->rnn_size != c->hidden_size)
        return charrnn_fail(err, errlen, CHARRNN_EINVAL,
                            "--rnn-size %d differs from the checkpoint's %d: %s", o->rnn_size,
                            c->hidden_size, why);
    if ((o->given & CHARRNN_GIVEN_NUM_LAYERS) && o->num_layers != c->num_layers)
        return charrnn_fail(err, errlen, CHARRNN_EINVAL,
                            "--num-layers %d differs from the checkpoint's %d: %s", o->num_layers,
                            c->num_layers, why);
    return CHARRNN_OK;
}

/* The shortest %g form of f that reads back as f. */
static const char *short_float(float f, char *buf, size_t n)
{
    for (int prec = 6; prec <= 9; prec++) {
        snprintf(buf, n, "%.*g", prec, (double)f);
        if (strtof(buf, NULL) == f)
            break;
    }
    return buf;
}

/* Appends "name old -> new" to buf (", "-separated). */
static void add_change(char *buf, size_t n, const char *name, const char *was, const char *now)
{
    size_t len = strlen(buf);
    if (len < n)
        snprintf(buf + len, n - len, "%s%s %s -> %s", len ? ", " : "", name, was, now);
}

/* The settings of this run that change the trained bits and differ from the
 * ones the checkpoint f recorded, into r->changes ("" when none). Floats
 * compare as the options hold them; a setting the checkpoint did not record
 * (an older file) is not reported. */
static void resume_changes(run *r, const charrnn_st_file *f)
{
    const charrnn_train_opts *o = r->o;
    const char *tj = charrnn_st_meta_get(f, "train");
    cJSON *j = tj ? cJSON_Parse(tj) : NULL;
    char *out = r->changes, a[48], b[48];
    const size_t n = sizeof r->changes;
    *out = '\0';
    const struct {
        const char *name, *shown; /* the checkpoint's key, and the word the change uses */
        double now;
        int is_float;
    } nums[] = {
        {"dropout", "dropout", o->dropout, 1},
        {"learning_rate", "learning_rate", o->learning_rate, 1},
        {"lr_decay", "lr_decay", o->lr_decay, 1},
        {"lr_decay_after", "lr_decay_after", o->lr_decay_after, 0},
        {"grad_clip", "grad_clip", o->grad_clip, 1},
        {"train_frac", "train_frac", o->train_frac, 0},
        {"val_frac", "val_frac", o->val_frac, 0},
        {"shards", "shards (threads x ranks)", shards_of(o), 0},
    };
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, nums[i].name);
        if (!cJSON_IsNumber(v))
            continue;
        const double was = nums[i].is_float ? (double)(float)v->valuedouble : v->valuedouble;
        if (was == nums[i].now)
            continue;
        if (nums[i].is_float) {
            short_float((float)was, a, sizeof a);
            short_float((float)nums[i].now, b, sizeof b);
        } else {
            snprintf(a, sizeof a, "%.15g", was);
            snprintf(b, sizeof b, "%.15g", nums[i].now);
        }
        add_change(out, n, nums[i].shown, a, b);
    }
    const cJSON *opt = cJSON_GetObjectItemCaseSensitive(j, "optimizer");
    if (cJSON_IsString(opt) && strcmp(opt->valuestring, charrnn_optim_name(o->optimizer)))
        add_change(out, n, "optimizer", opt->valuestring, charrnn_optim_name(o->optimizer));
    /* A checkpoint without it was trained in f32 (the only precision then). */
    const cJSON *prec = cJSON_GetObjectItemCaseSensitive(j, "precision");
    const char *was = cJSON_IsString(prec) ? prec->valuestring : "f32";
    if (strcmp(was, charrnn_precision_name(o->precision)))
        add_change(out, n, "precision", was, charrnn_precision_name(o->precision));
    const cJSON *sha = cJSON_GetObjectItemCaseSensitive(j, "data_sha256");
    if (cJSON_IsString(sha) && strcmp(sha->valuestring, r->corpus->sha256))
        add_change(out, n, "data", "the checkpoint's text", "another text");
    cJSON_Delete(j);
}

static int setup(run *r, charrnn_st_file **ckpt, char *err, size_t errlen)
{
    const charrnn_train_opts *o = r->o;
    int rc;
    if (o->init_from) {
        if ((rc = charrnn_st_read(o->init_from, ckpt, err, errlen)))
            return rc;
        if ((rc = charrnn_checkpoint_model(*ckpt, &r->model, err, errlen)))
            return rc;
        if ((rc = check_given_arch(o, &r->model->cfg, err, errlen)))
            return rc;
        if (r->model->dtype != CHARRNN_DTYPE_F32) /* training keeps f32 masters */
            return charrnn_fail(err, errlen, CHARRNN_EINVAL,
                                "%s is a reduced-precision serving checkpoint; training starts "
                                "from an f32 one",
                                o->init_from);
        r->init_json = init_of(*ckpt);
        rc = charrnn_corpus_load(o->data_path, r->model->vocab, &r->corpus, err, errlen);
    } else {
        rc = charrnn_corpus_load(o->data_path, NULL, &r->corpus, err, errlen);
        if (rc == CHARRNN_OK) {
            charrnn_config cfg = {o->cell, (int)charrnn_vocab_size(r->corpus->vocab), o->rnn_size,
                                  o->num_layers};
            /* The model owns its own copy of the vocabulary. */
            charrnn_vocab *v = NULL;
            rc = charrnn_vocab_copy(r->corpus->vocab, &v, err, errlen);
            if (rc == CHARRNN_OK && (rc = charrnn_model_create(&cfg, v, &r->model, err, errlen)))
                charrnn_vocab_free(v);
            if (rc == CHARRNN_OK) {
                charrnn_rng init;
                charrnn_rng_seed(&init, o->seed);
                charrnn_model_init_with(r->model, &init, &o->init);
                r->init_json = init_record(&o->init, o->rnn_size);
            }
        }
    }
    return rc;
}

/* Names charrnn-train writes into its checkpoint directory. */
static int checkpoint_file(const char *name, const void *ctx)
{
    (void)ctx;
    size_t n = strlen(name), ext = strlen(".safetensors");
    return !strcmp(name, "loss.svg") || !strcmp(name, "latest.safetensors") ||
        !strcmp(name, "best.safetensors") ||
        (!strncmp(name, "lm_", 3) && n > 3 + ext && !strcmp(name + n - ext, ".safetensors"));
}

static int same_name(const char *name, const void *ctx)
{
    return !strcmp(name, ctx);
}

/* Temporaries that a killed earlier run left behind in the checkpoint
 * directory and next to the --publish target (a model store ignores them,
 * but they take disk): unlocked, and ten minutes old at least. */
static int remove_stale_tmp(const charrnn_train_opts *o)
{
    const double age = 600.0;
    int n = charrnn_remove_stale_tmp(o->checkpoint_dir, checkpoint_file, NULL, age);
    char dir[4096];
    const char *base = o->publish ? charrnn_path_split(o->publish, dir, sizeof dir) : NULL;
    if (base)
        n += charrnn_remove_stale_tmp(dir, same_name, base, age);
    return n;
}

static int check_opts(const charrnn_train_opts *o, char *err, size_t errlen)
{
    if (!o->data_path || !o->checkpoint_dir)
        return charrnn_fail(err, errlen, CHARRNN_EINVAL,
                            "a data file and a checkpoint directory are required");
    if (!(o->learning_rate > 0.0f) || !(o->lr_decay > 0.0f && o->lr_decay <= 1.0f) ||
        !(o->grad_clip >= 0.0f) || o->eval_every < 1 || o->max_iters < 0 ||
        o->stream_eval_chars < 0 || !(o->max_epochs > 0))
        return charrnn_fail(
            err, errlen, CHARRNN_ERANGE,
            "learning rate > 0, lr decay in (0, 1], grad clip >= 0, eval every >= 1, "
            "stream eval chars >= 0 and max epochs > 0 are required");
    int irc = charrnn_init_check(&o->init, err, errlen);
    if (irc)
        return irc;
    return charrnn_precision_ready(o->precision, err, errlen); /* before any work */
}

/* What every rank must run with: the options that change the numbers or
 * the schedule of collectives (paths may differ between hosts). */
static void options_text(const run *r, char *buf, size_t n)
{
    const charrnn_train_opts *o = r->o;
    const charrnn_config *c = &r->model->cfg;
    char f[4][24];
    snprintf(buf, n,
             "cell=%s rnn_size=%d num_layers=%d dropout=%s seq_length=%d batch_size=%d "
             "max_epochs=%.17g max_iters=%ld learning_rate=%s optimizer=%s lr_decay=%s "
             "lr_decay_after=%.17g grad_clip=%s train_frac=%.17g val_frac=%.17g eval_every=%ld "
             "seed=%" PRIu64 " start_iter=%ld precision=%s",
             charrnn_cell_name(c->cell), c->hidden_size, c->num_layers,
             short_float(o->dropout, f[0], sizeof f[0]), o->seq_length, o->batch_size,
             o->max_epochs, o->max_iters, short_float(o->learning_rate, f[1], sizeof f[1]),
             charrnn_optim_name(o->optimizer), short_float(o->lr_decay, f[2], sizeof f[2]),
             o->lr_decay_after, short_float(o->grad_clip, f[3], sizeof f[3]), o->train_frac,
             o->val_frac, o->eval_every, o->seed, r->iter, charrnn_precision_name(o->precision));
}

/* Rank r of R runs shards [r*T, (r+1)*T) of R*T. */
static int set_layout(run *r, char *err, size_t errlen)
{
    const charrnn_comm *c = r->o->comm;
    const long total = (long)c->size * r->o->threads;
    if (total > r->o->batch_size)
        return charrnn_fail(err, errlen, CHARRNN_ERANGE,
                            "--batch-size %d is smaller than %d ranks x %d threads: the smallest "
                            "batch for this layout is %ld (or fewer --threads)",
                            r->o->batch_size, c->size, r->o->threads, total);
    return charrnn_trainer_set_layout(r->tr, c, (int)total, c->rank * r->o->threads, r->o->threads,
                                      err, errlen);
}

/* The checkpoint directory exists afterwards; *stale counts the removed
 * temporaries of a killed run. */
static int prepare_dirs(const charrnn_train_opts *o, int *stale, char *err, size_t errlen)
{
    if (o->comm && o->comm->rank > 0) /* only rank 0 writes */
        return CHARRNN_OK;
    if (mkdir(o->checkpoint_dir, 0755) && errno != EEXIST)
        return charrnn_fail(err, errlen, CHARRNN_EIO, "cannot create %s: %s", o->checkpoint_dir,
                            strerror(errno));
    *stale = remove_stale_tmp(o);
    return CHARRNN_OK;
}

/* Data, model (new, or from --init-from, resumed exactly when it can be),
 * trainer, batch buffers and the iteration count. *from_ckpt: --init-from
 * was used; *have_state: its training state was restored too. */
static int start(run *r, int *from_ckpt, int *have_state, char *err, size_t errlen)
{
    const charrnn_train_opts *o = r->o;
    const int B = o->batch_size, T = o->seq_length;
    charrnn_st_file *ckpt = NULL;
    int rc = setup(r, &ckpt, err, errlen);
    *from_ckpt = ckpt != NULL;
    *have_state = 0;
    if (rc == CHARRNN_OK)
        rc = charrnn_split_make(r->corpus, o->train_frac, o->val_frac, B, T, r->split, err, errlen);
    charrnn_optim_config oc = charrnn_optim_defaults(o->optimizer);
    if (rc == CHARRNN_OK)
        rc = charrnn_trainer_create(r->model, B, T, o->dropout, &oc, o->seed ^ 0x5eedULL, &r->tr,
                                    err, errlen);
    if (rc == CHARRNN_OK && o->precision != CHARRNN_PRECISION_F32)
        rc = charrnn_trainer_set_precision(r->tr, o->precision, err, errlen);
    if (rc == CHARRNN_OK && o->comm && o->comm->size > 1)
        rc = set_layout(r, err, errlen);
    else if (rc == CHARRNN_OK && o->threads > 1)
        rc = charrnn_trainer_set_shards(r->tr, o->threads, err, errlen);
    if (rc == CHARRNN_OK && ckpt)
        rc = resume_from(r, ckpt, have_state, err, errlen);
    if (rc == CHARRNN_OK && *have_state)
        resume_changes(r, ckpt);
    charrnn_st_free(ckpt);
    if (rc == CHARRNN_OK && !(r->x = malloc((size_t)B * T * 2)))
        rc = charrnn_fail(err, errlen, CHARRNN_ENOMEM, "out of memory");
    if (rc == CHARRNN_OK && !(r->y = malloc((size_t)B * T * 2)))
        rc = charrnn_fail(err, errlen, CHARRNN_ENOMEM, "out of memory");
    if (rc == CHARRNN_OK && o->comm && o->comm->size > 1) {
        char opts[512];
        options_text(r, opts, sizeof opts);
        rc = charrnn_dist_check_start(o->comm, r->corpus->sha256, r->model->vocab, opts,
                                      r->model->params, r->model->num_params, o->threads, err,
                                      errlen);
    }
    if (rc != CHARRNN_OK)
        return rc;
    r->ipe = (long)r->split[0].nbatches;
    double by_epochs = o->max_epochs * (double)r->ipe;
    r->total = by_epochs > 9e15 ? (long)9e15 : (long)ceil(by_epochs);
    if (o->max_iters > 0 && o->max_iters < r->total)
        r->total = o->max_iters;
    if (r->iter >= r->total) /* a resumed run already there: nothing would be trained */
        return charrnn_fail(
            err, errlen, CHARRNN_EINVAL,
            "the checkpoint is at iteration %ld, and this run stops at iteration %ld (%s): "
            "nothing to train. --max-iters and --max-epochs count from the start of "
            "training, not from the checkpoint: give a larger one",
            r->iter, r->total,
            o->max_iters > 0 && o->max_iters == r->total ? "--max-iters" : "--max-epochs");
    return CHARRNN_OK;
}

static void report_start(const run *r, const charrnn_train_callbacks *cb, int stale, int from_ckpt,
                         int have_state)
{
    if (!cb || !cb->on_start)
        return;
    char info[900], removed[96] = "", resumed[460];
    snprintf(resumed, sizeof resumed,
             *r->changes ? ", continued with changes: %s" : ", resumed exactly", r->changes);
    if (stale > 0)
        snprintf(removed, sizeof removed, "; removed %d stale temporary file%s of a killed run",
                 stale, stale == 1 ? "" : "s");
    snprintf(info, sizeof info,
             "%zu characters, vocabulary %d, %zu parameters, %ld iterations per epoch%s%s%s",
             r->corpus->n, r->model->cfg.vocab_size, r->model->num_params, r->ipe,
             have_state      ? resumed
                 : from_ckpt ? ", initialised from a checkpoint"
                             : "",
             r->plot_lost ? "; the checkpoint's loss history is unreadable: loss.svg restarts" : "",
             removed);
    cb->on_start(cb->ctx, r->model, r->iter, r->total, info);
}

/* Iterations until the total or a requested stop, with validation and
 * checkpoints every eval_every iterations, at the end and on the stop.
 * *p is the last progress, *val the last validation loss. */
static int train_loop(run *r, const charrnn_train_callbacks *cb, charrnn_progress *p, float *val,
                      int *interrupted, char *err, size_t errlen)
{
    const charrnn_train_opts *o = r->o;
    const int B = o->batch_size, T = o->seq_length;
    const double t0 = charrnn_clock_mono();
    const long start = r->iter;
    *interrupted = 0;
    while (r->iter < r->total) {
        long i = r->iter + 1;
        size_t j = (size_t)((i - 1) % r->ipe);
        if (j == 0) /* a new pass over the data: its streams start afresh */
            charrnn_trainer_reset_state(r->tr, CHARRNN_MODE_TRAIN);
        charrnn_split_batch(&r->split[0], j, r->x, r->y);
        float lr = charrnn_lr_at(o->learning_rate, o->lr_decay, o->lr_decay_after, r->ipe, i);
        float loss = charrnn_trainer_step(r->tr, r->x, r->y, lr, o->grad_clip);
        /* Ranks stop together: a signal may reach them at different steps. */
        int stop = cb && cb->stop && *cb->stop;
        if (o->comm && (charrnn_comm_any(o->comm, &stop) || charrnn_trainer_comm_failed(r->tr)))
            return charrnn_fail(err, errlen, CHARRNN_EIO,
                                "lost contact with another rank at iteration %ld", i);
        r->iter = i;
        r->last_train = loss;
        if (r->plot)
            charrnn_lossplot_add_train(r->plot, i, loss);
        if (!isfinite(loss))
            return charrnn_fail(
                err, errlen, CHARRNN_ERANGE,
                "the training loss became %f at iteration %ld (try a lower learning rate)",
                (double)loss, i);
        double el = charrnn_clock_mono() - t0;
        *p = (charrnn_progress){i,
                                r->total,
                                r->ipe,
                                (double)i / (double)r->ipe,
                                loss,
                                lr,
                                (double)(i - start) * B * T / (el > 0 ? el : 1e-9),
                                el / (double)(i - start) * (double)(r->total - i),
                                el,
                                NAN};
        if (cb && cb->on_iter)
            cb->on_iter(cb->ctx, p);
        if (i % o->eval_every == 0 || i == r->total || stop) {
            char path[4096];
            int rc = checkpoint(r, val, path, sizeof path, err, errlen);
            if (rc)
                return rc;
            p->val_stream_loss = r->last_stream;
            if (cb && cb->on_eval)
                cb->on_eval(cb->ctx, p, *val, path);
        }
        if (stop) {
            *interrupted = 1;
            break;
        }
    }
    return CHARRNN_OK;
}

static void run_free(run *r)
{
    free(r->x), free(r->y);
    charrnn_lossplot_free(r->plot);
    free(r->init_json);
    charrnn_trainer_free(r->tr);
    charrnn_model_free(r->model);
    charrnn_corpus_free(r->corpus);
}

int charrnn_train_run(const charrnn_train_opts *o, const charrnn_train_callbacks *cb, char *err,
                      size_t errlen)
{
    int stale = 0, rc = check_opts(o, err, errlen);
    if (rc == CHARRNN_OK)
        rc = prepare_dirs(o, &stale, err, errlen);
    if (rc != CHARRNN_OK)
        return rc;
    run r = {0};
    r.o = o;
    r.best_val = INFINITY;
    r.last_stream = NAN;
    r.seed = o->seed;
    r.plot = charrnn_lossplot_create();
    int from_ckpt = 0, have_state = 0, interrupted = 0;
    float val = NAN;
    charrnn_progress p = {0};
    rc = start(&r, &from_ckpt, &have_state, err, errlen);
    if (rc == CHARRNN_OK) {
        report_start(&r, cb, stale, from_ckpt, have_state);
        rc = train_loop(&r, cb, &p, &val, &interrupted, err, errlen);
    }
    if (rc == CHARRNN_OK) {
        /* The test split is scored once, at the end, whoever listens. */
        float test = evaluate(&r, &r.split[2]);
        p.iter = r.iter;
        if (cb && cb->on_done)
            cb->on_done(cb->ctx, &p, val, test, interrupted);
    }
    run_free(&r);
    return rc;
}

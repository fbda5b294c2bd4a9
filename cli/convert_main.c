/* charrnn-convert: writes a serving checkpoint with bf16 or int8 weights (or
 * a slim f32 copy) from a trained f32 checkpoint, and optionally measures what
 * it costs in validation loss. */
#include "args.h"
#include "charrnn/checkpoint.h"
#include "charrnn/data.h"
#include "charrnn/evaluate.h"
#include "charrnn/lowp.h"
#include "charrnn/status.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f,
            "usage: charrnn-convert --dtype bf16|int8|f32 INPUT OUTPUT [--eval TEXT]\n"
            "\n"
            "Writes OUTPUT (atomically) with the weights of the f32 checkpoint INPUT in the\n"
            "given dtype: bf16 (safetensors BF16, loads into PyTorch), int8 (I8 with a float\n"
            "scale per row), or f32 (a slim copy without training state). Biases and\n"
            "rnn.weight_ih_l0 stay f32; docs/checkpoint-format.md has the layout.\n"
            "\n"
            "  --dtype T           bf16, int8 or f32 (required)\n"
            "  --eval TEXT         print the validation loss of INPUT and OUTPUT on TEXT's\n"
            "                      validation slice, as INPUT's train metadata defines it\n"
            "                      (train_frac, val_frac, batch_size, seq_length): INPUT\n"
            "                      as training computes it, then INPUT and OUTPUT through\n"
            "                      the inference kernel, as they are served\n"
            "  --threads N         threads for the as-trained --eval (1..8, default 1)\n"
            "  --help\n");
}

/* The validation split of text as the checkpoint's train metadata says. */
static int val_split(const charrnn_st_file *f, const charrnn_corpus *c, charrnn_split sp[3],
                     char *err, size_t errlen)
{
    const char *tj = charrnn_st_meta_get(f, "train");
    cJSON *j = tj ? cJSON_Parse(tj) : NULL;
    const char *keys[] = {"train_frac", "val_frac", "batch_size", "seq_length"};
    double v[4];
    for (int k = 0; k < 4; k++) {
        const cJSON *it = cJSON_GetObjectItemCaseSensitive(j, keys[k]);
        if (!cJSON_IsNumber(it)) {
            cJSON_Delete(j);
            return charrnn_fail(err, errlen, CHARRNN_EINVAL,
                                "the checkpoint's train metadata has no %s: cannot find its "
                                "validation slice",
                                keys[k]);
        }
        v[k] = it->valuedouble;
    }
    cJSON_Delete(j);
    if (!(v[2] >= 1 && v[2] <= 1e6 && v[3] >= 1 && v[3] <= 1e6))
        return charrnn_fail(err, errlen, CHARRNN_EINVAL,
                            "the checkpoint's batch_size or seq_length is out of range");
    return charrnn_split_make(c, v[0], v[1], (int)v[2], (int)v[3], sp, err, errlen);
}

typedef struct opts {
    const char *in, *out, *eval, *dtype;
    int threads;
} opts;

/* One command-line argument (args_parse's contract): flags, then INPUT and
 * OUTPUT in that order. */
static int flag(void *ctx, int argc, char **argv, int *i)
{
    opts *o = ctx;
    const char *a = argv[*i], *v;
    int r;
    if ((r = arg_value(argc, argv, i, "--dtype", &v)))
        return r > 0 && (o->dtype = v);
    if ((r = arg_value(argc, argv, i, "--eval", &v)))
        return r > 0 && (o->eval = v);
    if ((r = arg_value(argc, argv, i, "--threads", &v)))
        return r > 0 && parse_int("--threads", v, 1, 8, &o->threads);
    if (a[0] == '-' && a[1] != 0)
        return -1;
    if (!o->in)
        return (o->in = a) != NULL;
    if (!o->out)
        return (o->out = a) != NULL;
    fprintf(stderr, "charrnn-convert: one INPUT and one OUTPUT (see --help)\n");
    return 0;
}

int main(int argc, char **argv)
{
    charrnn_prog = "charrnn-convert";
    opts o = {NULL, NULL, NULL, NULL, 1};
    int pr = args_parse(argc, argv, flag, &o, usage);
    if (pr != ARGS_OK)
        return pr == ARGS_HELP ? 0 : 2;
    const char *in = o.in, *out = o.out, *eval = o.eval, *dtype = o.dtype;
    const int threads = o.threads;
    char err[CHARRNN_ERR_MAX];
    charrnn_dtype dt;
    if (!dtype || !in || !out) {
        fprintf(stderr, "charrnn-convert: --dtype, INPUT and OUTPUT are required (see --help)\n");
        return 2;
    }
    if (charrnn_dtype_parse(dtype, &dt, err, sizeof err)) {
        fprintf(stderr, "charrnn-convert: --dtype: %s\n", err);
        return 2;
    }
    charrnn_st_file *f = NULL;
    charrnn_model *src = NULL, *dst = NULL;
    charrnn_corpus *corpus = NULL;
    int rc = charrnn_st_read(in, &f, err, sizeof err);
    if (rc == CHARRNN_OK && (rc = charrnn_checkpoint_model(f, &src, err, sizeof err)))
        charrnn_err_prefix(err, sizeof err, rc, in);
    if (rc == CHARRNN_OK && src->dtype != CHARRNN_DTYPE_F32)
        rc = charrnn_fail(err, sizeof err, CHARRNN_EINVAL,
                          "%s holds %s weights; convert from the f32 checkpoint", in,
                          charrnn_dtype_name(src->dtype));
    if (rc == CHARRNN_OK)
        rc = charrnn_model_reduce(src, dt, &dst, err, sizeof err);
    /* --eval runs before anything is written: a command that fails (a text with
     * characters outside the vocabulary, say) leaves no OUTPUT behind. */
    charrnn_split sp[3];
    double l0 = NAN, s0 = NAN, s1 = NAN;
    if (rc == CHARRNN_OK && eval) {
        rc = charrnn_corpus_load(eval, src->vocab, &corpus, err, sizeof err);
        if (rc == CHARRNN_OK)
            rc = val_split(f, corpus, sp, err, sizeof err);
        if (rc == CHARRNN_OK)
            rc = charrnn_evaluate(src, &sp[1], threads, &l0, err, sizeof err);
        if (rc == CHARRNN_OK)
            rc = charrnn_evaluate_served(src, &sp[1], &s0, err, sizeof err);
        if (rc == CHARRNN_OK)
            rc = charrnn_evaluate_served(dst, &sp[1], &s1, err, sizeof err);
    }
    if (rc == CHARRNN_OK)
        rc = charrnn_checkpoint_save(out, dst, charrnn_st_meta_get(f, "train"), NULL, err,
                                     sizeof err);
    if (rc == CHARRNN_OK)
        printf("%s: %s %dx%d, %zu parameters, matrices in %s\n", out,
               charrnn_cell_name(dst->cfg.cell), dst->cfg.num_layers, dst->cfg.hidden_size,
               dst->num_params, charrnn_dtype_name(dt));
    if (rc == CHARRNN_OK && eval)
        printf("validation loss (%zu characters): f32 %.6f (as trained), f32 %.6f (as "
               "served), %s %.6f (as served), difference %+.6f nats/char\n",
               sp[1].n, l0, s0, charrnn_dtype_name(dt), s1, s1 - l0);
    if (rc != CHARRNN_OK)
        fprintf(stderr, "charrnn-convert: %s\n", err);
    charrnn_corpus_free(corpus);
    charrnn_model_free(dst);
    charrnn_model_free(src);
    charrnn_st_free(f);
    return rc == CHARRNN_OK ? 0 : 1;
}

/* SVG loss curves: train loss (bucket-averaged to at most 800 points) and
 * validation loss (every evaluation), on shared axes with labelled ticks. */
#include "charrnn/lossplot.h"

#include "charrnn/status.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct series {
    long *iter;
    float *loss;
    size_t n, cap;
} series;

struct charrnn_lossplot {
    series train, val;
};

charrnn_lossplot *charrnn_lossplot_create(void) { return calloc(1, sizeof(charrnn_lossplot)); }

void charrnn_lossplot_free(charrnn_lossplot *p)
{
    if (!p)
        return;
    free(p->train.iter), free(p->train.loss), free(p->val.iter), free(p->val.loss);
    free(p);
}

static int add(series *s, long iter, float loss)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 256;
        long *it = realloc(s->iter, cap * sizeof *it);
        if (!it)
            return CHARRNN_ENOMEM;
        s->iter = it;
        float *l = realloc(s->loss, cap * sizeof *l);
        if (!l)
            return CHARRNN_ENOMEM;
        s->loss = l, s->cap = cap;
    }
    s->iter[s->n] = iter, s->loss[s->n++] = loss;
    return CHARRNN_OK;
}

int charrnn_lossplot_add_train(charrnn_lossplot *p, long iter, float loss)
{
    return add(&p->train, iter, loss);
}

int charrnn_lossplot_add_val(charrnn_lossplot *p, long iter, float loss)
{
    return isfinite(loss) ? add(&p->val, iter, loss) : CHARRNN_OK;
}

/* A "nice" tick step (1, 2 or 5 x 10^k) giving about `want` ticks over span. */
static double tick_step(double span, int want)
{
    double raw = span / want, mag = pow(10.0, floor(log10(raw))), r = raw / mag;
    return (r < 1.5 ? 1 : r < 3.5 ? 2 : r < 7.5 ? 5 : 10) * mag;
}

enum { W = 800, HGT = 480, L = 70, R = 20, TOP = 40, BOT = 50 };

int charrnn_lossplot_write(const charrnn_lossplot *p, const char *path, const char *title,
                           char *err, size_t errlen)
{
    const series *tr = &p->train, *va = &p->val;
    long x0 = 0, x1 = 1;
    double y0 = INFINITY, y1 = -INFINITY;
    for (int k = 0; k < 2; k++) {
        const series *s = k ? va : tr;
        for (size_t i = 0; i < s->n; i++) {
            x1 = s->iter[i] > x1 ? s->iter[i] : x1;
            if (isfinite(s->loss[i])) {
                y0 = fmin(y0, s->loss[i]);
                y1 = fmax(y1, s->loss[i]);
            }
        }
    }
    if (!(y0 <= y1))
        y0 = 0, y1 = 1;
    if (y1 - y0 < 1e-3)
        y1 = y0 + 1e-3;
    double pad = 0.05 * (y1 - y0);
    y0 -= pad, y1 += pad;
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f)
        return charrnn_fail(err, errlen, CHARRNN_EIO, "cannot write %s: %s", tmp, strerror(errno));
#define SX(v) (L + ((double)(v) - x0) / (double)(x1 - x0) * (W - L - R))
#define SY(v) (TOP + (y1 - (double)(v)) / (y1 - y0) * (HGT - TOP - BOT))
    fprintf(f,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
            "font-family=\"sans-serif\" font-size=\"12\">\n"
            "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
            "<text x=\"%d\" y=\"24\" font-size=\"15\">",
            W, HGT, L);
    for (const char *c = title ? title : ""; *c; c++) /* escape for XML */
        fputs(*c == '<' ? "&lt;" : *c == '>' ? "&gt;" : *c == '&' ? "&amp;" : (char[2]){*c, 0}, f);
    fprintf(f, "</text>\n");
    double ys = tick_step(y1 - y0, 6);
    for (double v = ceil(y0 / ys) * ys; v <= y1; v += ys)
        fprintf(f,
                "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>"
                "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%.2f</text>\n",
                L, W - R, SY(v), SY(v), L - 6, SY(v) + 4, v);
    double xs = tick_step((double)(x1 - x0), 8);
    for (double v = 0; v <= x1; v += xs)
        fprintf(f,
                "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%d\" stroke=\"#eee\"/>"
                "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%.0f</text>\n",
                SX(v), SX(v), TOP, HGT - BOT, SX(v), HGT - BOT + 16, v);
    fprintf(f,
            "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">iteration</text>\n"
            "<text x=\"16\" y=\"%d\" transform=\"rotate(-90 16 %d)\" text-anchor=\"middle\">"
            "loss (nats/char)</text>\n",
            (W + L - R) / 2, HGT - 12, (HGT + TOP - BOT) / 2, (HGT + TOP - BOT) / 2);
    /* Train loss, averaged over buckets so the file stays small. */
    size_t per = tr->n / 800 + 1;
    fprintf(f, "<polyline fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"1.2\" points=\"");
    for (size_t i = 0; i < tr->n; i += per) {
        double sum = 0;
        size_t k = 0;
        for (; k < per && i + k < tr->n; k++)
            sum += tr->loss[i + k];
        fprintf(f, "%.1f,%.1f ", SX(tr->iter[i + k - 1]), SY(sum / (double)k));
    }
    fprintf(f, "\"/>\n<polyline fill=\"none\" stroke=\"#d62728\" stroke-width=\"2\" points=\"");
    for (size_t i = 0; i < va->n; i++)
        fprintf(f, "%.1f,%.1f ", SX(va->iter[i]), SY(va->loss[i]));
    fprintf(f, "\"/>\n");
    for (size_t i = 0; i < va->n; i++)
        fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"#d62728\"/>\n", SX(va->iter[i]),
                SY(va->loss[i]));
    fprintf(f,
            "<line x1=\"%d\" x2=\"%d\" y1=\"%d\" y2=\"%d\" stroke=\"#1f77b4\" stroke-width=\"2\"/>"
            "<text x=\"%d\" y=\"%d\">train</text>\n"
            "<line x1=\"%d\" x2=\"%d\" y1=\"%d\" y2=\"%d\" stroke=\"#d62728\" stroke-width=\"2\"/>"
            "<text x=\"%d\" y=\"%d\">validation</text>\n</svg>\n",
            W - 160, W - 140, 20, 20, W - 135, 24, W - 90, W - 70, 20, 20, W - 65, 24);
#undef SX
#undef SY
    int bad = ferror(f);
    bad |= fclose(f);
    if (bad || rename(tmp, path)) {
        unlink(tmp);
        return charrnn_fail(err, errlen, CHARRNN_EIO, "cannot write %s", path);
    }
    return CHARRNN_OK;
}

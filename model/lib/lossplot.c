/* SVG loss curves: train loss (bucket-averaged to at most 800 points) and
 * validation loss (every evaluation; batched and one-stream), on shared axes
 * with labelled ticks, and the history behind them as JSON, so a resumed run
 * continues its plot. */
#include "charrnn/lossplot.h"

#include "charrnn/fileio.h"
#include "charrnn/status.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A series keeps at most MAX_POINTS points: when full, neighbours are merged
 * in pairs and each later point averages twice as many raw values (stride),
 * so memory and the history saved in checkpoints stay bounded on any run. */
enum { MAX_POINTS = 2048 };

typedef struct series {
    long iter[MAX_POINTS];
    float loss[MAX_POINTS];
    size_t n;
    long stride; /* raw values per point */
    double acc;  /* sum of the raw values not yet in a point */
    long acc_n;
} series;

struct charrnn_lossplot {
    series train, val, stream;
};

static void series_reset(series *s)
{
    memset(s, 0, sizeof *s), s->stride = 1;
}

charrnn_lossplot *charrnn_lossplot_create(void)
{
    charrnn_lossplot *p = malloc(sizeof *p);
    if (p)
        series_reset(&p->train), series_reset(&p->val), series_reset(&p->stream);
    return p;
}

void charrnn_lossplot_free(charrnn_lossplot *p)
{
    free(p);
}

/* Records one raw loss (a non-finite one is skipped). */
static void add(series *s, long iter, float loss)
{
    if (!isfinite(loss))
        return;
    if (s->n == MAX_POINTS) { /* full (and nothing pending): halve, double the stride */
        for (size_t i = 0; i < MAX_POINTS / 2; i++) {
            s->iter[i] = s->iter[2 * i + 1];
            s->loss[i] = 0.5f * (s->loss[2 * i] + s->loss[2 * i + 1]);
        }
        s->n = MAX_POINTS / 2, s->stride *= 2;
    }
    s->acc += loss;
    if (++s->acc_n < s->stride)
        return;
    s->iter[s->n] = iter, s->loss[s->n++] = (float)(s->acc / (double)s->acc_n);
    s->acc = 0.0, s->acc_n = 0;
}

int charrnn_lossplot_add_train(charrnn_lossplot *p, long iter, float loss)
{
    add(&p->train, iter, loss);
    return CHARRNN_OK;
}

int charrnn_lossplot_add_val(charrnn_lossplot *p, long iter, float loss)
{
    add(&p->val, iter, loss);
    return CHARRNN_OK;
}

int charrnn_lossplot_add_stream(charrnn_lossplot *p, long iter, float loss)
{
    add(&p->stream, iter, loss);
    return CHARRNN_OK;
}

/* {"stride": S, "points": [[iter, loss], ...], "pending": [sum, count]};
 * NULL when out of memory. */
static cJSON *series_json(const series *s)
{
    cJSON *o = cJSON_CreateObject();
    int ok = o && cJSON_AddNumberToObject(o, "stride", (double)s->stride);
    cJSON *pts = ok ? cJSON_AddArrayToObject(o, "points") : NULL;
    ok = pts != NULL;
    for (size_t i = 0; ok && i < s->n; i++) {
        const double pair[2] = {(double)s->iter[i], (double)s->loss[i]};
        cJSON *pt = cJSON_CreateDoubleArray(pair, 2);
        ok = pt && cJSON_AddItemToArray(pts, pt);
    }
    const double pending[2] = {s->acc, (double)s->acc_n};
    cJSON *pend = ok ? cJSON_CreateDoubleArray(pending, 2) : NULL;
    ok = pend && cJSON_AddItemToObject(o, "pending", pend);
    if (!ok)
        cJSON_Delete(o);
    return ok ? o : NULL;
}

char *charrnn_lossplot_history(const charrnn_lossplot *p)
{
    cJSON *j = cJSON_CreateObject(), *tr = series_json(&p->train), *va = series_json(&p->val);
    cJSON *st = series_json(&p->stream);
    char *out = NULL;
    if (j && tr && cJSON_AddItemToObject(j, "train", tr)) {
        tr = NULL;
        if (va && cJSON_AddItemToObject(j, "val", va)) {
            va = NULL;
            if (st && cJSON_AddItemToObject(j, "stream", st)) {
                st = NULL;
                out = cJSON_PrintUnformatted(j);
            }
        }
    }
    cJSON_Delete(j), cJSON_Delete(tr), cJSON_Delete(va), cJSON_Delete(st);
    return out;
}

/* A loss as the plot stores it: a finite, non-negative float. */
static int loss_ok(const cJSON *v)
{
    return cJSON_IsNumber(v) && v->valuedouble >= 0 && isfinite((float)v->valuedouble);
}

/* Reads one series, checking everything: the text comes from a file. */
static int series_load(series *s, const cJSON *o, long upto)
{
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(o, "stride");
    const cJSON *pts = cJSON_GetObjectItemCaseSensitive(o, "points");
    const cJSON *pend = cJSON_GetObjectItemCaseSensitive(o, "pending");
    const cJSON *psum = cJSON_GetArrayItem(pend, 0), *pn = cJSON_GetArrayItem(pend, 1);
    if (!cJSON_IsNumber(st) || !(st->valuedouble >= 1 && st->valuedouble <= 1e12) ||
        st->valuedouble != floor(st->valuedouble) || !cJSON_IsArray(pts) ||
        cJSON_GetArraySize(pts) > MAX_POINTS || !cJSON_IsArray(pend) ||
        cJSON_GetArraySize(pend) != 2 || !loss_ok(psum) || !cJSON_IsNumber(pn) ||
        !(pn->valuedouble >= 0 && pn->valuedouble < st->valuedouble) ||
        pn->valuedouble != floor(pn->valuedouble))
        return 0;
    series_reset(s);
    s->stride = (long)st->valuedouble;
    s->acc = psum->valuedouble, s->acc_n = (long)pn->valuedouble;
    long last = 0;
    const cJSON *pt;
    cJSON_ArrayForEach(pt, pts)
    {
        const cJSON *it = cJSON_GetArrayItem(pt, 0), *l = cJSON_GetArrayItem(pt, 1);
        if (!cJSON_IsArray(pt) || cJSON_GetArraySize(pt) != 2 || !cJSON_IsNumber(it) ||
            !loss_ok(l) || !(it->valuedouble > last && it->valuedouble <= upto) ||
            it->valuedouble != floor(it->valuedouble))
            return 0;
        last = (long)it->valuedouble;
        s->iter[s->n] = last, s->loss[s->n++] = (float)l->valuedouble;
    }
    return 1;
}

int charrnn_lossplot_restore(charrnn_lossplot *p, const char *history, long upto)
{
    cJSON *j = cJSON_Parse(history);
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(j, "stream");
    int ok = j && series_load(&p->train, cJSON_GetObjectItemCaseSensitive(j, "train"), upto) &&
        series_load(&p->val, cJSON_GetObjectItemCaseSensitive(j, "val"), upto);
    if (ok && st) /* absent in histories from before the one-stream loss */
        ok = series_load(&p->stream, st, upto);
    else if (ok)
        series_reset(&p->stream);
    cJSON_Delete(j);
    if (!ok)
        series_reset(&p->train), series_reset(&p->val), series_reset(&p->stream);
    return ok ? CHARRNN_OK : CHARRNN_EFORMAT;
}

/* A "nice" tick step (1, 2 or 5 x 10^k) giving about `want` ticks over span. */
static double tick_step(double span, int want)
{
    double raw = span / want, mag = pow(10.0, floor(log10(raw))), r = raw / mag;
    return (r < 1.5 ? 1 : r < 3.5 ? 2 : r < 7.5 ? 5 : 10) * mag;
}

enum { W = 800, HGT = 480, L = 70, R = 20, TOP = 40, BOT = 50 };

typedef struct svg_job {
    const charrnn_lossplot *p;
    const char *title;
} svg_job;

/* The SVG into f (charrnn_file_write_atomic's producer). */
static int draw(FILE *f, void *ctx)
{
    const charrnn_lossplot *p = ((const svg_job *)ctx)->p;
    const char *title = ((const svg_job *)ctx)->title;
    const series *tr = &p->train, *va = &p->val, *st = &p->stream;
    long x0 = 0, x1 = 1;
    double y0 = INFINITY, y1 = -INFINITY;
    for (int k = 0; k < 3; k++) {
        const series *s = k == 0 ? tr : k == 1 ? va : st;
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
#define SX(v) (L + ((double)(v)-x0) / (double)(x1 - x0) * (W - L - R))
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
    fprintf(f, "\"/>\n");
    /* Validation (solid) and stream (dashed) losses: a line through every
     * point and a dot on each. */
    for (int k = 0; k < 2; k++) {
        const series *s = k == 0 ? va : st;
        const char *color = k == 0 ? "#d62728" : "#ff7f0e";
        fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" %spoints=\"", color,
                k == 0 ? "" : "stroke-dasharray=\"6 4\" ");
        for (size_t i = 0; i < s->n; i++)
            fprintf(f, "%.1f,%.1f ", SX(s->iter[i]), SY(s->loss[i]));
        fprintf(f, "\"/>\n");
        for (size_t i = 0; i < s->n; i++)
            fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>\n", SX(s->iter[i]),
                    SY(s->loss[i]), color);
    }
    fprintf(f,
            "<line x1=\"%d\" x2=\"%d\" y1=\"%d\" y2=\"%d\" stroke=\"#1f77b4\" stroke-width=\"2\"/>"
            "<text x=\"%d\" y=\"%d\">train</text>\n"
            "<line x1=\"%d\" x2=\"%d\" y1=\"%d\" y2=\"%d\" stroke=\"#d62728\" stroke-width=\"2\"/>"
            "<text x=\"%d\" y=\"%d\">validation</text>\n"
            "<line x1=\"%d\" x2=\"%d\" y1=\"%d\" y2=\"%d\" stroke=\"#ff7f0e\" stroke-width=\"2\" "
            "stroke-dasharray=\"6 4\"/><text x=\"%d\" y=\"%d\">validation, one stream</text>\n"
            "</svg>\n",
            W - 410, W - 390, 20, 20, W - 385, 24, W - 335, W - 315, 20, 20, W - 310, 24, W - 235,
            W - 215, 20, 20, W - 210, 24);
#undef SX
#undef SY
    return ferror(f);
}

int charrnn_lossplot_write(const charrnn_lossplot *p, const char *path, const char *title,
                           char *err, size_t errlen)
{
    svg_job job = {p, title};
    return charrnn_file_write_atomic(path, draw, &job, err, errlen);
}

/* Training and validation loss against iterations, drawn as an SVG file.
 * The history grows as training runs; the SVG is rewritten atomically (a
 * temporary file, then rename) so a browser never sees half a plot. */
#ifndef CHARRNN_LOSSPLOT_H
#define CHARRNN_LOSSPLOT_H

#include <stddef.h>

typedef struct charrnn_lossplot charrnn_lossplot;

/* NULL on allocation failure. */
charrnn_lossplot *charrnn_lossplot_create(void);
void charrnn_lossplot_free(charrnn_lossplot *p);
/* Records a point; returns CHARRNN_ENOMEM when the history cannot grow. */
int charrnn_lossplot_add_train(charrnn_lossplot *p, long iter, float loss);
int charrnn_lossplot_add_val(charrnn_lossplot *p, long iter, float loss);
/* Writes the SVG to path (atomically). */
int charrnn_lossplot_write(const charrnn_lossplot *p, const char *path, const char *title,
                           char *err, size_t errlen);

#endif

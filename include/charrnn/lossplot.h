/* Training and validation loss (batched and one-stream) against iterations,
 * drawn as an SVG file.
 * The history grows as training runs; the SVG is rewritten atomically
 * (charrnn_file_write_atomic) so a browser never sees half a plot. */
#ifndef CHARRNN_LOSSPLOT_H
#define CHARRNN_LOSSPLOT_H

#include <stddef.h>

typedef struct charrnn_lossplot charrnn_lossplot;

/* NULL on allocation failure. */
charrnn_lossplot *charrnn_lossplot_create(void);
void charrnn_lossplot_free(charrnn_lossplot *p);
/* Records a loss (non-finite ones are skipped). Memory is bounded: past
 * 2048 points, neighbouring points merge in pairs (averaged) and later points
 * each average more raw values. Returns CHARRNN_OK. */
int charrnn_lossplot_add_train(charrnn_lossplot *p, long iter, float loss);
int charrnn_lossplot_add_val(charrnn_lossplot *p, long iter, float loss);
/* The one-stream validation loss (charrnn/stream_loss.h), drawn dashed. */
int charrnn_lossplot_add_stream(charrnn_lossplot *p, long iter, float loss);
/* The recorded history as a JSON object (malloc'd text, NULL when out of
 * memory): {"train": {"stride": S, "points": [[iter, loss], ...],
 * "pending": [sum, count]}, "val": ..., "stream": ...}, "pending" being the raw values not
 * yet averaged into a point, so a restored plot continues exactly. */
char *charrnn_lossplot_history(const charrnn_lossplot *p);
/* Replaces the history with one from charrnn_lossplot_history, validated
 * ("stream" may be absent: histories from before it was measured; iterations whole, strictly ascending, 1..upto; losses finite floats >= 0;
 * at most 2048 points; fewer pending values than the stride). On
 * CHARRNN_EFORMAT the history is left empty. */
int charrnn_lossplot_restore(charrnn_lossplot *p, const char *history, long upto);
/* Writes the SVG to path with charrnn_file_write_atomic (same errors). */
int charrnn_lossplot_write(const charrnn_lossplot *p, const char *path, const char *title,
                           char *err, size_t errlen);

#endif

/* The monotonic clock, for durations and deadlines (never for dates). */
#ifndef CHARRNN_CLOCK_H
#define CHARRNN_CLOCK_H

/* Seconds on CLOCK_MONOTONIC: only differences mean something. */
double charrnn_clock_mono(void);

#endif

/* The monotonic clock, for durations and deadlines (never for dates). */
#ifndef CHARRNN_CLOCK_H
#define CHARRNN_CLOCK_H

#include <time.h>

/* Seconds on CLOCK_MONOTONIC: only differences mean something. */
double charrnn_clock_mono(void);

/* *ts = the CLOCK_REALTIME time `seconds` (at most a day) from now: the
 * deadline pthread_cond_timedwait takes for a condition variable with the
 * default clock. */
void charrnn_clock_deadline(struct timespec *ts, double seconds);

#endif

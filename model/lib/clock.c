/* See charrnn/clock.h. */
#include "charrnn/clock.h"

#include <time.h>

double charrnn_clock_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void charrnn_clock_deadline(struct timespec *ts, double seconds)
{
    clock_gettime(CLOCK_REALTIME, ts);
    if (seconds > 86400)
        seconds = 86400;
    if (seconds < 0)
        seconds = 0;
    time_t s = (time_t)seconds;
    ts->tv_sec += s;
    ts->tv_nsec += (long)((seconds - (double)s) * 1e9);
    if (ts->tv_nsec >= 1000000000L)
        ts->tv_sec++, ts->tv_nsec -= 1000000000L;
}

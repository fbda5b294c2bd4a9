/* See charrnn/clock.h. */
#include "charrnn/clock.h"

#include <time.h>

double charrnn_clock_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

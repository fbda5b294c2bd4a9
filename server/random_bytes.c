/* See random_bytes.h. */
#include "random_bytes.h"

#include <errno.h>
#include <sys/random.h>
#include <sys/types.h>

int random_bytes(void *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = getrandom((char *)buf + got, n - got, 0);
        if (r > 0)
            got += (size_t)r;
        else if (r < 0 && errno != EINTR)
            return -1;
    }
    return 0;
}

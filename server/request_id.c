/* X-Request-Id: accepted when short and plain (so it cannot forge log fields
 * or headers), generated otherwise. */
#include "request_id.h"

#include "random_bytes.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <stdatomic.h>
#include <time.h>

int request_id_valid(const char *given)
{
    if (!given)
        return 0;
    size_t n = strlen(given);
    if (n < 1 || n > REQUEST_ID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = given[i];
        int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
            strchr("._:@+/=-", ch) != NULL;
        if (!ok)
            return 0;
    }
    return 1;
}

void request_id_assign(const char *given, char *out)
{
    if (request_id_valid(given)) {
        snprintf(out, REQUEST_ID_MAX + 1, "%s", given);
        return;
    }
    unsigned char b[16];
    if (random_bytes(b, sizeof b) != 0) {
        /* No random source (seccomp): unique is enough for an id. */
        static atomic_ulong counter;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        snprintf(out, REQUEST_ID_MAX + 1, "t%llx%09ld-%lx", (unsigned long long)ts.tv_sec,
                 ts.tv_nsec, (unsigned long)atomic_fetch_add(&counter, 1));
        return;
    }
    for (size_t i = 0; i < sizeof b; i++)
        snprintf(out + 2 * i, 3, "%02x", b[i]);
}

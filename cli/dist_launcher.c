/* What the launcher's environment says about the job (cli/dist.h). */
#include "dist.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static char alone_host[256];
static const char *alone_hosts[1] = {alone_host};

void dist_alone(dist *d)
{
    if (gethostname(alone_host, sizeof alone_host - 1))
        snprintf(alone_host, sizeof alone_host, "localhost");
    *d = (dist){.comm = {.rank = 0, .size = 1, .hosts = alone_hosts},
                .local_size = 1,
                .hosts = alone_hosts};
}

long dist_launcher_size(const char **var)
{
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MV2_COMM_WORLD_SIZE",
                                       "SLURM_STEP_NUM_TASKS"};
    long best = 0;
    *var = NULL;
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++) {
        const char *s = getenv(vars[i]);
        if (!s || !*s)
            continue;
        char *end;
        errno = 0;
        long v = strtol(s, &end, 10);
        if (!errno && !*end && v > best)
            best = v, *var = vars[i];
    }
    return best;
}

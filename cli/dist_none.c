/* A charrnn-train built without MPI: always a job of one process. Started
 * by a launcher as one of several ranks, it refuses: each copy would train
 * its own model on the whole batch and they would overwrite each other's
 * checkpoints. */
#include "dist.h"

#include <stdio.h>

int dist_begin(int *argc, char ***argv, dist *d)
{
    (void)argc, (void)argv;
    const char *var;
    long n = dist_launcher_size(&var);
    if (n > 1) {
        fprintf(stderr,
                "charrnn-train: started as one of %ld processes (%s=%ld), but this build has no "
                "MPI support, so each would train a separate copy; rebuild with Open MPI "
                "(meson setup -Dmpi=enabled) or start one process\n",
                n, var, n);
        return 2;
    }
    dist_alone(d);
    return 0;
}

int dist_end(dist *d, int status)
{
    (void)d;
    return status;
}

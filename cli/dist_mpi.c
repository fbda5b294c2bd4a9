/* charrnn-train as one rank of an MPI job (cli/dist.h): the transport of
 * include/charrnn/comm.h on MPI point-to-point messages and broadcasts.
 *
 * Bytes travel unchanged (MPI_BYTE, a homogeneous cluster), so the library's
 * fixed summation order is all that decides the bits of a sum: MPI's own
 * reductions (MPI_Allreduce) are not used, their order is unspecified.
 * Errors are fatal (MPI's default handler): a dead peer ends the job
 * instead of leaving the others waiting. */
#include "dist.h"

#include <limits.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PIECE ((size_t)1 << 30) /* MPI counts are int */

/* Waits for a request without holding a core. MPI's blocking calls spin:
 * on a machine whose cores are shared (other jobs, more ranks than cores,
 * a container's CPU quota) a spinning rank burns the time slices its peer
 * needs to send what it waits for. So: test back to back for a moment (a
 * message on its way arrives within microseconds on a quiet machine), then
 * sleep 50 us between tests. Each test also drives MPI's progress. */
static int wait_for(MPI_Request *rq)
{
    const struct timespec nap = {0, 50000};
    for (long spins = 0;; spins++) {
        int done = 0;
        if (MPI_Test(rq, &done, MPI_STATUS_IGNORE) != MPI_SUCCESS)
            return -1;
        if (done)
            return 0;
        if (spins >= 2000)
            nanosleep(&nap, NULL);
    }
}

enum { SEND, RECV, BCAST };

/* One transfer of bytes at p in pieces of at most PIECE bytes: each piece's
 * nonblocking call (peer: the destination, the source or the root), waited
 * for with wait_for. */
static int in_pieces(int op, int peer, char *p, size_t bytes)
{
    do {
        const size_t n = bytes < PIECE ? bytes : PIECE;
        MPI_Request rq;
        int rc = op == SEND ? MPI_Isend(p, (int)n, MPI_BYTE, peer, 0, MPI_COMM_WORLD, &rq)
            : op == RECV    ? MPI_Irecv(p, (int)n, MPI_BYTE, peer, 0, MPI_COMM_WORLD, &rq)
                            : MPI_Ibcast(p, (int)n, MPI_BYTE, peer, MPI_COMM_WORLD, &rq);
        if (rc != MPI_SUCCESS || wait_for(&rq))
            return -1;
        p += n, bytes -= n;
    } while (bytes > 0);
    return 0;
}

static int mpi_send(void *ctx, int to, const void *buf, size_t bytes)
{
    (void)ctx;
    return in_pieces(SEND, to, (char *)buf, bytes); /* MPI_Isend only reads it */
}

static int mpi_recv(void *ctx, int from, void *buf, size_t bytes)
{
    (void)ctx;
    return in_pieces(RECV, from, buf, bytes);
}

static int mpi_bcast(void *ctx, int root, void *buf, size_t bytes)
{
    (void)ctx;
    return in_pieces(BCAST, root, buf, bytes);
}

int dist_begin(int *argc, char ***argv, dist *d)
{
    const char *var;
    const long launched = dist_launcher_size(&var);
    if (launched <= 1) { /* no launcher (or a job of one): no MPI at all */
        dist_alone(d);
        return 0;
    }
    int provided, size, rank;
    /* Only the main thread calls MPI; the worker threads only compute. */
    if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
        fprintf(stderr, "charrnn-train: MPI_Init failed\n");
        return 1;
    }
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    if (size != launched) {
        fprintf(stderr,
                "charrnn-train: the launcher started %ld processes (%s) but MPI sees a job of "
                "%d: is this charrnn-train built with the launcher's MPI?\n",
                launched, var, size);
        MPI_Finalize();
        return 2;
    }
    MPI_Comm local;
    int local_size = 1;
    if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &local) ==
        MPI_SUCCESS) {
        MPI_Comm_size(local, &local_size);
        MPI_Comm_free(&local);
    }
    char name[MPI_MAX_PROCESSOR_NAME + 1] = {0};
    int len;
    MPI_Get_processor_name(name, &len);
    char *names = calloc((size_t)size, sizeof name);
    const char **hosts = calloc((size_t)size, sizeof *hosts);
    if (!names || !hosts) {
        fprintf(stderr, "charrnn-train: out of memory\n");
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    MPI_Allgather(name, (int)sizeof name, MPI_CHAR, names, (int)sizeof name, MPI_CHAR,
                  MPI_COMM_WORLD);
    for (int r = 0; r < size; r++)
        hosts[r] = names + (size_t)r * sizeof name;
    *d = (dist){.comm = {.rank = rank,
                         .size = size,
                         .hosts = hosts,
                         .send = mpi_send,
                         .recv = mpi_recv,
                         .bcast = mpi_bcast},
                .local_size = local_size,
                .hosts = hosts,
                .joined = 1};
    return 0;
}

int dist_end(dist *d, int status)
{
    if (!d->joined)
        return status;
    if (status != 0)
        MPI_Abort(MPI_COMM_WORLD, status); /* the other ranks may be waiting for this one */
    MPI_Finalize();
    free((void *)d->hosts[0]);
    free((void *)d->hosts);
    return 0;
}

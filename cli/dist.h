/* charrnn-train's place in a multi-process job: one process alone, or one
 * rank of a job that an MPI launcher (mpirun, srun, the MPI Operator)
 * started. Two implementations: dist_mpi.c (built with Open MPI) and
 * dist_none.c (without, where a multi-rank launch is refused). */
#ifndef CHARRNN_CLI_DIST_H
#define CHARRNN_CLI_DIST_H

#include "charrnn/comm.h"

typedef struct dist {
    charrnn_comm comm;  /* rank 0 of 1 when alone */
    int local_size;     /* ranks on this host (shares its cores) */
    const char **hosts; /* (comm.size) */
    int joined;         /* an MPI job was joined (dist_end must leave it) */
} dist;

/* Joins the launcher's job when the environment says there is one, else
 * sets up a job of one. On failure prints why and returns an exit status
 * (> 0); 0 on success. */
int dist_begin(int *argc, char ***argv, dist *d);

/* Leaves the job: status 0 ends it cleanly on every rank; a non-zero status
 * on any rank ends the whole job with that status (the others may be waiting
 * for this one). Returns the status for main() to return. */
int dist_end(dist *d, int status);

/* The number of processes the launcher's environment says this job has (0
 * when none says anything) and the variable that said it. Launchers: Open
 * MPI (OMPI_COMM_WORLD_SIZE), MPICH/Intel MPI/Slurm PMI (PMI_SIZE), MVAPICH
 * (MV2_COMM_WORLD_SIZE), srun (SLURM_STEP_NUM_TASKS). */
long dist_launcher_size(const char **var);

/* A job of one: this process, this host. */
void dist_alone(dist *d);

#endif

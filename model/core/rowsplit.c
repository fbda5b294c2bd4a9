/* Row splitting of a step's products across threads (charrnn/rowsplit.h).
 *
 * A posted job is up to two products cut into blocks of rs->block rows. The
 * ticket word holds (sequence, block count, next block): a thread claims a
 * block with one fetch-add and works on it only when the index it got is
 * below the count in the same word, so a late helper can never touch a job
 * that is finished (and whose description the poster may be rewriting): a
 * job cannot finish while one of its blocks is claimed and not done. */
#include "charrnn/rowsplit.h"

#include "charrnn/lowp.h"

#include "rowdot_quant.h"
#include "rowdot_variants.h"

#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

/* Bytes of weights per block: each claim then pays its fetch-add and its
 * first cache misses over enough work. A fixed count of rows for every dtype
 * gave the narrow dtypes too little work per claim: one stream on 2 threads
 * ran slower in int8 and bf16 with 64-row blocks than with 128 KB ones
 * (docs/benchmarks.md, "Measurements behind constants in the code"). Blocks
 * are also kept to at most a quarter of a post's rows per thread, so that the
 * threads even out. */
#define BLOCK_BYTES (128 << 10)
/* Products smaller than this (bytes of weights) are not worth a split. */
#define MIN_SPLIT_BYTES (64 << 10)
#define MAX_BLOCKS 0xFFF /* the ticket's count field */

struct charrnn_rowsplit {
    _Alignas(64) _Atomic uint64_t ticket; /* seq << 44 | nblocks << 32 | next */
    _Alignas(64) atomic_uint done;        /* blocks finished of the current job */
    _Alignas(64) atomic_int open;
    atomic_int helpers; /* threads inside charrnn_rowsplit_help */
    /* The current job, written by the poster before it publishes the ticket. */
    charrnn_rd_job jobs[2];
    const charrnn_rd_qin *qin[2]; /* int8 jobs' inputs quantized once, or NULL */
    int njobs, first[3];          /* block index where each job starts */
    int block;                    /* rows per block of the current job (a multiple of 8) */
    uint64_t seq;
    /* The poster's: quantized inputs of the current int8 jobs. */
    charrnn_rd_qin qbuf[2];
    int8_t *qbytes;
    size_t qcap;
};

static inline void relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

charrnn_rowsplit *charrnn_rowsplit_create(void)
{
    charrnn_rowsplit *rs = aligned_alloc(64, sizeof *rs);
    if (!rs)
        return NULL;
    atomic_init(&rs->ticket, 0);
    atomic_init(&rs->done, 0);
    atomic_init(&rs->open, 0);
    atomic_init(&rs->helpers, 0);
    rs->njobs = 0;
    rs->seq = 0;
    rs->qbytes = NULL;
    rs->qcap = 0;
    return rs;
}

void charrnn_rowsplit_free(charrnn_rowsplit *rs)
{
    if (rs)
        free(rs->qbytes);
    free(rs);
}

void charrnn_rowsplit_open(charrnn_rowsplit *rs)
{
    atomic_store(&rs->open, 1);
}

void charrnn_rowsplit_close(charrnn_rowsplit *rs)
{
    atomic_store(&rs->open, 0);
}

int charrnn_rowsplit_is_open(const charrnn_rowsplit *rs)
{
    return atomic_load(&((charrnn_rowsplit *)rs)->open);
}

int charrnn_rowsplit_helpers(const charrnn_rowsplit *rs)
{
    return atomic_load(&((charrnn_rowsplit *)rs)->helpers);
}

/* Block k of the current job: rows [r0, r0 + block) of one product. */
static void run_block(const charrnn_rowsplit *rs, unsigned k)
{
    int j = k >= (unsigned)rs->first[1] ? 1 : 0;
    const charrnn_rd_job *jb = &rs->jobs[j];
    int r0 = (int)(k - (unsigned)rs->first[j]) * rs->block;
    int nr = jb->R - r0 < rs->block ? jb->R - r0 : rs->block;
    size_t esz = charrnn_dtype_bytes((charrnn_dtype)jb->dt);
    float *y[CHARRNN_RD_MAX_STREAMS];
    for (size_t s = 0; s < jb->n; s++)
        y[s] = jb->y[s] + r0;
    charrnn_rd_rows(jb->dt, (const char *)jb->w + (size_t)r0 * (size_t)jb->D * esz,
                    jb->sc ? jb->sc + r0 : NULL, jb->b + r0, nr, jb->D, jb->n, jb->x, rs->qin[j],
                    y);
}

/* Claims and runs blocks of the current job until none are left. */
static void claim(charrnn_rowsplit *rs)
{
    for (;;) {
        uint64_t t = atomic_fetch_add_explicit(&rs->ticket, 1, memory_order_acquire);
        unsigned idx = (unsigned)(t & 0xFFFFFFFFu), nb = (unsigned)((t >> 32) & MAX_BLOCKS);
        if (idx >= nb)
            return;
        run_block(rs, idx);
        atomic_fetch_add_explicit(&rs->done, 1, memory_order_release);
    }
}

void charrnn_rowsplit_help(charrnn_rowsplit *rs)
{
    atomic_fetch_add(&rs->helpers, 1);
    unsigned idle = 0;
    while (atomic_load_explicit(&rs->open, memory_order_relaxed)) {
        uint64_t t = atomic_load_explicit(&rs->ticket, memory_order_relaxed);
        if ((t & 0xFFFFFFFFu) < ((t >> 32) & MAX_BLOCKS)) {
            claim(rs);
            idle = 0;
            continue;
        }
        /* Between steps the poster samples and books; past ~1 ms without
         * work (a stalled or descheduled poster), give the core away. */
        if (++idle > 20000)
            sched_yield();
        else
            relax();
    }
    atomic_fetch_sub(&rs->helpers, 1);
}

/* The int8 jobs' inputs quantized into rs, once for all their blocks (NULL
 * where it cannot allocate: each block then quantizes for itself, with the
 * same result). Poster only. */
static void quantize_inputs(charrnn_rowsplit *rs, const charrnn_rd_job *jobs, int njobs)
{
    size_t need = 0;
    for (int j = 0; j < njobs; j++)
        if (jobs[j].dt == CHARRNN_DTYPE_INT8)
            need += jobs[j].n * (size_t)rd_qstride(jobs[j].D);
    if (need > rs->qcap) {
        int8_t *p = aligned_alloc(64, (need + 63) / 64 * 64);
        if (p) {
            free(rs->qbytes);
            rs->qbytes = p;
            rs->qcap = (need + 63) / 64 * 64;
        }
    }
    size_t off = 0;
    for (int j = 0; j < njobs; j++) {
        rs->qin[j] = NULL;
        if (jobs[j].dt != CHARRNN_DTYPE_INT8 || need > rs->qcap)
            continue;
        charrnn_rd_qin *qi = &rs->qbuf[j];
        for (size_t s = 0; s < jobs[j].n; s++) {
            int8_t *q = rs->qbytes + off;
            rd_quantize(jobs[j].x[s], jobs[j].D, q, &qi->xs[s], &qi->qsum[s]);
            qi->q[s] = q;
            off += (size_t)rd_qstride(jobs[j].D);
        }
        rs->qin[j] = qi;
    }
}

/* The jobs on the calling thread alone. */
static void run_unsplit(const charrnn_rd_job *jobs, int njobs)
{
    for (int j = 0; j < njobs; j++)
        charrnn_rd_rows(jobs[j].dt, jobs[j].w, jobs[j].sc, jobs[j].b, jobs[j].R, jobs[j].D,
                        jobs[j].n, jobs[j].x, NULL, jobs[j].y);
}

static int worth_splitting(const charrnn_rd_job *jobs, int njobs)
{
    size_t bytes = 0;
    for (int j = 0; j < njobs; j++)
        bytes +=
            (size_t)jobs[j].R * (size_t)jobs[j].D * charrnn_dtype_bytes((charrnn_dtype)jobs[j].dt);
    return bytes >= MIN_SPLIT_BYTES;
}

void charrnn_rd_run(struct charrnn_rowsplit *rs, const charrnn_rd_job *jobs, int njobs)
{
    if (!rs || njobs > 2 || atomic_load_explicit(&rs->helpers, memory_order_relaxed) == 0 ||
        !worth_splitting(jobs, njobs)) {
        run_unsplit(jobs, njobs);
        return;
    }
    /* Rows per block: BLOCK_BYTES of the first product's rows, at most a
     * quarter of the post's rows per thread, a multiple of 8, at least 8. */
    size_t rows = 0;
    for (int j = 0; j < njobs; j++)
        rows += (size_t)jobs[j].R;
    const int threads = 1 + atomic_load_explicit(&rs->helpers, memory_order_relaxed);
    size_t block =
        BLOCK_BYTES / ((size_t)jobs[0].D * charrnn_dtype_bytes((charrnn_dtype)jobs[0].dt));
    if (block > rows / (4 * (size_t)threads))
        block = rows / (4 * (size_t)threads);
    block = block / 8 * 8;
    rs->block = block < 8 ? 8 : (int)block;
    int nb = 0;
    for (int j = 0; j < njobs; j++) {
        rs->jobs[j] = jobs[j];
        rs->first[j] = nb;
        nb += (jobs[j].R + rs->block - 1) / rs->block;
    }
    for (int j = njobs; j < 3; j++)
        rs->first[j] = nb;
    if (nb > MAX_BLOCKS) { /* beyond any model this build accepts; stay correct anyway */
        run_unsplit(jobs, njobs);
        return;
    }
    quantize_inputs(rs, jobs, njobs);
    rs->njobs = njobs;
    rs->seq++;
    atomic_store_explicit(&rs->done, 0, memory_order_relaxed);
    /* Release: the job description and the reset count before the ticket. */
    atomic_store_explicit(&rs->ticket, (rs->seq << 44) | ((uint64_t)nb << 32),
                          memory_order_release);
    claim(rs);
    while (atomic_load_explicit(&rs->done, memory_order_acquire) < (unsigned)nb)
        relax();
}

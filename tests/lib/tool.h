/* The start the test tools and benchmark programs share (tests/interop,
 * tests/bench): a usage line when the arguments are off, a checkpoint loaded,
 * and a failure said as "PROG: message" with exit status 1 (usage: 2), so
 * each program's main keeps only its own work. */
#ifndef CHARRNN_TESTS_TOOL_H
#define CHARRNN_TESTS_TOOL_H

#include "charrnn/checkpoint.h"
#include "charrnn/status.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

/* Prints "usage: " and the usage line (a printf format and its arguments,
 * e.g. argv[0]) and exits 2 unless ok. */
static inline __attribute__((format(printf, 2, 3))) void tool_usage(int ok, const char *usage, ...)
{
    if (ok)
        return;
    va_list ap;
    va_start(ap, usage);
    fputs("usage: ", stderr);
    vfprintf(stderr, usage, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}

/* Prints "PROG: msg" (msg alone when prog is NULL) and exits 1. */
static inline _Noreturn void tool_fail(const char *prog, const char *msg)
{
    if (prog)
        fprintf(stderr, "%s: %s\n", prog, msg);
    else
        fprintf(stderr, "%s\n", msg);
    exit(1);
}

/* The checkpoint at path (any dtype); tool_fail with the loader's message if
 * it does not load. */
static inline charrnn_model *tool_load(const char *prog, const char *path)
{
    char err[CHARRNN_ERR_MAX];
    charrnn_model *m;
    if (charrnn_checkpoint_load(path, &m, err, sizeof err))
        tool_fail(prog, err);
    return m;
}

#endif

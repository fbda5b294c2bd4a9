/* Strict command-line value parsing shared by the CLI front ends.
 * Every parser prints "<prog>: <flag>: <problem>" to stderr and returns 0 on
 * a bad value, so a mistyped flag never silently becomes a default. */
#ifndef CHARRNN_CLI_ARGS_H
#define CHARRNN_CLI_ARGS_H

#include "charrnn/sampler.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

extern const char *charrnn_prog;

enum { ARGS_OK = 0, ARGS_HELP = 1, ARGS_BAD = 2 };

/* The argument loop of a front end: --help / -h print usage(stdout) and give
 * ARGS_HELP; every other argument goes to one(ctx, argc, argv, &i), which
 * returns 1 when it took the flag (and its value), 0 on a bad value it has
 * reported, -1 for a flag it does not know (reported here). ARGS_BAD on the
 * first failure. */
int args_parse(int argc, char **argv, int (*one)(void *ctx, int argc, char **argv, int *i),
               void *ctx, void (*usage)(FILE *f));

/* Matches argv[*i] against --name or --name=VALUE; on a match stores the value
 * (taking the next argument when needed), advances *i and returns 1; returns
 * -1 when the value is missing, 0 when argv[*i] is another flag. */
int arg_value(int argc, char **argv, int *i, const char *name, const char **value);
int parse_long(const char *flag, const char *s, long lo, long hi, long *out);
int parse_int(const char *flag, const char *s, int lo, int hi, int *out);
int parse_double(const char *flag, const char *s, double lo, double hi, double *out);
int parse_float(const char *flag, const char *s, double lo, double hi, float *out);
int parse_u64(const char *flag, const char *s, uint64_t *out);
/* A sampling parameter's value: read as an integer or a number, as the field's
 * limits say, then checked against the library's table of limits (the check
 * charrnn-serve and charrnn_stream_create make too). */
int parse_sample_number(const char *flag, charrnn_sample_field field, const char *s, double *out);
/* One more stop string after n_before others: the count and the length, by
 * the same table. */
int parse_sample_stop(const char *flag, size_t n_before, const char *s);
/* A string field whose length the table bounds (regex: its bytes). */
int parse_sample_length(const char *flag, charrnn_sample_field f, const char *s);
/* valid is the verdict of a name parser (charrnn_cell_parse...); when false,
 * reports "'S' is not CHOICES". */
int parse_choice(const char *flag, const char *s, int valid, const char *choices);

/* Prints "<prog>: <err>" (charrnn_strerror(status) when err is empty) to
 * stderr and returns 1, the exit status of a failed run. */
int cli_fail(int status, const char *err);

#endif

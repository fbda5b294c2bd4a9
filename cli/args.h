/* Strict command-line value parsing shared by the CLI front ends.
 * Every parser prints "<prog>: <flag>: <problem>" to stderr and returns 0 on
 * a bad value, so a mistyped flag never silently becomes a default. */
#ifndef CHARRNN_CLI_ARGS_H
#define CHARRNN_CLI_ARGS_H

#include <stdint.h>

extern const char *charrnn_prog;

/* Matches argv[*i] against --name or --name=VALUE; on a match stores the value
 * (taking the next argument when needed), advances *i and returns 1; returns
 * -1 when the value is missing, 0 when argv[*i] is another flag. */
int arg_value(int argc, char **argv, int *i, const char *name, const char **value);
int parse_long(const char *flag, const char *s, long lo, long hi, long *out);
int parse_int(const char *flag, const char *s, int lo, int hi, int *out);
int parse_double(const char *flag, const char *s, double lo, double hi, double *out);
int parse_float(const char *flag, const char *s, double lo, double hi, float *out);
int parse_u64(const char *flag, const char *s, uint64_t *out);

#endif

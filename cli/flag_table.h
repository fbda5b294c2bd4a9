/* A front end's flags as one table: each row holds the flag, where its value
 * goes, its limits and its help line, so the parser, the range in an error
 * and the usage text (defaults included) cannot drift apart. charrnn-serve
 * does the same for its flags and variables (server/config.c). */
#ifndef CHARRNN_CLI_FLAG_TABLE_H
#define CHARRNN_CLI_FLAG_TABLE_H

#include <stddef.h>
#include <stdio.h>

typedef enum flag_kind {
    FLAG_STR,    /* const char *: the argument itself */
    FLAG_SWITCH, /* int set to 1; takes no value */
    FLAG_INT,    /* int in [lo, hi] */
    FLAG_LONG,   /* long in [lo, hi] */
    FLAG_FLOAT,  /* float, read as a double in [lo, hi] */
    FLAG_DOUBLE, /* double in [lo, hi] */
    FLAG_U64,    /* uint64_t, any */
    FLAG_CUSTOM  /* parse() below */
} flag_kind;

typedef struct flag_row {
    const char *name; /* "--rnn-size" */
    flag_kind kind;
    size_t offset; /* of the value in the front end's options struct */
    double lo, hi;
    /* FLAG_CUSTOM: parses v into dst, reporting a bad value as args.h's
     * parsers do (0), 1 when taken; aux is the row's (e.g. a sampling
     * field). */
    int (*parse)(const char *flag, const char *v, void *dst, int aux);
    /* Optional: the default at dst as the flag takes it (FLAG_CUSTOM, or a
     * number whose default reads better as a word); NULL: printed by kind. */
    void (*show)(const void *dst, char *buf, size_t n);
    const char *arg;  /* the value's name in the usage ("N"); NULL for a switch */
    const char *help; /* lines separated by '\n'; the default is appended */
    int no_default;   /* 1: print no default (a path, a switch) */
    int aux;          /* passed to parse() */
} flag_row;

/* args_parse's one() for a table: matches argv[*i] against the rows, stores
 * the checked value at base + offset and sets seen[row] (seen may be NULL);
 * 1 taken, 0 bad value (reported), -1 unknown flag. */
int flag_table_take(const flag_row *rows, size_t n, void *base, unsigned char *seen, int argc,
                    char **argv, int *i);

/* A table bound to the options it fills: args_parse's ctx for
 * flag_table_one. */
typedef struct flag_target {
    const flag_row *rows;
    size_t n;
    void *base;
    unsigned char *seen;
} flag_target;

/* args_parse's one() for ctx, a flag_target: flag_table_take on its table. */
int flag_table_one(void *ctx, int argc, char **argv, int *i);

/* Whether the flag called name was given (seen as flag_table_take left it). */
int flag_table_seen(const flag_row *rows, size_t n, const unsigned char *seen, const char *name);

/* The rows' usage lines, each default read from defaults (an options struct
 * holding the defaults, laid out like base). */
void flag_table_usage(FILE *f, const flag_row *rows, size_t n, const void *defaults);

/* A front end's whole --help page: intro (its usage line and what it does,
 * ending in a blank line), then flag_table_usage, then --help itself. */
void flag_table_page(FILE *f, const char *intro, const flag_row *rows, size_t n,
                     const void *defaults);

#endif

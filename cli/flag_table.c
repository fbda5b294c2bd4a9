/* Flags by table (flag_table.h). */
#include "flag_table.h"

#include "args.h"

#include <inttypes.h>
#include <stdint.h>
#include <string.h>

int flag_table_seen(const flag_row *rows, size_t n, const unsigned char *seen, const char *name)
{
    for (size_t k = 0; k < n; k++)
        if (!strcmp(rows[k].name, name))
            return seen[k];
    return 0;
}

int flag_table_take(const flag_row *rows, size_t n, void *base, unsigned char *seen, int argc,
                    char **argv, int *i)
{
    for (size_t k = 0; k < n; k++) {
        const flag_row *r = &rows[k];
        void *dst = (char *)base + r->offset;
        if (r->kind == FLAG_SWITCH) {
            if (strcmp(argv[*i], r->name) != 0)
                continue;
            *(int *)dst = 1;
            if (seen)
                seen[k] = 1;
            return 1;
        }
        const char *v;
        int m = arg_value(argc, argv, i, r->name, &v);
        if (m < 0)
            return 0;
        if (m == 0)
            continue;
        if (seen)
            seen[k] = 1;
        switch (r->kind) {
        case FLAG_STR: *(const char **)dst = v; return 1;
        case FLAG_INT: return parse_int(r->name, v, (int)r->lo, (int)r->hi, dst);
        case FLAG_LONG: return parse_long(r->name, v, (long)r->lo, (long)r->hi, dst);
        case FLAG_FLOAT: return parse_float(r->name, v, r->lo, r->hi, dst);
        case FLAG_DOUBLE: return parse_double(r->name, v, r->lo, r->hi, dst);
        case FLAG_U64: return parse_u64(r->name, v, dst);
        case FLAG_CUSTOM: return r->parse(r->name, v, dst, r->aux);
        case FLAG_SWITCH: break;
        }
    }
    return -1;
}

static void show_default(const flag_row *r, const void *dst, char *buf, size_t n)
{
    if (r->show) {
        r->show(dst, buf, n);
        return;
    }
    switch (r->kind) {
    case FLAG_INT: snprintf(buf, n, "%d", *(const int *)dst); break;
    case FLAG_LONG: snprintf(buf, n, "%ld", *(const long *)dst); break;
    case FLAG_FLOAT: snprintf(buf, n, "%g", (double)*(const float *)dst); break;
    case FLAG_DOUBLE: snprintf(buf, n, "%g", *(const double *)dst); break;
    case FLAG_U64: snprintf(buf, n, "%" PRIu64, *(const uint64_t *)dst); break;
    default: *buf = '\0';
    }
}

void flag_table_usage(FILE *f, const flag_row *rows, size_t n, const void *defaults)
{
    enum { COL = 25 };
    for (size_t k = 0; k < n; k++) {
        const flag_row *r = &rows[k];
        char head[64], def[64] = "";
        snprintf(head, sizeof head, "%s%s%s", r->name, r->arg ? " " : "", r->arg ? r->arg : "");
        if (!r->no_default)
            show_default(r, (const char *)defaults + r->offset, def, sizeof def);
        /* A head too long for its column is followed by one space. */
        int w = fprintf(f, "  %s", head);
        const char *line = r->help;
        for (;;) {
            const char *nl = strchr(line, '\n');
            size_t len = nl ? (size_t)(nl - line) : strlen(line);
            fprintf(f, "%*s%.*s", w < COL - 1 ? COL - w : 1, "", (int)len, line);
            w = 0;
            if (!nl)
                break;
            fputc('\n', f);
            line = nl + 1;
        }
        fprintf(f, !*def ? "\n" : *r->help ? " (%s)\n" : "(%s)\n", def);
    }
}

void flag_table_page(FILE *f, const char *intro, const flag_row *rows, size_t n,
                     const void *defaults)
{
    fputs(intro, f);
    flag_table_usage(f, rows, n, defaults);
    fputs("  --help\n", f);
}

int flag_table_one(void *ctx, int argc, char **argv, int *i)
{
    const flag_target *t = ctx;
    return flag_table_take(t->rows, t->n, t->base, t->seen, argc, argv, i);
}

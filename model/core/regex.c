/* The regex constraint's compiler (include/charrnn/regex.h): parse into a
 * small syntax tree, expand it into a Thompson NFA, then the DFA by subset
 * construction over the alphabet's equivalence classes, with accepting,
 * viable and live per state. Every size is bounded (the header's limits)
 * because a server compiles a client's pattern per request. */
#include "charrnn/regex.h"

#include "charrnn/status.h"
#include "charrnn/vocab.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_NEST 100 /* group nesting: the parser and the NFA emission recurse per level */
#define MAX_CP 0x10FFFFu

typedef struct {
    uint32_t lo, hi;
} range;

/* A character set: the union of ranges [first, first+n) of the pool, negated
 * when neg. */
typedef struct {
    int neg, first, n;
} cset;

enum { N_SET, N_EMPTY, N_CAT, N_ALT, N_REP };
/* A syntax tree node; CAT and ALT have a list of children (child, then each
 * one's next), REP one child repeated min..max times (max -1: unbounded). */
typedef struct {
    int kind, set, child, next, min, max;
} node;

typedef struct {
    const uint8_t *s;
    size_t len, pos;
    node *nodes;
    int n_nodes, cap_nodes;
    cset *sets;
    int n_sets, cap_sets;
    range *ranges;
    int n_ranges, cap_ranges;
    int depth, rc;
    char *err;
    size_t errlen;
} parser;

static int grow(void **p, int *cap, int need, size_t elem)
{
    if (need <= *cap)
        return 0;
    int nc = *cap ? 2 * *cap : 64;
    while (nc < need)
        nc *= 2;
    void *q = realloc(*p, (size_t)nc * elem);
    if (!q)
        return -1;
    *p = q, *cap = nc;
    return 0;
}

__attribute__((format(printf, 3, 4))) static int pfail(parser *p, int rc, const char *fmt, ...)
{
    if (p->rc)
        return -1;
    p->rc = rc;
    if (p->err && p->errlen) {
        char msg[CHARRNN_ERR_MAX];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        if (rc == CHARRNN_EINVAL)
            snprintf(p->err, p->errlen, "does not compile: at byte %zu: %s", p->pos, msg);
        else
            snprintf(p->err, p->errlen, "%s", msg);
    }
    return -1;
}

static int new_node(parser *p, int kind)
{
    if (grow((void **)&p->nodes, &p->cap_nodes, p->n_nodes + 1, sizeof *p->nodes))
        return pfail(p, CHARRNN_ENOMEM, "out of memory");
    p->nodes[p->n_nodes] = (node){kind, -1, -1, -1, 1, 1};
    return p->n_nodes++;
}

static int add_range(parser *p, uint32_t lo, uint32_t hi)
{
    if (grow((void **)&p->ranges, &p->cap_ranges, p->n_ranges + 1, sizeof *p->ranges))
        return pfail(p, CHARRNN_ENOMEM, "out of memory");
    p->ranges[p->n_ranges++] = (range){lo, hi};
    p->sets[p->n_sets - 1].n++;
    return 0;
}

/* Opens a new set (its ranges follow in the pool); its index. */
static int new_set(parser *p, int neg)
{
    if (grow((void **)&p->sets, &p->cap_sets, p->n_sets + 1, sizeof *p->sets))
        return pfail(p, CHARRNN_ENOMEM, "out of memory");
    p->sets[p->n_sets] = (cset){neg, p->n_ranges, 0};
    return p->n_sets++;
}

/* The ASCII classes \d \w \s as sorted ranges. */
static int class_ranges(char c, range *r)
{
    switch (c) {
    case 'd': r[0] = (range){'0', '9'}; return 1;
    case 'w':
        r[0] = (range){'0', '9'}, r[1] = (range){'A', 'Z'}, r[2] = (range){'_', '_'};
        r[3] = (range){'a', 'z'};
        return 4;
    default: r[0] = (range){'\t', '\r'}, r[1] = (range){' ', ' '}; return 2;
    }
}

/* Adds \d \w \s (lower case) or their complements (upper case) to the open set. */
static int add_class(parser *p, char c)
{
    range r[4];
    char lower = (char)(c | 0x20);
    int n = class_ranges(lower, r);
    if (c == lower) {
        for (int i = 0; i < n; i++)
            if (add_range(p, r[i].lo, r[i].hi))
                return -1;
        return 0;
    }
    uint32_t from = 0;
    for (int i = 0; i < n; i++) {
        if (r[i].lo > from && add_range(p, from, r[i].lo - 1))
            return -1;
        from = r[i].hi + 1;
    }
    return add_range(p, from, MAX_CP);
}

/* Reads one UTF-8 character at p->pos. */
static int next_cp(parser *p, uint32_t *cp)
{
    int k = charrnn_utf8_decode(p->s + p->pos, p->len - p->pos, cp);
    if (k == 0)
        return pfail(p, CHARRNN_EINVAL, "invalid UTF-8");
    p->pos += (size_t)k;
    return 0;
}

/* After a backslash: a literal (returns 1, *cp) or a class letter d w s D W S
 * (returns 2, *cls); -1 on error. */
static int parse_escape(parser *p, uint32_t *cp, char *cls)
{
    if (p->pos >= p->len)
        return pfail(p, CHARRNN_EINVAL, "the pattern ends with a lone '\\'");
    char c = (char)p->s[p->pos];
    if (strchr("dwsDWS", c) && c) {
        p->pos++;
        *cls = c;
        return 2;
    }
    const char *lit = "ntrf", *val = "\n\t\r\f";
    if (strchr(lit, c) && c) {
        p->pos++;
        *cp = (uint32_t)val[strchr(lit, c) - lit];
        return 1;
    }
    if (c > ' ' && c < 0x7f && !(c >= '0' && c <= '9') && !(c >= 'A' && c <= 'Z') &&
        !(c >= 'a' && c <= 'z')) {
        p->pos++;
        *cp = (uint32_t)c;
        return 1;
    }
    return pfail(p, CHARRNN_EINVAL,
                 "unsupported escape '\\%c' (supported: \\n \\t \\r \\f \\d \\D \\w \\W \\s \\S "
                 "and \\ before punctuation)",
                 c >= ' ' && c < 0x7f ? c : '?');
}

/* A class after its '['. */
static int parse_class(parser *p)
{
    size_t open = p->pos - 1;
    if (p->pos < p->len && strchr(":.=", p->s[p->pos]) && p->s[p->pos])
        return pfail(p, CHARRNN_EINVAL,
                     "a class cannot start with '%c' ([:alpha:] and the like are POSIX syntax, not "
                     "supported; escape it)",
                     p->s[p->pos]);
    int neg = p->pos < p->len && p->s[p->pos] == '^';
    p->pos += (size_t)neg;
    int set = new_set(p, neg);
    if (set < 0)
        return -1;
    int first = 1;
    for (;;) {
        if (p->pos >= p->len) {
            p->pos = open;
            return pfail(p, CHARRNN_EINVAL, "'[' is never closed");
        }
        uint8_t c = p->s[p->pos];
        if (c == ']' && !first) {
            p->pos++;
            break;
        }
        first = 0;
        uint32_t lo;
        if (c == '[')
            return pfail(p, CHARRNN_EINVAL, "'[' inside a class (write \\[)");
        if (c == '\\') {
            p->pos++;
            char cls;
            int k = parse_escape(p, &lo, &cls);
            if (k < 0)
                return -1;
            if (k == 2) {
                if (p->pos + 1 < p->len && p->s[p->pos] == '-' && p->s[p->pos + 1] != ']')
                    return pfail(p, CHARRNN_EINVAL, "a range cannot start at a class");
                if (add_class(p, cls))
                    return -1;
                continue;
            }
        } else if (next_cp(p, &lo)) {
            return -1;
        }
        uint32_t hi = lo;
        if (p->pos + 1 < p->len && p->s[p->pos] == '-' && p->s[p->pos + 1] != ']') {
            p->pos++;
            if (p->s[p->pos] == '[')
                return pfail(p, CHARRNN_EINVAL, "'[' inside a class (write \\[)");
            if (p->s[p->pos] == '\\') {
                p->pos++;
                char cls;
                int k = parse_escape(p, &hi, &cls);
                if (k < 0)
                    return -1;
                if (k == 2)
                    return pfail(p, CHARRNN_EINVAL, "a range cannot end at a class");
            } else if (next_cp(p, &hi)) {
                return -1;
            }
            if (hi < lo)
                return pfail(p, CHARRNN_EINVAL, "range out of order");
        }
        if (add_range(p, lo, hi))
            return -1;
    }
    int n = new_node(p, N_SET);
    if (n >= 0)
        p->nodes[n].set = set;
    return n;
}

static int parse_alt(parser *p);

/* Reads a decimal count (at most CHARRNN_REGEX_MAX_REPEAT); -1 when there are no digits. */
static int parse_count(parser *p, int *v)
{
    size_t start = p->pos;
    long x = 0;
    while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9') {
        x = x * 10 + (p->s[p->pos++] - '0');
        if (x > CHARRNN_REGEX_MAX_REPEAT) {
            p->pos = start;
            return pfail(p, CHARRNN_ERANGE, "too large: a repetition count above %d (at byte %zu)",
                         CHARRNN_REGEX_MAX_REPEAT, start);
        }
    }
    if (p->pos == start)
        return -1;
    *v = (int)x;
    return 0;
}

/* A '{' quantifier: sets *min, *max (-1: unbounded). */
static int parse_braces(parser *p, int *min, int *max)
{
    size_t open = p->pos;
    p->pos++;
    if (parse_count(p, min))
        goto bad;
    *max = *min;
    if (p->pos < p->len && p->s[p->pos] == ',') {
        p->pos++;
        *max = -1;
        if (p->pos < p->len && p->s[p->pos] != '}' && parse_count(p, max))
            goto bad;
    }
    if (p->pos >= p->len || p->s[p->pos] != '}')
        goto bad;
    p->pos++;
    if (*max >= 0 && *max < *min) {
        p->pos = open;
        return pfail(p, CHARRNN_EINVAL, "{%d,%d}: the counts are out of order", *min, *max);
    }
    return 0;
bad:
    if (p->rc)
        return -1;
    p->pos = open;
    return pfail(p, CHARRNN_EINVAL,
                 "'{' starts no repetition {m}, {m,} or {m,n} (write \\{ for the character)");
}

/* An atom and its quantifier; -2 at the end of a sequence. */
static int parse_quant(parser *p)
{
    if (p->pos >= p->len)
        return -2;
    uint8_t c = p->s[p->pos];
    int n, repeatable = 1;
    if (c == '|' || c == ')')
        return -2;
    if (c == '*' || c == '+' || c == '?')
        return pfail(p, CHARRNN_EINVAL, "'%c' has nothing to repeat", c);
    if (c == '{')
        return pfail(p, CHARRNN_EINVAL, "'{' has nothing to repeat (write \\{ for the character)");
    if (c == '(') {
        size_t open = p->pos++;
        if (p->pos < p->len && p->s[p->pos] == '?') {
            if (p->pos + 1 < p->len && p->s[p->pos + 1] == ':')
                p->pos += 2;
            else
                return pfail(p, CHARRNN_EINVAL, "'(?' other than '(?:' is not supported");
        }
        if (++p->depth > MAX_NEST)
            return pfail(p, CHARRNN_ERANGE,
                         "too large: groups nested more than %d deep (at byte %zu)", MAX_NEST,
                         open);
        n = parse_alt(p);
        p->depth--;
        if (n < 0)
            return -1;
        if (p->pos >= p->len) {
            p->pos = open;
            return pfail(p, CHARRNN_EINVAL, "'(' is never closed");
        }
        p->pos++; /* ')' */
    } else if (c == '[') {
        p->pos++;
        n = parse_class(p);
    } else if ((c == '^' && p->pos == 0) || (c == '$' && p->pos + 1 == p->len)) {
        p->pos++; /* the match is of the whole text anyway */
        n = new_node(p, N_EMPTY);
        repeatable = 0;
    } else if (c == '^' || c == '$') {
        return pfail(p, CHARRNN_EINVAL,
                     "'%c' only as the pattern's first (^) or last ($) character: the whole text "
                     "always matches (write \\%c for the character)",
                     c, c);
    } else {
        uint32_t cp = 0;
        char cls = 0;
        int k = 1;
        int neg = 0;
        if (c == '\\') {
            p->pos++;
            k = parse_escape(p, &cp, &cls);
        } else if (c == '.') {
            p->pos++, cp = '\n', neg = 1;
        } else if (next_cp(p, &cp)) {
            return -1;
        }
        if (k < 0)
            return -1;
        int set = new_set(p, neg);
        if (set < 0 || (k == 2 ? add_class(p, cls) : add_range(p, cp, cp)))
            return -1;
        n = new_node(p, N_SET);
        if (n >= 0)
            p->nodes[n].set = set;
    }
    if (n < 0)
        return -1;
    if (p->pos >= p->len)
        return n;
    c = p->s[p->pos];
    const uint8_t q = c;
    int min = 0, max = 0;
    if (c == '*')
        min = 0, max = -1, p->pos++;
    else if (c == '+')
        min = 1, max = -1, p->pos++;
    else if (c == '?')
        min = 0, max = 1, p->pos++;
    else if (c == '{') {
        if (parse_braces(p, &min, &max))
            return -1;
    } else
        return n;
    if (!repeatable)
        return pfail(p, CHARRNN_EINVAL, "'%c' has nothing to repeat", q);
    if (p->pos < p->len && strchr("*+?{", p->s[p->pos]) && p->s[p->pos])
        return pfail(p, CHARRNN_EINVAL,
                     "a quantifier directly after another (put the first in a group)");
    int r = new_node(p, N_REP);
    if (r < 0)
        return -1;
    p->nodes[r].child = n, p->nodes[r].min = min, p->nodes[r].max = max;
    return r;
}

/* A list node of kind whose children parse_one reads until it returns -2. */
static int parse_list(parser *p, int kind)
{
    int list = new_node(p, kind), last = -1;
    if (list < 0)
        return -1;
    for (;;) {
        int n;
        if (kind == N_CAT) {
            n = parse_quant(p);
        } else {
            n = parse_list(p, N_CAT);
        }
        if (n == -1)
            return -1;
        if (n == -2)
            break;
        if (last < 0)
            p->nodes[list].child = n;
        else
            p->nodes[last].next = n;
        last = n;
        if (kind == N_ALT) {
            if (p->pos < p->len && p->s[p->pos] == '|')
                p->pos++;
            else
                break;
        }
    }
    return list;
}

static int parse_alt(parser *p)
{
    return parse_list(p, N_ALT);
}

/* ---- Thompson NFA ---- */

enum { F_CHAR, F_SPLIT, F_EPS, F_MATCH };
typedef struct {
    int type, set, out, out2;
} nnode;

typedef struct {
    parser *p;
    nnode *n;
    int count, cap;
} nfa;

static int nfa_node(nfa *a, int type)
{
    if (a->count >= CHARRNN_REGEX_MAX_NFA) {
        a->p->pos = 0;
        return pfail(a->p, CHARRNN_ERANGE,
                     "too large: more than %d automaton nodes once its repetitions are expanded",
                     CHARRNN_REGEX_MAX_NFA);
    }
    if (grow((void **)&a->n, &a->cap, a->count + 1, sizeof *a->n))
        return pfail(a->p, CHARRNN_ENOMEM, "out of memory");
    a->n[a->count] = (nnode){type, -1, -1, -1};
    return a->count++;
}

/* Appends node t's automaton after *cur (an EPS node whose out is unset),
 * leaving *cur the new end. */
static int emit(nfa *a, int t, int *cur)
{
    const node nd = a->p->nodes[t];
    switch (nd.kind) {
    case N_EMPTY: return 0;
    case N_SET: {
        int c = nfa_node(a, F_CHAR), e = c >= 0 ? nfa_node(a, F_EPS) : -1;
        if (e < 0)
            return -1;
        a->n[c].set = nd.set, a->n[c].out = e;
        a->n[*cur].out = c;
        *cur = e;
        return 0;
    }
    case N_CAT:
        for (int ch = nd.child; ch >= 0; ch = a->p->nodes[ch].next)
            if (emit(a, ch, cur))
                return -1;
        return 0;
    case N_ALT: {
        int end = nfa_node(a, F_EPS);
        if (end < 0)
            return -1;
        for (int ch = nd.child; ch >= 0; ch = a->p->nodes[ch].next) {
            int start = nfa_node(a, F_EPS), split = -1;
            if (start < 0)
                return -1;
            if (a->p->nodes[ch].next >= 0) { /* split: this child or the next ones */
                if ((split = nfa_node(a, F_SPLIT)) < 0)
                    return -1;
                a->n[*cur].out = split, a->n[split].out = start;
            } else {
                a->n[*cur].out = start;
            }
            int e = start;
            if (emit(a, ch, &e))
                return -1;
            a->n[e].out = end;
            if (split >= 0) {
                int rest = nfa_node(a, F_EPS);
                if (rest < 0)
                    return -1;
                a->n[split].out2 = rest;
                *cur = rest;
            }
        }
        *cur = end;
        return 0;
    }
    default: /* N_REP */
        for (int i = 0; i < nd.min; i++)
            if (emit(a, nd.child, cur))
                return -1;
        if (nd.max < 0) { /* a loop: split into the child (back to the split) or out */
            int split = nfa_node(a, F_SPLIT), start = split >= 0 ? nfa_node(a, F_EPS) : -1;
            int out = start >= 0 ? nfa_node(a, F_EPS) : -1;
            if (out < 0)
                return -1;
            a->n[*cur].out = split;
            a->n[split].out = start, a->n[split].out2 = out;
            int e = start;
            if (emit(a, nd.child, &e))
                return -1;
            a->n[e].out = split;
            *cur = out;
        } else if (nd.max > nd.min) { /* nested optional copies: x(x(x)?)? */
            int out = nfa_node(a, F_EPS);
            if (out < 0)
                return -1;
            for (int i = nd.min; i < nd.max; i++) {
                int split = nfa_node(a, F_SPLIT), start = split >= 0 ? nfa_node(a, F_EPS) : -1;
                if (start < 0)
                    return -1;
                a->n[*cur].out = split;
                a->n[split].out = start, a->n[split].out2 = out;
                *cur = start;
                if (emit(a, nd.child, cur))
                    return -1;
            }
            a->n[*cur].out = out;
            *cur = out;
        }
        return 0;
    }
}

/* ---- DFA ---- */

struct charrnn_regex {
    size_t n_states, n_classes, n_sym;
    uint16_t *cls;   /* (n_sym) class of each symbol */
    uint16_t *trans; /* (n_states x n_classes) next state or CHARRNN_REGEX_DEAD */
    uint8_t *acc, *viable, *live;
};

typedef struct {
    parser *p;
    const nfa *a;
    int *mark, stamp;
    int *stack, *buf;
    long work;
    /* states: their sorted lists of CHAR nodes in pool[off[d]..off[d]+cnt[d]) */
    int *pool;
    size_t pool_n, pool_cap;
    size_t *off;
    int *cnt;
    uint8_t *acc;
    int n;
    int hash[2 * CHARRNN_REGEX_MAX_STATES];
} builder;

static int cmp_int(const void *x, const void *y)
{
    int a = *(const int *)x, b = *(const int *)y;
    return (a > b) - (a < b);
}

static int spend(builder *b, long w)
{
    b->work += w;
    if (b->work <= CHARRNN_REGEX_MAX_WORK)
        return 0;
    b->p->pos = 0;
    return pfail(b->p, CHARRNN_ERANGE,
                 "too large: building its automaton over this vocabulary takes more than %d steps",
                 CHARRNN_REGEX_MAX_WORK);
}

/* The CHAR nodes reachable from seeds through EPS and SPLIT nodes, sorted,
 * into b->buf (their count returned); *acc when MATCH is reachable. */
static int closure(builder *b, const int *seeds, int n_seeds, int *acc)
{
    const nnode *nn = b->a->n;
    int top = 0, k = 0;
    b->stamp++;
    *acc = 0;
    for (int i = 0; i < n_seeds; i++)
        if (b->mark[seeds[i]] != b->stamp)
            b->mark[seeds[i]] = b->stamp, b->stack[top++] = seeds[i];
    while (top > 0) {
        int x = b->stack[--top];
        const nnode *q = &nn[x];
        if (q->type == F_CHAR)
            b->buf[k++] = x;
        else if (q->type == F_MATCH)
            *acc = 1;
        int outs[2] = {q->type == F_CHAR || q->type == F_MATCH ? -1 : q->out,
                       q->type == F_SPLIT ? q->out2 : -1};
        for (int j = 0; j < 2; j++)
            if (outs[j] >= 0 && b->mark[outs[j]] != b->stamp)
                b->mark[outs[j]] = b->stamp, b->stack[top++] = outs[j];
    }
    if (spend(b, (long)b->a->count / 64 + k + n_seeds + 1))
        return -1;
    qsort(b->buf, (size_t)k, sizeof *b->buf, cmp_int);
    return k;
}

static uint32_t hash_list(const int *l, int k, int acc)
{
    uint32_t h = 2166136261u ^ (uint32_t)acc;
    for (int i = 0; i < k; i++)
        h = (h ^ (uint32_t)l[i]) * 16777619u;
    return h;
}

/* The state of list b->buf[0..k) and acc: an existing one, or a new one. */
static int state_of(builder *b, int k, int acc)
{
    const size_t H = sizeof b->hash / sizeof b->hash[0];
    size_t h = hash_list(b->buf, k, acc) & (H - 1);
    for (; b->hash[h] >= 0; h = (h + 1) & (H - 1)) {
        int d = b->hash[h];
        if (b->cnt[d] == k && b->acc[d] == acc &&
            !memcmp(b->pool + b->off[d], b->buf, (size_t)k * sizeof *b->buf))
            return d;
    }
    if (b->n == CHARRNN_REGEX_MAX_STATES) {
        b->p->pos = 0;
        return pfail(b->p, CHARRNN_ERANGE,
                     "too large: more than %d automaton states over this vocabulary",
                     CHARRNN_REGEX_MAX_STATES);
    }
    if (b->pool_n + (size_t)k > b->pool_cap) {
        size_t nc = 2 * (b->pool_n + (size_t)k) + 64;
        int *q = realloc(b->pool, nc * sizeof *q);
        if (!q)
            return pfail(b->p, CHARRNN_ENOMEM, "out of memory");
        b->pool = q, b->pool_cap = nc;
    }
    int d = b->n++;
    memcpy(b->pool + b->pool_n, b->buf, (size_t)k * sizeof *b->buf);
    b->off[d] = b->pool_n, b->cnt[d] = k, b->acc[d] = (uint8_t)acc;
    b->pool_n += (size_t)k;
    b->hash[h] = d;
    return d;
}

static int in_set(const parser *p, int s, uint32_t cp)
{
    const cset *c = &p->sets[s];
    int in = 0;
    for (int i = 0; i < c->n && !in; i++)
        in = cp >= p->ranges[c->first + i].lo && cp <= p->ranges[c->first + i].hi;
    return in != c->neg;
}

void charrnn_regex_free(charrnn_regex *re)
{
    if (!re)
        return;
    free(re->cls), free(re->trans), free(re->acc), free(re->viable), free(re->live);
    free(re);
}

/* Symbols no set tells apart share a class: refine one partition set by set. */
static int make_classes(const parser *p, const uint32_t *alpha, size_t n, uint16_t *cls,
                        size_t *n_classes)
{
    size_t nc = 1;
    int *remap = malloc(2 * (n + 1) * sizeof *remap);
    if (!remap)
        return -1;
    memset(cls, 0, n * sizeof *cls);
    for (int s = 0; s < p->n_sets; s++) {
        for (size_t i = 0; i < 2 * nc; i++)
            remap[i] = -1;
        size_t next = 0;
        for (size_t v = 0; v < n; v++) {
            size_t key = 2 * (size_t)cls[v] + (size_t)in_set(p, s, alpha[v]);
            if (remap[key] < 0)
                remap[key] = (int)next++;
            cls[v] = (uint16_t)remap[key];
        }
        nc = next;
    }
    free(remap);
    *n_classes = nc;
    return 0;
}

/* Viable (an accepting state reachable), then transitions into the rest cut
 * and live computed. */
static int finish_dfa(charrnn_regex *re)
{
    const size_t D = re->n_states, C = re->n_classes;
    size_t *start = calloc(D + 1, sizeof *start);
    int *from = malloc((D * C + 1) * sizeof *from), *queue = malloc(D * sizeof *queue);
    if (!start || !from || !queue) {
        free(start), free(from), free(queue);
        return -1;
    }
    for (size_t i = 0; i < D * C; i++)
        if (re->trans[i] != CHARRNN_REGEX_DEAD)
            start[re->trans[i] + 1]++;
    for (size_t d = 0; d < D; d++)
        start[d + 1] += start[d];
    size_t *fill = calloc(D, sizeof *fill);
    if (!fill) {
        free(start), free(from), free(queue);
        return -1;
    }
    for (size_t i = 0; i < D * C; i++)
        if (re->trans[i] != CHARRNN_REGEX_DEAD) {
            size_t t = re->trans[i];
            from[start[t] + fill[t]++] = (int)(i / C);
        }
    size_t head = 0, tail = 0;
    for (size_t d = 0; d < D; d++)
        if (re->acc[d])
            re->viable[d] = 1, queue[tail++] = (int)d;
    while (head < tail) {
        int t = queue[head++];
        for (size_t j = start[t]; j < start[t + 1]; j++)
            if (!re->viable[from[j]])
                re->viable[from[j]] = 1, queue[tail++] = from[j];
    }
    for (size_t i = 0; i < D * C; i++) {
        if (re->trans[i] != CHARRNN_REGEX_DEAD && !re->viable[re->trans[i]])
            re->trans[i] = CHARRNN_REGEX_DEAD;
        if (re->trans[i] != CHARRNN_REGEX_DEAD)
            re->live[i / C] = 1;
    }
    free(start), free(from), free(queue), free(fill);
    return 0;
}

static int build_dfa(parser *p, const nfa *a, int start, const uint32_t *alpha, charrnn_regex *re)
{
    const size_t C = re->n_classes;
    builder b = {.p = p, .a = a};
    memset(b.hash, -1, sizeof b.hash);
    b.mark = calloc((size_t)a->count, sizeof *b.mark);
    b.stack = malloc((size_t)a->count * sizeof *b.stack);
    b.buf = malloc((size_t)a->count * sizeof *b.buf);
    int *seeds = malloc((size_t)a->count * sizeof *seeds);
    b.off = malloc(CHARRNN_REGEX_MAX_STATES * sizeof *b.off);
    b.cnt = malloc(CHARRNN_REGEX_MAX_STATES * sizeof *b.cnt);
    b.acc = malloc(CHARRNN_REGEX_MAX_STATES);
    /* has[s * C + k]: set s holds class k (a representative symbol decides) */
    uint8_t *has = malloc((size_t)(p->n_sets ? p->n_sets : 1) * C);
    size_t *rep = malloc(C * sizeof *rep);
    size_t cap = 64;
    uint16_t *trans = malloc(cap * C * sizeof *trans);
    b.pool_cap = 64; /* never NULL: an empty state list still points into it */
    b.pool = malloc(b.pool_cap * sizeof *b.pool);
    int rc = -1;
    if (!b.mark || !b.stack || !b.buf || !seeds || !b.off || !b.cnt || !b.acc || !has || !rep ||
        !trans || !b.pool) {
        pfail(p, CHARRNN_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t v = re->n_sym; v-- > 0;)
        rep[re->cls[v]] = v;
    if (spend(&b, (long)p->n_sets * (long)C))
        goto out;
    for (int s = 0; s < p->n_sets; s++)
        for (size_t k = 0; k < C; k++)
            has[(size_t)s * C + k] = (uint8_t)in_set(p, s, alpha[rep[k]]);
    int acc, k0 = closure(&b, &start, 1, &acc);
    if (k0 < 0 || state_of(&b, k0, acc) < 0)
        goto out;
    for (int d = 0; d < b.n; d++) {
        if ((size_t)d >= cap) {
            size_t nc = 2 * cap;
            uint16_t *q = realloc(trans, nc * C * sizeof *q);
            if (!q) {
                pfail(p, CHARRNN_ENOMEM, "out of memory");
                goto out;
            }
            trans = q, cap = nc;
        }
        for (size_t k = 0; k < C; k++) {
            int ns = 0;
            const int *l = b.pool + b.off[d];
            for (int i = 0; i < b.cnt[d]; i++)
                if (has[(size_t)a->n[l[i]].set * C + k])
                    seeds[ns++] = a->n[l[i]].out;
            if (spend(&b, b.cnt[d]))
                goto out;
            int t = CHARRNN_REGEX_DEAD;
            if (ns > 0) {
                int k1 = closure(&b, seeds, ns, &acc);
                if (k1 < 0 || (t = state_of(&b, k1, acc)) < 0)
                    goto out;
            }
            trans[(size_t)d * C + k] = (uint16_t)t;
        }
    }
    re->n_states = (size_t)b.n;
    re->trans = trans, trans = NULL;
    re->acc = malloc(re->n_states), re->viable = calloc(re->n_states, 1);
    re->live = calloc(re->n_states, 1);
    if (!re->acc || !re->viable || !re->live) {
        pfail(p, CHARRNN_ENOMEM, "out of memory");
        goto out;
    }
    memcpy(re->acc, b.acc, re->n_states);
    if (finish_dfa(re)) {
        pfail(p, CHARRNN_ENOMEM, "out of memory");
        goto out;
    }
    rc = 0;
out:
    free(b.mark), free(b.stack), free(b.buf), free(seeds), free(b.off), free(b.cnt), free(b.acc);
    free(b.pool), free(has), free(rep), free(trans);
    return rc;
}

int charrnn_regex_compile(const char *pattern, size_t len, const uint32_t *alphabet, size_t n,
                          charrnn_regex **out, char *err, size_t errlen)
{
    *out = NULL;
    if (n < 1 || n > CHARRNN_MAX_VOCAB)
        return charrnn_fail(err, errlen, CHARRNN_EINVAL, "an alphabet of %zu symbols", n);
    if (len > CHARRNN_REGEX_MAX_LEN)
        return charrnn_fail(err, errlen, CHARRNN_ERANGE,
                            "too large: a pattern of %zu bytes (at most %d)", len,
                            CHARRNN_REGEX_MAX_LEN);
    parser p = {.s = (const uint8_t *)pattern, .len = len, .err = err, .errlen = errlen};
    nfa a = {.p = &p};
    charrnn_regex *re = calloc(1, sizeof *re);
    if (!re)
        return charrnn_fail(err, errlen, CHARRNN_ENOMEM, "out of memory");
    re->n_sym = n;
    int root = parse_alt(&p);
    if (root >= 0 && p.pos < p.len)
        root = pfail(&p, CHARRNN_EINVAL, "')' closes no group");
    int entry = root >= 0 ? nfa_node(&a, F_EPS) : -1, cur = entry;
    int match = -1;
    if (entry >= 0 && emit(&a, root, &cur) == 0 && (match = nfa_node(&a, F_MATCH)) >= 0)
        a.n[cur].out = match;
    re->cls = match >= 0 ? malloc(n * sizeof *re->cls) : NULL;
    if (match >= 0 && !re->cls)
        pfail(&p, CHARRNN_ENOMEM, "out of memory");
    else if (match >= 0 && make_classes(&p, alphabet, n, re->cls, &re->n_classes))
        pfail(&p, CHARRNN_ENOMEM, "out of memory");
    else if (match >= 0)
        build_dfa(&p, &a, entry, alphabet, re);
    free(p.nodes), free(p.sets), free(p.ranges), free(a.n);
    if (p.rc) {
        charrnn_regex_free(re);
        return p.rc;
    }
    *out = re;
    return CHARRNN_OK;
}

size_t charrnn_regex_states(const charrnn_regex *re)
{
    return re->n_states;
}

int charrnn_regex_next(const charrnn_regex *re, int state, size_t sym)
{
    if (state < 0 || (size_t)state >= re->n_states || sym >= re->n_sym)
        return -1;
    uint16_t t = re->trans[(size_t)state * re->n_classes + re->cls[sym]];
    return t == CHARRNN_REGEX_DEAD ? -1 : (int)t;
}

int charrnn_regex_accepting(const charrnn_regex *re, int state)
{
    return state >= 0 && (size_t)state < re->n_states && re->acc[state];
}

int charrnn_regex_viable(const charrnn_regex *re, int state)
{
    return state >= 0 && (size_t)state < re->n_states && re->viable[state];
}

int charrnn_regex_live(const charrnn_regex *re, int state)
{
    return state >= 0 && (size_t)state < re->n_states && re->live[state];
}

const uint16_t *charrnn_regex_classes(const charrnn_regex *re)
{
    return re->cls;
}

const uint16_t *charrnn_regex_row(const charrnn_regex *re, int state)
{
    return re->trans + (size_t)state * re->n_classes;
}

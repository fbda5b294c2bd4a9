/* Regular expressions compiled to a DFA over a finite alphabet: the
 * sampler's regex constraint (a model's vocabulary is the alphabet).
 *
 * A general-purpose engine answers "does this text match"; constrained
 * sampling needs "can this text still become a match, and with which next
 * characters", over exactly the model's characters, in O(1) per character.
 * So the pattern is compiled once: parse, Thompson NFA, then the DFA by
 * subset construction over the alphabet's equivalence classes (characters
 * no set of the pattern tells apart share a class and a column). Every
 * state knows whether it accepts and whether an accepting state is
 * reachable (viable); transitions into non-viable states are removed, so a
 * walk that never meets CHARRNN_REGEX_DEAD is a prefix of a match.
 *
 * The subset (docs/sampling.md): the whole text must match (implicit
 * anchors; a leading ^ and a trailing $ are accepted and mean nothing more,
 * elsewhere they are refused). Literals are UTF-8 code points, matched case
 * sensitively. `.` is any character but \n. Classes [abc], ranges [a-z],
 * negated [^...] (`]` first is literal, `-` first or last is literal, an
 * unescaped `[` inside is refused, and so is a class starting with : . or =,
 * POSIX's [:alpha:] syntax). Escapes: \n \t \r \f, \d \D \w \W \s \S
 * (ASCII: [0-9], [A-Za-z0-9_], [ \t\n\r\f\v]), and \ before any ASCII
 * punctuation for that character; other escapes are refused. Quantifiers
 * * + ? {m} {m,} {m,n} (counts up to CHARRNN_REGEX_MAX_REPEAT; a quantifier
 * directly after another is refused: PCRE would read it as lazy or
 * possessive). Alternation |, groups ( ) and (?: ) (no captures: a match is
 * yes or no). A `{` that starts no quantifier is refused (write \{); a lone
 * `]` or `}` is a literal. */
#ifndef CHARRNN_REGEX_H
#define CHARRNN_REGEX_H

#include <stddef.h>
#include <stdint.h>

#define CHARRNN_REGEX_MAX_LEN 1024      /* bytes of a pattern */
#define CHARRNN_REGEX_MAX_REPEAT 1000   /* m and n of {m,n} */
#define CHARRNN_REGEX_MAX_NFA 65536     /* NFA nodes after repetitions are expanded */
#define CHARRNN_REGEX_MAX_STATES 4096   /* DFA states */
#define CHARRNN_REGEX_MAX_WORK 50000000 /* elementary steps of the subset construction */
#define CHARRNN_REGEX_DEAD 0xFFFFu

typedef struct charrnn_regex charrnn_regex;

/* Compiles pattern[0..len) (UTF-8) over the alphabet's n code points
 * (symbol i is alphabet[i]; n >= 1, at most 65536). Errors, with err naming
 * the byte offset or the limit:
 *   CHARRNN_EINVAL  the pattern does not compile ("at byte 4: ...")
 *   CHARRNN_ERANGE  it exceeds a limit above ("... more than 4096 states")
 *   CHARRNN_ENOMEM
 * A pattern that no text over the alphabet matches compiles: its start
 * state is not viable (charrnn_regex_viable(re, 0) == 0). */
int charrnn_regex_compile(const char *pattern, size_t len, const uint32_t *alphabet, size_t n,
                          charrnn_regex **out, char *err, size_t errlen);
void charrnn_regex_free(charrnn_regex *re);

/* States are 0..charrnn_regex_states()-1; 0 is the start (the empty text). */
size_t charrnn_regex_states(const charrnn_regex *re);
/* The state after symbol sym from state, or -1 when no match begins with the
 * text so far followed by sym. */
int charrnn_regex_next(const charrnn_regex *re, int state, size_t sym);
/* 1 when the text that led to state matches. */
int charrnn_regex_accepting(const charrnn_regex *re, int state);
/* 1 when some match begins with the text that led to state (every state but
 * a non-viable start is). */
int charrnn_regex_viable(const charrnn_regex *re, int state);
/* 1 when some symbol continues the text towards a match (0: the text is
 * complete, or state is not viable). */
int charrnn_regex_live(const charrnn_regex *re, int state);

/* The hot loop's view (the sampler's mask): the class of every symbol (n
 * entries) and a state's row, indexed by class; row[cls[sym]] is the next
 * state or CHARRNN_REGEX_DEAD. Valid for re's life. */
const uint16_t *charrnn_regex_classes(const charrnn_regex *re);
const uint16_t *charrnn_regex_row(const charrnn_regex *re, int state);

#endif

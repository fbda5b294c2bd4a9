/* The portable random number generator: xoshiro256** seeded through splitmix64.
 *
 * Every random draw in charrnn (initialisation, dropout, sampling) goes through
 * this generator, so results are identical on every platform for a given seed.
 * The state is 4 x uint64 and can be saved in a checkpoint for exact resume. */
#ifndef CHARRNN_RNG_H
#define CHARRNN_RNG_H

#include <stdint.h>

typedef struct charrnn_rng {
    uint64_t s[4];
} charrnn_rng;

/* Seeds the state from one 64-bit value via splitmix64 (never all-zero). */
void charrnn_rng_seed(charrnn_rng *r, uint64_t seed);
/* Next raw 64-bit output. */
uint64_t charrnn_rng_u64(charrnn_rng *r);
/* Uniform double in [0, 1) from the top 53 bits. */
double charrnn_rng_uniform(charrnn_rng *r);
/* Uniform float in [0, 1) from the top 24 bits. */
float charrnn_rng_uniform_f(charrnn_rng *r);
/* splitmix64 step, exposed for deriving seeds (e.g. per-stream seeds). */
uint64_t charrnn_splitmix64(uint64_t *x);

/* A seed a program draws for its user (charrnn-serve for a request without
 * one, charrnn-sample without --seed) from 64 random bits: their top 53, so
 * below 2^53. Every JSON parser reads such a number exactly (JavaScript's
 * numbers are doubles), so a client can always send back the seed it was
 * given. Users may still give any uint64. */
static inline uint64_t charrnn_user_seed(uint64_t random_bits)
{
    return random_bits >> 11;
}

#endif

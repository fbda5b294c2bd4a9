/* xoshiro256** (Blackman & Vigna) seeded by splitmix64: small, fast and
 * specified exactly, so every platform draws the same numbers. */
#include "charrnn/rng.h"

uint64_t charrnn_splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void charrnn_rng_seed(charrnn_rng *r, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        r->s[i] = charrnn_splitmix64(&x);
    if (!(r->s[0] | r->s[1] | r->s[2] | r->s[3]))
        r->s[0] = 1; /* unreachable in practice; the all-zero state is a fixed point */
}

static inline uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t charrnn_rng_u64(charrnn_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double charrnn_rng_uniform(charrnn_rng *r)
{
    return (double)(charrnn_rng_u64(r) >> 11) * 0x1.0p-53;
}

float charrnn_rng_uniform_f(charrnn_rng *r)
{
    return (float)(charrnn_rng_u64(r) >> 40) * 0x1.0p-24f;
}

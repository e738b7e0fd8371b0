/* PCG64 (XSL-RR 128/64), the stream numpy's default_rng uses.
 *
 * Hot path only: the state struct, one step, and the uniform double.  The
 * state is set from the words numpy reports after seeding
 * (default_rng(seed).bit_generator.state), so no SeedSequence lives in C.
 * numpy: step first, then output rotr64(hi ^ lo, hi >> 58).
 *
 * 128-bit arithmetic: the compiler's unsigned __int128 where it has one;
 * otherwise (MSVC, 32-bit targets, or -DPW_EMULATE_UINT128 to test it) a
 * pair of 64-bit words, with the 64x64 -> 128 product from the _umul128 /
 * __umulh intrinsics on MSVC x64 / ARM64 or from 32-bit halves.  Every
 * path gives the same bits.
 */
#ifndef PAREWIRE_PCG64_H
#define PAREWIRE_PCG64_H

#include <stdint.h>

#if defined(__SIZEOF_INT128__) && !defined(PW_EMULATE_UINT128)
typedef __uint128_t pw_u128;
#define PW_U128(hi, lo) (((pw_u128)(hi) << 64) | (pw_u128)(lo))
#define PW_U128_HI(x) ((uint64_t)((x) >> 64))
#define PW_U128_LO(x) ((uint64_t)(x))
static inline pw_u128 pw_u128_muladd(pw_u128 a, pw_u128 b, pw_u128 c) { return a * b + c; }
#else
#define PW_U128_EMULATED 1
#if defined(_MSC_VER) && !defined(PW_EMULATE_UINT128) && (defined(_M_X64) || defined(_M_ARM64))
#include <intrin.h>
#endif
typedef struct {
    uint64_t hi, lo;
} pw_u128;
static inline pw_u128 pw_u128_make(uint64_t hi, uint64_t lo)
{
    pw_u128 r;
    r.hi = hi;
    r.lo = lo;
    return r;
}
#define PW_U128(hi, lo) pw_u128_make((hi), (lo))
#define PW_U128_HI(x) ((x).hi)
#define PW_U128_LO(x) ((x).lo)

/* The full 128-bit product of two 64-bit words. */
static inline pw_u128 pw_mul_64x64(uint64_t a, uint64_t b)
{
    pw_u128 r;
#if defined(_MSC_VER) && !defined(PW_EMULATE_UINT128) && defined(_M_X64)
    r.lo = _umul128(a, b, &r.hi);
#elif defined(_MSC_VER) && !defined(PW_EMULATE_UINT128) && defined(_M_ARM64)
    r.lo = a * b;
    r.hi = __umulh(a, b);
#else
    const uint64_t a0 = a & 0xFFFFFFFFULL, a1 = a >> 32;
    const uint64_t b0 = b & 0xFFFFFFFFULL, b1 = b >> 32;
    const uint64_t p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1;
    const uint64_t mid = (p00 >> 32) + (p01 & 0xFFFFFFFFULL) + (p10 & 0xFFFFFFFFULL);
    r.lo = (p00 & 0xFFFFFFFFULL) | (mid << 32);
    r.hi = p11 + (p01 >> 32) + (p10 >> 32) + (mid >> 32);
#endif
    return r;
}

static inline pw_u128 pw_u128_muladd(pw_u128 a, pw_u128 b, pw_u128 c)
{
    pw_u128 r = pw_mul_64x64(a.lo, b.lo);
    r.hi += a.hi * b.lo + a.lo * b.hi; /* cross terms; the rest overflows away */
    r.lo += c.lo;
    r.hi += c.hi + (r.lo < c.lo);
    return r;
}
#endif

typedef struct {
    pw_u128 state;
    pw_u128 inc;
} pw_pcg64;

#define PW_PCG64_MULT_HI 0x2360ED051FC65DA4ULL
#define PW_PCG64_MULT_LO 0x4385DF649FCCF645ULL

/* The output of a state: XSL-RR, rotr64(hi ^ lo, hi >> 58). */
static inline uint64_t pw_pcg64_output(pw_u128 state)
{
    const uint64_t hi = PW_U128_HI(state);
    const uint64_t x = hi ^ PW_U128_LO(state);
    const unsigned rot = (unsigned)(hi >> 58);
    return (x >> rot) | (x << ((64u - rot) & 63u));
}

static inline uint64_t pw_pcg64_next64(pw_pcg64 *g)
{
    g->state = pw_u128_muladd(g->state, PW_U128(PW_PCG64_MULT_HI, PW_PCG64_MULT_LO), g->inc);
    return pw_pcg64_output(g->state);
}

/* numpy's next_double: the top 53 bits of a word scaled into [0, 1). */
static inline double pw_u53_double(uint64_t word)
{
    return (double)(word >> 11) * (1.0 / 9007199254740992.0);
}

static inline double pw_pcg64_next_double(pw_pcg64 *g) { return pw_u53_double(pw_pcg64_next64(g)); }

void pw_pcg64_set(pw_pcg64 *g, uint64_t state_hi, uint64_t state_lo, uint64_t inc_hi, uint64_t inc_lo);
void pw_pcg64_get(const pw_pcg64 *g, uint64_t words[4]);
/* The next n outputs of next64, in order; g ends as after n calls. */
void pw_pcg64_fill64(pw_pcg64 *g, int64_t n, uint64_t *out);

#endif

/* PCG64: the rarely-called parts (state in/out, bulk fill). */
#include "pcg64.h"

void pw_pcg64_set(pw_pcg64 *g, uint64_t state_hi, uint64_t state_lo, uint64_t inc_hi, uint64_t inc_lo)
{
    g->state = PW_U128(state_hi, state_lo);
    g->inc = PW_U128(inc_hi, inc_lo);
}

void pw_pcg64_get(const pw_pcg64 *g, uint64_t words[4])
{
    words[0] = PW_U128_HI(g->state);
    words[1] = PW_U128_LO(g->state);
    words[2] = PW_U128_HI(g->inc);
    words[3] = PW_U128_LO(g->inc);
}

void pw_pcg64_fill64(pw_pcg64 *g, int64_t n, uint64_t *out)
{
    if (n < 16) {
        for (int64_t i = 0; i < n; i++)
            out[i] = pw_pcg64_next64(g);
        return;
    }
    /* Four interleaved copies of the recurrence, each stepping four states
     * at once: s -> a^4 s + (a^3 + a^2 + a + 1) inc.  The same outputs in the
     * same order as four calls of next64 each, but the 128-bit multiplies
     * no longer wait for one another. */
    const pw_u128 zero = PW_U128(0, 0), one = PW_U128(0, 1);
    const pw_u128 a = PW_U128(PW_PCG64_MULT_HI, PW_PCG64_MULT_LO);
    const pw_u128 a2 = pw_u128_muladd(a, a, zero);
    const pw_u128 a3 = pw_u128_muladd(a2, a, zero);
    const pw_u128 a4 = pw_u128_muladd(a2, a2, zero);
    pw_u128 sum = pw_u128_muladd(a, one, one); /* 1 + a */
    sum = pw_u128_muladd(a2, one, sum);        /* + a^2 */
    sum = pw_u128_muladd(a3, one, sum);        /* + a^3 */
    const pw_u128 c4 = pw_u128_muladd(sum, g->inc, zero);
    pw_u128 s0, s1, s2, s3;
    out[0] = pw_pcg64_next64(g);
    s0 = g->state;
    out[1] = pw_pcg64_next64(g);
    s1 = g->state;
    out[2] = pw_pcg64_next64(g);
    s2 = g->state;
    out[3] = pw_pcg64_next64(g);
    s3 = g->state;
    int64_t i = 4;
    for (; i + 4 <= n; i += 4) {
        s0 = pw_u128_muladd(s0, a4, c4);
        s1 = pw_u128_muladd(s1, a4, c4);
        s2 = pw_u128_muladd(s2, a4, c4);
        s3 = pw_u128_muladd(s3, a4, c4);
        out[i] = pw_pcg64_output(s0);
        out[i + 1] = pw_pcg64_output(s1);
        out[i + 2] = pw_pcg64_output(s2);
        out[i + 3] = pw_pcg64_output(s3);
    }
    g->state = s3;
    for (; i < n; i++)
        out[i] = pw_pcg64_next64(g);
}

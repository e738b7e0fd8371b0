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

void pw_pcg64_fill_double(pw_pcg64 *g, int64_t n, double *out)
{
    for (int64_t i = 0; i < n; i++)
        out[i] = pw_pcg64_next_double(g);
}

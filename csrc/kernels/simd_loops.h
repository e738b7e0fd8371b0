/* The hot loops, one source for every SIMD variant: simd.c includes this
 * file once per variant with PW_VARIANT(name) giving the function names
 * and PW_TARGET the target attribute.  Plain C the compiler vectorises for
 * the target; nothing here may depend on the vector width. */

PW_TARGET static void PW_VARIANT(fast_keys64)(const double *restrict e, const double *restrict st,
                                              double shift, uint64_t base, double below, int sh, int64_t n,
                                              double *restrict key, uint64_t *restrict words)
{
    for (int64_t i = 0; i < n; i++) {
        const double k = e[i] / ((st[i] + shift) + 1.0); /* P: two roundings, as the reference writes it */
        key[i] = k;
        uint64_t bits;
        memcpy(&bits, &k, 8);
        /* a double compare, not a 64-bit one, keeps it within SSE2 */
        const uint64_t pre = k < below ? 0 : (bits - base) >> sh;
        words[i] = (pre << 32) | (uint64_t)i;
    }
}

PW_TARGET static void PW_VARIANT(fast_keys32)(const double *restrict e, const double *restrict st,
                                              double shift, uint64_t base, double below, int sh, int ib,
                                              int64_t n, double *restrict key, uint32_t *restrict words)
{
    for (int64_t i = 0; i < n; i++) {
        const double k = e[i] / ((st[i] + shift) + 1.0);
        key[i] = k;
        uint64_t bits;
        memcpy(&bits, &k, 8);
        const uint64_t pre = k < below ? 0 : (bits - base) >> sh;
        words[i] = ((uint32_t)pre << ib) | (uint32_t)i;
    }
}

PW_TARGET static int PW_VARIANT(split_words64)(const uint64_t *restrict words, int64_t n,
                                               pw_idx *restrict order)
{
    unsigned tie = 0;
    order[0] = (pw_idx)words[0];
    for (int64_t k = 1; k < n; k++) {
        order[k] = (pw_idx)words[k];
        tie |= (uint32_t)(words[k] >> 32) == (uint32_t)(words[k - 1] >> 32);
    }
    return tie != 0;
}

PW_TARGET static int PW_VARIANT(split_words32)(const uint32_t *restrict words, int64_t n, int ib,
                                               pw_idx *restrict order)
{
    const uint32_t mask = ((uint32_t)1 << ib) - 1;
    unsigned tie = 0;
    order[0] = words[0] & mask;
    for (int64_t k = 1; k < n; k++) {
        order[k] = words[k] & mask;
        tie |= (words[k] >> ib) == (words[k - 1] >> ib);
    }
    return tie != 0;
}

PW_TARGET static int PW_VARIANT(numpy_lookup)(const uint64_t *restrict words, int64_t len, double dm,
                                              int64_t nb, double total, const pw_idx *restrict guide,
                                              const double *restrict c, pw_idx *restrict pos)
{
    unsigned unsure = 0;
    for (int64_t d = 0; d < len; d++) {
        const double xv = pw_u53_double(words[d]);
        int64_t b = (int64_t)(xv * dm);
        b = b < nb - 1 ? b : nb - 1;
        int64_t j = guide[b];
        const double y = xv * total;
        const double lo = y * (1.0 - PW_2POW_M49), hi = y * (1.0 + PW_2POW_M49);
        /* two steps past entries surely <= x, from two independent loads */
        j += (c[j] < lo) + (c[j + 1] < lo);
        pos[d] = (pw_idx)j;
        unsure |= !(c[j] > hi);
    }
    return unsure != 0;
}

#ifndef PW_OWN_COMPACT /* a variant with its own (simd.c) */
PW_TARGET static int64_t PW_VARIANT(numpy_compact)(pw_idx *restrict rem, double *restrict pr,
                                                   const unsigned char *restrict seen, int64_t m)
{
    int64_t kept = 0;
    for (int64_t j = 0; j < m; j++) {
        rem[kept] = rem[j];
        pr[kept] = pr[j];
        kept += !seen[j];
    }
    return kept;
}
#endif

#ifndef PW_OWN_EXPONENTIALS /* a variant with its own (simd.c) */
PW_TARGET static double PW_VARIANT(exponentials)(pw_draws *d, int64_t n, double *e)
{
    return pw_exponentials_scalar(d, n, e, 0.0);
}
#endif

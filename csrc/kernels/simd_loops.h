/* The hot loops, one source for every SIMD variant: simd.c includes this
 * file once per variant with PW_VARIANT(name) giving the function names
 * and PW_TARGET the target attribute.  Plain C the compiler vectorises for
 * the target; nothing here may depend on the vector width. */

PW_TARGET static void PW_VARIANT(fast_keys)(const double *restrict e, const double *restrict st, double shift,
                                            uint64_t base, double below, int sh, int64_t n,
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

PW_TARGET static int PW_VARIANT(split_words)(const uint64_t *restrict words, int64_t n, pw_idx *restrict order)
{
    unsigned tie = 0;
    order[0] = (pw_idx)words[0];
    for (int64_t k = 1; k < n; k++) {
        order[k] = (pw_idx)words[k];
        tie |= (uint32_t)(words[k] >> 32) == (uint32_t)(words[k - 1] >> 32);
    }
    return tie != 0;
}

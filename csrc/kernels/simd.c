/* Runtime CPU dispatch: the variants of simd_loops.h and the choice
 * between them (see simd.h). */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#ifdef PW_DISPATCH
#include <stdatomic.h>
#endif

#define PW_TARGET
#define PW_VARIANT(f) f##_portable
#include "simd_loops.h"
#undef PW_TARGET
#undef PW_VARIANT

#ifdef PW_DISPATCH
#define PW_TARGET __attribute__((target("avx2")))
#define PW_VARIANT(f) f##_avx2
#include "simd_loops.h"
#undef PW_TARGET
#undef PW_VARIANT

#if defined(__clang__) /* clang spells the vector width apart */
#define PW_TARGET __attribute__((target("avx512f,avx512dq,avx512bw,avx512vl"), min_vector_width(512)))
#else
#define PW_TARGET __attribute__((target("avx512f,avx512dq,avx512bw,avx512vl,prefer-vector-width=512")))
#endif
#define PW_VARIANT(f) f##_avx512
#define PW_OWN_EXPONENTIALS
#define PW_OWN_COMPACT
#include "simd_loops.h"
#undef PW_OWN_EXPONENTIALS
#undef PW_OWN_COMPACT

#include <immintrin.h>

#include "ziggurat.h"

/* The ziggurat eight draws at a time: the same product and comparison per
 * draw as the portable loop (a 53-bit integer converts exactly, scaling by
 * 2**-53 is exact), tables gathered.  The draws accepted before the first
 * rejected one are kept; that one takes the rare path on its own, with the
 * words that follow it, and the vector loop resumes after them -- the
 * stream is consumed in exactly the portable order. */
PW_TARGET static double exponentials_avx512(pw_draws *d, int64_t n, double *e)
{
    const __m512i low8 = _mm512_set1_epi64(0xFF), one = _mm512_set1_epi64(1);
    const __m512d scale = _mm512_set1_pd(1.0 / 9007199254740992.0);
    __m512d vmax = _mm512_setzero_pd();
    double emax = 0.0;
    int64_t k = 0;
    while (k < n && d->pos + 8 <= d->len) {
        const __m512i w = _mm512_loadu_si512((const void *)(d->buf + d->pos));
        const __m512i strip = _mm512_and_si512(w, low8);
        const __m512d u = _mm512_mul_pd(_mm512_cvtepu64_pd(_mm512_srli_epi64(w, 11)), scale);
        const __m512d x = _mm512_mul_pd(u, _mm512_i64gather_pd(strip, pw_zig_x, 8));
        const __m512d edge = _mm512_i64gather_pd(_mm512_add_epi64(strip, one), pw_zig_x, 8);
        const unsigned ok = (unsigned)_mm512_cmp_pd_mask(x, edge, _CMP_LT_OQ);
        if (ok == 0xFFu && k + 8 <= n) {
            _mm512_storeu_pd(e + k, x);
            vmax = _mm512_max_pd(vmax, x);
            k += 8;
            d->pos += 8;
            continue;
        }
        int a = 0; /* draws accepted before the first rejected one */
        while (a < 8 && (ok >> a & 1u))
            a++;
        if (k + a > n)
            a = (int)(n - k);
        const __mmask8 keep = (__mmask8)((1u << a) - 1u);
        _mm512_mask_storeu_pd(e + k, keep, x);
        vmax = _mm512_mask_max_pd(vmax, keep, vmax, x);
        k += a;
        d->pos += a;
        if (a < 8 && k < n) { /* the rejected draw: its strip's edge or the tail */
            const uint64_t r = d->buf[d->pos++];
            const int i = (int)(r & 0xFF);
            const double xs = pw_exponential_slow(d, i, pw_u53_double(r) * pw_zig_x[i]);
            e[k++] = xs;
            emax = xs > emax ? xs : emax;
        }
    }
    emax = pw_exponentials_scalar(d, n - k, e + k, emax);
    const double vm = _mm512_reduce_max_pd(vmax);
    return vm > emax ? vm : emax;
}
/* numpy_compact sixteen at a time: compress into a register and store the
 * whole vector (Zen 4 compresses to memory slowly); the lanes past the kept
 * ones land on positions already read. */
PW_TARGET static int64_t numpy_compact_avx512(pw_idx *restrict rem, double *restrict pr,
                                              const unsigned char *restrict seen, int64_t m)
{
    int64_t kept = 0, j = 0;
    for (; j + 16 <= m; j += 16) {
        const __mmask16 keep = _mm_cmpeq_epi8_mask(_mm_loadu_si128((const __m128i *)(const void *)(seen + j)),
                                                   _mm_setzero_si128());
        const __m512i r = _mm512_loadu_si512((const void *)(rem + j));
        const __m512d p0 = _mm512_loadu_pd(pr + j), p1 = _mm512_loadu_pd(pr + j + 8);
        const __mmask8 k0 = (__mmask8)keep, k1 = (__mmask8)(keep >> 8);
        const int c0 = __builtin_popcount(k0), c1 = __builtin_popcount(k1);
        _mm512_storeu_si512((void *)(rem + kept), _mm512_maskz_compress_epi32(keep, r));
        _mm512_storeu_pd(pr + kept, _mm512_maskz_compress_pd(k0, p0));
        _mm512_storeu_pd(pr + kept + c0, _mm512_maskz_compress_pd(k1, p1));
        kept += c0 + c1;
    }
    for (; j < m; j++) {
        rem[kept] = rem[j];
        pr[kept] = pr[j];
        kept += !seen[j];
    }
    return kept;
}

#undef PW_TARGET
#undef PW_VARIANT
#endif

/* Best last. */
static const pw_simd_ops variants[] = {
    {"portable", fast_keys64_portable, fast_keys32_portable, split_words64_portable, split_words32_portable,
     exponentials_portable, numpy_compact_portable, numpy_lookup_portable},
#ifdef PW_DISPATCH
    {"avx2", fast_keys64_avx2, fast_keys32_avx2, split_words64_avx2, split_words32_avx2, exponentials_avx2,
     numpy_compact_avx2, numpy_lookup_avx2},
    {"avx512", fast_keys64_avx512, fast_keys32_avx512, split_words64_avx512, split_words32_avx512,
     exponentials_avx512, numpy_compact_avx512, numpy_lookup_avx512},
#endif
};
#define PW_NVARIANTS ((int)(sizeof variants / sizeof variants[0]))

static int cpu_runs(int v)
{
#ifdef PW_DISPATCH
    __builtin_cpu_init();
    if (strcmp(variants[v].name, "avx2") == 0)
        return __builtin_cpu_supports("avx2");
    if (strcmp(variants[v].name, "avx512") == 0)
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
               __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
#endif
    return v == 0;
}

static int find(const char *name)
{
    for (int v = 0; v < PW_NVARIANTS; v++)
        if (strcmp(variants[v].name, name) == 0 && cpu_runs(v))
            return v;
    return -1;
}

static int best(void)
{
    const char *env = getenv("PAREWIRE_SIMD");
    const int forced = env && *env ? find(env) : -1;
    if (forced >= 0)
        return forced;
    int v = PW_NVARIANTS - 1;
    while (v > 0 && !cpu_runs(v))
        v--;
    return v;
}

#ifdef PW_DISPATCH
static atomic_int selected = -1; /* -1: not chosen yet */

static int current_index(void)
{
    int v = atomic_load_explicit(&selected, memory_order_relaxed);
    if (v < 0) {
        v = best();
        int unset = -1; /* a concurrent first call chose the same */
        atomic_compare_exchange_strong(&selected, &unset, v);
    }
    return v;
}

static void set_index(int v) { atomic_store_explicit(&selected, v, memory_order_relaxed); }
#else
static int current_index(void) { return 0; }
static void set_index(int v) { (void)v; }
#endif

const pw_simd_ops *pw_simd_current(void) { return &variants[current_index()]; }

const char *const *pw_simd_variants(void)
{
    /* The variants are ordered so that a CPU runs a prefix of them (every
     * AVX-512 CPU has AVX2): a constant list, cut after that prefix. */
    static const char *const lists[PW_NVARIANTS][PW_NVARIANTS + 1] = {
        {"portable", NULL},
#ifdef PW_DISPATCH
        {"portable", "avx2", NULL},
        {"portable", "avx2", "avx512", NULL},
#endif
    };
    int k = 1;
    while (k < PW_NVARIANTS && cpu_runs(k))
        k++;
    return lists[k - 1];
}

pw_status pw_simd_select(const char *name)
{
    const int v = name ? find(name) : best();
    if (v < 0)
        return PW_ERR_ARGUMENT;
    set_index(v);
    return PW_OK;
}

const char *pw_simd_selected(void) { return variants[current_index()].name; }

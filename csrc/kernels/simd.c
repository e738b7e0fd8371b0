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

#define PW_TARGET __attribute__((target("avx512f,avx512dq,avx512bw,avx512vl,prefer-vector-width=512")))
#define PW_VARIANT(f) f##_avx512
#include "simd_loops.h"
#undef PW_TARGET
#undef PW_VARIANT
#endif

/* Best last. */
static const pw_simd_ops variants[] = {
    {"portable", fast_keys64_portable, fast_keys32_portable, split_words64_portable, split_words32_portable, numpy_lookup_portable},
#ifdef PW_DISPATCH
    {"avx2", fast_keys64_avx2, fast_keys32_avx2, split_words64_avx2, split_words32_avx2, numpy_lookup_avx2},
    {"avx512", fast_keys64_avx512, fast_keys32_avx512, split_words64_avx512, split_words32_avx512, numpy_lookup_avx512},
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

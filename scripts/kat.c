/* Known answers for the parewire kernels in pure C, for any compiler and
 * target (scripts/portability.sh builds it in variants and under qemu).
 *
 *  1. The fixtures: tests/data/fixtures.kat (scripts/export_fixtures.py
 *     writes it from the .npz files there, the authors' reference outputs):
 *     every PA_rewiring_np case must come out bit for bit, and the strength
 *     scores of every stabilize case must pick the reference's candidate.
 *  2. A digest: a fixed list of generated cases over every dtype, sampler,
 *     pass count, reseed mode and layout (contiguous, transposed, reversed
 *     rows), hashed over the rewired bits, the returned stream state and the
 *     strength sums.  Targets that compute the same bits print the same
 *     digest; scripts/portability.sh compares them.
 *
 * usage: kat FIXTURES.kat [digest cases, default 960]
 * prints: "kat: ... rewire digest X, strength digest Y" (16 hex digits each);
 * exits 1 if a fixture differs.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../csrc/kernels/parewire.h"

/* ------------------------------------------------------------ reading */

typedef struct {
    const unsigned char *p, *end;
    int bad;
} reader;

static uint64_t read_le(reader *r, int bytes)
{
    if (r->bad || r->end - r->p < bytes) {
        r->bad = 1;
        return 0;
    }
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++)
        v |= (uint64_t)r->p[i] << (8 * i);
    r->p += bytes;
    return v;
}

/* n float32 bit patterns into a new native array (NULL on a short file) */
static uint32_t *read_words(reader *r, int64_t n)
{
    uint32_t *a = malloc((size_t)(n > 0 ? n : 1) * sizeof *a);
    if (a == NULL) {
        r->bad = 1;
        return NULL;
    }
    for (int64_t i = 0; i < n; i++)
        a[i] = (uint32_t)read_le(r, 4);
    if (r->bad) {
        free(a);
        return NULL;
    }
    return a;
}

/* ------------------------------------------------------------ checks */

static int check_rewire(reader *r, const char *name, int ndim, const int64_t *shape, int64_t numel)
{
    pw_seed seed;
    seed.state_hi = read_le(r, 8);
    seed.state_lo = read_le(r, 8);
    seed.inc_hi = read_le(r, 8);
    seed.inc_lo = read_le(r, 8);
    uint32_t *w = read_words(r, numel), *want = read_words(r, numel);
    if (w == NULL || want == NULL) {
        free(w);
        free(want);
        return -1;
    }
    int64_t strides[PW_MAX_NDIM], s = 1;
    for (int d = ndim - 1; d >= 0; d--) {
        strides[d] = s;
        s *= shape[d];
    }
    const pw_tensor t = {w, PW_FLOAT32, ndim, shape, strides};
    const pw_options opt = {
        .passes = 2, .sampler = PW_SAMPLER_NUMPY, .reseed_each_pass = 1, .cancel = NULL, .threads = 1};
    const pw_status st = pw_rewire(&t, &opt, &seed);
    int64_t diff = 0, first = -1;
    for (int64_t i = 0; i < numel; i++)
        if (w[i] != want[i] && diff++ == 0)
            first = i;
    if (st != PW_OK || diff)
        fprintf(stderr, "kat: %s: status %d, %lld of %lld values differ (first at %lld: %08x, want %08x)\n",
                name, (int)st, (long long)diff, (long long)numel, (long long)first, first >= 0 ? w[first] : 0,
                first >= 0 ? want[first] : 0);
    free(w);
    free(want);
    return st == PW_OK && diff == 0 ? 0 : 1;
}

static int check_stabilize(reader *r, const char *name, int ndim, const int64_t *shape, int64_t numel)
{
    const uint32_t k = (uint32_t)read_le(r, 4), chosen = (uint32_t)read_le(r, 4);
    int64_t strides[PW_MAX_NDIM], s = 1;
    for (int d = ndim - 1; d >= 0; d--) {
        strides[d] = s;
        s *= shape[d];
    }
    uint32_t best = 0;
    double best_score = 0.0;
    for (uint32_t c = 0; c < k; c++) {
        uint32_t *w = read_words(r, numel);
        if (w == NULL)
            return -1;
        const pw_tensor t = {w, PW_FLOAT32, ndim, shape, strides};
        pw_stats st;
        const pw_status status = pw_strength_stats(&t, &st);
        free(w);
        if (status != PW_OK) {
            fprintf(stderr, "kat: %s: candidate %u: status %d\n", name, c, (int)status);
            return 1;
        }
        const double score = (st.col_var + st.row_var) / 2.0; /* functional.StrengthStats.score */
        if (c == 0 || score < best_score) {                   /* strictly lower wins */
            best = c;
            best_score = score;
        }
    }
    if (best != chosen)
        fprintf(stderr, "kat: %s: the scores pick candidate %u, the reference kept %u\n", name, best, chosen);
    return best == chosen ? 0 : 1;
}

/* Returns the number of failed cases, or -1 for an unreadable file. */
static int check_fixtures(const char *path, int *rewired, int *stabilized)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        perror(path);
        return -1;
    }
    fseek(f, 0, SEEK_END);
    const long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc(size > 0 ? (size_t)size : 1);
    if (buf == NULL || size <= 0 || fread(buf, 1, (size_t)size, f) != (size_t)size) {
        fclose(f);
        free(buf);
        fprintf(stderr, "kat: cannot read %s\n", path);
        return -1;
    }
    fclose(f);
    reader r = {buf, buf + size, 0};
    int failed = 0;
    if (size < 8 || memcmp(buf, "PWKAT01\n", 8) != 0) {
        r.bad = 1;
    } else {
        r.p += 8;
        const uint32_t cases = (uint32_t)read_le(&r, 4);
        for (uint32_t i = 0; i < cases && !r.bad; i++) {
            const uint32_t kind = (uint32_t)read_le(&r, 4), len = (uint32_t)read_le(&r, 4);
            char name[128] = "?";
            if (len < sizeof name && r.end - r.p >= len) {
                memcpy(name, r.p, len);
                name[len] = 0;
                r.p += len;
            } else {
                r.bad = 1;
            }
            const uint32_t ndim = (uint32_t)read_le(&r, 4);
            int64_t shape[PW_MAX_NDIM], numel = 1;
            if (ndim < 1 || ndim > PW_MAX_NDIM)
                r.bad = 1;
            for (uint32_t d = 0; d < ndim && !r.bad; d++) {
                shape[d] = (int64_t)read_le(&r, 8);
                numel *= shape[d];
            }
            if (r.bad || numel > (int64_t)1 << 26)
                break;
            const int rc = kind == 1   ? check_rewire(&r, name, (int)ndim, shape, numel)
                           : kind == 2 ? check_stabilize(&r, name, (int)ndim, shape, numel)
                                       : -1;
            if (rc < 0)
                r.bad = 1;
            failed += rc > 0;
            *rewired += kind == 1 && rc == 0;
            *stabilized += kind == 2 && rc == 0;
        }
        if (r.p != r.end)
            r.bad = 1;
    }
    free(buf);
    if (r.bad) {
        fprintf(stderr, "kat: %s is malformed (regenerate it: python scripts/export_fixtures.py)\n", path);
        return -1;
    }
    return failed;
}

/* ------------------------------------------------------------ digest */

static uint64_t rng = 0x243F6A8885A308D3ULL;

static uint64_t next(void) /* splitmix64 */
{
    uint64_t z = (rng += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static uint64_t below(uint64_t n) { return next() % n; }

/* FNV-1a, 64 bits: one digest of what pw_rewire wrote and returned, one of
 * the strength statistics computed from the result */
static uint64_t rewire_digest = 0xCBF29CE484222325ULL, stats_digest = 0xCBF29CE484222325ULL;

static void hash_bytes(uint64_t *h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        *h = (*h ^ b[i]) * 0x100000001B3ULL;
}

static void hash_u64(uint64_t *h, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        const unsigned char b = (unsigned char)(v >> (8 * i));
        hash_bytes(h, &b, 1);
    }
}

static void hash_double(uint64_t *h, double d)
{
    uint64_t v;
    memcpy(&v, &d, 8);
    hash_u64(h, v);
}

/* A finite value's bits, magnitudes within a few powers of two of 1 (sums
 * stay far from overflow); `levels` > 0 draws from that many values only,
 * so rows hold ties. */
static uint64_t value_bits(pw_dtype dt, int levels)
{
    const uint64_t sign = next() & 1;
    const uint64_t e = levels ? (uint64_t)below((uint64_t)levels) % 4 : below(12);
    const uint64_t m = levels ? below((uint64_t)levels) : next();
    switch (dt) {
    case PW_FLOAT16: return sign << 15 | (9 + e) << 10 | (m & 0x3FF);
    case PW_BFLOAT16: return sign << 15 | (121 + e) << 7 | (m & 0x7F);
    case PW_FLOAT32: return sign << 31 | (121 + e) << 23 | (m & 0x7FFFFF);
    case PW_FLOAT64: return sign << 63 | (1017 + e) << 52 | (m & 0xFFFFFFFFFFFFFULL);
    }
    return 0;
}

static void digest_case(int i)
{
    const pw_dtype dt = (pw_dtype)(i % 4);
    const pw_sampler sampler = (pw_sampler)(i / 4 % 2);
    const int passes = 1 + i / 8 % 2, reseed = i / 16 % 2, layout = i / 32 % 3;
    int64_t rows = 1 + (int64_t)below(48), cols = 1 + (int64_t)below(48);
    if (i % 16 == 15) { /* tiles of 32 rows, long rows */
        rows = 33 + (int64_t)below(120);
        cols = 33 + (int64_t)below(200);
    }
    const int levels = i % 5 == 0 ? 1 + (int)below(6) : 0;
    const size_t es = pw_dtype_size(dt);
    const int64_t n = rows * cols;
    unsigned char *buf = malloc((size_t)n * es);
    if (buf == NULL) {
        fprintf(stderr, "kat: out of memory\n");
        exit(2);
    }
    for (int64_t k = 0; k < n; k++) {
        const uint64_t v = value_bits(dt, levels);
        for (size_t b = 0; b < es; b++)
            buf[(size_t)k * es + b] = (unsigned char)(v >> (8 * b)); /* little-endian, like the targets */
    }
    const int64_t shape[2] = {rows, cols};
    int64_t strides[2] = {cols, 1};
    void *origin = buf;
    if (layout == 1) { /* column-major: the transposed view of a contiguous buffer */
        strides[0] = 1;
        strides[1] = rows;
    } else if (layout == 2) { /* rows reversed */
        strides[0] = -cols;
        origin = buf + (size_t)((rows - 1) * cols) * es;
    }
    pw_seed seed = {next(), next(), next(), next() | 1};
    const pw_tensor t = {origin, dt, 2, shape, strides};
    const pw_options opt = {
        .passes = passes, .sampler = sampler, .reseed_each_pass = reseed, .cancel = NULL, .threads = 1};
    const pw_status st = pw_rewire(&t, &opt, &seed);
    hash_u64(&rewire_digest, (uint64_t)st);
    hash_bytes(&rewire_digest, buf, (size_t)n * es);
    hash_u64(&rewire_digest, seed.state_hi);
    hash_u64(&rewire_digest, seed.state_lo);
    hash_u64(&rewire_digest, seed.inc_hi);
    hash_u64(&rewire_digest, seed.inc_lo);
    double *sums = malloc((size_t)(rows + cols) * sizeof *sums);
    pw_stats stats;
    if (sums == NULL || pw_strength_sums(&t, sums, sums + rows, &stats) != PW_OK) {
        fprintf(stderr, "kat: strength sums failed in case %d\n", i);
        exit(2);
    }
    for (int64_t k = 0; k < rows + cols; k++)
        hash_double(&stats_digest, sums[k]);
    hash_double(&stats_digest, stats.row_mean);
    hash_double(&stats_digest, stats.row_var);
    hash_double(&stats_digest, stats.col_mean);
    hash_double(&stats_digest, stats.col_var);
    free(sums);
    free(buf);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: kat FIXTURES.kat [digest cases]\n");
        return 2;
    }
    const int cases = argc > 2 ? atoi(argv[2]) : 960;
    int rewired = 0, stabilized = 0;
    const int failed = check_fixtures(argv[1], &rewired, &stabilized);
    if (failed < 0)
        return 2;
    for (int i = 0; i < cases; i++)
        digest_case(i);
    printf("kat: %d fixtures bit for bit, %d stabilize choices right, %d failed; %d cases: rewire digest "
           "%016llx, "
           "strength digest %016llx\n",
           rewired, stabilized, failed, cases, (unsigned long long)rewire_digest,
           (unsigned long long)stats_digest);
    return failed ? 1 : 0;
}

/* The passes of a rewiring, on one thread or two.
 *
 * One pass over a matrix in scratch (R rows of C; row stride rs, column
 * stride cs, in elements):
 *
 *     st = row 0
 *     for r in 1 .. R-1:
 *         P = (st + |min st|) + 1, targets = weighted permutation (P)
 *         row r: the j-th smallest value moves to column targets[j]
 *         st += row r as placed
 *
 * Each row splits in two.  Preparing it -- sorting its values, and for the
 * fast sampler drawing its exponentials -- does not depend on the
 * strengths; drawing its targets and placing its values does, and that
 * chain is sequential.  With opt->threads >= 2 a helper thread prepares
 * rows ahead of the chain (and, for the numpy sampler, fills the random
 * stream ahead in blocks), consuming random words in the same order as one
 * thread would, so the result is the same bits for every thread count.
 *
 * A transposed pass (cs != 1) works on tiles of PW_TILE_ROWS adjacent
 * columns, copied out with a blocked transpose (never walking a column
 * with a stride of a whole row) and copied back once placed.
 */
#include <float.h>
#include <stdlib.h>

#include "internal.h"
#include "thread.h"

/* Rows per tile in a transposed pass: adjacent columns of the scratch. */
#define PW_TILE_ROWS 32

/* Rows prepared ahead of the chain with two threads. */
#define PW_PIPE_SLOTS 4

/* Words per block of the numpy sampler's stream with two threads. */
#define PW_WORD_BLOCK 256

/* ---- the geometry of each pass ---- */

typedef struct {
    int64_t rows, cols, rs, cs; /* in elements of the scratch */
    int tiled;
} pw_geom;

static pw_geom geometry(const pw_passes *ps, int pass)
{
    pw_geom g;
    if (pass == 0) {
        g.rows = ps->rows;
        g.cols = ps->cols;
        g.rs = ps->ld;
        g.cs = 1;
    } else { /* the transpose: columns become rows */
        g.rows = ps->cols;
        g.cols = ps->rows;
        g.rs = 1;
        g.cs = ps->ld;
    }
    g.tiled = g.cs != 1;
    return g;
}

/* ---- the two halves of a row ---- */

/* Scratch of the thread that prepares rows. */
typedef struct {
    void *vals_tmp;  /* radix scratch for the values */
    uint64_t *words; /* random words for the exponentials */
    char *tile;      /* a tile of a transposed pass, as rows */
} pw_prep_ws;

/* Prepares row r of a pass into slot; g: the fast sampler's stream. */
static void prepare_row(const pw_passes *ps, const pw_geom *G, int64_t r, pw_prepared *slot, pw_prep_ws *pw,
                        pw_pcg64 *g)
{
    const int64_t es = (int64_t)ps->es, n = G->cols;
    const char *row;
    if (G->tiled) {
        const int64_t r0 = r - r % PW_TILE_ROWS;
        if (r == r0) { /* the tile's first row: transpose the tile in */
            const int64_t nr = r0 + PW_TILE_ROWS < G->rows ? PW_TILE_ROWS : G->rows - r0;
            pw_copy2d(pw->tile, n, 1, ps->scratch + r0 * G->rs * es, G->rs, G->cs, nr, n, (size_t)es);
        }
        row = pw->tile + (r - r0) * n * es;
    } else {
        row = ps->scratch + r * G->rs * es;
    }
    if (r == 0) {
        memcpy(slot->vals, row, (size_t)(n * es));
        return;
    }
    ps->ops->prepare(slot->vals, pw->vals_tmp, row, n);
    if (ps->opt->sampler == PW_SAMPLER_FAST)
        slot->emax = pw_exponentials(g, n, slot->exps, pw->words, ps->simd);
}

/* The weights P = (st + |min st|) + 1 of the next row sum to a finite
 * total (the reference would divide by inf otherwise).  The total is only
 * computed when the largest P times n could come near overflow. */
static int weights_finite(const double *st, pw_range range, int64_t n, double *weight)
{
    const double shift = fabs(range.min);
    if ((range.max + shift) + 1.0 <= DBL_MAX / 4.0 / (double)n)
        return 1; /* every partial sum stays below DBL_MAX / 2 */
    for (int64_t i = 0; i < n; i++)
        weight[i] = (st[i] + shift) + 1.0;
    return pw_pairwise_sum(weight, n) < INFINITY; /* also catches NaN */
}

/* Draws row r's targets from the strengths and places its values (into
 * tile, a tile's rows, in a transposed pass). */
static pw_status place_row(const pw_passes *ps, const pw_geom *G, int64_t r, const pw_prepared *slot,
                           pw_row_ws *ws, char *tile, pw_range *range, pw_words *src)
{
    const int64_t es = (int64_t)ps->es, n = G->cols;
    const int64_t r0 = r - r % PW_TILE_ROWS;
    char *out = G->tiled ? tile + (r - r0) * n * es : ps->scratch + r * G->rs * es;
    if (r == 0) {
        ps->ops->accumulate(out, ws->strength, slot->vals, n, range);
    } else {
        const double *st = ws->strength;
        if (ps->opt->sampler == PW_SAMPLER_FAST) {
            if (!weights_finite(st, *range, n, ws->weight))
                return PW_ERR_OVERFLOW;
            pw_choice_fast(slot->exps, slot->emax, st, range->min, n, ws->order, &ws->fast, ps->simd);
        } else {
            double *p = ws->weight;
            const double shift = fabs(range->min);
            for (int64_t i = 0; i < n; i++)
                p[i] = (st[i] + shift) + 1.0; /* two roundings, as the reference writes it */
            const double total = pw_pairwise_sum(p, n);
            if (!(total < INFINITY)) /* also catches NaN */
                return PW_ERR_OVERFLOW;
            pw_choice_numpy(src, p, total, n, ws->order, &ws->np, ps->simd);
        }
        ps->ops->place(out, slot->vals, ws->order, ws->strength, n, range);
    }
    if (G->tiled && (r - r0 == PW_TILE_ROWS - 1 || r == G->rows - 1)) /* the tile is done: back it goes */
        pw_copy2d(ps->scratch + r0 * G->rs * es, G->rs, G->cs, tile, n, 1, r - r0 + 1, n, (size_t)es);
    return PW_OK;
}

static int cancelled(const pw_options *opt) { return opt->cancel && pw_cancel_requested(opt->cancel); }

static void set_seed(pw_pcg64 *g, const pw_seed *s)
{
    pw_pcg64_set(g, s->state_hi, s->state_lo, s->inc_hi, s->inc_lo);
}

static void get_seed(const pw_pcg64 *g, pw_seed *s)
{
    uint64_t w[4];
    pw_pcg64_get(g, w);
    s->state_hi = w[0];
    s->state_lo = w[1];
    s->inc_hi = w[2];
    s->inc_lo = w[3];
}

/* ---- scratch ---- */

/* Everything a call's passes need besides the tensor copy, in one block:
 * the chain's buffers, the prepared slots and the preparing thread's. */
typedef struct {
    pw_row_ws ws;
    pw_prepared slot[PW_PIPE_SLOTS];
    int nslots;
    pw_prep_ws prep;
    char *tile;        /* the chain's tile of a transposed pass */
    uint64_t *ring;    /* numpy, two threads: the stream in blocks */
    pw_pcg64 *ring_at; /* the stream state at each block's start */
    int64_t nblocks;
    void *block;
} pw_scratch;

static void *carve(char *base, size_t *used, int64_t n, size_t size)
{
    void *p = base ? base + *used : NULL;
    *used += ((size_t)n * size + 63) & ~(size_t)63; /* 64-byte aligned */
    return p;
}

static size_t scratch_layout(pw_scratch *sc, char *b, const pw_passes *ps, int threads)
{
    const int64_t n = ps->rows > ps->cols ? ps->rows : ps->cols;
    const int fast = ps->opt->sampler == PW_SAMPLER_FAST;
    const int64_t es = (int64_t)ps->es;
    size_t used = 0;
    pw_row_ws *ws = &sc->ws;
    ws->cap = n;
    ws->strength = carve(b, &used, n, sizeof(double));
    ws->weight = carve(b, &used, n, sizeof(double));
    ws->order = carve(b, &used, n + 1, sizeof(pw_idx)); /* +1: branchless appends may write one past */
    if (fast) {
        ws->fast.key = carve(b, &used, n, sizeof(double));
        ws->fast.sortword = carve(b, &used, n, sizeof(uint64_t));
        ws->fast.sort_tmp = carve(b, &used, n, sizeof(uint64_t));
        ws->fast.run_tmp = carve(b, &used, n, sizeof(pw_idx));
    } else {
        ws->np.prob = carve(b, &used, n, sizeof(double));
        ws->np.cdf = carve(b, &used, n + 2, sizeof(double)); /* + sentinels */
        ws->np.quantile = carve(b, &used, n, sizeof(double));
        ws->np.remaining = carve(b, &used, n, sizeof(pw_idx));
        ws->np.guide = carve(b, &used, n + 1, sizeof(pw_idx));
        ws->np.seen = carve(b, &used, n, 1);
    }
    sc->nslots = threads >= 2 ? PW_PIPE_SLOTS : 1;
    for (int k = 0; k < sc->nslots; k++) {
        sc->slot[k].vals = carve(b, &used, n, (size_t)es);
        sc->slot[k].exps = fast ? carve(b, &used, n, sizeof(double)) : NULL;
    }
    sc->prep.vals_tmp = carve(b, &used, n, (size_t)es);
    sc->prep.words = fast ? carve(b, &used, n, sizeof(uint64_t)) : NULL;
    const int64_t tile = ps->npasses == 2 ? PW_TILE_ROWS * ps->rows : 1;
    sc->prep.tile = carve(b, &used, tile, (size_t)es);
    sc->tile = threads >= 2 ? carve(b, &used, tile, (size_t)es) : sc->prep.tile; /* one thread: in place */
    /* numpy, two threads: enough blocks for a few rows' draws (~1.6 per column) */
    sc->nblocks = threads >= 2 && !fast ? 4 + 4 * n / PW_WORD_BLOCK : 0;
    sc->ring = sc->nblocks ? carve(b, &used, sc->nblocks * PW_WORD_BLOCK, sizeof(uint64_t)) : NULL;
    sc->ring_at = sc->nblocks ? carve(b, &used, sc->nblocks, sizeof(pw_pcg64)) : NULL;
    return used;
}

static pw_status scratch_init(pw_scratch *sc, const pw_passes *ps, int threads)
{
    memset(sc, 0, sizeof *sc);
    const size_t bytes = scratch_layout(sc, NULL, ps, threads);
    sc->block = pw_alloc((int64_t)bytes + 64, 1);
    if (!sc->block)
        return PW_ERR_NOMEM;
    char *aligned = (char *)sc->block + ((64 - (uintptr_t)sc->block % 64) % 64);
    scratch_layout(sc, aligned, ps, threads);
    return PW_OK;
}

/* ---- one thread ---- */

static pw_status run_serial(const pw_passes *ps, pw_scratch *sc, pw_seed *seed)
{
    pw_pcg64 g;
    set_seed(&g, seed);
    pw_words src;
    memset(&src, 0, sizeof src);
    src.g = &g;
    for (int pass = 0; pass < ps->npasses; pass++) {
        if (pass == 1 && ps->opt->reseed_each_pass)
            set_seed(&g, seed);
        const pw_geom G = geometry(ps, pass);
        if (G.rows < 2)
            continue;
        pw_range range = {0.0, 0.0};
        for (int64_t r = 0; r < G.rows; r++) {
            if (r > 0 && cancelled(ps->opt))
                return PW_ERR_CANCELLED;
            prepare_row(ps, &G, r, &sc->slot[0], &sc->prep, &g);
            const pw_status s = place_row(ps, &G, r, &sc->slot[0], &sc->ws, sc->tile, &range, &src);
            if (s != PW_OK)
                return s;
        }
    }
    get_seed(&g, seed);
    return PW_OK;
}

/* ---- two threads ----
 *
 * The calling thread runs the chain (draw, place); the helper prepares rows
 * into a ring of slots and, for the numpy sampler, fills the random stream
 * into a ring of blocks.  Rows are numbered across both passes; row `seq`
 * lives in slot seq % nslots.  The helper prepares the second pass's rows
 * only once the chain has finished the first (they are its result).  Both
 * check the cancel flag before each row; either stops the other through
 * `stop`, and the caller always joins the helper before returning. */
typedef struct pw_pipe {
    const pw_passes *ps;
    pw_scratch *sc;
    pw_seed seed;
    pw_mutex mu;
    pw_cond helper_cv; /* the helper waits here ... */
    pw_cond chain_cv;  /* ... the chain here */
    int helper_waits;  /* 1 while the helper sleeps: only then is it woken */
    int chain_waits;
    int64_t produced; /* rows prepared */
    int64_t consumed; /* rows placed: their slots are free again */
    int passes_done;  /* passes the chain has finished */
    int stop;         /* 1: whoever waits gives up */
    pw_status status; /* the helper's reason to stop (cancelled) */
    pw_pcg64 g;       /* the helper's stream: exponentials, or the blocks */
    int64_t wfilled;  /* blocks of the stream filled */
    int64_t wtaken;   /* blocks the chain has finished with */
} pw_pipe;

/* The helper: fills one more block of the stream if there is room.  Called
 * and returns with mu held. */
static int fill_block(pw_pipe *pp)
{
    pw_scratch *sc = pp->sc;
    if (!sc->ring || pp->wfilled - pp->wtaken >= sc->nblocks)
        return 0;
    const int64_t b = pp->wfilled % sc->nblocks;
    pw_mutex_unlock(&pp->mu);
    sc->ring_at[b] = pp->g;
    pw_pcg64_fill64(&pp->g, PW_WORD_BLOCK, sc->ring + b * PW_WORD_BLOCK);
    pw_mutex_lock(&pp->mu);
    pp->wfilled++;
    if (pp->chain_waits)
        pw_cond_broadcast(&pp->chain_cv);
    return 1;
}

/* Wakes whoever waits (with mu held). */
static void wake_helper(pw_pipe *pp)
{
    if (pp->helper_waits)
        pw_cond_broadcast(&pp->helper_cv);
}

static void wake_chain(pw_pipe *pp)
{
    if (pp->chain_waits)
        pw_cond_broadcast(&pp->chain_cv);
}

static void helper_sleep(pw_pipe *pp)
{
    pp->helper_waits = 1;
    pw_cond_wait(&pp->helper_cv, &pp->mu);
    pp->helper_waits = 0;
}

static void chain_sleep(pw_pipe *pp)
{
    pp->chain_waits = 1;
    pw_cond_wait(&pp->chain_cv, &pp->mu);
    pp->chain_waits = 0;
}

/* Stops both sides (with mu held). */
static void stop_all(pw_pipe *pp)
{
    pp->stop = 1;
    pw_cond_broadcast(&pp->helper_cv);
    pw_cond_broadcast(&pp->chain_cv);
}

/* The helper waits until row `seq` (of pass `pass`) can be prepared,
 * filling the stream meanwhile.  Returns 0 if told to stop. */
static int helper_wait(pw_pipe *pp, int64_t seq, int pass)
{
    pw_mutex_lock(&pp->mu);
    for (;;) {
        if (pp->stop)
            break;
        const int ready = seq - pp->consumed < pp->sc->nslots && pp->passes_done >= pass;
        /* keep the stream at least half full even when a row is ready */
        const int low = pp->sc->ring && 2 * (pp->wfilled - pp->wtaken) < pp->sc->nblocks;
        if ((!ready || low) && fill_block(pp))
            continue;
        if (ready)
            break;
        helper_sleep(pp);
    }
    const int go = !pp->stop;
    pw_mutex_unlock(&pp->mu);
    return go;
}

static void helper(void *arg)
{
    pw_pipe *pp = (pw_pipe *)arg;
    const pw_passes *ps = pp->ps;
    int64_t seq = 0;
    for (int pass = 0; pass < ps->npasses; pass++) {
        const pw_geom G = geometry(ps, pass);
        if (G.rows < 2)
            continue;
        for (int64_t r = 0; r < G.rows; r++, seq++) {
            if (!helper_wait(pp, seq, pass))
                return;
            if (r == 0 && pass == 1 && ps->opt->reseed_each_pass) {
                /* the second pass starts the stream afresh: what was
                 * filled ahead of the first pass's end is not used */
                set_seed(&pp->g, &pp->seed);
                pw_mutex_lock(&pp->mu);
                pp->wfilled = pp->wtaken = 0;
                pw_mutex_unlock(&pp->mu);
            }
            if (r > 0 && cancelled(ps->opt)) {
                pw_mutex_lock(&pp->mu);
                pp->status = PW_ERR_CANCELLED;
                stop_all(pp);
                pw_mutex_unlock(&pp->mu);
                return;
            }
            prepare_row(ps, &G, r, &pp->sc->slot[seq % pp->sc->nslots], &pp->sc->prep, &pp->g);
            pw_mutex_lock(&pp->mu);
            pp->produced = seq + 1;
            wake_chain(pp);
            pw_mutex_unlock(&pp->mu);
        }
    }
    /* the numpy chain may still draw: keep its stream coming until it ends */
    pw_mutex_lock(&pp->mu);
    while (!pp->stop) {
        if (!fill_block(pp))
            helper_sleep(pp);
    }
    pw_mutex_unlock(&pp->mu);
}

void pw_words_take_blocks(pw_words *s, int64_t n, uint64_t *out)
{
    pw_pipe *pp = s->pipe;
    while (n > 0) {
        if (s->pos == s->len) { /* the next block: wait for it if need be */
            pw_mutex_lock(&pp->mu);
            if (s->block) {
                pp->wtaken++;
                if (2 * (pp->wfilled - pp->wtaken) < pp->sc->nblocks) /* running low */
                    wake_helper(pp);
            }
            while (!pp->stop && pp->wtaken == pp->wfilled) {
                wake_helper(pp);
                chain_sleep(pp);
            }
            const int stopped = pp->wtaken == pp->wfilled; /* only when stopping */
            const int64_t b = pp->wtaken % pp->sc->nblocks;
            pw_mutex_unlock(&pp->mu);
            if (stopped) { /* the call is being cancelled: finish the row with anything */
                memset(out, 0, (size_t)n * sizeof(uint64_t));
                return;
            }
            s->block = pp->sc->ring + b * PW_WORD_BLOCK;
            s->at = pp->sc->ring_at[b];
            s->pos = 0;
            s->len = PW_WORD_BLOCK;
        }
        const int64_t k = n < s->len - s->pos ? n : s->len - s->pos;
        memcpy(out, s->block + s->pos, (size_t)k * sizeof(uint64_t));
        s->pos += k;
        out += k;
        n -= k;
    }
}

static pw_status run_pipelined(const pw_passes *ps, pw_scratch *sc, pw_seed *seed)
{
    pw_pipe pp;
    memset(&pp, 0, sizeof pp);
    pp.ps = ps;
    pp.sc = sc;
    pp.seed = *seed;
    pp.status = PW_OK;
    set_seed(&pp.g, seed);
    pw_mutex_init(&pp.mu);
    pw_cond_init(&pp.helper_cv);
    pw_cond_init(&pp.chain_cv);
    pw_thread th;
    if (pw_thread_start(&th, helper, &pp) != 0) {
        pw_cond_destroy(&pp.helper_cv);
        pw_cond_destroy(&pp.chain_cv);
        pw_mutex_destroy(&pp.mu);
        return PW_ERR_NOMEM; /* the caller falls back to one thread */
    }
    pw_words src;
    memset(&src, 0, sizeof src);
    src.pipe = &pp;
    set_seed(&src.at, seed);
    pw_status s = PW_OK;
    int64_t seq = 0;
    for (int pass = 0; pass < ps->npasses && s == PW_OK; pass++) {
        const pw_geom G = geometry(ps, pass);
        if (pass == 1 && ps->opt->reseed_each_pass) { /* the stream starts afresh */
            src.block = NULL;
            src.pos = src.len = 0;
            set_seed(&src.at, seed);
        }
        if (G.rows >= 2) {
            pw_range range = {0.0, 0.0};
            for (int64_t r = 0; r < G.rows; r++, seq++) {
                if (r > 0 && cancelled(ps->opt)) {
                    s = PW_ERR_CANCELLED;
                    break;
                }
                pw_mutex_lock(&pp.mu);
                while (!pp.stop && pp.produced <= seq)
                    chain_sleep(&pp);
                const int stopped = pp.produced <= seq;
                pw_mutex_unlock(&pp.mu);
                if (stopped) {
                    s = pp.status;
                    break;
                }
                s = place_row(ps, &G, r, &sc->slot[seq % sc->nslots], &sc->ws, sc->tile, &range, &src);
                if (s != PW_OK)
                    break;
                pw_mutex_lock(&pp.mu);
                pp.consumed = seq + 1;
                /* a helper waiting for a slot is woken once two are free:
                 * it then prepares them at a stretch (one wake, not two) */
                if (sc->nslots - (pp.produced - pp.consumed) >= 2)
                    wake_helper(&pp);
                pw_mutex_unlock(&pp.mu);
            }
        }
        pw_mutex_lock(&pp.mu);
        pp.passes_done = pass + 1;
        wake_helper(&pp);
        pw_mutex_unlock(&pp.mu);
    }
    pw_mutex_lock(&pp.mu);
    stop_all(&pp);
    pw_mutex_unlock(&pp.mu);
    pw_thread_join(&th); /* never return with the helper running */
    if (s == PW_OK && pp.status != PW_OK)
        s = pp.status;
    pw_cond_destroy(&pp.helper_cv);
    pw_cond_destroy(&pp.chain_cv);
    pw_mutex_destroy(&pp.mu);
    if (s != PW_OK)
        return s;
    /* the stream where the chain left it */
    pw_pcg64 g = pp.g;
    if (ps->opt->sampler == PW_SAMPLER_NUMPY) {
        g = src.at;
        for (int64_t k = 0; k < src.pos; k++)
            pw_pcg64_next64(&g);
    }
    get_seed(&g, seed);
    return PW_OK;
}

pw_status pw_run_passes(const pw_passes *ps, pw_seed *seed)
{
    const int threads = ps->opt->threads >= 2 && ps->rows * ps->cols >= PW_THREADS_MIN_NUMEL ? 2 : 1;
    pw_scratch sc;
    pw_status s = scratch_init(&sc, ps, threads);
    if (s != PW_OK)
        return s;
    if (threads >= 2) {
        s = run_pipelined(ps, &sc, seed);
        if (s == PW_ERR_NOMEM) { /* no thread to be had: one thread, same result */
            free(sc.block);
            s = scratch_init(&sc, ps, 1);
            if (s == PW_OK)
                s = run_serial(ps, &sc, seed);
        }
    } else {
        s = run_serial(ps, &sc, seed);
    }
    free(sc.block);
    return s;
}

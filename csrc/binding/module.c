/* parewire._C: the CPython boundary.
 *
 * Each function parses its arguments, borrows the tensor from a DLPack
 * capsule, checks device / dtype / shape / strides, runs one kernel without
 * the GIL, and turns a kernel status into a Python exception.  No policy
 * lives here: seeds, devices and dtype conversions are the Python package's.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <string.h>

#include "../kernels/parewire.h"
#include "dlpack.h"

#if !defined(_WIN32)
#include <pthread.h>
#include <time.h>
#define PW_HAVE_PTHREADS 1
#if defined(__APPLE__) /* no pthread_condattr_setclock */
#define PW_MONOTONIC_WAIT 0
#define PW_WAIT_CLOCK CLOCK_REALTIME
#else
#define PW_MONOTONIC_WAIT 1
#define PW_WAIT_CLOCK CLOCK_MONOTONIC
#endif
#endif

/* Tensors at least this large run in a helper thread while this thread
 * polls for signals, so Ctrl-C interrupts a long rewire (weights intact).
 * Smaller ones run inline: a thread costs more than they take. */
#define PW_INTERRUPT_THRESHOLD ((int64_t)1 << 18)

/* ---------------------------------------------------------------- capsules */

typedef struct {
    PyObject *capsule;
    pw_dl_managed *legacy;
    pw_dl_managed_versioned *versioned;
    pw_tensor tensor;
    int64_t shape[PW_MAX_NDIM];
    int64_t strides[PW_MAX_NDIM];
} borrowed_tensor;

static const char *const narrow_floats[] = {
    "float8_e3m4", "float8_e4m3", "float8_e4m3b11fnuz", "float8_e4m3fn", "float8_e4m3fnuz", "float8_e5m2",
    "float8_e5m2fnuz", "float8_e8m0fnu", "float6_e2m3fn", "float6_e3m2fn", "float4_e2m1fn",
};

static const char *dl_type_name(pw_dl_dtype t, char *buf, size_t n)
{
    const char *base;
    switch (t.code) {
    case PW_DL_INT: base = "int"; break;
    case PW_DL_UINT: base = "uint"; break;
    case PW_DL_FLOAT: base = "float"; break;
    case PW_DL_BFLOAT: base = "bfloat"; break;
    case PW_DL_COMPLEX: base = "complex"; break;
    case PW_DL_BOOL: PyOS_snprintf(buf, n, "bool"); return buf;
    case PW_DL_OPAQUE: PyOS_snprintf(buf, n, "opaque handle"); return buf;
    default:
        /* DLPack 1.1's narrow float formats, codes 7 .. 17 in this order */
        if (t.code >= 7 && t.code < 7 + sizeof narrow_floats / sizeof narrow_floats[0])
            PyOS_snprintf(buf, n, "%s", narrow_floats[t.code - 7]);
        else
            PyOS_snprintf(buf, n, "DLPack type code %u (%u bits)", t.code, t.bits);
        return buf;
    }
    if (t.lanes != 1)
        PyOS_snprintf(buf, n, "%s%ux%u", base, t.bits, t.lanes);
    else
        PyOS_snprintf(buf, n, "%s%u", base, t.bits);
    return buf;
}

/* Borrows the tensor behind a DLPack capsule and checks everything the
 * kernels assume.  On success the capsule is marked used; release_tensor
 * calls the producer's deleter exactly once. */
static int borrow_tensor(PyObject *obj, const char *fn, int writable, borrowed_tensor *bt)
{
    memset(bt, 0, sizeof *bt);
    if (!PyCapsule_CheckExact(obj)) {
        PyErr_Format(PyExc_TypeError, "%s: expected a DLPack capsule (tensor.__dlpack__()), got %.200s",
                     fn, Py_TYPE(obj)->tp_name);
        return -1;
    }
    pw_dl_tensor *dl;
    if (PyCapsule_IsValid(obj, "dltensor_versioned")) {
        bt->versioned = PyCapsule_GetPointer(obj, "dltensor_versioned");
        if (bt->versioned == NULL)
            return -1;
        if (bt->versioned->version.major != PW_DL_MAJOR_VERSION) {
            PyErr_Format(PyExc_ValueError, "%s: DLPack major version %u is not supported (expected %d)",
                         fn, (unsigned)bt->versioned->version.major, PW_DL_MAJOR_VERSION);
            return -1;
        }
        if (writable && (bt->versioned->flags & PW_DL_FLAG_READ_ONLY)) {
            PyErr_Format(PyExc_ValueError, "%s: the tensor is read-only; rewiring writes in place", fn);
            return -1;
        }
        dl = &bt->versioned->dl_tensor;
    } else if (PyCapsule_IsValid(obj, "dltensor")) {
        bt->legacy = PyCapsule_GetPointer(obj, "dltensor");
        if (bt->legacy == NULL)
            return -1;
        dl = &bt->legacy->dl_tensor;
    } else {
        const char *name = PyCapsule_GetName(obj);
        if (name == NULL)
            PyErr_Clear();
        if (name && (strcmp(name, "used_dltensor") == 0 || strcmp(name, "used_dltensor_versioned") == 0))
            PyErr_Format(PyExc_ValueError, "%s: this DLPack capsule was already consumed; "
                         "export the tensor again", fn);
        else
            PyErr_Format(PyExc_ValueError, "%s: not a DLPack capsule (capsule name %.100s)", fn,
                         name ? name : "NULL");
        return -1;
    }

    if (dl->device.device_type != PW_DL_CPU && dl->device.device_type != PW_DL_CUDA_HOST) {
        PyErr_Format(PyExc_ValueError, "%s: the tensor is not in CPU memory (DLPack device type %d); "
                     "parewire's Python functions move device tensors through the host", fn,
                     (int)dl->device.device_type);
        return -1;
    }
    char tname[64];
    pw_dtype dtype;
    if (dl->dtype.lanes != 1)
        goto bad_dtype;
    if (dl->dtype.code == PW_DL_FLOAT && dl->dtype.bits == 32)
        dtype = PW_FLOAT32;
    else if (dl->dtype.code == PW_DL_FLOAT && dl->dtype.bits == 64)
        dtype = PW_FLOAT64;
    else if (dl->dtype.code == PW_DL_FLOAT && dl->dtype.bits == 16)
        dtype = PW_FLOAT16;
    else if (dl->dtype.code == PW_DL_BFLOAT && dl->dtype.bits == 16)
        dtype = PW_BFLOAT16;
    else
        goto bad_dtype;

    if (dl->ndim < 2 || dl->ndim > PW_MAX_NDIM) {
        PyErr_Format(PyExc_ValueError, "%s: needs a tensor with 2 to %d dimensions, got %d", fn, PW_MAX_NDIM,
                     (int)dl->ndim);
        return -1;
    }
    if (dl->shape == NULL) {
        PyErr_Format(PyExc_ValueError, "%s: the DLPack tensor has no shape array", fn);
        return -1;
    }
    const size_t es = pw_dtype_size(dtype);
    int empty = 0;
    for (int d = 0; d < dl->ndim; d++) {
        if (dl->shape[d] < 0) {
            PyErr_Format(PyExc_ValueError, "%s: negative extent %lld in dimension %d", fn,
                         (long long)dl->shape[d], d);
            return -1;
        }
        empty |= dl->shape[d] == 0;
    }
    if (dl->data == NULL && !empty) {
        /* only an empty tensor may have no memory behind it */
        PyErr_Format(PyExc_ValueError, "%s: the DLPack tensor has a NULL data pointer", fn);
        return -1;
    }
    char *data = dl->data ? (char *)dl->data + dl->byte_offset : NULL;
    if (((uintptr_t)data) % es != 0) {
        PyErr_Format(PyExc_ValueError, "%s: the tensor's data is not aligned to its %zu-byte elements", fn, es);
        return -1;
    }
    int64_t contiguous = 1;
    for (int d = dl->ndim - 1; d >= 0; d--) {
        bt->shape[d] = dl->shape[d];
        bt->strides[d] = dl->strides ? dl->strides[d] : contiguous;
        if (dl->shape[d] > 0 && contiguous <= INT64_MAX / dl->shape[d])
            contiguous *= dl->shape[d];
    }
    bt->tensor.data = data;
    bt->tensor.dtype = dtype;
    bt->tensor.ndim = (int)dl->ndim;
    bt->tensor.shape = bt->shape;
    bt->tensor.strides = bt->strides;

    int64_t rows, cols;
    switch (pw_check_tensor(&bt->tensor, writable, &rows, &cols)) {
    case PW_OK: break;
    case PW_ERR_OVERLAP:
        PyErr_Format(PyExc_ValueError, "%s: the tensor's elements overlap in memory (an expanded or "
                     "as_strided view); rewire a .clone() instead", fn);
        return -1;
    default:
        PyErr_Format(PyExc_ValueError, "%s: the tensor's shape or strides overflow 64-bit sizes", fn);
        return -1;
    }

    bt->capsule = obj;
    if (PyCapsule_SetName(obj, bt->versioned ? "used_dltensor_versioned" : "used_dltensor") < 0)
        return -1;
    return 0;

bad_dtype:
    PyErr_Format(PyExc_TypeError, "%s: unsupported dtype %s; parewire rewires float32, float64, "
                 "float16 and bfloat16 tensors", fn, dl_type_name(dl->dtype, tname, sizeof tname));
    return -1;
}

static void release_tensor(borrowed_tensor *bt)
{
    if (bt->legacy && bt->capsule && bt->legacy->deleter)
        bt->legacy->deleter(bt->legacy);
    if (bt->versioned && bt->capsule && bt->versioned->deleter)
        bt->versioned->deleter(bt->versioned);
    bt->legacy = NULL;
    bt->versioned = NULL;
    bt->capsule = NULL;
}

/* ------------------------------------------------------------- kernel run */

typedef struct {
    const pw_tensor *tensor;
    pw_options opt;
    pw_seed seed;
    pw_cancel cancel;
    pw_status status;
#ifdef PW_HAVE_PTHREADS
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
#endif
} rewire_job;

#ifdef PW_HAVE_PTHREADS
static void *rewire_worker(void *arg)
{
    rewire_job *job = arg;
    pw_status s = pw_rewire(job->tensor, &job->opt, &job->seed);
    pthread_mutex_lock(&job->mu);
    job->status = s;
    job->done = 1;
    pthread_cond_signal(&job->cv);
    pthread_mutex_unlock(&job->mu);
    return NULL;
}

/* Runs the kernel in a helper thread; this thread waits without the GIL in
 * short slices and checks for signals between them.  Returns -1 with an
 * exception set when a signal handler raised (the kernel is cancelled and
 * joined first, so the tensor is never left half-written). */
static int run_interruptible(rewire_job *job)
{
    pthread_t th;
    int rc = -1;
    pthread_mutex_init(&job->mu, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
#if PW_MONOTONIC_WAIT
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC); /* a wall-clock step cannot stretch a slice */
#endif
    pthread_cond_init(&job->cv, &attr);
    pthread_condattr_destroy(&attr);
    job->done = 0;
    if (pthread_create(&th, NULL, rewire_worker, job) != 0) {
        Py_BEGIN_ALLOW_THREADS
        job->status = pw_rewire(job->tensor, &job->opt, &job->seed);
        Py_END_ALLOW_THREADS
        rc = 0;
        goto out;
    }
    for (;;) {
        int finished;
        Py_BEGIN_ALLOW_THREADS
        struct timespec until;
        clock_gettime(PW_WAIT_CLOCK, &until);
        until.tv_nsec += 50 * 1000 * 1000;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec += 1;
            until.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&job->mu);
        if (!job->done)
            pthread_cond_timedwait(&job->cv, &job->mu, &until);
        finished = job->done;
        pthread_mutex_unlock(&job->mu);
        Py_END_ALLOW_THREADS
        if (finished)
            break;
        if (PyErr_CheckSignals() < 0) {
            pw_cancel_set(&job->cancel);
            Py_BEGIN_ALLOW_THREADS
            pthread_join(th, NULL);
            Py_END_ALLOW_THREADS
            goto out;
        }
    }
    pthread_join(th, NULL);
    rc = 0;
out:
    pthread_cond_destroy(&job->cv);
    pthread_mutex_destroy(&job->mu);
    return rc;
}
#endif

static int64_t numel_of(const pw_tensor *t)
{
    int64_t n = 1;
    for (int d = 0; d < t->ndim; d++)
        n *= t->shape[d];
    return n;
}

static int raise_status(pw_status s, const char *fn)
{
    switch (s) {
    case PW_OK: return 0;
    case PW_ERR_NOMEM: PyErr_Format(PyExc_MemoryError, "%s: out of memory for the scratch copy", fn); break;
    case PW_ERR_NONFINITE:
        PyErr_Format(PyExc_ValueError, "%s: the tensor contains NaN or infinite values; rewiring needs "
                     "finite weights", fn);
        break;
    case PW_ERR_OVERFLOW:
        PyErr_Format(PyExc_ValueError, "%s: neuron strengths overflow float64 (weights too large)", fn);
        break;
    case PW_ERR_CANCELLED: PyErr_Format(PyExc_KeyboardInterrupt, "%s: interrupted", fn); break;
    case PW_ERR_SHAPE:
        PyErr_Format(PyExc_ValueError, "%s: rows and columns are limited to 2**32 - 1 elements", fn);
        break;
    case PW_ERR_OVERLAP: PyErr_Format(PyExc_ValueError, "%s: the tensor's elements overlap", fn); break;
    case PW_ERR_ARGUMENT: PyErr_Format(PyExc_ValueError, "%s: invalid argument", fn); break;
    }
    return -1;
}

static int parse_u64(PyObject *o, uint64_t *out, const char *fn)
{
    if (!PyLong_Check(o)) {
        PyErr_Format(PyExc_TypeError, "%s: seed words must be ints, got %.200s", fn, Py_TYPE(o)->tp_name);
        return -1;
    }
    unsigned long long v = PyLong_AsUnsignedLongLong(o);
    if (v == (unsigned long long)-1 && PyErr_Occurred()) {
        PyErr_Format(PyExc_OverflowError, "%s: seed words must be in [0, 2**64)", fn);
        return -1;
    }
    *out = (uint64_t)v;
    return 0;
}

/* ---------------------------------------------------------------- methods */

PyDoc_STRVAR(rewire_doc,
"rewire(capsule, seed, passes=2, sampler=SAMPLER_NUMPY, reseed=True, *, threads=1) -> seed\n\n"
"Rewire the tensor behind a DLPack capsule in place. seed is the PCG64 state\n"
"as four 64-bit words (state_hi, state_lo, inc_hi, inc_lo); the state after\n"
"the last pass is returned in the same form. passes=2 runs rows then columns\n"
"(PA rewiring); passes=1 rows only. reseed=True starts every pass from seed.\n"
"threads: threads the kernel may use (at least 1; from THREADS_MIN_NUMEL\n"
"elements on, 2 or more run a helper thread); the result does not depend on it.");

static PyObject *pw_py_rewire(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static const char *fn = "parewire._C.rewire";
    static char *kwlist[] = {"capsule", "seed", "passes", "sampler", "reseed", "threads", NULL};
    PyObject *capsule, *seed_obj;
    int passes = 2, sampler = PW_SAMPLER_NUMPY, reseed = 1, threads = 1;
    (void)self;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OO|iip$i:rewire", kwlist, &capsule, &seed_obj, &passes,
                                     &sampler, &reseed, &threads))
        return NULL;
    if (threads < 1)
        return PyErr_Format(PyExc_ValueError, "%s: threads must be at least 1, got %d", fn, threads);
    if (passes != 1 && passes != 2)
        return PyErr_Format(PyExc_ValueError, "%s: passes must be 1 or 2, got %d", fn, passes);
    if (sampler != PW_SAMPLER_NUMPY && sampler != PW_SAMPLER_FAST)
        return PyErr_Format(PyExc_ValueError, "%s: unknown sampler code %d", fn, sampler);
    if (!PyTuple_Check(seed_obj) || PyTuple_GET_SIZE(seed_obj) != 4)
        return PyErr_Format(PyExc_TypeError, "%s: seed must be a tuple of four 64-bit ints", fn);
    uint64_t w[4];
    for (int i = 0; i < 4; i++)
        if (parse_u64(PyTuple_GET_ITEM(seed_obj, i), &w[i], fn) < 0)
            return NULL;

    borrowed_tensor bt;
    if (borrow_tensor(capsule, fn, 1, &bt) < 0)
        return NULL;
    rewire_job job;
    memset(&job, 0, sizeof job);
    job.tensor = &bt.tensor;
    job.opt.passes = passes;
    job.opt.sampler = (pw_sampler)sampler;
    job.opt.reseed_each_pass = reseed;
    pw_cancel_init(&job.cancel);
    job.opt.cancel = &job.cancel;
    job.opt.threads = threads;
    job.seed.state_hi = w[0];
    job.seed.state_lo = w[1];
    job.seed.inc_hi = w[2];
    job.seed.inc_lo = w[3];

    int interrupted = 0;
#ifdef PW_HAVE_PTHREADS
    if (numel_of(&bt.tensor) >= PW_INTERRUPT_THRESHOLD)
        interrupted = run_interruptible(&job) < 0;
    else
#endif
    {
        Py_BEGIN_ALLOW_THREADS
        job.status = pw_rewire(job.tensor, &job.opt, &job.seed);
        Py_END_ALLOW_THREADS
    }
    release_tensor(&bt);
    if (interrupted)
        return NULL;
    if (raise_status(job.status, fn) < 0)
        return NULL;
    return Py_BuildValue("(KKKK)", (unsigned long long)job.seed.state_hi,
                         (unsigned long long)job.seed.state_lo, (unsigned long long)job.seed.inc_hi,
                         (unsigned long long)job.seed.inc_lo);
}

PyDoc_STRVAR(strength_stats_doc,
"strength_stats(capsule, sums=False) -> (rows, cols, row_mean, row_var, col_mean, col_var)\n\n"
"Row and column sums of the tensor viewed as (size(0), numel / size(0)), in\n"
"float64: their means and unbiased variances (NaN for a single value).\n"
"sums=True appends the row sums and the column sums themselves, as bytes of\n"
"native float64.");

static PyObject *pw_py_strength_stats(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static const char *fn = "parewire._C.strength_stats";
    static char *kwlist[] = {"capsule", "sums", NULL};
    PyObject *capsule, *row_bytes = NULL, *col_bytes = NULL, *result = NULL;
    int want_sums = 0;
    (void)self;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|p:strength_stats", kwlist, &capsule, &want_sums))
        return NULL;
    borrowed_tensor bt;
    if (borrow_tensor(capsule, fn, 0, &bt) < 0)
        return NULL;
    int64_t rows, cols;
    pw_stats st;
    pw_status s = pw_check_tensor(&bt.tensor, 0, &rows, &cols);
    if (s == PW_OK && want_sums) {
        if ((uint64_t)rows > (uint64_t)PY_SSIZE_T_MAX / 8 || (uint64_t)cols > (uint64_t)PY_SSIZE_T_MAX / 8) {
            PyErr_Format(PyExc_MemoryError, "%s: too many rows or columns for their sums", fn);
            goto error;
        }
        row_bytes = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)rows * 8);
        col_bytes = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)cols * 8);
        if (row_bytes == NULL || col_bytes == NULL)
            goto error;
    }
    if (s == PW_OK) {
        double *rs = row_bytes ? (double *)PyBytes_AS_STRING(row_bytes) : NULL;
        double *cs = col_bytes ? (double *)PyBytes_AS_STRING(col_bytes) : NULL;
        Py_BEGIN_ALLOW_THREADS
        s = pw_strength_sums(&bt.tensor, rs, cs, &st);
        Py_END_ALLOW_THREADS
    }
    if (raise_status(s, fn) < 0)
        goto error;
    if (want_sums)
        result = Py_BuildValue("(LLddddOO)", (long long)st.rows, (long long)st.cols, st.row_mean, st.row_var,
                               st.col_mean, st.col_var, row_bytes, col_bytes);
    else
        result = Py_BuildValue("(LLdddd)", (long long)st.rows, (long long)st.cols, st.row_mean, st.row_var,
                               st.col_mean, st.col_var);
error:
    release_tensor(&bt);
    Py_XDECREF(row_bytes);
    Py_XDECREF(col_bytes);
    return result;
}

PyDoc_STRVAR(simd_variant_doc,
"simd_variant(name=None) -> str\n\n"
"The SIMD variant of the kernels' hot loops that calls use (every variant\n"
"gives the same bits). name: one of simd_variants() to use from now on in\n"
"this process, \"auto\" for the automatic choice (the PAREWIRE_SIMD\n"
"environment variable if it names one, else the best this CPU runs), or\n"
"None to only ask. Returns the variant in use.");

static PyObject *pw_py_simd_variant(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"name", NULL};
    const char *name = NULL;
    (void)self;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|z:simd_variant", kwlist, &name))
        return NULL;
    if (name && pw_simd_select(strcmp(name, "auto") == 0 ? NULL : name) != PW_OK)
        return PyErr_Format(PyExc_ValueError, "parewire._C.simd_variant: unknown or unsupported variant '%.100s' "
                            "(see simd_variants())", name);
    return PyUnicode_FromString(pw_simd_selected());
}

PyDoc_STRVAR(simd_variants_doc,
"simd_variants() -> tuple of str\n\n"
"The SIMD variants this build and CPU can run, \"portable\" first, the best last.");

static PyObject *pw_py_simd_variants(PyObject *self, PyObject *noargs)
{
    (void)self;
    (void)noargs;
    const char *const *names = pw_simd_variants();
    Py_ssize_t n = 0;
    while (names[n])
        n++;
    PyObject *out = PyTuple_New(n);
    for (Py_ssize_t i = 0; out && i < n; i++) {
        PyObject *s = PyUnicode_FromString(names[i]);
        if (s == NULL || PyTuple_SetItem(out, i, s) < 0) {
            Py_CLEAR(out);
            break;
        }
    }
    return out;
}

static PyMethodDef pw_methods[] = {
    {"rewire", (PyCFunction)(void (*)(void))pw_py_rewire, METH_VARARGS | METH_KEYWORDS, rewire_doc},
    {"simd_variant", (PyCFunction)(void (*)(void))pw_py_simd_variant, METH_VARARGS | METH_KEYWORDS,
     simd_variant_doc},
    {"simd_variants", pw_py_simd_variants, METH_NOARGS, simd_variants_doc},
    {"strength_stats", (PyCFunction)(void (*)(void))pw_py_strength_stats, METH_VARARGS | METH_KEYWORDS,
     strength_stats_doc},
    {NULL, NULL, 0, NULL},
};

static int pw_exec(PyObject *m)
{
    if (PyModule_AddIntConstant(m, "SAMPLER_NUMPY", PW_SAMPLER_NUMPY) < 0 ||
        PyModule_AddIntConstant(m, "SAMPLER_FAST", PW_SAMPLER_FAST) < 0 ||
        PyModule_AddIntConstant(m, "MAX_NDIM", PW_MAX_NDIM) < 0 ||
        PyModule_AddIntConstant(m, "INTERRUPT_THRESHOLD", (long)PW_INTERRUPT_THRESHOLD) < 0 ||
        PyModule_AddIntConstant(m, "THREADS_MIN_NUMEL", (long)PW_THREADS_MIN_NUMEL) < 0)
        return -1;
    return 0;
}

static PyModuleDef_Slot pw_slots[] = {
    {Py_mod_exec, (void *)pw_exec},
#ifdef Py_mod_multiple_interpreters
    {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
#endif
#ifdef Py_mod_gil
    {Py_mod_gil, Py_MOD_GIL_NOT_USED},
#endif
    {0, NULL},
};

static struct PyModuleDef pw_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "parewire._C",
    .m_doc = "C kernels for preferential-attachment rewiring (see the parewire package).",
    .m_size = 0,
    .m_methods = pw_methods,
    .m_slots = pw_slots,
};

PyMODINIT_FUNC PyInit__C(void) { return PyModuleDef_Init(&pw_module); }

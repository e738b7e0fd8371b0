/* parewire._C: the CPython boundary.
 *
 * Each function parses its arguments, borrows the tensor from a DLPack
 * capsule, checks device / dtype / shape / strides, makes one kernel call
 * through runner.c (which owns threads, signals and cancellation), and turns
 * a kernel status into a Python exception.  No policy lives here: seeds,
 * devices and dtype conversions are the Python package's.
 *
 * Only the limited API (Py_LIMITED_API = 3.9, set by setup.py) is used, so
 * one abi3 build serves every CPython from 3.9 on; free-threaded builds,
 * which have no limited API, compile the same code against the full API.
 */
#include "runner.h"

#include <stdint.h>
#include <string.h>

#include "dlpack.h"

/* ---------------------------------------------------------------- capsules */

typedef struct {
    PyObject *capsule;
    pw_dl_managed *legacy;
    pw_dl_managed_versioned *versioned;
    pw_tensor tensor;
    pw_view view; /* the tensor as the kernels checked it, once: 2-D extents and all */
    int64_t shape[PW_MAX_NDIM];
    int64_t strides[PW_MAX_NDIM];
} borrowed_tensor;

typedef struct {
    PyObject *cancel_flag_type;
} module_state;

/* "fn: what, got <type name>" as a TypeError (tp_name is not in the limited API). */
static void *type_error(const char *fn, const char *what, PyObject *got)
{
    PyObject *name = PyObject_GetAttrString((PyObject *)Py_TYPE(got), "__name__");
    if (name != NULL) {
        PyErr_Format(PyExc_TypeError, "%s: %s, got %U", fn, what, name);
        Py_DECREF(name);
    }
    return NULL;
}

static const char *const narrow_floats[] = {
    "float8_e3m4",     "float8_e4m3",   "float8_e4m3b11fnuz", "float8_e4m3fn",
    "float8_e4m3fnuz", "float8_e5m2",   "float8_e5m2fnuz",    "float8_e8m0fnu",
    "float6_e2m3fn",   "float6_e3m2fn", "float4_e2m1fn",
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
        type_error(fn, "expected a DLPack capsule (tensor.__dlpack__())", obj);
        return -1;
    }
    pw_dl_tensor *dl;
    if (PyCapsule_IsValid(obj, "dltensor_versioned")) {
        bt->versioned = PyCapsule_GetPointer(obj, "dltensor_versioned");
        if (bt->versioned == NULL)
            return -1;
        if (bt->versioned->version.major != PW_DL_MAJOR_VERSION) {
            PyErr_Format(PyExc_ValueError, "%s: DLPack major version %u is not supported (expected %d)", fn,
                         (unsigned)bt->versioned->version.major, PW_DL_MAJOR_VERSION);
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
            PyErr_Format(PyExc_ValueError,
                         "%s: this DLPack capsule was already consumed; "
                         "export the tensor again",
                         fn);
        else
            PyErr_Format(PyExc_ValueError, "%s: not a DLPack capsule (capsule name %.100s)", fn,
                         name ? name : "NULL");
        return -1;
    }

    if (dl->device.device_type != PW_DL_CPU && dl->device.device_type != PW_DL_CUDA_HOST) {
        PyErr_Format(PyExc_ValueError,
                     "%s: the tensor is not in CPU memory (DLPack device type %d); "
                     "parewire's Python functions move device tensors through the host",
                     fn, (int)dl->device.device_type);
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
        PyErr_Format(PyExc_ValueError, "%s: the tensor's data is not aligned to its %zu-byte elements", fn,
                     es);
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

    switch (pw_view_init(&bt->view, &bt->tensor, writable)) {
    case PW_OK: break;
    case PW_ERR_OVERLAP:
        PyErr_Format(PyExc_ValueError,
                     "%s: the tensor's elements overlap in memory (an expanded or "
                     "as_strided view); rewire a .clone() instead",
                     fn);
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
    PyErr_Format(PyExc_TypeError,
                 "%s: unsupported dtype %s; parewire rewires float32, float64, "
                 "float16 and bfloat16 tensors",
                 fn, dl_type_name(dl->dtype, tname, sizeof tname));
    return -1;
}

/* Calls the producer's deleter once.  A deleter may run Python code (a
 * ctypes callback, a refcount reaching zero), which must not see the
 * exception this call may be raising: it is set aside meanwhile. */
#if PY_VERSION_HEX < 0x030C0000 || (defined(Py_LIMITED_API) && Py_LIMITED_API + 0 < 0x030C0000)
#define PW_USE_ERR_FETCH 1 /* PyErr_GetRaisedException is 3.12+ */
#endif

static void release_tensor(borrowed_tensor *bt)
{
    if (bt->capsule == NULL)
        return;
#ifdef PW_USE_ERR_FETCH
    PyObject *type, *value, *traceback;
    PyErr_Fetch(&type, &value, &traceback);
#else
    PyObject *raised = PyErr_GetRaisedException();
#endif
    if (bt->legacy && bt->legacy->deleter)
        bt->legacy->deleter(bt->legacy);
    if (bt->versioned && bt->versioned->deleter)
        bt->versioned->deleter(bt->versioned);
#ifdef PW_USE_ERR_FETCH
    PyErr_Restore(type, value, traceback);
#else
    PyErr_SetRaisedException(raised);
#endif
    bt->legacy = NULL;
    bt->versioned = NULL;
    bt->capsule = NULL;
}

static int raise_status(pw_status s, const char *fn)
{
    switch (s) {
    case PW_OK: return 0;
    case PW_ERR_NOMEM: PyErr_Format(PyExc_MemoryError, "%s: out of memory for the scratch copy", fn); break;
    case PW_ERR_NONFINITE:
        PyErr_Format(PyExc_ValueError,
                     "%s: the tensor contains NaN or infinite values; rewiring needs "
                     "finite weights",
                     fn);
        break;
    case PW_ERR_OVERFLOW:
        PyErr_Format(PyExc_ValueError, "%s: neuron strengths overflow float64 (weights too large)", fn);
        break;
    case PW_ERR_CANCELLED: /* a signal caught by the runner raises the handler's exception instead */
        PyErr_Format(PyExc_KeyboardInterrupt, "%s: cancelled by its CancelFlag; the tensor is unchanged", fn);
        break;
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
        type_error(fn, "seed words must be ints", o);
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
             "rewire(capsule, seed, passes=2, sampler=0, reseed=True, *, cancel=None, threads=1)\n--\n\n"
             "Rewire the tensor behind a DLPack capsule in place.\n\n"
             "Args:\n"
             "    capsule: DLPack capsule of a CPU tensor (float32, float64, float16 or\n"
             "        bfloat16; 2 to MAX_NDIM dimensions; elements must not overlap).\n"
             "        The call consumes it.\n"
             "    seed: the PCG64 state as four 64-bit words\n"
             "        (state_hi, state_lo, inc_hi, inc_lo).\n"
             "    passes: 2 runs rows then columns (PA rewiring); 1 rows only.\n"
             "    sampler: SAMPLER_NUMPY or SAMPLER_FAST.\n"
             "    reseed: True starts every pass from seed; False lets the column pass\n"
             "        continue the row pass's stream.\n"
             "    cancel: a CancelFlag shared with other calls, or None (the call then\n"
             "        uses a private one).\n"
             "    threads: threads the kernel may use (at least 1); the result does not\n"
             "        depend on it.\n\n"
             "Returns:\n"
             "    The stream state after the last pass, as four words like seed.\n\n"
             "Raises:\n"
             "    KeyboardInterrupt: cancel was set, before or during the call; the\n"
             "        tensor is unchanged.\n\n"
             "Note:\n"
             "    Cancellation. The kernel reads its flag between rows, so flag.set()\n"
             "    from any thread stops every call sharing that flag within one row,\n"
             "    each raising KeyboardInterrupt with its tensor unchanged; a flag set\n"
             "    before the call stops it before it starts. A call made on the main\n"
             "    thread with a tensor of at least INTERRUPT_THRESHOLD elements (POSIX)\n"
             "    also answers signals: the kernel runs in a helper thread while the\n"
             "    main thread polls every 50 ms; when a signal handler raises (Ctrl-C),\n"
             "    the call sets the flag (the given one, so other calls sharing it stop\n"
             "    too), waits for the kernel and raises the handler's exception, tensor\n"
             "    unchanged. Other calls answer signals only after they return.\n\n"
             "    A finished kernel is never undone: an interrupt that arrives after it\n"
             "    has finished leaves the call to return normally, tensor rewired, and\n"
             "    Python raises KeyboardInterrupt right after the call. Callers that\n"
             "    need all or nothing over several tensors keep copies to restore.\n\n"
             "    With a thread pool: create one flag per batch, pass it to every call,\n"
             "    and on KeyboardInterrupt in the waiting thread call flag.set(), wait\n"
             "    for every call to end (each within one row), restore, re-raise.");

static PyObject *pw_py_rewire(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static const char *fn = "parewire._C.rewire";
    static char *kwlist[] = {"capsule", "seed", "passes", "sampler", "reseed", "cancel", "threads", NULL};
    PyObject *capsule, *seed_obj, *cancel_obj = Py_None;
    int passes = 2, sampler = PW_SAMPLER_NUMPY, reseed = 1, threads = 1;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OO|iip$Oi:rewire", kwlist, &capsule, &seed_obj, &passes,
                                     &sampler, &reseed, &cancel_obj, &threads))
        return NULL;
    if (threads < 1)
        return PyErr_Format(PyExc_ValueError, "%s: threads must be at least 1, got %d", fn, threads);
    if (passes != 1 && passes != 2)
        return PyErr_Format(PyExc_ValueError, "%s: passes must be 1 or 2, got %d", fn, passes);
    if (sampler != PW_SAMPLER_NUMPY && sampler != PW_SAMPLER_FAST)
        return PyErr_Format(PyExc_ValueError, "%s: unknown sampler code %d", fn, sampler);
    if (!PyTuple_Check(seed_obj) || PyTuple_Size(seed_obj) != 4)
        return PyErr_Format(PyExc_TypeError, "%s: seed must be a tuple of four 64-bit ints", fn);
    uint64_t w[4];
    for (int i = 0; i < 4; i++)
        if (parse_u64(PyTuple_GetItem(seed_obj, i), &w[i], fn) < 0)
            return NULL;
    pw_cancel own_cancel;
    pw_cancel_init(&own_cancel);
    pw_cancel *cancel = &own_cancel;
    if (cancel_obj != Py_None) {
        module_state *st = PyModule_GetState(self);
        if (!PyObject_TypeCheck(cancel_obj, (PyTypeObject *)st->cancel_flag_type))
            return type_error(fn, "cancel must be a parewire._C.CancelFlag or None", cancel_obj);
        cancel = pw_cancel_flag_get(cancel_obj); /* alive: the args tuple holds it */
    }

    borrowed_tensor bt;
    if (borrow_tensor(capsule, fn, 1, &bt) < 0)
        return NULL;
    const pw_options opt = {.passes = passes,
                            .sampler = (pw_sampler)sampler,
                            .reseed_each_pass = reseed,
                            .cancel = cancel,
                            .threads = threads};
    pw_seed seed = {.state_hi = w[0], .state_lo = w[1], .inc_hi = w[2], .inc_lo = w[3]};
    pw_status status;
    const int rc = pw_run_rewire(&bt.view, &opt, &seed, &status);
    release_tensor(&bt);
    if (rc < 0)
        return NULL;
    if (raise_status(status, fn) < 0)
        return NULL;
    return Py_BuildValue("(KKKK)", (unsigned long long)seed.state_hi, (unsigned long long)seed.state_lo,
                         (unsigned long long)seed.inc_hi, (unsigned long long)seed.inc_lo);
}

/* An uninitialised bytes object for n float64 sums; n * 8 cannot overflow. */
static PyObject *sums_buffer(int64_t n, const char *fn)
{
    if (n > (int64_t)(PY_SSIZE_T_MAX / (Py_ssize_t)sizeof(double)))
        return PyErr_Format(PyExc_MemoryError, "%s: %lld sums do not fit in memory", fn, (long long)n);
    return PyBytes_FromStringAndSize(NULL, (Py_ssize_t)n * (Py_ssize_t)sizeof(double));
}

PyDoc_STRVAR(strength_stats_doc,
             "strength_stats(capsule, sums=False)\n--\n\n"
             "Strength statistics of the tensor viewed as (size(0), numel / size(0)).\n\n"
             "Returns:\n"
             "    (rows, cols, row_mean, row_var, col_mean, col_var): the row and column\n"
             "    sums, in float64, by their means and unbiased variances (NaN for the\n"
             "    variance of a single value, and for the mean of none). sums=True\n"
             "    appends the row sums and the column sums themselves as bytes of native\n"
             "    float64 (rows * 8 and cols * 8 bytes; the sums over no element are 0).\n"
             "    The capsule is consumed; the tensor may be read-only.");

static PyObject *pw_py_strength_stats(PyObject *Py_UNUSED(self), PyObject *args, PyObject *kwargs)
{
    static const char *fn = "parewire._C.strength_stats";
    static char *kwlist[] = {"capsule", "sums", NULL};
    PyObject *capsule, *row_bytes = NULL, *col_bytes = NULL, *result = NULL;
    int want_sums = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|p:strength_stats", kwlist, &capsule, &want_sums))
        return NULL;
    borrowed_tensor bt;
    if (borrow_tensor(capsule, fn, 0, &bt) < 0)
        return NULL;
    double *row_sums = NULL, *col_sums = NULL;
    if (want_sums) {
        if ((row_bytes = sums_buffer(bt.view.rows, fn)) == NULL ||
            (col_bytes = sums_buffer(bt.view.cols, fn)) == NULL)
            goto error;
        if ((row_sums = (double *)PyBytes_AsString(row_bytes)) == NULL ||
            (col_sums = (double *)PyBytes_AsString(col_bytes)) == NULL)
            goto error;
    }
    pw_stats st;
    pw_status s;
    Py_BEGIN_ALLOW_THREADS
    s = pw_strength_sums_view(&bt.view, row_sums, col_sums, &st);
    Py_END_ALLOW_THREADS
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

PyDoc_STRVAR(simd_variant_doc, "simd_variant($module, /, name=None)\n--\n\n"
                               "The SIMD variant of the kernels' hot loops that calls use (every variant\n"
                               "gives the same bits). name: one of simd_variants() to use from now on in\n"
                               "this process, \"auto\" for the automatic choice (the PAREWIRE_SIMD\n"
                               "environment variable if it names one, else the best this CPU runs), or\n"
                               "None to only ask. Returns the variant in use.");

static PyObject *pw_py_simd_variant(PyObject *Py_UNUSED(self), PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"name", NULL};
    const char *name = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|z:simd_variant", kwlist, &name))
        return NULL;
    if (name && pw_simd_select(strcmp(name, "auto") == 0 ? NULL : name) != PW_OK)
        return PyErr_Format(PyExc_ValueError,
                            "parewire._C.simd_variant: unknown or unsupported variant '%.100s' "
                            "(see simd_variants())",
                            name);
    return PyUnicode_FromString(pw_simd_selected());
}

PyDoc_STRVAR(simd_variants_doc,
             "simd_variants($module, /)\n--\n\n"
             "The SIMD variants this build and CPU can run, \"portable\" first, the best last.");

static PyObject *pw_py_simd_variants(PyObject *Py_UNUSED(self), PyObject *Py_UNUSED(noargs))
{
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
    module_state *st = PyModule_GetState(m);
    st->cancel_flag_type = pw_cancel_flag_type();
    if (st->cancel_flag_type == NULL)
        return -1;
    Py_INCREF(st->cancel_flag_type); /* PyModule_AddObject steals one reference on success */
    if (PyModule_AddObject(m, "CancelFlag", st->cancel_flag_type) < 0) {
        Py_DECREF(st->cancel_flag_type);
        return -1;
    }
    if (PyModule_AddIntConstant(m, "SAMPLER_NUMPY", PW_SAMPLER_NUMPY) < 0 ||
        PyModule_AddIntConstant(m, "SAMPLER_FAST", PW_SAMPLER_FAST) < 0 ||
        PyModule_AddIntConstant(m, "MAX_NDIM", PW_MAX_NDIM) < 0 ||
        PyModule_AddIntConstant(m, "INTERRUPT_THRESHOLD", (long)PW_INTERRUPT_THRESHOLD) < 0 ||
        PyModule_AddIntConstant(m, "THREADS_MIN_NUMEL", (long)PW_THREADS_MIN_NUMEL) < 0)
        return -1;
    return 0;
}

static int pw_traverse(PyObject *m, visitproc visit, void *arg)
{
    module_state *st = PyModule_GetState(m);
    if (st != NULL)
        Py_VISIT(st->cancel_flag_type);
    return 0;
}

static int pw_clear(PyObject *m)
{
    module_state *st = PyModule_GetState(m);
    if (st != NULL)
        Py_CLEAR(st->cancel_flag_type);
    return 0;
}

static void pw_free(void *m) { pw_clear((PyObject *)m); }

static PyModuleDef_Slot pw_slots[] = {
    {Py_mod_exec, (void *)pw_exec},
#ifdef Py_mod_multiple_interpreters /* full API 3.12+: module state, no globals */
    {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
#endif
#ifdef Py_mod_gil /* full API 3.13+ (free-threaded builds): no state needs the GIL */
    {Py_mod_gil, Py_MOD_GIL_NOT_USED},
#endif
    {0, NULL},
};

static struct PyModuleDef pw_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "parewire._C",
    .m_doc = "C kernels for preferential-attachment rewiring (see the parewire package).",
    .m_size = sizeof(module_state),
    .m_methods = pw_methods,
    .m_slots = pw_slots,
    .m_traverse = pw_traverse,
    .m_clear = pw_clear,
    .m_free = pw_free,
};

PyMODINIT_FUNC PyInit__C(void) { return PyModuleDef_Init(&pw_module); }

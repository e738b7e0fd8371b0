/* Threads, signals and cancellation for parewire._C (see runner.h). */
#include "runner.h"

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

/* ------------------------------------------------------------- CancelFlag */

typedef struct {
    PyObject ob_base; /* PyObject_HEAD */
    pw_cancel cancel;
} cancel_flag;

PyDoc_STRVAR(cancel_flag_doc, "CancelFlag()\n--\n\n"
                              "A cancellation request that kernels read between rows.\n\n"
                              "Pass one flag as rewire(..., cancel=flag) to any number of calls, on any\n"
                              "threads; flag.set() from any thread makes each of them stop within one row\n"
                              "and raise KeyboardInterrupt with its tensor unchanged.  A flag stays set:\n"
                              "use a new one for the next batch of calls.");

static PyObject *cancel_flag_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, ":CancelFlag", kwlist))
        return NULL;
    allocfunc alloc = (allocfunc)PyType_GetSlot(type, Py_tp_alloc);
    cancel_flag *self = (cancel_flag *)alloc(type, 0);
    if (self == NULL)
        return NULL;
    pw_cancel_init(&self->cancel);
    return (PyObject *)self;
}

static void cancel_flag_dealloc(PyObject *self)
{
    PyTypeObject *type = Py_TYPE(self);
    freefunc free_object = (freefunc)PyType_GetSlot(type, Py_tp_free);
    free_object(self);
    Py_DECREF(type); /* instances of a heap type own a reference to it */
}

static PyObject *cancel_flag_set(PyObject *self, PyObject *Py_UNUSED(noargs))
{
    pw_cancel_set(&((cancel_flag *)self)->cancel);
    Py_RETURN_NONE;
}

static PyObject *cancel_flag_is_set(PyObject *self, PyObject *Py_UNUSED(noargs))
{
    return PyBool_FromLong(pw_cancel_requested(&((cancel_flag *)self)->cancel));
}

static PyObject *cancel_flag_repr(PyObject *self)
{
    return PyUnicode_FromFormat("<parewire._C.CancelFlag %s>",
                                pw_cancel_requested(&((cancel_flag *)self)->cancel) ? "set" : "clear");
}

static PyMethodDef cancel_flag_methods[] = {
    {"set", cancel_flag_set, METH_NOARGS, "set($self, /)\n--\n\nAsk every kernel reading this flag to stop."},
    {"is_set", cancel_flag_is_set, METH_NOARGS, "is_set($self, /)\n--\n\nWhether set() was called."},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot cancel_flag_slots[] = {
    {Py_tp_doc, (void *)cancel_flag_doc},         {Py_tp_new, (void *)cancel_flag_new},
    {Py_tp_dealloc, (void *)cancel_flag_dealloc}, {Py_tp_repr, (void *)cancel_flag_repr},
    {Py_tp_methods, cancel_flag_methods},         {0, NULL},
};

static PyType_Spec cancel_flag_spec = {
    .name = "parewire._C.CancelFlag",
    .basicsize = sizeof(cancel_flag),
    .itemsize = 0,
    .flags = Py_TPFLAGS_DEFAULT, /* not a base type: the kernels read the exact layout */
    .slots = cancel_flag_slots,
};

PyObject *pw_cancel_flag_type(void) { return PyType_FromSpec(&cancel_flag_spec); }

pw_cancel *pw_cancel_flag_get(PyObject *obj) { return &((cancel_flag *)obj)->cancel; }

/* ------------------------------------------------------------- the runner */

#ifdef PW_HAVE_PTHREADS
typedef struct {
    const pw_view *view;
    const pw_options *opt;
    pw_seed *seed;
    pw_status status;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
} rewire_job;

static void *rewire_worker(void *arg)
{
    rewire_job *job = arg;
    pw_status s = pw_rewire_view(job->view, job->opt, job->seed);
    pthread_mutex_lock(&job->mu);
    job->status = s;
    job->done = 1;
    pthread_cond_signal(&job->cv);
    pthread_mutex_unlock(&job->mu);
    return NULL;
}

/* Waits up to 50 ms for the worker; returns whether it has finished. */
static int wait_a_slice(rewire_job *job)
{
    struct timespec until;
    clock_gettime(PW_WAIT_CLOCK, &until);
    until.tv_nsec += 50000000L; /* 50 ms */
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec += 1;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&job->mu);
    if (!job->done)
        pthread_cond_timedwait(&job->cv, &job->mu, &until);
    const int finished = job->done;
    pthread_mutex_unlock(&job->mu);
    return finished;
}

/* The kernel runs in a helper thread; this thread waits without the GIL in
 * short slices and checks for signals between them.  A kernel that has
 * finished is never undone: its result stands, and a signal that arrived
 * meanwhile is raised by the interpreter after this call returns. */
static int run_polling(rewire_job *job)
{
    pthread_t th;
    int rc = 0;
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
        job->status = pw_rewire_view(job->view, job->opt, job->seed);
        Py_END_ALLOW_THREADS
        goto out;
    }
    for (;;) {
        int finished;
        Py_BEGIN_ALLOW_THREADS
        finished = wait_a_slice(job);
        Py_END_ALLOW_THREADS
        if (finished)
            break;
        if (PyErr_CheckSignals() < 0) {
            pw_cancel_set(job->opt->cancel);
            rc = -1;
            break;
        }
    }
    Py_BEGIN_ALLOW_THREADS
    pthread_join(th, NULL); /* after a cancel: within one row */
    Py_END_ALLOW_THREADS
out:
    pthread_cond_destroy(&job->cv);
    pthread_mutex_destroy(&job->mu);
    return rc;
}

/* 1 on the interpreter's main thread (the one Python runs signal handlers
 * on), 0 elsewhere, -1 with an exception set. */
static int on_main_thread(void)
{
    PyObject *threading = PyImport_ImportModule("threading");
    if (threading == NULL)
        return -1;
    PyObject *main_thread = PyObject_CallMethod(threading, "main_thread", NULL);
    Py_DECREF(threading);
    if (main_thread == NULL)
        return -1;
    PyObject *ident = PyObject_GetAttrString(main_thread, "ident");
    Py_DECREF(main_thread);
    if (ident == NULL)
        return -1;
    const unsigned long id = PyLong_AsUnsignedLong(ident);
    Py_DECREF(ident);
    if (id == (unsigned long)-1 && PyErr_Occurred())
        return -1;
    return id == PyThread_get_thread_ident();
}
#endif

int pw_run_rewire(const pw_view *v, const pw_options *opt, pw_seed *seed, pw_status *status)
{
    const int64_t numel = v->rows * v->cols;
    if (pw_cancel_requested(opt->cancel)) { /* whatever the shape: cancelled before it started */
        *status = PW_ERR_CANCELLED;
        return 0;
    }
#ifdef PW_HAVE_PTHREADS
    if (numel >= PW_INTERRUPT_THRESHOLD) {
        const int main_thread = on_main_thread();
        if (main_thread < 0)
            return -1;
        if (main_thread) {
            rewire_job job = {.view = v, .opt = opt, .seed = seed, .status = PW_OK};
            const int rc = run_polling(&job);
            *status = job.status;
            return rc;
        }
    }
#else
    (void)numel; /* Windows: no helper thread; Ctrl-C is answered after the kernel */
#endif
    pw_status s;
    Py_BEGIN_ALLOW_THREADS
    s = pw_rewire_view(v, opt, seed);
    Py_END_ALLOW_THREADS
    *status = s;
    return 0;
}

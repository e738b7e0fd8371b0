/* Threads, signals and cancellation for parewire._C.
 *
 * module.c parses arguments and builds results; everything about *how* a
 * kernel call runs lives here: the CancelFlag type Python threads share, and
 * the runner that releases the GIL, moves a long kernel to a helper thread so
 * the main thread can answer Ctrl-C, and cancels the kernel when a signal
 * handler raises.
 */
#ifndef PW_RUNNER_H
#define PW_RUNNER_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "../kernels/parewire.h"

/* Tensors with at least this many elements, rewired on the main thread, run
 * in a helper thread while the main thread polls for signals.  Smaller ones
 * run inline: a thread costs more than they take. */
#define PW_INTERRUPT_THRESHOLD ((int64_t)1 << 18)

/* Creates the CancelFlag type (a heap type: one per module instance). */
PyObject *pw_cancel_flag_type(void);

/* The pw_cancel inside a CancelFlag instance; obj must be one. */
pw_cancel *pw_cancel_flag_get(PyObject *obj);

/* Runs pw_rewire_view(v, opt, seed) without the GIL; opt->cancel must be set.
 * A call of numel >= PW_INTERRUPT_THRESHOLD elements made on the main thread
 * runs the kernel in a helper thread and polls for signals meanwhile; when a
 * signal handler raises, it sets opt->cancel, waits for the kernel to stop
 * and returns -1 with the handler's exception set (the tensor is unchanged).
 * Otherwise returns 0 with the kernel's status in *status. */
int pw_run_rewire(const pw_view *v, const pw_options *opt, pw_seed *seed, pw_status *status);

#endif

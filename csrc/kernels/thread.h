/* The little of threads the kernels use: start/join one helper, a mutex and
 * a condition variable.  pthreads on POSIX, Win32 threads under _WIN32. */
#ifndef PAREWIRE_THREAD_H
#define PAREWIRE_THREAD_H

#if defined(_WIN32)
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>

typedef struct {
    HANDLE handle;
    void (*fn)(void *);
    void *arg;
} pw_thread;
typedef SRWLOCK pw_mutex;
typedef CONDITION_VARIABLE pw_cond;

static DWORD WINAPI pw_thread_main(LPVOID p)
{
    pw_thread *t = (pw_thread *)p;
    t->fn(t->arg);
    return 0;
}
/* 0 on success; t must stay where it is until joined. */
static inline int pw_thread_start(pw_thread *t, void (*fn)(void *), void *arg)
{
    t->fn = fn;
    t->arg = arg;
    t->handle = CreateThread(NULL, 0, pw_thread_main, t, 0, NULL);
    return t->handle == NULL ? -1 : 0;
}
static inline void pw_thread_join(pw_thread *t)
{
    WaitForSingleObject(t->handle, INFINITE);
    CloseHandle(t->handle);
}
static inline void pw_mutex_init(pw_mutex *m) { InitializeSRWLock(m); }
static inline void pw_mutex_destroy(pw_mutex *m) { (void)m; }
static inline void pw_mutex_lock(pw_mutex *m) { AcquireSRWLockExclusive(m); }
static inline void pw_mutex_unlock(pw_mutex *m) { ReleaseSRWLockExclusive(m); }
static inline void pw_cond_init(pw_cond *c) { InitializeConditionVariable(c); }
static inline void pw_cond_destroy(pw_cond *c) { (void)c; }
static inline void pw_cond_wait(pw_cond *c, pw_mutex *m) { SleepConditionVariableSRW(c, m, INFINITE, 0); }
static inline void pw_cond_broadcast(pw_cond *c) { WakeAllConditionVariable(c); }

#else
#include <pthread.h>

typedef struct {
    pthread_t handle;
    void (*fn)(void *);
    void *arg;
} pw_thread;
typedef pthread_mutex_t pw_mutex;
typedef pthread_cond_t pw_cond;

static void *pw_thread_main(void *p)
{
    pw_thread *t = (pw_thread *)p;
    t->fn(t->arg);
    return NULL;
}
static inline int pw_thread_start(pw_thread *t, void (*fn)(void *), void *arg)
{
    t->fn = fn;
    t->arg = arg;
    return pthread_create(&t->handle, NULL, pw_thread_main, t) == 0 ? 0 : -1;
}
static inline void pw_thread_join(pw_thread *t) { pthread_join(t->handle, NULL); }
static inline void pw_mutex_init(pw_mutex *m) { pthread_mutex_init(m, NULL); }
static inline void pw_mutex_destroy(pw_mutex *m) { pthread_mutex_destroy(m); }
static inline void pw_mutex_lock(pw_mutex *m) { pthread_mutex_lock(m); }
static inline void pw_mutex_unlock(pw_mutex *m) { pthread_mutex_unlock(m); }
static inline void pw_cond_init(pw_cond *c) { pthread_cond_init(c, NULL); }
static inline void pw_cond_destroy(pw_cond *c) { pthread_cond_destroy(c); }
static inline void pw_cond_wait(pw_cond *c, pw_mutex *m) { pthread_cond_wait(c, m); }
static inline void pw_cond_broadcast(pw_cond *c) { pthread_cond_broadcast(c); }
#endif

#endif

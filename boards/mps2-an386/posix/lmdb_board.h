/* Included before LMDB's mdb.c and midl.c on the board (-include): what
 * newlib's headers leave out.  One thread, one process: the lock file's
 * mutexes are never contended (posix_shim.c). */
#ifndef SATCHEL_LMDB_BOARD_H
#define SATCHEL_LMDB_BOARD_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* newlib: pthread types, BYTE_ORDER */
#endif

#include <limits.h>
#include <pthread.h>
#include <sys/types.h>
#include <unistd.h>

#ifndef SSIZE_MAX
#define SSIZE_MAX INT_MAX
#endif
#ifndef PTHREAD_PROCESS_SHARED
#define PTHREAD_PROCESS_SHARED 1
#endif
int pthread_mutexattr_init(pthread_mutexattr_t *a);
int pthread_mutexattr_destroy(pthread_mutexattr_t *a);
int pthread_mutexattr_setpshared(pthread_mutexattr_t *a, int pshared);
int pthread_mutex_init(pthread_mutex_t *m, const pthread_mutexattr_t *a);
int pthread_mutex_destroy(pthread_mutex_t *m);
int pthread_mutex_lock(pthread_mutex_t *m);
int pthread_mutex_unlock(pthread_mutex_t *m);
int pthread_key_create(pthread_key_t *key, void (*destructor)(void *));
int pthread_key_delete(pthread_key_t key);
void *pthread_getspecific(pthread_key_t key);
int pthread_setspecific(pthread_key_t key, const void *value);
pthread_t pthread_self(void);
/* mdb_env_copy's writer thread: there are no threads, so a compacting
 * copy fails cleanly (EAGAIN from pthread_create). */
int pthread_create(pthread_t *t, const pthread_attr_t *a, void *(*fn)(void *), void *arg);
int pthread_join(pthread_t t, void **ret);
int pthread_cond_init(pthread_cond_t *c, const pthread_condattr_t *a);
int pthread_cond_destroy(pthread_cond_t *c);
int pthread_cond_signal(pthread_cond_t *c);
int pthread_cond_wait(pthread_cond_t *c, pthread_mutex_t *m);
#include <signal.h>
int pthread_sigmask(int how, const sigset_t *set, sigset_t *old);
int sigwait(const sigset_t *set, int *sig);
int posix_memalign(void **out, size_t align, size_t size);
int fdatasync(int fd);
ssize_t pread(int fd, void *buf, size_t n, off_t off);
ssize_t pwrite(int fd, const void *buf, size_t n, off_t off);

#endif

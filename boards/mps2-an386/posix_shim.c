/* LMDB's POSIX calls on the board; see posix_shim.h.  Also newlib's file
 * syscalls (_open, _read, _write, ...), so that stdio on fds 0-2 is the
 * console UART and higher fds are shim files. */
#define _GNU_SOURCE 1 /* newlib: pthread types, pread/pwrite */
#include "posix_shim.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <board.h>
#include "board_hw.h"
#include "lmdb_board.h"
#include "storage.h"
#include "sys/mman.h"
#include "sys/uio.h"

#define LOCK_AREA (64u * 1024u)
#define MAX_FILES 2 /* the store and its lock file */
#define MAX_FDS 4   /* LMDB opens the store twice (data and meta) */
#define FD_BASE 3

struct sfile {
    char name[64];  /* as LMDB opened it */
    int refs;
    int h;          /* storage handle, or -1: RAM only (the lock file) */
    uint8_t *mem;   /* the resident copy */
    uint32_t size, cap;
};

struct sfd {
    struct sfile *f; /* NULL: free */
    uint32_t pos;
};

static struct sfile files[MAX_FILES];
static struct sfd fds[MAX_FDS];
static uint32_t fail_at, writes;
static uint64_t written;

void shim_fail_write(uint32_t nth)
{
    fail_at = nth ? writes + nth : 0;
}

void shim_stats(uint32_t *w, uint64_t *bytes)
{
    *w = writes;
    *bytes = written;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static struct sfd *fd_get(int fd)
{
    if (fd < FD_BASE || fd >= FD_BASE + MAX_FDS || !fds[fd - FD_BASE].f) {
        errno = EBADF;
        return NULL;
    }
    return &fds[fd - FD_BASE];
}

/* LMDB's "DIR/data.mdb" is the store file DIR itself; "DIR/lock.mdb" has
 * no storage behind it. */
static struct sfile *file_open(const char *path, int create)
{
    struct sfile *f, *free_slot = NULL;
    int i, lock = ends_with(path, "/lock.mdb");
    if (strlen(path) >= sizeof files[0].name) {
        errno = ENAMETOOLONG;
        return NULL;
    }
    for (i = 0; i < MAX_FILES; i++) {
        if (files[i].refs > 0 && strcmp(files[i].name, path) == 0) {
            files[i].refs++;
            return &files[i];
        }
        if (files[i].refs == 0 && !free_slot)
            free_slot = &files[i];
    }
    if (!(f = free_slot)) {
        errno = EMFILE;
        return NULL;
    }
    memset(f, 0, sizeof *f);
    memcpy(f->name, path, strlen(path) + 1);
    if (lock) {
        f->h = -1;
        f->mem = (uint8_t *)(BOARD_PSRAM_BASE + BOARD_PSRAM_SIZE - LOCK_AREA);
        f->cap = LOCK_AREA;
    } else {
        char back[64];
        uint32_t off, size;
        size_t n = strlen(path);
        memcpy(back, path, n + 1);
        if (ends_with(back, "/data.mdb"))
            back[n - 9] = '\0';
        f->h = storage_open(back, create, &size);
        if (f->h < 0) {
            errno = ENOENT;
            return NULL;
        }
        f->mem = (uint8_t *)BOARD_PSRAM_BASE;
        f->cap = BOARD_PSRAM_SIZE - LOCK_AREA;
        if (size > f->cap) {
            storage_close(f->h);
            errno = EFBIG;
            return NULL;
        }
        for (off = 0; off < size; off += 65536) {
            uint32_t chunk = size - off < 65536 ? size - off : 65536;
            if (storage_read(f->h, off, f->mem + off, chunk) < 0) {
                storage_close(f->h);
                errno = EIO;
                return NULL;
            }
        }
        f->size = size;
    }
    f->refs = 1;
    return f;
}

/* Write to the resident copy and through to storage, in call order. */
static ssize_t file_write(struct sfile *f, const void *buf, size_t n, uint32_t off)
{
    if ((uint64_t)off + n > f->cap) {
        errno = ENOSPC;
        return -1;
    }
    if (f->h >= 0) {
        writes++;
        if (fail_at && writes == fail_at) {
            fail_at = 0;
            errno = EIO;
            return -1;
        }
        if (storage_write(f->h, off, buf, n) < 0) {
            errno = EIO;
            return -1;
        }
        written += n;
    }
    memcpy(f->mem + off, buf, n);
    if (off + n > f->size)
        f->size = off + (uint32_t)n;
    return (ssize_t)n;
}

int _open(const char *path, int flags, ...);
int _open(const char *path, int flags, ...)
{
    struct sfile *f;
    int i;
    for (i = 0; i < MAX_FDS; i++)
        if (!fds[i].f)
            break;
    if (i == MAX_FDS) {
        errno = EMFILE;
        return -1;
    }
    f = file_open(path, (flags & O_CREAT) != 0);
    if (!f)
        return -1;
    fds[i].f = f;
    fds[i].pos = 0;
    return FD_BASE + i;
}

int _close(int fd);
int _close(int fd)
{
    struct sfd *d = fd_get(fd);
    if (!d)
        return -1;
    if (--d->f->refs == 0 && d->f->h >= 0)
        storage_close(d->f->h);
    d->f = NULL;
    return 0;
}

int _write(int fd, const void *buf, size_t n);
int _write(int fd, const void *buf, size_t n)
{
    struct sfd *d;
    ssize_t w;
    if (fd == 1 || fd == 2) {
        uart_write(buf, n);
        return (int)n;
    }
    if (!(d = fd_get(fd)))
        return -1;
    w = file_write(d->f, buf, n, d->pos);
    if (w > 0)
        d->pos += (uint32_t)w;
    return (int)w;
}

ssize_t pread(int fd, void *buf, size_t n, off_t off)
{
    struct sfd *d = fd_get(fd);
    if (!d)
        return -1;
    if (off < 0 || (uint32_t)off >= d->f->size)
        return 0;
    if (n > d->f->size - (uint32_t)off)
        n = d->f->size - (uint32_t)off;
    memcpy(buf, d->f->mem + off, n);
    return (ssize_t)n;
}

int _read(int fd, void *buf, size_t n);
int _read(int fd, void *buf, size_t n)
{
    struct sfd *d;
    ssize_t r;
    if (fd == 0)
        return 0;
    if (!(d = fd_get(fd)))
        return -1;
    r = pread(fd, buf, n, (off_t)d->pos);
    if (r > 0)
        d->pos += (uint32_t)r;
    return (int)r;
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
    struct sfd *d = fd_get(fd);
    if (!d)
        return -1;
    if (off < 0) {
        errno = EINVAL;
        return -1;
    }
    return file_write(d->f, buf, n, (uint32_t)off);
}

ssize_t writev(int fd, const struct iovec *iov, int iovcnt)
{
    struct sfd *d = fd_get(fd);
    ssize_t total = 0;
    int i;
    if (!d)
        return -1;
    for (i = 0; i < iovcnt; i++) {
        ssize_t w = file_write(d->f, iov[i].iov_base, iov[i].iov_len, d->pos);
        if (w < 0)
            return total > 0 ? total : -1;
        d->pos += (uint32_t)w;
        total += w;
    }
    return total;
}

off_t _lseek(int fd, off_t off, int whence);
off_t _lseek(int fd, off_t off, int whence)
{
    struct sfd *d = fd_get(fd);
    off_t base;
    if (!d)
        return -1;
    base = whence == SEEK_SET ? 0 : whence == SEEK_CUR ? (off_t)d->pos : (off_t)d->f->size;
    if (base + off < 0) {
        errno = EINVAL;
        return -1;
    }
    d->pos = (uint32_t)(base + off);
    return (off_t)d->pos;
}

int _fstat(int fd, struct stat *st);
int _fstat(int fd, struct stat *st)
{
    struct sfd *d;
    memset(st, 0, sizeof *st);
    if (fd >= 0 && fd <= 2) {
        st->st_mode = S_IFCHR;
        return 0;
    }
    if (!(d = fd_get(fd)))
        return -1;
    st->st_mode = S_IFREG | 0600;
    st->st_size = (off_t)d->f->size;
    st->st_blksize = 4096;
    return 0;
}

int _isatty(int fd);
int _isatty(int fd)
{
    return fd >= 0 && fd <= 2;
}

int ftruncate(int fd, off_t len)
{
    struct sfd *d = fd_get(fd);
    if (!d)
        return -1;
    if (len < 0 || (uint64_t)len > d->f->cap) {
        errno = EFBIG;
        return -1;
    }
    /* Growing: LMDB sizes the lock file this way; the store file grows by
     * writes only (no MDB_WRITEMAP).  Shrinking is not needed. */
    if ((uint32_t)len > d->f->size) {
        memset(d->f->mem + d->f->size, 0, (uint32_t)len - d->f->size);
        d->f->size = (uint32_t)len;
    }
    return 0;
}

int fsync(int fd)
{
    struct sfd *d = fd_get(fd);
    if (!d)
        return -1;
    return d->f->h >= 0 ? storage_sync(d->f->h) : 0;
}

int fdatasync(int fd)
{
    return fsync(fd);
}

int fcntl(int fd, int cmd, ...)
{
    /* Locks always succeed (one process); flags are accepted and kept
     * nowhere. */
    (void)cmd;
    return fd_get(fd) ? 0 : -1;
}

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    struct sfd *d = fd_get(fd);
    (void)addr;
    (void)flags;
    if (!d)
        return MAP_FAILED;
    if (off != 0 || len > d->f->cap || (d->f->h >= 0 && (prot & PROT_WRITE))) {
        errno = EINVAL;
        return MAP_FAILED;
    }
    return d->f->mem;
}

int munmap(void *addr, size_t len)
{
    (void)addr;
    (void)len;
    return 0;
}

int msync(void *addr, size_t len, int flags)
{
    (void)addr;
    (void)len;
    (void)flags;
    return 0;
}

long sysconf(int name)
{
    if (name == _SC_PAGESIZE)
        return 4096;
    errno = EINVAL;
    return -1;
}

int _getpid(void);
int _getpid(void)
{
    return 1;
}

int _kill(int pid, int sig);
int _kill(int pid, int sig)
{
    (void)pid;
    (void)sig;
    errno = EINVAL;
    return -1;
}

/* ---- pthreads for one thread ---- */

int pthread_mutexattr_init(pthread_mutexattr_t *a)
{
    (void)a;
    return 0;
}

int pthread_mutexattr_destroy(pthread_mutexattr_t *a)
{
    (void)a;
    return 0;
}

int pthread_mutexattr_setpshared(pthread_mutexattr_t *a, int pshared)
{
    (void)a;
    (void)pshared;
    return 0;
}

int pthread_mutex_init(pthread_mutex_t *m, const pthread_mutexattr_t *a)
{
    (void)m;
    (void)a;
    return 0;
}

int pthread_mutex_destroy(pthread_mutex_t *m)
{
    (void)m;
    return 0;
}

int pthread_mutex_lock(pthread_mutex_t *m)
{
    (void)m;
    return 0;
}

int pthread_mutex_unlock(pthread_mutex_t *m)
{
    (void)m;
    return 0;
}

static const void *key_values[4];
static unsigned keys_used;

int pthread_key_create(pthread_key_t *key, void (*destructor)(void *))
{
    (void)destructor;
    if (keys_used >= sizeof key_values / sizeof key_values[0])
        return EAGAIN;
    *key = (pthread_key_t)keys_used++;
    return 0;
}

int pthread_key_delete(pthread_key_t key)
{
    (void)key;
    return 0;
}

void *pthread_getspecific(pthread_key_t key)
{
    return (unsigned)key < keys_used ? (void *)key_values[key] : NULL;
}

int pthread_setspecific(pthread_key_t key, const void *value)
{
    if ((unsigned)key >= keys_used)
        return EINVAL;
    key_values[key] = value;
    return 0;
}

pthread_t pthread_self(void)
{
    return (pthread_t)1;
}

int pthread_create(pthread_t *t, const pthread_attr_t *a, void *(*fn)(void *), void *arg)
{
    (void)t;
    (void)a;
    (void)fn;
    (void)arg;
    return EAGAIN;
}

int pthread_join(pthread_t t, void **ret)
{
    (void)t;
    (void)ret;
    return ESRCH;
}

int pthread_cond_init(pthread_cond_t *c, const pthread_condattr_t *a)
{
    (void)c;
    (void)a;
    return 0;
}

int pthread_cond_destroy(pthread_cond_t *c)
{
    (void)c;
    return 0;
}

int pthread_cond_signal(pthread_cond_t *c)
{
    (void)c;
    return 0;
}

int pthread_cond_wait(pthread_cond_t *c, pthread_mutex_t *m)
{
    (void)c;
    (void)m;
    return EINVAL;
}

int pthread_sigmask(int how, const sigset_t *set, sigset_t *old)
{
    (void)how;
    (void)set;
    (void)old;
    return 0;
}

int sigwait(const sigset_t *set, int *sig)
{
    (void)set;
    (void)sig;
    return EINVAL;
}

int posix_memalign(void **out, size_t align, size_t size)
{
    void *p = memalign(align, size);
    if (!p)
        return ENOMEM;
    *out = p;
    return 0;
}

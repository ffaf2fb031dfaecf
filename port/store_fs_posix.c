/* The store's file hooks on POSIX: what core needs to check a store's
 * files before LMDB maps them, and the process ids of the sync lock. */
#define _POSIX_C_SOURCE 200809L
#include "satchel/port_store.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

static int fs_stat(void *ctx, const char *path, uint64_t *size, int *is_dir)
{
    struct stat st;
    (void)ctx;
    if (stat(path, &st) != 0)
        return errno;
    *size = (uint64_t)st.st_size;
    *is_dir = S_ISDIR(st.st_mode) ? 1 : 0;
    return 0;
}

static int fs_read(void *ctx, const char *path, uint64_t off, void *buf,
                   size_t len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC), rc = 0;
    size_t got = 0;
    (void)ctx;
    if (fd < 0)
        return errno;
    while (got < len) {
        ssize_t n = pread(fd, (char *)buf + got, len - got, (off_t)(off + got));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = n < 0 ? errno : EIO;
            break;
        }
        got += (size_t)n;
    }
    close(fd);
    return rc;
}

static int fs_write(void *ctx, const char *path, uint64_t off, const void *buf,
                    size_t len)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC), rc = 0;
    size_t put = 0;
    (void)ctx;
    if (fd < 0)
        return errno;
    while (put < len) {
        ssize_t n = pwrite(fd, (const char *)buf + put, len - put,
                           (off_t)(off + put));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = n < 0 ? errno : EIO;
            break;
        }
        put += (size_t)n;
    }
    if (rc == 0 && fsync(fd) != 0)
        rc = errno;
    close(fd);
    return rc;
}

static int fs_allocate(void *ctx, const char *path, uint64_t len)
{
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600), rc;
    (void)ctx;
    if (fd < 0)
        return errno;
    do
        rc = posix_fallocate(fd, 0, (off_t)len);
    while (rc == EINTR);
    /* File systems without fallocate: the risk stays, the store works. */
    if (rc == EOPNOTSUPP || rc == EINVAL)
        rc = 0;
    close(fd);
    return rc;
}

static int fs_mkdir(void *ctx, const char *path)
{
    (void)ctx;
    return mkdir(path, 0700) == 0 ? 0 : errno;
}

static int fs_space(void *ctx, const char *path, uint64_t *avail)
{
    struct statvfs sv;
    (void)ctx;
    if (statvfs(path, &sv) != 0)
        return errno;
    *avail = (uint64_t)sv.f_bavail * sv.f_frsize;
    return 0;
}

static uint32_t fs_pid(void *ctx)
{
    (void)ctx;
    return (uint32_t)getpid();
}

static int fs_alive(void *ctx, uint32_t pid)
{
    (void)ctx;
    if (pid == 0)
        return 0;
    return kill((pid_t)pid, 0) == 0 || errno == EPERM;
}

static const satchel_store_fs posix_fs = {
    NULL, fs_stat, fs_read, fs_write, fs_allocate, fs_mkdir, fs_space, fs_pid, fs_alive,
};

const satchel_store_fs *satchel_store_fs_posix(void)
{
    return &posix_fs;
}

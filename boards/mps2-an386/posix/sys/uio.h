/* <sys/uio.h> for newlib: writev, which LMDB uses to flush pages. */
#ifndef SATCHEL_SYS_UIO_H
#define SATCHEL_SYS_UIO_H

#include <stddef.h>
#include <sys/types.h>

struct iovec {
    void *iov_base;
    size_t iov_len;
};

ssize_t writev(int fd, const struct iovec *iov, int iovcnt);

#endif

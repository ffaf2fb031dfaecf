/* The POSIX port: TCP sockets (non-blocking, poll), a monotonic clock and
 * the kernel's random source. */
#define _POSIX_C_SOURCE 200809L
#include "satchel/port.h"
#include "satchel/port_posix.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct satchel_conn {
    int fd;
};

uint64_t satchel_posix_now_ms(void *ctx)
{
    struct timespec ts;
    (void)ctx;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int satchel_posix_entropy(void *ctx, uint8_t *buf, size_t len)
{
    (void)ctx;
    while (len > 0) {
        ssize_t n = getrandom(buf, len, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return SATCHEL_E_IO;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

static int connect_one(const struct addrinfo *ai, uint64_t deadline)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
                    ai->ai_protocol);
    int one = 1;
    if (fd < 0)
        return -1;
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    /* Commands are small and latency-bound: do not wait to coalesce. */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
        struct pollfd p = {fd, POLLOUT, 0};
        int err = 0;
        socklen_t el = sizeof err;
        uint64_t now = satchel_posix_now_ms(NULL);
        if (errno != EINPROGRESS ||
            poll(&p, 1, now < deadline ? (int)(deadline - now) : 0) != 1 ||
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0 || err != 0) {
            close(fd);
            return -1;
        }
    }
    return fd;
}

static int posix_open(void *ctx, const char *host, uint16_t port,
                      uint32_t timeout_ms, satchel_conn **out)
{
    struct addrinfo hints, *res = NULL, *ai;
    char portstr[8];
    satchel_conn *c;
    int fd = -1;
    uint64_t deadline = satchel_posix_now_ms(ctx) + timeout_ms;

    *out = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    snprintf(portstr, sizeof portstr, "%u", (unsigned)port);
    if (getaddrinfo(host, portstr, &hints, &res) != 0)
        return SATCHEL_E_IO;
    /* Try every address: "localhost" may list ::1 before 127.0.0.1. */
    for (ai = res; ai && fd < 0; ai = ai->ai_next)
        fd = connect_one(ai, deadline);
    freeaddrinfo(res);
    if (fd < 0)
        return satchel_posix_now_ms(ctx) >= deadline ? SATCHEL_E_TIMEOUT : SATCHEL_E_IO;
    c = malloc(sizeof *c);
    if (!c) {
        close(fd);
        return SATCHEL_E_NOMEM;
    }
    c->fd = fd;
    *out = c;
    return 0;
}

static long posix_send(satchel_conn *c, const uint8_t *buf, size_t len)
{
    ssize_t n = send(c->fd, buf, len, MSG_NOSIGNAL);
    if (n >= 0)
        return (long)n;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        return SATCHEL_E_AGAIN;
    return SATCHEL_E_IO;
}

static long posix_recv(satchel_conn *c, uint8_t *buf, size_t cap)
{
    ssize_t n = recv(c->fd, buf, cap, 0);
    if (n >= 0)
        return (long)n;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        return SATCHEL_E_AGAIN;
    return SATCHEL_E_IO;
}

static int posix_wait(satchel_conn *c, int want_write, uint32_t timeout_ms)
{
    struct pollfd p = {c->fd, (short)(want_write ? POLLOUT : POLLIN), 0};
    int rc = poll(&p, 1, timeout_ms > 0x7fffffff ? -1 : (int)timeout_ms);
    if (rc < 0)
        return errno == EINTR ? 0 : SATCHEL_E_IO;
    return rc > 0 ? 1 : 0;
}

static void posix_close(satchel_conn *c)
{
    if (!c)
        return;
    close(c->fd);
    free(c);
}

static void posix_sleep_ms(void *ctx, uint32_t ms)
{
    struct timespec ts;
    (void)ctx;
    ts.tv_sec = ms / 1000u;
    ts.tv_nsec = (long)(ms % 1000u) * 1000000L;
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static const satchel_port posix_port = {
    SATCHEL_PORT_VERSION, "posix", NULL, posix_open, posix_send, posix_recv,
    posix_wait, posix_close, satchel_posix_now_ms, satchel_posix_entropy,
    posix_sleep_ms,
};

const satchel_port *satchel_port_posix(void)
{
    return &posix_port;
}

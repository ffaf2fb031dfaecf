/* lwIP's system layer for NO_SYS=1 on the simulator host: sys_now() from
 * the monotonic clock, plus the host services in lwip_host.h. */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>

#include "lwip/sys.h"
#include "lwip_host.h"

uint64_t satchel_lwip_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* lwIP's clock: wraps after 49 days, which lwIP's timers handle. */
u32_t sys_now(void)
{
    return (u32_t)satchel_lwip_now_ms();
}

int satchel_lwip_entropy(uint8_t *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = getrandom(buf, len, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

uint32_t satchel_lwip_rand(void)
{
    uint32_t r = 0;
    if (satchel_lwip_entropy((uint8_t *)&r, sizeof r) < 0)
        r = (uint32_t)satchel_lwip_now_ms() * 2654435761u;
    return r;
}

void satchel_lwip_diag(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("lwip: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
}

void satchel_lwip_assert(const char *msg, int line, const char *file)
{
    fprintf(stderr, "lwip: assertion \"%s\" failed at line %d in %s\n", msg,
            line, file);
    fflush(stderr);
    abort();
}

void satchel_lwip_ignore_sigpipe(void)
{
    struct sigaction sa;
    if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL) {
        sa.sa_handler = SIG_IGN;
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = 0;
        sigaction(SIGPIPE, &sa, NULL);
    }
}

static int is_loopback4(uint32_t ip)
{
    return (ip >> 24) == 127;
}

static void set4(satchel_lwip_addr *a, uint32_t ip)
{
    memset(a, 0, sizeof *a);
    a->family = 4;
    a->v4 = is_loopback4(ip) ? SATCHEL_LWIP_HOST4 : ip;
}

static void set6(satchel_lwip_addr *a, const struct in6_addr *in)
{
    memset(a, 0, sizeof *a);
    if (IN6_IS_ADDR_V4MAPPED(in)) {
        uint32_t ip = (uint32_t)in->s6_addr[12] << 24 | (uint32_t)in->s6_addr[13] << 16 |
                      (uint32_t)in->s6_addr[14] << 8 | in->s6_addr[15];
        set4(a, ip);
        return;
    }
    a->family = 6;
    if (IN6_IS_ADDR_LOOPBACK(in)) {
        a->v6[0] = 0xfe;
        a->v6[1] = 0xc0;
        a->v6[15] = SATCHEL_LWIP_HOST6_LAST;
    } else {
        memcpy(a->v6, in->s6_addr, 16);
    }
}

static int add_unique(satchel_lwip_addr *out, int n, int max,
                      const satchel_lwip_addr *a)
{
    int i;
    if (n >= max)
        return n;
    for (i = 0; i < n; i++)
        if (out[i].family == a->family && out[i].v4 == a->v4 &&
            memcmp(out[i].v6, a->v6, 16) == 0)
            return n;
    out[n] = *a;
    return n + 1;
}

int satchel_lwip_resolve(const char *host, satchel_lwip_addr *out, int max)
{
    struct in_addr a4;
    struct in6_addr a6;
    struct addrinfo hints, *res = NULL, *ai;
    satchel_lwip_addr a;
    char buf[64];
    size_t len;
    int n = 0;

    if (!host || !*host || max <= 0)
        return -1;
    len = strlen(host);
    /* "[::1]" as well as "::1" */
    if (host[0] == '[' && len > 2 && len < sizeof buf && host[len - 1] == ']') {
        memcpy(buf, host + 1, len - 2);
        buf[len - 2] = '\0';
        host = buf;
    }
    if (strcasecmp(host, "localhost") == 0 || strcasecmp(host, "localhost.") == 0) {
        set4(&a, 0x7f000001u);
        n = add_unique(out, n, max, &a);
        set6(&a, &in6addr_loopback);
        return add_unique(out, n, max, &a);
    }
    if (strcasecmp(host, "ip6-localhost") == 0) {
        set6(&a, &in6addr_loopback);
        return add_unique(out, n, max, &a);
    }
    if (inet_pton(AF_INET, host, &a4) == 1) {
        set4(&a, ntohl(a4.s_addr));
        return add_unique(out, n, max, &a);
    }
    if (inet_pton(AF_INET6, host, &a6) == 1) {
        set6(&a, &a6);
        return add_unique(out, n, max, &a);
    }
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, NULL, &hints, &res) != 0)
        return -1;
    for (ai = res; ai; ai = ai->ai_next) {
        if (ai->ai_family == AF_INET) {
            const struct sockaddr_in *sin = (const void *)ai->ai_addr;
            set4(&a, ntohl(sin->sin_addr.s_addr));
        } else if (ai->ai_family == AF_INET6) {
            const struct sockaddr_in6 *sin6 = (const void *)ai->ai_addr;
            set6(&a, &sin6->sin6_addr);
        } else {
            continue;
        }
        n = add_unique(out, n, max, &a);
    }
    freeaddrinfo(res);
    return n > 0 ? n : -1;
}

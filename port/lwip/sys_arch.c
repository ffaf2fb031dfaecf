/* lwIP's system layer for NO_SYS=1 on the simulator host: sys_now() from
 * the monotonic clock, plus the host services in lwip_host.h. */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
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

static int is_loopback4(uint32_t ip)
{
    return (ip >> 24) == 127;
}

int satchel_lwip_resolve(const char *host, uint32_t alias, uint32_t *out)
{
    struct in_addr a4;
    struct in6_addr a6;
    struct addrinfo hints, *res = NULL, *ai;
    char buf[64];
    size_t n;

    if (!host || !*host)
        return -1;
    n = strlen(host);
    /* "[::1]" as well as "::1" */
    if (host[0] == '[' && n > 2 && n < sizeof buf && host[n - 1] == ']') {
        memcpy(buf, host + 1, n - 2);
        buf[n - 2] = '\0';
        host = buf;
    }
    if (strcasecmp(host, "localhost") == 0 ||
        strcasecmp(host, "localhost.") == 0 ||
        strcasecmp(host, "ip6-localhost") == 0) {
        *out = alias;
        return 0;
    }
    if (inet_pton(AF_INET, host, &a4) == 1) {
        uint32_t ip = ntohl(a4.s_addr);
        *out = is_loopback4(ip) ? alias : ip;
        return 0;
    }
    if (inet_pton(AF_INET6, host, &a6) == 1) {
        if (IN6_IS_ADDR_LOOPBACK(&a6)) {
            *out = alias;
            return 0;
        }
        return -1; /* the guest has no IPv6 */
    }
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, NULL, &hints, &res) != 0)
        return -1;
    for (ai = res; ai; ai = ai->ai_next) {
        if (ai->ai_family == AF_INET) {
            uint32_t ip =
                ntohl(((const struct sockaddr_in *)(const void *)ai->ai_addr)->sin_addr.s_addr);
            *out = is_loopback4(ip) ? alias : ip;
            freeaddrinfo(res);
            return 0;
        }
    }
    freeaddrinfo(res);
    return -1;
}

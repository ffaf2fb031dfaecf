/* Host services for the lwIP port, kept apart from lwIP's headers (which do
 * not mix well with the host's socket headers): clock, randomness, name
 * resolution, diagnostics.  Implemented in sys_arch.c. */
#ifndef SATCHEL_LWIP_HOST_H
#define SATCHEL_LWIP_HOST_H

#include <stddef.h>
#include <stdint.h>

/* Monotonic milliseconds. */
uint64_t satchel_lwip_now_ms(void);
/* len bytes from getrandom(); 0 or -1. */
int satchel_lwip_entropy(uint8_t *buf, size_t len);
/* An address for the guest to connect to. */
typedef struct satchel_lwip_addr {
    int family;      /* 4 or 6 */
    uint32_t v4;     /* host byte order */
    uint8_t v6[16];  /* network byte order */
} satchel_lwip_addr;

/* slirp's aliases for the host: 10.0.2.2 reaches the host's 127.0.0.1,
 * fec0::2 the host's ::1. */
#define SATCHEL_LWIP_HOST4 0x0a000202u
#define SATCHEL_LWIP_HOST6_LAST 2u /* fec0::2 */

/* The addresses to try, in order, for host (at most max): loopback
 * becomes slirp's host alias of the same family (127/8 -> 10.0.2.2,
 * ::1 -> fec0::2, "localhost" -> both, IPv4 first); other literals are
 * used as given; other names are resolved by the host's resolver.
 * Returns the count (> 0) or -1. */
int satchel_lwip_resolve(const char *host, satchel_lwip_addr *out, int max);

/* libslirp writes to host sockets without MSG_NOSIGNAL and expects the
 * application to ignore SIGPIPE (QEMU does): a server closing first would
 * otherwise kill the process.  Sets SIGPIPE to SIG_IGN if it is SIG_DFL. */
void satchel_lwip_ignore_sigpipe(void);

#endif

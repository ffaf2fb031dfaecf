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
/* host as an IPv4 address (host byte order) for the guest to connect to:
 * loopback (127/8, ::1, "localhost") becomes alias (slirp's host), an IPv4
 * literal is used as given, another name is resolved by the host (first
 * IPv4 address; loopback again becomes alias).  0 or -1. */
int satchel_lwip_resolve(const char *host, uint32_t alias, uint32_t *out);

#endif

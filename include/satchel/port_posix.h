/* The POSIX port's clock and random source, for host code that sits beside
 * it (the host boards' link glue) so there is one copy of each. */
#ifndef SATCHEL_PORT_POSIX_H
#define SATCHEL_PORT_POSIX_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Milliseconds on CLOCK_MONOTONIC: never goes back, unrelated to wall-clock
 * time.  ctx is unused (any value). */
uint64_t satchel_posix_now_ms(void *ctx);

/* Fill buf with len bytes from getrandom(2), retrying short reads and
 * EINTR.  Returns 0, or SATCHEL_E_IO if the kernel refused (buf then holds
 * an unspecified mix).  ctx is unused (any value). */
int satchel_posix_entropy(void *ctx, uint8_t *buf, size_t len);

#ifdef __cplusplus
}
#endif
#endif

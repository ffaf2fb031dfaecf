/* The port: what a platform supplies to run Satchel, as one table of
 * functions (in the spirit of SQLite's VFS).  The engine in core/ never calls
 * it; the app loop in firmware/ does.  A port sets version to
 * SATCHEL_PORT_VERSION; fields are only ever added at the end, so a newer
 * app can tell what an older port lacks. */
#ifndef SATCHEL_PORT_H
#define SATCHEL_PORT_H

#include <stddef.h>
#include <stdint.h>

#include "satchel/error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SATCHEL_PORT_VERSION 2 /* 2: sleep_ms */

/* A byte stream (TCP on POSIX sockets, lwIP, ...).  Opaque to the app. */
typedef struct satchel_conn satchel_conn;

typedef struct satchel_port {
    int version;
    const char *name; /* "posix", "lwip": shown by the console */
    void *ctx;

    /* Connect to host:port within timeout_ms.  Returns 0 and *out, or
     * SATCHEL_E_IO / SATCHEL_E_TIMEOUT / SATCHEL_E_NOMEM. */
    int (*open)(void *ctx, const char *host, uint16_t port,
                uint32_t timeout_ms, satchel_conn **out);
    /* Non-blocking.  Return bytes moved (> 0), SATCHEL_E_AGAIN, 0 from recv
     * at end of stream, or SATCHEL_E_IO. */
    long (*send)(satchel_conn *c, const uint8_t *buf, size_t len);
    long (*recv)(satchel_conn *c, uint8_t *buf, size_t cap);
    /* Wait until readable (and writable when want_write) or timeout_ms.
     * Returns 1 ready, 0 timed out, or SATCHEL_E_IO. */
    int (*wait)(satchel_conn *c, int want_write, uint32_t timeout_ms);
    void (*close)(satchel_conn *c);

    /* Monotonic milliseconds. */
    uint64_t (*now_ms)(void *ctx);
    /* Fill buf with len bytes of cryptographic randomness; 0 or error. */
    int (*entropy)(void *ctx, uint8_t *buf, size_t len);

    /* Version 2.  Let time pass (and the stack run) for ms milliseconds:
     * the back-off between reconnection attempts. */
    void (*sleep_ms)(void *ctx, uint32_t ms);
} satchel_port;

/* The host's port: POSIX sockets, clock_gettime, getrandom.  Static. */
const satchel_port *satchel_port_posix(void);

#ifdef __cplusplus
}
#endif
#endif

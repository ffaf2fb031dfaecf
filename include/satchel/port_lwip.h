/* The "lwip" port: satchel_port over lwIP 2.1.3 (NO_SYS, raw TCP API) running
 * in the caller's thread.  This layer is the TCP glue only and is the same on
 * every target; the link below lwIP plugs in through satchel_lwip_link:
 *
 *   - on the host, libslirp (QEMU-style user networking) behind a link
 *     emulator (boards/host/slirp_link.h, satchel_port_lwip());
 *   - on a board, an Ethernet driver (boards/mps2-an386/lan9118.c).
 *
 * Everything runs in the caller's thread: wait(), open() and sleep_ms() run
 * the event loop (the link's poll, then lwIP's timers).  With
 * SATCHEL_LWIP_TRACE set in the environment (where there is one),
 * connections, cuts and back-off sleeps are logged to stderr. */
#ifndef SATCHEL_PORT_LWIP_H
#define SATCHEL_PORT_LWIP_H

#include <stddef.h>
#include <stdint.h>

#include "satchel/port.h"

#ifdef __cplusplus
extern "C" {
#endif

/* An address to connect to. */
typedef struct satchel_lwip_addr {
    int family;      /* 4 or 6 */
    uint32_t v4;     /* host byte order */
    uint8_t v6[16];  /* network byte order */
} satchel_lwip_addr;

/* What a link supplies.  Every function is required. */
typedef struct satchel_lwip_link {
    void *ctx;
    /* Called once, after lwip_init(): add the netif, make it the default
     * and bring it up (static address, or start DHCP).  Returns 0 or a
     * negative satchel_err. */
    int (*start)(void *ctx);
    /* Hand every received frame to the netif's input, then sleep until a
     * frame arrives or at most max_ms (0: do not sleep). */
    void (*poll)(void *ctx, uint32_t max_ms);
    /* Monotonic milliseconds (also lwIP's sys_now()). */
    uint64_t (*now_ms)(void *ctx);
    /* len bytes of cryptographic randomness: 0 or SATCHEL_E_IO. */
    int (*entropy)(void *ctx, uint8_t *buf, size_t len);
    /* The addresses to try for host, in order, at most max: how a name
     * or a loopback address maps onto the link is the link's business.
     * Returns the count (> 0) or -1. */
    int (*resolve)(void *ctx, const char *host, satchel_lwip_addr *out, int max);
} satchel_lwip_link;

/* Start lwIP over link (copied) and return the port.  The first call
 * starts; later calls return the same port and ignore link (lwIP cannot be
 * started twice).  Returns NULL when link->start fails.  Valid for the life
 * of the program. */
const satchel_port *satchel_port_lwip_start(const satchel_lwip_link *link);

/* Reset the guest's end of one TCP connection, as if the peer had reset it
 * (a link emulator's cut).  family 4 or 6; remote as on the wire (IPv4 in
 * the first 4 bytes).  Returns 1 when a connection matched, else 0. */
int satchel_port_lwip_abort(int family, const uint8_t remote[16],
                            uint16_t remote_port, uint16_t local_port);

#ifdef __cplusplus
}
#endif
#endif

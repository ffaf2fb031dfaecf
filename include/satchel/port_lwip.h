/* The "lwip" port: the same engine over lwIP 2.1.3 (NO_SYS, raw TCP API)
 * running inside the process, attached to the host by libslirp (QEMU-style
 * user networking) through a link emulator that can add delay, a rate
 * limit, loss, stalls and connection cuts.
 *
 * The guest is 10.0.2.15/24 (gateway 10.0.2.2) and fec0::15/64.  slirp
 * forwards its host aliases to the host's loopback: 10.0.2.2 to 127.0.0.1
 * and fec0::2 to ::1.  So 127.0.0.1 (any 127/8 address) goes to 10.0.2.2,
 * ::1 to fec0::2, and "localhost" tries 10.0.2.2 then fec0::2 (as the POSIX
 * port tries each address).  Other literals are used as given; other names
 * are resolved with the host's resolver.
 *
 * Everything runs in the caller's thread: wait(), open() and sleep_ms() run
 * the event loop (slirp's host sockets, lwIP timers, link emulator
 * delivery).  Starting the port sets SIGPIPE to SIG_IGN if it was SIG_DFL
 * (libslirp writes to its host sockets without MSG_NOSIGNAL).  With
 * SATCHEL_LWIP_TRACE set in the environment, connections, cuts and
 * back-off sleeps are logged to stderr. */
#ifndef SATCHEL_PORT_LWIP_H
#define SATCHEL_PORT_LWIP_H

#include <stdint.h>

#include "satchel/port.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Link impairments, applied per direction (guest->host and host->guest)
 * unless said otherwise.  All zero: a perfect link. */
typedef struct satchel_link_config {
    uint32_t rtt_ms;           /* round trip: each direction delays rtt/2 */
    uint64_t rate_bps;         /* bits per second per direction; 0: unlimited */
    uint32_t loss_ppm;         /* random frame loss, parts per million */
    uint64_t cut_after;        /* per TCP connection: payload bytes (both
                                  directions, first transmissions only) after
                                  which the connection is cut; 0: never */
    uint32_t cut_random_bytes; /* adds a per-connection random point in
                                  [0, cut_random_bytes) to cut_after */
    uint32_t stall_ms;         /* once per connection, the link delivers
                                  nothing for stall_ms ... */
    uint64_t stall_after;      /* ... after this many payload bytes */
    uint64_t seed;             /* PRNG seed; 0: pick one at random */
} satchel_link_config;

/* Parse "rtt=300ms,rate=64kbit,loss=1%,cut-after=200KB,cut-random=500KB,
 * stall=5s,stall-after=100KB,seed=42" (any subset, any order; "" or "none"
 * is a perfect link).  Units: ms, s (bare number: ms); bit, kbit, mbit,
 * gbit (decimal: 1kbit = 1000 bit/s; bare number: bit/s); B, KB, MB, GB
 * (binary: 1KB = 1024 bytes; bare number: bytes); % or ppm for loss.
 * Decimal fractions are accepted ("loss=0.5%", "rtt=1.5s").  Fields not in
 * spec are zero.  Returns 0 or SATCHEL_E_INVAL. */
int satchel_link_parse(const char *spec, satchel_link_config *out);

/* The lwIP+slirp port.  The first call starts lwIP and slirp with link
 * (NULL: a perfect link) and prints the link seed to stderr once
 * ("link: seed N"); later calls return the same port and ignore link.
 * Returns NULL on failure.  Valid for the life of the process. */
const satchel_port *satchel_port_lwip(const satchel_link_config *link);

#ifdef __cplusplus
}
#endif
#endif

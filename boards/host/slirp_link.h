/* The simulator's network: libslirp (the host side, QEMU-style user
 * networking) joined to the guest stack (lwIP, port/lwip) by a link
 * emulator.  satchel_port_lwip() is the lwIP port over this link.
 *
 * The guest is 10.0.2.15/24 (gateway 10.0.2.2) and fec0::15/64.  slirp
 * forwards its host aliases to the host's loopback: 10.0.2.2 to 127.0.0.1
 * and fec0::2 to ::1.  So 127.0.0.1 (any 127/8 address) goes to 10.0.2.2,
 * ::1 to fec0::2, and "localhost" tries 10.0.2.2 then fec0::2 (as the POSIX
 * port tries each address).  Other literals are used as given; other names
 * are resolved with the host's resolver.  Starting the port sets SIGPIPE to
 * SIG_IGN if it was SIG_DFL (libslirp writes to its host sockets without
 * MSG_NOSIGNAL).
 *
 * The emulator core (satchel_link_emu_*) is plain C with no I/O: frames go
 * in with a timestamp and come out when due, so it is testable with a fake
 * clock (tests/unit/test_link.c).  The slirp glue (satchel_slirp_link_*)
 * drives it with the monotonic clock and poll().  Single-threaded. */
#ifndef SATCHEL_SLIRP_LINK_H
#define SATCHEL_SLIRP_LINK_H

#include <stddef.h>
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

/* The lwIP port over slirp (boards/host/lwip_slirp.c).  The first call
 * starts lwIP and slirp with link (NULL: a perfect link) and prints the
 * link seed to stderr once ("link: seed N"); later calls return the same
 * port and ignore link.  Returns NULL on failure.  Valid for the life of
 * the process. */
const satchel_port *satchel_port_lwip(const satchel_link_config *link);

/* Directions. */
#define SATCHEL_LINK_UP 0   /* guest (lwIP) -> host (slirp) */
#define SATCHEL_LINK_DOWN 1 /* host (slirp) -> guest (lwIP) */

/* Largest frame carried (Ethernet header + 1500 MTU, with room to spare);
 * longer frames are dropped. */
#define SATCHEL_LINK_MAX_FRAME 1600u
/* Router buffer: frames waiting for the serializer, per direction.  A frame
 * arriving when this many wait is dropped (tail drop). */
#define SATCHEL_LINK_QUEUE_FRAMES 128u
/* Hard cap on frames held per direction (waiting + in propagation). */
#define SATCHEL_LINK_MAX_HELD 2048u
/* TCP connections tracked at once (least recently used is forgotten). */
#define SATCHEL_LINK_MAX_CONNS 32u

/* What push() did with a frame. */
#define SATCHEL_LINK_QUEUED 0
#define SATCHEL_LINK_LOST 1     /* random loss */
#define SATCHEL_LINK_FULL 2     /* router buffer full (or hard cap) */
#define SATCHEL_LINK_CUT 3      /* its connection is cut */
#define SATCHEL_LINK_TOOBIG 4   /* longer than SATCHEL_LINK_MAX_FRAME */
#define SATCHEL_LINK_NOMEM 5

/* What pop() returns. */
#define SATCHEL_LINK_EV_FRAME 1 /* a frame, copied to the caller's buffer */
#define SATCHEL_LINK_EV_CUT 2   /* a connection was cut here: reset the
                                   guest's end of it (tcp_abort) */

typedef struct satchel_link_event {
    int kind;
    size_t len; /* frame bytes (EV_FRAME) */
    /* EV_CUT: the connection.  family 4 or 6; addresses as on the wire
     * (IPv4 in the first 4 bytes), and for IPv4 also in host byte order. */
    int family;
    uint8_t guest_addr[16], remote_addr[16];
    uint32_t guest_ip, remote_ip;
    uint16_t guest_port, remote_port;
    uint32_t conn_index; /* 0, 1, ... in order of first sight */
} satchel_link_event;

typedef struct satchel_link_stats {
    uint64_t frames_in[2], frames_out[2], bytes_out[2];
    uint64_t lost[2], full[2], cut_dropped[2];
    uint32_t conns; /* connections seen */
    uint32_t cuts;
    uint32_t stalls;
} satchel_link_stats;

typedef struct satchel_link_emu satchel_link_emu;

/* cfg is copied; cfg->seed is used as given (0 is a valid seed here).
 * NULL cfg: a perfect link.  Returns NULL when out of memory. */
satchel_link_emu *satchel_link_emu_new(const satchel_link_config *cfg);
void satchel_link_emu_free(satchel_link_emu *e);

/* A frame enters the link in direction dir at now_ns.  Returns one of
 * SATCHEL_LINK_QUEUED .. SATCHEL_LINK_NOMEM. */
int satchel_link_emu_push(satchel_link_emu *e, int dir, const uint8_t *frame,
                          size_t len, uint64_t now_ns);

/* Take the next event due at or before now_ns in direction dir.  Returns 1
 * with *ev filled (and the frame in buf when EV_FRAME; a frame longer than
 * cap is truncated to cap, ev->len tells the full length), or 0 when
 * nothing is due. */
int satchel_link_emu_pop(satchel_link_emu *e, int dir, uint64_t now_ns,
                         uint8_t *buf, size_t cap, satchel_link_event *ev);

/* When pop() next has something, either direction: an absolute time in ns
 * (<= now_ns: now), or UINT64_MAX when the link is empty. */
uint64_t satchel_link_emu_next_due(const satchel_link_emu *e, uint64_t now_ns);

/* Frames held in direction dir (waiting, in propagation, or cut markers). */
size_t satchel_link_emu_held(const satchel_link_emu *e, int dir);

void satchel_link_emu_stats(const satchel_link_emu *e, satchel_link_stats *out);

/* The cut point (payload bytes) of the conn_index-th connection under cfg,
 * or UINT64_MAX when cfg cuts nothing.  Depends only on cfg and the index. */
uint64_t satchel_link_emu_cut_point(const satchel_link_config *cfg,
                                    uint32_t conn_index);

/* ---- slirp glue (not in the emulator-only build) ---- */

typedef struct satchel_slirp_link satchel_slirp_link;

typedef struct satchel_slirp_link_cb {
    /* A frame for the guest (to lwIP's netif input). */
    void (*deliver)(void *ctx, const uint8_t *frame, size_t len);
    /* A connection was cut: the guest must see a reset. */
    void (*cut)(void *ctx, const satchel_link_event *ev);
    void *ctx;
} satchel_slirp_link_cb;

/* Start slirp (network 10.0.2.0/24, host alias 10.0.2.2, guest 10.0.2.15;
 * IPv6 prefix fec0::/64, host alias fec0::2, guest fec0::15; no DHCP, no
 * DNS) behind a link emulator configured by cfg
 * (seed used as given).  Returns NULL on failure. */
satchel_slirp_link *satchel_slirp_link_new(const satchel_link_config *cfg,
                                           const satchel_slirp_link_cb *cb);
void satchel_slirp_link_free(satchel_slirp_link *l);

/* A frame from the guest. */
void satchel_slirp_link_output(satchel_slirp_link *l, const uint8_t *frame,
                               size_t len);

/* One turn of the event loop: deliver what is due, sleep in poll() on
 * slirp's host sockets for at most timeout_ms (less when a slirp timer or
 * an emulated frame is due earlier), let slirp handle its sockets and
 * timers, deliver what became due.  Returns 0, or -1 if poll() failed. */
int satchel_slirp_link_poll(satchel_slirp_link *l, uint32_t timeout_ms);

/* The emulator inside (for statistics). */
satchel_link_emu *satchel_slirp_link_emu(satchel_slirp_link *l);

/* Statistics of the link emulator inside satchel_port_lwip() (zeros before
 * the port started). */
void satchel_port_lwip_link_stats(satchel_link_stats *out);

/* The monotonic clock the glue uses, in ns. */
uint64_t satchel_slirp_link_now_ns(void);

#ifdef __cplusplus
}
#endif
#endif

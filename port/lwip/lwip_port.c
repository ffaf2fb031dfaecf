/* The "lwip" port: satchel_port over lwIP's raw TCP API (NO_SYS=1).  The
 * link below lwIP (a netif and its poll) is the caller's: libslirp on the
 * host, an Ethernet driver on a board.  Single-threaded: wait() and open()
 * run the event loop in the caller's thread. */
#include "satchel/port_lwip.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lwip/init.h"
#include "lwip/ip4_addr.h"
#include "lwip/ip6_addr.h"
#include "lwip/netif.h"
#include "lwip/pbuf.h"
#include "lwip/priv/tcp_priv.h"
#include "lwip/sys.h"
#include "lwip/tcp.h"
#include "lwip/timeouts.h"

struct satchel_conn {
    struct tcp_pcb *pcb; /* NULL once lwIP freed it (reset, abort) */
    struct pbuf *rx;     /* received, not yet read */
    int connected;
    int eof;             /* the peer sent FIN */
    int err;             /* 0, or SATCHEL_E_IO after a reset/abort/cut */
    int mem_blocked;     /* tcp_write ran out of memory: wait for an ACK */
    struct satchel_conn *next;
};

static struct {
    int started, failed;
    int trace;           /* SATCHEL_LWIP_TRACE set: log connections */
    uint64_t t0;
    satchel_port port;
    satchel_lwip_link link;
    struct satchel_conn *conns;
} g;

static uint64_t now_ms(void)
{
    return g.link.now_ms(g.link.ctx);
}

/* lwIP's clock: wraps after 49 days, which lwIP's timers handle. */
u32_t sys_now(void)
{
    return g.started || g.failed ? (u32_t)now_ms() : 0;
}

uint32_t satchel_lwip_rand(void)
{
    uint32_t r = 0;
    if (g.link.entropy(g.link.ctx, (uint8_t *)&r, sizeof r) < 0)
        r = (uint32_t)now_ms() * 2654435761u;
    return r;
}

static void trace(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

static void trace(const char *fmt, ...)
{
    va_list ap;
    if (!g.trace)
        return;
    va_start(ap, fmt);
    fprintf(stderr, "lwip %7.3f ", (double)(now_ms() - g.t0) / 1000.0);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

int satchel_port_lwip_abort(int family, const uint8_t remote[16],
                            uint16_t remote_port, uint16_t local_port)
{
    struct tcp_pcb *pcb;
    for (pcb = tcp_active_pcbs; pcb; pcb = pcb->next) {
        int match;
        if (pcb->local_port != local_port || pcb->remote_port != remote_port)
            continue;
        if (family == 4)
            match = IP_IS_V4_VAL(pcb->remote_ip) &&
                    memcmp(&ip_2_ip4(&pcb->remote_ip)->addr, remote, 4) == 0;
        else
#if LWIP_IPV6
            match = IP_IS_V6_VAL(pcb->remote_ip) &&
                    memcmp(ip_2_ip6(&pcb->remote_ip)->addr, remote, 16) == 0;
#else
            match = 0;
#endif
        if (match) {
            trace("cut: connection from port %u, resetting it", (unsigned)local_port);
            tcp_abort(pcb); /* err callback: the conn reports SATCHEL_E_IO */
            return 1;
        }
    }
    return 0;
}

/* One turn of the event loop, sleeping at most max_ms. */
static void pump(uint32_t max_ms)
{
    uint32_t t;
    sys_check_timeouts();
    t = sys_timeouts_sleeptime();
    if (t < max_ms)
        max_ms = t;
    g.link.poll(g.link.ctx, max_ms);
    sys_check_timeouts();
}

/* ---- TCP callbacks ---- */

static err_t on_recv(void *arg, struct tcp_pcb *pcb, struct pbuf *p, err_t err)
{
    struct satchel_conn *c = arg;
    if (!c) { /* closed by the app: discard */
        if (p) {
            tcp_recved(pcb, p->tot_len);
            pbuf_free(p);
        }
        return ERR_OK;
    }
    if (!p) {
        c->eof = 1;
        trace("peer closed (FIN)");
        return ERR_OK;
    }
    if (err != ERR_OK) {
        pbuf_free(p);
        return err;
    }
    if (c->rx)
        pbuf_cat(c->rx, p);
    else
        c->rx = p;
    return ERR_OK;
}

static err_t on_sent(void *arg, struct tcp_pcb *pcb, u16_t len)
{
    struct satchel_conn *c = arg;
    (void)pcb;
    (void)len;
    if (c)
        c->mem_blocked = 0;
    return ERR_OK;
}

static void on_err(void *arg, err_t err)
{
    struct satchel_conn *c = arg;
    if (!c)
        return;
    /* ERR_ABRT, ERR_RST, ERR_CLSD: all a lost connection */
    trace("connection lost (lwIP error %d)", (int)err);
    c->pcb = NULL; /* already freed by lwIP */
    c->err = SATCHEL_E_IO;
}

static err_t on_connected(void *arg, struct tcp_pcb *pcb, err_t err)
{
    struct satchel_conn *c = arg;
    (void)pcb;
    if (c && err == ERR_OK)
        c->connected = 1;
    return ERR_OK;
}

/* ---- the port ---- */

static uint64_t lw_now_ms(void *ctx)
{
    (void)ctx;
    return now_ms();
}

static int lw_entropy(void *ctx, uint8_t *buf, size_t len)
{
    (void)ctx;
    return g.link.entropy(g.link.ctx, buf, len) == 0 ? 0 : SATCHEL_E_IO;
}

/* The netif has an address to send from: a board's DHCP may still be
 * running when the first connection is asked for. */
static int netif_ready(const satchel_lwip_addr *a)
{
    struct netif *n = netif_default;
    if (!n || !netif_is_up(n) || !netif_is_link_up(n))
        return 0;
#if LWIP_IPV4
    if (a->family == 4)
        return !ip4_addr_isany_val(*netif_ip4_addr(n));
#endif
    (void)a;
    return 1;
}

static void conn_unlink(struct satchel_conn *c)
{
    struct satchel_conn **pp;
    for (pp = &g.conns; *pp; pp = &(*pp)->next) {
        if (*pp == c) {
            *pp = c->next;
            return;
        }
    }
}

static void conn_release(struct satchel_conn *c)
{
    conn_unlink(c);
    if (c->pcb) {
        struct tcp_pcb *pcb = c->pcb;
        tcp_arg(pcb, NULL);
        tcp_recv(pcb, NULL);
        tcp_sent(pcb, NULL);
        tcp_err(pcb, NULL);
        c->pcb = NULL;
        /* Unread data would make lwIP answer the close with a reset:
         * count it as read so the close is an orderly FIN. */
        if (c->rx)
            tcp_recved(pcb, c->rx->tot_len);
        if (tcp_close(pcb) != ERR_OK)
            tcp_abort(pcb);
    }
    if (c->rx)
        pbuf_free(c->rx);
    free(c);
}

/* One connection attempt: 0 (connected, *out set), SATCHEL_E_IO (refused,
 * reset, unreachable), SATCHEL_E_TIMEOUT or SATCHEL_E_NOMEM. */
static int connect_one(const satchel_lwip_addr *a, uint16_t port,
                       uint64_t deadline, struct satchel_conn **out)
{
    struct satchel_conn *c;
    struct tcp_pcb *pcb;
    ip_addr_t addr;
    err_t e;

    while (!netif_ready(a)) {
        uint64_t now = now_ms();
        if (now >= deadline)
            return SATCHEL_E_TIMEOUT;
        pump((uint32_t)(deadline - now > 0x7fffffff ? 0x7fffffff : deadline - now));
    }
    c = calloc(1, sizeof *c);
    if (!c)
        return SATCHEL_E_NOMEM;
    if (a->family == 4) {
        ip_addr_set_ip4_u32_val(addr, lwip_htonl(a->v4));
        pcb = tcp_new_ip_type(IPADDR_TYPE_V4);
    } else {
#if LWIP_IPV6
        u32_t w[4];
        memcpy(w, a->v6, 16);
        IP_ADDR6(&addr, w[0], w[1], w[2], w[3]);
        pcb = tcp_new_ip_type(IPADDR_TYPE_V6);
#else
        free(c);
        return SATCHEL_E_IO; /* no IPv6 on this board */
#endif
    }
    if (!pcb) {
        free(c);
        return SATCHEL_E_NOMEM;
    }
    c->pcb = pcb;
    c->next = g.conns;
    g.conns = c;
    tcp_arg(pcb, c);
    tcp_recv(pcb, on_recv);
    tcp_sent(pcb, on_sent);
    tcp_err(pcb, on_err);
    /* Commands are small and latency-bound: no Nagle (as TCP_NODELAY). */
    tcp_nagle_disable(pcb);
    e = tcp_connect(pcb, &addr, port, on_connected);
    if (e != ERR_OK) {
        conn_release(c);
        return e == ERR_MEM ? SATCHEL_E_NOMEM : SATCHEL_E_IO;
    }
    for (;;) {
        uint64_t now;
        if (c->connected && !c->err) {
            trace("connected to port %u from port %u", (unsigned)port,
                  (unsigned)pcb->local_port);
            *out = c;
            return 0;
        }
        if (c->err) {
            conn_release(c);
            return SATCHEL_E_IO;
        }
        now = now_ms();
        if (now >= deadline) {
            conn_release(c); /* closing a SYN_SENT pcb just frees it */
            return SATCHEL_E_TIMEOUT;
        }
        pump((uint32_t)(deadline - now > 0x7fffffff ? 0x7fffffff : deadline - now));
    }
}

static int lw_open(void *ctx, const char *host, uint16_t port,
                   uint32_t timeout_ms, satchel_conn **out)
{
    uint64_t deadline = now_ms() + timeout_ms;
    satchel_lwip_addr addrs[8];
    int n, i, rc = SATCHEL_E_IO;
    (void)ctx;

    *out = NULL;
    n = g.link.resolve(g.link.ctx, host, addrs, 8);
    /* Try every address, like the POSIX port ("localhost" is both). */
    for (i = 0; i < n; i++) {
        rc = connect_one(&addrs[i], port, deadline, out);
        if (rc == 0 || rc == SATCHEL_E_TIMEOUT || rc == SATCHEL_E_NOMEM)
            return rc;
    }
    return rc;
}

static int writable(const struct satchel_conn *c)
{
    return !c->pcb || c->err ||
           (!c->mem_blocked && tcp_sndbuf(c->pcb) > 0 &&
            tcp_sndqueuelen(c->pcb) < TCP_SND_QUEUELEN);
}

static long lw_send(satchel_conn *c, const uint8_t *buf, size_t len)
{
    size_t n;
    err_t e;
    if (c->err)
        return c->err;
    if (!c->pcb)
        return SATCHEL_E_IO;
    if (len == 0)
        return 0;
    if (!writable(c)) {
        tcp_output(c->pcb);
        return SATCHEL_E_AGAIN;
    }
    n = tcp_sndbuf(c->pcb);
    if (n > len)
        n = len;
    if (n > 0xffff)
        n = 0xffff;
    for (;;) {
        e = tcp_write(c->pcb, buf, (u16_t)n, TCP_WRITE_FLAG_COPY);
        if (e != ERR_MEM || n <= 1)
            break;
        n /= 2;
    }
    if (e == ERR_MEM) {
        c->mem_blocked = tcp_sndqueuelen(c->pcb) > 0; /* an ACK will free */
        tcp_output(c->pcb);
        return SATCHEL_E_AGAIN;
    }
    if (e != ERR_OK)
        return SATCHEL_E_IO;
    tcp_output(c->pcb);
    return (long)n;
}

static long lw_recv(satchel_conn *c, uint8_t *buf, size_t cap)
{
    if (c->rx && cap > 0) {
        u16_t n = c->rx->tot_len;
        if (cap < n)
            n = (u16_t)cap;
        n = pbuf_copy_partial(c->rx, buf, n, 0);
        c->rx = pbuf_free_header(c->rx, n);
        if (c->pcb)
            tcp_recved(c->pcb, n);
        return (long)n;
    }
    if (c->err)
        return c->err;
    if (c->eof)
        return 0;
    if (!c->pcb)
        return SATCHEL_E_IO;
    return SATCHEL_E_AGAIN;
}

static int readable(const struct satchel_conn *c)
{
    return c->rx || c->eof || c->err || !c->pcb;
}

static int lw_wait(satchel_conn *c, int want_write, uint32_t timeout_ms)
{
    uint64_t deadline = now_ms() + timeout_ms;
    int turns = 0;
    for (;;) {
        uint64_t now;
        if (want_write ? writable(c) : readable(c))
            return 1;
        now = now_ms();
        /* Even with no time left, let the stack run once: nothing moves
         * between calls, so a zero timeout must still make progress. */
        if (now >= deadline && turns > 0)
            return 0;
        pump(now >= deadline ? 0
                             : (uint32_t)(deadline - now > 0x7fffffff ? 0x7fffffff
                                                                      : deadline - now));
        turns++;
    }
}

/* Back-off between reconnections: time passes for the stack too (timers,
 * retransmissions, the link emulator, slirp's sockets). */
static void lw_sleep_ms(void *ctx, uint32_t ms)
{
    uint64_t deadline = now_ms() + ms;
    (void)ctx;
    trace("sleep %u ms", (unsigned)ms);
    for (;;) {
        uint64_t now = now_ms();
        if (now >= deadline)
            break;
        pump((uint32_t)(deadline - now));
    }
}

static void lw_close(satchel_conn *c)
{
    if (!c)
        return;
    trace("close%s", c->err ? " (after an error)" : c->eof ? " (after EOF)" : "");
    conn_release(c);
    pump(0); /* send what is already due (the FIN on a fast link) */
}

const satchel_port *satchel_port_lwip_start(const satchel_lwip_link *link)
{
    if (g.started)
        return &g.port;
    if (g.failed || !link)
        return NULL;
    g.failed = 1; /* until the end: lwIP cannot be started twice */
    g.link = *link;
    g.trace = getenv("SATCHEL_LWIP_TRACE") != NULL;
    g.t0 = now_ms();
    lwip_init();
    if (g.link.start(g.link.ctx) < 0)
        return NULL;
    g.port.version = 2; /* every field up to sleep_ms */
    g.port.name = "lwip";
    g.port.ctx = NULL;
    g.port.open = lw_open;
    g.port.send = lw_send;
    g.port.recv = lw_recv;
    g.port.wait = lw_wait;
    g.port.close = lw_close;
    g.port.now_ms = lw_now_ms;
    g.port.entropy = lw_entropy;
    g.port.sleep_ms = lw_sleep_ms;
    g.started = 1;
    g.failed = 0;
    return &g.port;
}

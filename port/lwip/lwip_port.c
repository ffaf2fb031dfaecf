/* The "lwip" port: satchel_port over lwIP's raw TCP API (NO_SYS=1), with
 * an Ethernet netif whose frames go through the link emulator to libslirp,
 * which connects to the host (boards/host/slirp_link.c).  Single-threaded:
 * wait() and open() run the event loop in the caller's thread. */
#include "satchel/port_lwip.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lwip/etharp.h"
#include "lwip/ethip6.h"
#include "lwip/init.h"
#include "lwip/ip4_addr.h"
#include "lwip/ip6_addr.h"
#include "lwip/netif.h"
#include "lwip/pbuf.h"
#include "lwip/priv/tcp_priv.h"
#include "lwip/tcp.h"
#include "lwip/timeouts.h"
#include "netif/ethernet.h"

#include "lwip_host.h"
#include "slirp_link.h"

/* slirp's network: the guest, its gateway and the host alias; for IPv6
 * the guest is fec0::15/64 and the host fec0::2 (SATCHEL_LWIP_HOST6_LAST). */
#define GUEST_IP 0x0a00020fu /* 10.0.2.15 */
#define HOST_ALIAS SATCHEL_LWIP_HOST4 /* 10.0.2.2 */
#define NETMASK 0xffffff00u
#define GUEST6_LAST 0x15u

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
    struct netif netif;
    satchel_slirp_link *link;
    satchel_link_config cfg;
    struct satchel_conn *conns;
    uint8_t txbuf[SATCHEL_LINK_MAX_FRAME];
} g;

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
    fprintf(stderr, "lwip %7.3f ", (double)(satchel_lwip_now_ms() - g.t0) / 1000.0);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* ---- netif ---- */

static err_t netif_linkoutput(struct netif *n, struct pbuf *p)
{
    u16_t len;
    (void)n;
    if (p->tot_len > sizeof g.txbuf)
        return ERR_IF;
    len = pbuf_copy_partial(p, g.txbuf, p->tot_len, 0);
    satchel_slirp_link_output(g.link, g.txbuf, len);
    return ERR_OK;
}

static err_t netif_setup(struct netif *n)
{
    static const u8_t mac[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
    n->name[0] = 's';
    n->name[1] = 'l';
    n->output = etharp_output;
    n->output_ip6 = ethip6_output;
    n->linkoutput = netif_linkoutput;
    n->mtu = 1500;
    n->hwaddr_len = ETH_HWADDR_LEN;
    memcpy(n->hwaddr, mac, sizeof mac);
    n->flags = NETIF_FLAG_BROADCAST | NETIF_FLAG_ETHARP | NETIF_FLAG_ETHERNET |
               NETIF_FLAG_LINK_UP;
    return ERR_OK;
}

/* A frame from slirp, through the link emulator. */
static void link_deliver(void *ctx, const uint8_t *frame, size_t len)
{
    struct pbuf *p;
    (void)ctx;
    if (len > 0xffff)
        return;
    p = pbuf_alloc(PBUF_RAW, (u16_t)len, PBUF_POOL);
    if (!p)
        return; /* out of buffers: dropped, TCP retransmits */
    if (pbuf_take(p, frame, (u16_t)len) != ERR_OK ||
        g.netif.input(p, &g.netif) != ERR_OK)
        pbuf_free(p);
}

static int pcb_matches(const struct tcp_pcb *pcb, const satchel_link_event *ev)
{
    if (pcb->local_port != ev->guest_port || pcb->remote_port != ev->remote_port)
        return 0;
    if (ev->family == 4)
        return IP_IS_V4_VAL(pcb->remote_ip) &&
               memcmp(&ip_2_ip4(&pcb->remote_ip)->addr, ev->remote_addr, 4) == 0;
    return IP_IS_V6_VAL(pcb->remote_ip) &&
           memcmp(ip_2_ip6(&pcb->remote_ip)->addr, ev->remote_addr, 16) == 0;
}

/* The link emulator cut a connection: the guest's end sees a reset. */
static void link_cut(void *ctx, const satchel_link_event *ev)
{
    struct tcp_pcb *pcb;
    (void)ctx;
    for (pcb = tcp_active_pcbs; pcb; pcb = pcb->next) {
        if (pcb_matches(pcb, ev)) {
            trace("cut: connection %u (port %u), resetting it",
                  (unsigned)ev->conn_index, (unsigned)ev->guest_port);
            tcp_abort(pcb); /* err callback: the conn reports SATCHEL_E_IO */
            return;
        }
    }
}

/* One turn of the event loop, sleeping at most max_ms. */
static void pump(uint32_t max_ms)
{
    uint32_t t;
    sys_check_timeouts();
    t = sys_timeouts_sleeptime();
    if (t < max_ms)
        max_ms = t;
    satchel_slirp_link_poll(g.link, max_ms);
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
    return satchel_lwip_now_ms();
}

static int lw_entropy(void *ctx, uint8_t *buf, size_t len)
{
    (void)ctx;
    return satchel_lwip_entropy(buf, len) == 0 ? 0 : SATCHEL_E_IO;
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

    c = calloc(1, sizeof *c);
    if (!c)
        return SATCHEL_E_NOMEM;
    if (a->family == 4) {
        ip_addr_set_ip4_u32_val(addr, lwip_htonl(a->v4));
        pcb = tcp_new_ip_type(IPADDR_TYPE_V4);
    } else {
        u32_t w[4];
        memcpy(w, a->v6, 16);
        IP_ADDR6(&addr, w[0], w[1], w[2], w[3]);
        pcb = tcp_new_ip_type(IPADDR_TYPE_V6);
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
        now = satchel_lwip_now_ms();
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
    uint64_t deadline = satchel_lwip_now_ms() + timeout_ms;
    satchel_lwip_addr addrs[8];
    int n, i, rc = SATCHEL_E_IO;
    (void)ctx;

    *out = NULL;
    n = satchel_lwip_resolve(host, addrs, 8);
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
    uint64_t deadline = satchel_lwip_now_ms() + timeout_ms;
    int turns = 0;
    for (;;) {
        uint64_t now;
        if (want_write ? writable(c) : readable(c))
            return 1;
        now = satchel_lwip_now_ms();
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
    uint64_t deadline = satchel_lwip_now_ms() + ms;
    (void)ctx;
    trace("sleep %u ms", (unsigned)ms);
    for (;;) {
        uint64_t now = satchel_lwip_now_ms();
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

void satchel_port_lwip_link_stats(satchel_link_stats *out)
{
    if (g.link)
        satchel_link_emu_stats(satchel_slirp_link_emu(g.link), out);
    else
        memset(out, 0, sizeof *out);
}

const satchel_port *satchel_port_lwip(const satchel_link_config *link)
{
    static const satchel_slirp_link_cb cb = {link_deliver, link_cut, NULL};
    ip4_addr_t ip, mask, gw;

    if (g.started)
        return &g.port;
    if (g.failed)
        return NULL;
    g.failed = 1; /* until the end: lwIP cannot be started twice */
    g.trace = getenv("SATCHEL_LWIP_TRACE") != NULL;
    g.t0 = satchel_lwip_now_ms();
    if (link)
        g.cfg = *link;
    while (g.cfg.seed == 0) {
        if (satchel_lwip_entropy((uint8_t *)&g.cfg.seed, sizeof g.cfg.seed) < 0)
            return NULL;
    }
    fprintf(stderr, "link: seed %llu\n", (unsigned long long)g.cfg.seed);
    satchel_lwip_ignore_sigpipe();
    lwip_init();
    g.link = satchel_slirp_link_new(&g.cfg, &cb);
    if (!g.link) {
        fprintf(stderr, "link: cannot start slirp\n");
        return NULL;
    }
    ip4_addr_set_u32(&ip, lwip_htonl(GUEST_IP));
    ip4_addr_set_u32(&mask, lwip_htonl(NETMASK));
    ip4_addr_set_u32(&gw, lwip_htonl(HOST_ALIAS));
    if (!netif_add(&g.netif, &ip, &mask, &gw, NULL, netif_setup, ethernet_input)) {
        satchel_slirp_link_free(g.link);
        g.link = NULL;
        return NULL;
    }
    netif_set_default(&g.netif);
    netif_set_up(&g.netif);
    netif_set_link_up(&g.netif);
    {
        ip6_addr_t a6;
        s8_t idx;
        netif_create_ip6_linklocal_address(&g.netif, 1);
        netif_ip6_addr_set_state(&g.netif, 0, IP6_ADDR_PREFERRED);
        IP6_ADDR(&a6, PP_HTONL(0xfec00000u), 0, 0, PP_HTONL(GUEST6_LAST));
        if (netif_add_ip6_address(&g.netif, &a6, &idx) == ERR_OK)
            netif_ip6_addr_set_state(&g.netif, idx, IP6_ADDR_PREFERRED);
    }
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

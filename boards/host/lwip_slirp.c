/* The host's link below the shared lwIP port: an Ethernet netif whose
 * frames go through the link emulator to libslirp, which connects to the
 * host's sockets.  Also the host's name resolution; the clock and entropy
 * are the POSIX port's. */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "lwip/etharp.h"
#include "lwip/ethip6.h"
#include "lwip/ip4_addr.h"
#include "lwip/ip6_addr.h"
#include "lwip/netif.h"
#include "lwip/pbuf.h"
#include "netif/ethernet.h"

#include "satchel/ascii.h"
#include "satchel/port_lwip.h"
#include "satchel/port_posix.h"
#include "slirp_link.h"

/* slirp's network: the guest, its gateway and host alias 10.0.2.2 (the
 * host's 127.0.0.1); for IPv6 the guest is fec0::15/64 and the host alias
 * fec0::2 (the host's ::1). */
#define GUEST_IP 0x0a00020fu
#define HOST4 0x0a000202u
#define NETMASK 0xffffff00u
#define GUEST6_LAST 0x15u
#define HOST6_LAST 0x02u

static struct {
    struct netif netif;
    satchel_slirp_link *link;
    satchel_link_config cfg;
    uint8_t txbuf[SATCHEL_LINK_MAX_FRAME];
} h;

/* ---- name resolution: loopback becomes slirp's host alias ---- */

static int is_loopback4(uint32_t ip)
{
    return (ip >> 24) == 127;
}

static void set4(satchel_lwip_addr *a, uint32_t ip)
{
    memset(a, 0, sizeof *a);
    a->family = 4;
    a->v4 = is_loopback4(ip) ? HOST4 : ip;
}

static void set6(satchel_lwip_addr *a, const struct in6_addr *in)
{
    memset(a, 0, sizeof *a);
    if (IN6_IS_ADDR_V4MAPPED(in)) {
        uint32_t ip = (uint32_t)in->s6_addr[12] << 24 | (uint32_t)in->s6_addr[13] << 16 |
                      (uint32_t)in->s6_addr[14] << 8 | in->s6_addr[15];
        set4(a, ip);
        return;
    }
    a->family = 6;
    if (IN6_IS_ADDR_LOOPBACK(in)) {
        a->v6[0] = 0xfe;
        a->v6[1] = 0xc0;
        a->v6[15] = HOST6_LAST;
    } else {
        memcpy(a->v6, in->s6_addr, 16);
    }
}

static int add_unique(satchel_lwip_addr *out, int n, int max,
                      const satchel_lwip_addr *a)
{
    int i;
    if (n >= max)
        return n;
    for (i = 0; i < n; i++)
        if (out[i].family == a->family && out[i].v4 == a->v4 &&
            memcmp(out[i].v6, a->v6, 16) == 0)
            return n;
    out[n] = *a;
    return n + 1;
}

/* 127/8 -> 10.0.2.2, ::1 -> fec0::2, "localhost" -> both, IPv4 first;
 * other literals as given; other names through the host's resolver. */
static int host_resolve(void *ctx, const char *host, satchel_lwip_addr *out, int max)
{
    struct in_addr a4;
    struct in6_addr a6;
    struct addrinfo hints, *res = NULL, *ai;
    satchel_lwip_addr a;
    char buf[64];
    size_t len;
    int n = 0;

    (void)ctx;
    if (!host || !*host || max <= 0)
        return -1;
    len = strlen(host);
    /* "[::1]" as well as "::1" */
    if (host[0] == '[' && len > 2 && len < sizeof buf && host[len - 1] == ']') {
        memcpy(buf, host + 1, len - 2);
        buf[len - 2] = '\0';
        host = buf;
        len -= 2;
    }
    if (satchel_ascii_ieq(host, len, "localhost") || satchel_ascii_ieq(host, len, "localhost.")) {
        set4(&a, 0x7f000001u);
        n = add_unique(out, n, max, &a);
        set6(&a, &in6addr_loopback);
        return add_unique(out, n, max, &a);
    }
    if (satchel_ascii_ieq(host, len, "ip6-localhost")) {
        set6(&a, &in6addr_loopback);
        return add_unique(out, n, max, &a);
    }
    if (inet_pton(AF_INET, host, &a4) == 1) {
        set4(&a, ntohl(a4.s_addr));
        return add_unique(out, n, max, &a);
    }
    if (inet_pton(AF_INET6, host, &a6) == 1) {
        set6(&a, &a6);
        return add_unique(out, n, max, &a);
    }
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, NULL, &hints, &res) != 0)
        return -1;
    for (ai = res; ai; ai = ai->ai_next) {
        if (ai->ai_family == AF_INET) {
            const struct sockaddr_in *sin = (const void *)ai->ai_addr;
            set4(&a, ntohl(sin->sin_addr.s_addr));
        } else if (ai->ai_family == AF_INET6) {
            const struct sockaddr_in6 *sin6 = (const void *)ai->ai_addr;
            set6(&a, &sin6->sin6_addr);
        } else {
            continue;
        }
        n = add_unique(out, n, max, &a);
    }
    freeaddrinfo(res);
    return n > 0 ? n : -1;
}

/* ---- the netif over slirp ---- */

static err_t netif_linkoutput(struct netif *n, struct pbuf *p)
{
    u16_t len;
    (void)n;
    if (p->tot_len > sizeof h.txbuf)
        return ERR_IF;
    len = pbuf_copy_partial(p, h.txbuf, p->tot_len, 0);
    satchel_slirp_link_output(h.link, h.txbuf, len);
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
        h.netif.input(p, &h.netif) != ERR_OK)
        pbuf_free(p);
}

/* The link emulator cut a connection: the guest's end sees a reset. */
static void link_cut(void *ctx, const satchel_link_event *ev)
{
    (void)ctx;
    satchel_port_lwip_abort(ev->family, ev->remote_addr, ev->remote_port,
                            ev->guest_port);
}

/* libslirp writes to host sockets without MSG_NOSIGNAL and expects the
 * application to ignore SIGPIPE (QEMU does): a server closing first would
 * otherwise kill the process. */
static void ignore_sigpipe(void)
{
    struct sigaction sa;
    if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL) {
        sa.sa_handler = SIG_IGN;
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = 0;
        sigaction(SIGPIPE, &sa, NULL);
    }
}

static int host_start(void *ctx)
{
    static const satchel_slirp_link_cb cb = {link_deliver, link_cut, NULL};
    ip4_addr_t ip, mask, gw;
    ip6_addr_t a6;
    s8_t idx;

    (void)ctx;
    ignore_sigpipe();
    h.link = satchel_slirp_link_new(&h.cfg, &cb);
    if (!h.link) {
        fprintf(stderr, "link: cannot start slirp\n");
        return SATCHEL_E_IO;
    }
    ip4_addr_set_u32(&ip, lwip_htonl(GUEST_IP));
    ip4_addr_set_u32(&mask, lwip_htonl(NETMASK));
    ip4_addr_set_u32(&gw, lwip_htonl(HOST4));
    if (!netif_add(&h.netif, &ip, &mask, &gw, NULL, netif_setup, ethernet_input)) {
        satchel_slirp_link_free(h.link);
        h.link = NULL;
        return SATCHEL_E_IO;
    }
    netif_set_default(&h.netif);
    netif_set_up(&h.netif);
    netif_set_link_up(&h.netif);
    netif_create_ip6_linklocal_address(&h.netif, 1);
    netif_ip6_addr_set_state(&h.netif, 0, IP6_ADDR_PREFERRED);
    IP6_ADDR(&a6, PP_HTONL(0xfec00000u), 0, 0, PP_HTONL(GUEST6_LAST));
    if (netif_add_ip6_address(&h.netif, &a6, &idx) == ERR_OK)
        netif_ip6_addr_set_state(&h.netif, idx, IP6_ADDR_PREFERRED);
    return 0;
}

static void host_poll(void *ctx, uint32_t max_ms)
{
    (void)ctx;
    satchel_slirp_link_poll(h.link, max_ms);
}

const satchel_port *satchel_port_lwip(const satchel_link_config *cfg)
{
    static const satchel_lwip_link link = {NULL, host_start, host_poll, satchel_posix_now_ms,
                                           satchel_posix_entropy, host_resolve};
    static int seeded;
    if (!seeded) {
        if (cfg)
            h.cfg = *cfg;
        while (h.cfg.seed == 0) {
            if (satchel_posix_entropy(NULL, (uint8_t *)&h.cfg.seed, sizeof h.cfg.seed) < 0)
                return NULL;
        }
        fprintf(stderr, "link: seed %llu\n", (unsigned long long)h.cfg.seed);
        seeded = 1;
    }
    return satchel_port_lwip_start(&link);
}

void satchel_port_lwip_link_stats(satchel_link_stats *out)
{
    if (h.link)
        satchel_link_emu_stats(satchel_slirp_link_emu(h.link), out);
    else
        memset(out, 0, sizeof *out);
}

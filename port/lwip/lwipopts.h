/* lwIP options for the simulator's "lwip" port: NO_SYS (bare-metal style,
 * raw TCP API, one thread), IPv4 + ARP and IPv6 + ND over an Ethernet netif
 * that talks to libslirp through the link emulator
 * (boards/host/slirp_link.c).  Static addresses, as slirp expects:
 * 10.0.2.15/24 (gateway and host alias 10.0.2.2) and fec0::15/64 (host
 * alias fec0::2, which slirp forwards to the host's ::1). */
#ifndef SATCHEL_LWIPOPTS_H
#define SATCHEL_LWIPOPTS_H

/* ---- system ---- */
#define NO_SYS 1
#define SYS_LIGHTWEIGHT_PROT 0
#define LWIP_TIMERS 1
#define LWIP_SOCKET 0
#define LWIP_NETCONN 0
#define LWIP_SINGLE_NETIF 1
#define LWIP_HAVE_LOOPIF 0
#define LWIP_NETIF_LOOPBACK 0
#define LWIP_NETIF_STATUS_CALLBACK 0
#define LWIP_NETIF_LINK_CALLBACK 0
#define LWIP_NETIF_TX_SINGLE_PBUF 1
#define LWIP_STATS 0

/* ---- protocols ---- */
#define LWIP_IPV4 1
#define LWIP_IPV6 1
#define LWIP_IPV6_MLD 0            /* ND still works (solicited-node filter) */
#define LWIP_IPV6_AUTOCONFIG 0     /* static fec0::15 */
#define LWIP_IPV6_SEND_ROUTER_SOLICIT 0
#define LWIP_IPV6_DUP_DETECT_ATTEMPTS 0 /* usable at once */
#define LWIP_IPV6_DHCP6 0
#define LWIP_IPV6_FRAG 0
#define LWIP_IPV6_REASS 0
#define LWIP_ICMP6 1
#define LWIP_IPV6_NUM_ADDRESSES 2  /* link-local + fec0::15 */
#define MEMP_NUM_ND6_QUEUE 8
#define LWIP_ARP 1
#define LWIP_ETHERNET 1
#define ETHARP_SUPPORT_STATIC_ENTRIES 0
#define LWIP_ICMP 1
#define LWIP_RAW 0
#define LWIP_UDP 0
#define LWIP_TCP 1
#define LWIP_DHCP 0
#define LWIP_AUTOIP 0
#define LWIP_IGMP 0
#define LWIP_DNS 0
#define IP_REASSEMBLY 0 /* slirp's MTU is 1500 and TCP never fragments */
#define IP_FRAG 0

/* Checksums: generated and checked in software on every layer. */
#define LWIP_CHECKSUM_CTRL_PER_NETIF 0
#define CHECKSUM_GEN_IP 1
#define CHECKSUM_GEN_TCP 1
#define CHECKSUM_GEN_ICMP 1
#define CHECKSUM_GEN_ICMP6 1
#define CHECKSUM_CHECK_ICMP6 1
#define CHECKSUM_CHECK_IP 1
#define CHECKSUM_CHECK_TCP 1
#define CHECKSUM_CHECK_ICMP 1
#define LWIP_CHECKSUM_ON_COPY 0

/* ---- TCP ----
 * The receive window must be well above one TLS record (16 KB + header):
 * mbedTLS cannot hand out any of a record before all of it arrived, and a
 * window below that deadlocks once the app stops reading.  24 MSS (34 KB)
 * fits in 16 bits, so no window scaling is needed. */
#define TCP_MSS 1460 /* IPv4; lwIP derives 1440 for IPv6 from the MTU */
#define TCP_WND (24 * TCP_MSS)
#define LWIP_WND_SCALE 0
#define TCP_SND_BUF (16 * 1024)
#define TCP_SND_QUEUELEN ((4 * TCP_SND_BUF + TCP_MSS - 1) / TCP_MSS)
#define TCP_QUEUE_OOSEQ 1
#define TCP_LISTEN_BACKLOG 0
#define LWIP_TCP_KEEPALIVE 0
#define LWIP_CALLBACK_API 1
#define LWIP_EVENT_API 0

/* ---- memory ----
 * Heap: PBUF_RAM segments that tcp_write copies into (TCP_SND_BUF per
 * connection plus headers).  Pool: received frames; it must hold a full
 * receive window plus what the app has not read yet (also bounded by the
 * window). */
#define MEM_LIBC_MALLOC 0
#define MEMP_MEM_MALLOC 0
#define MEM_ALIGNMENT 8
#define MEM_SIZE (64 * 1024)
#define MEMP_NUM_PBUF 16
#define MEMP_NUM_RAW_PCB 0
#define MEMP_NUM_UDP_PCB 0
#define MEMP_NUM_TCP_PCB 6 /* a session, a reconnect, and lingering closes */
#define MEMP_NUM_TCP_PCB_LISTEN 1
#define MEMP_NUM_TCP_SEG 64 /* >= TCP_SND_QUEUELEN (45) */
#define MEMP_NUM_ARP_QUEUE 8
#define PBUF_POOL_SIZE 48
/* PBUF_POOL_BUFSIZE: lwIP's default, one full-sized Ethernet frame. */

#endif

/* lwIP options for the "lwip" port: NO_SYS (bare-metal style, raw TCP API,
 * one thread), IPv4 + ARP and IPv6 + ND over an Ethernet netif.  These are
 * the defaults, sized for the simulator (boards/host: slirp, static
 * addresses); a board overrides any of them in its satchel_board_opts.h
 * (found on the include path when SATCHEL_BOARD_OPTS is defined), as it
 * does Satchel's own options. */
#ifndef SATCHEL_LWIPOPTS_H
#define SATCHEL_LWIPOPTS_H

#ifdef SATCHEL_BOARD_OPTS
#include "satchel_board_opts.h"
#endif

/* ---- system ---- */
#ifndef NO_SYS
#define NO_SYS 1
#endif
#ifndef SYS_LIGHTWEIGHT_PROT
#define SYS_LIGHTWEIGHT_PROT 0
#endif
#ifndef LWIP_TIMERS
#define LWIP_TIMERS 1
#endif
#ifndef LWIP_SOCKET
#define LWIP_SOCKET 0
#endif
#ifndef LWIP_NETCONN
#define LWIP_NETCONN 0
#endif
#ifndef LWIP_SINGLE_NETIF
#define LWIP_SINGLE_NETIF 1
#endif
#ifndef LWIP_HAVE_LOOPIF
#define LWIP_HAVE_LOOPIF 0
#endif
#ifndef LWIP_NETIF_LOOPBACK
#define LWIP_NETIF_LOOPBACK 0
#endif
#ifndef LWIP_NETIF_STATUS_CALLBACK
#define LWIP_NETIF_STATUS_CALLBACK 0
#endif
#ifndef LWIP_NETIF_LINK_CALLBACK
#define LWIP_NETIF_LINK_CALLBACK 0
#endif
#ifndef LWIP_NETIF_TX_SINGLE_PBUF
#define LWIP_NETIF_TX_SINGLE_PBUF 1
#endif
#ifndef LWIP_STATS
#define LWIP_STATS 0
#endif

/* ---- protocols ---- */
#ifndef LWIP_IPV4
#define LWIP_IPV4 1
#endif
#ifndef LWIP_IPV6
#define LWIP_IPV6 1
#endif
#ifndef LWIP_IPV6_MLD
#define LWIP_IPV6_MLD 0            /* ND still works (solicited-node filter) */
#endif
#ifndef LWIP_IPV6_AUTOCONFIG
#define LWIP_IPV6_AUTOCONFIG 0     /* static fec0::15 */
#endif
#ifndef LWIP_IPV6_SEND_ROUTER_SOLICIT
#define LWIP_IPV6_SEND_ROUTER_SOLICIT 0
#endif
#ifndef LWIP_IPV6_DUP_DETECT_ATTEMPTS
#define LWIP_IPV6_DUP_DETECT_ATTEMPTS 0 /* usable at once */
#endif
#ifndef LWIP_IPV6_DHCP6
#define LWIP_IPV6_DHCP6 0
#endif
#ifndef LWIP_IPV6_FRAG
#define LWIP_IPV6_FRAG 0
#endif
#ifndef LWIP_IPV6_REASS
#define LWIP_IPV6_REASS 0
#endif
#ifndef LWIP_ICMP6
#define LWIP_ICMP6 1
#endif
#ifndef LWIP_IPV6_NUM_ADDRESSES
#define LWIP_IPV6_NUM_ADDRESSES 2  /* link-local + fec0::15 */
#endif
#ifndef MEMP_NUM_ND6_QUEUE
#define MEMP_NUM_ND6_QUEUE 8
#endif
#ifndef LWIP_ARP
#define LWIP_ARP 1
#endif
#ifndef LWIP_ETHERNET
#define LWIP_ETHERNET 1
#endif
#ifndef ETHARP_SUPPORT_STATIC_ENTRIES
#define ETHARP_SUPPORT_STATIC_ENTRIES 0
#endif
#ifndef LWIP_ICMP
#define LWIP_ICMP 1
#endif
#ifndef LWIP_RAW
#define LWIP_RAW 0
#endif
#ifndef LWIP_UDP
#define LWIP_UDP 0
#endif
#ifndef LWIP_TCP
#define LWIP_TCP 1
#endif
#ifndef LWIP_DHCP
#define LWIP_DHCP 0
#endif
#ifndef LWIP_AUTOIP
#define LWIP_AUTOIP 0
#endif
#ifndef LWIP_IGMP
#define LWIP_IGMP 0
#endif
#ifndef LWIP_DNS
#define LWIP_DNS 0
#endif
#ifndef IP_REASSEMBLY
#define IP_REASSEMBLY 0 /* slirp's MTU is 1500 and TCP never fragments */
#endif
#ifndef IP_FRAG
#define IP_FRAG 0
#endif

/* Checksums: generated and checked in software on every layer. */
#ifndef LWIP_CHECKSUM_CTRL_PER_NETIF
#define LWIP_CHECKSUM_CTRL_PER_NETIF 0
#endif
#ifndef CHECKSUM_GEN_IP
#define CHECKSUM_GEN_IP 1
#endif
#ifndef CHECKSUM_GEN_TCP
#define CHECKSUM_GEN_TCP 1
#endif
#ifndef CHECKSUM_GEN_ICMP
#define CHECKSUM_GEN_ICMP 1
#endif
#ifndef CHECKSUM_GEN_ICMP6
#define CHECKSUM_GEN_ICMP6 1
#endif
#ifndef CHECKSUM_CHECK_ICMP6
#define CHECKSUM_CHECK_ICMP6 1
#endif
#ifndef CHECKSUM_CHECK_IP
#define CHECKSUM_CHECK_IP 1
#endif
#ifndef CHECKSUM_CHECK_TCP
#define CHECKSUM_CHECK_TCP 1
#endif
#ifndef CHECKSUM_CHECK_ICMP
#define CHECKSUM_CHECK_ICMP 1
#endif
#ifndef LWIP_CHECKSUM_ON_COPY
#define LWIP_CHECKSUM_ON_COPY 0
#endif

/* ---- TCP ----
 * The receive window must be well above one TLS record (16 KB + header):
 * mbedTLS cannot hand out any of a record before all of it arrived, and a
 * window below that deadlocks once the app stops reading.  24 MSS (34 KB)
 * fits in 16 bits, so no window scaling is needed. */
#ifndef TCP_MSS
#define TCP_MSS 1460 /* IPv4; lwIP derives 1440 for IPv6 from the MTU */
#endif
#ifndef TCP_WND
#define TCP_WND (24 * TCP_MSS)
#endif
#ifndef LWIP_WND_SCALE
#define LWIP_WND_SCALE 0
#endif
#ifndef TCP_SND_BUF
#define TCP_SND_BUF (16 * 1024)
#endif
#ifndef TCP_SND_QUEUELEN
#define TCP_SND_QUEUELEN ((4 * TCP_SND_BUF + TCP_MSS - 1) / TCP_MSS)
#endif
#ifndef TCP_QUEUE_OOSEQ
#define TCP_QUEUE_OOSEQ 1
#endif
#ifndef TCP_LISTEN_BACKLOG
#define TCP_LISTEN_BACKLOG 0
#endif
#ifndef LWIP_TCP_KEEPALIVE
#define LWIP_TCP_KEEPALIVE 0
#endif
#ifndef LWIP_CALLBACK_API
#define LWIP_CALLBACK_API 1
#endif
#ifndef LWIP_EVENT_API
#define LWIP_EVENT_API 0
#endif

/* ---- memory ----
 * Heap: PBUF_RAM segments that tcp_write copies into (TCP_SND_BUF per
 * connection plus headers).  Pool: received frames; it must hold a full
 * receive window plus what the app has not read yet (also bounded by the
 * window). */
#ifndef MEM_LIBC_MALLOC
#define MEM_LIBC_MALLOC 0
#endif
#ifndef MEMP_MEM_MALLOC
#define MEMP_MEM_MALLOC 0
#endif
#ifndef MEM_ALIGNMENT
#define MEM_ALIGNMENT 8
#endif
#ifndef MEM_SIZE
#define MEM_SIZE (64 * 1024)
#endif
#ifndef MEMP_NUM_PBUF
#define MEMP_NUM_PBUF 16
#endif
#ifndef MEMP_NUM_RAW_PCB
#define MEMP_NUM_RAW_PCB 0
#endif
#ifndef MEMP_NUM_UDP_PCB
#define MEMP_NUM_UDP_PCB 0
#endif
#ifndef MEMP_NUM_TCP_PCB
#define MEMP_NUM_TCP_PCB 6 /* a session, a reconnect, and lingering closes */
#endif
#ifndef MEMP_NUM_TCP_PCB_LISTEN
#define MEMP_NUM_TCP_PCB_LISTEN 1
#endif
#ifndef MEMP_NUM_TCP_SEG
#define MEMP_NUM_TCP_SEG 64 /* >= TCP_SND_QUEUELEN (45) */
#endif
#ifndef MEMP_NUM_ARP_QUEUE
#define MEMP_NUM_ARP_QUEUE 8
#endif
#ifndef PBUF_POOL_SIZE
#define PBUF_POOL_SIZE 48
#endif
/* PBUF_POOL_BUFSIZE: lwIP's default, one full-sized Ethernet frame. */

#endif

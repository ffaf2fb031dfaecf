/* MPS2 AN386 options: Satchel's (include/satchel/opt.h) and lwIP's
 * (port/lwip/lwipopts.h), overriding their defaults for 4 MiB of SRAM, a
 * 16 MiB PSRAM for the store map and QEMU's LAN9118. */
#ifndef SATCHEL_BOARD_OPTS_H
#define SATCHEL_BOARD_OPTS_H

/* ---- Satchel ---- */
/* The LMDB map lives in PSRAM (16 MiB, less the lock file's 64 KiB). */
#define SATCHEL_OPT_STORE_MAP_SIZE (12ull * 1024u * 1024u)
/* LMDB without MDB_WRITEMAP copies every page a transaction dirties into
 * the heap until the commit: smaller header windows (one transaction
 * each) keep that peak down. */
#define SATCHEL_OPT_FETCH_WINDOW 10
/* One response's parse tree; ENVELOPE-sized responses fit. */
#define SATCHEL_OPT_RESP_ARENA (16u * 1024u)
#define SATCHEL_OPT_LITERAL_INLINE (4u * 1024u)
/* Folder names up to 1,024 bytes (the default 4,096 would cost about 60 KB
 * of RAM in name buffers), and console lines of 1,023 bytes: a command
 * naming such a folder fits when the other names in it are short. */
#define SATCHEL_OPT_MAX_FOLDER_NAME 1024u
#define SATCHEL_CONSOLE_LINE_MAX 1023u

/* ---- lwIP ---- */
/* IPv4 with DHCP from QEMU's user network; no IPv6 there. */
#define LWIP_IPV6 0
#define LWIP_UDP 1
#define LWIP_DHCP 1
#define MEMP_NUM_UDP_PCB 1
#define MEM_ALIGNMENT 4
/* QEMU's LAN9118 receive FIFO holds about 10.5 KB and drops frames when
 * slirp sends more at once: a window of 6 segments keeps it from
 * overflowing.  TLS still works below one 16 KB record, because the port
 * acknowledges data as mbedTLS reads it. */
#define TCP_WND (6 * TCP_MSS)
#define TCP_SND_BUF (8 * 1024)
#define TCP_SND_QUEUELEN ((4 * TCP_SND_BUF + TCP_MSS - 1) / TCP_MSS)
#define MEMP_NUM_TCP_SEG 24
#define MEMP_NUM_TCP_PCB 4
#define MEMP_NUM_PBUF 8
#define MEMP_NUM_ARP_QUEUE 4
/* Received frames: a window plus what the app has not read yet. */
#define PBUF_POOL_SIZE 8
/* PBUF_RAM for segments tcp_write copies into (the send buffer). */
#define MEM_SIZE (10 * 1024)

#endif

/* SMSC LAN9118 Ethernet, polled, as the link below the shared lwIP port
 * (satchel_lwip_link): soft reset, MAC, PHY link, TX command words A/B,
 * RX status and data FIFOs.  The RX interrupt only wakes the idle WFI.
 * The chip's free-running 25 MHz counter is the board's clock: under QEMU
 * it keeps wall time, where counting SysTick interrupts runs slow. */
#include <string.h>

#include "lwip/dhcp.h"
#include "lwip/etharp.h"
#include "lwip/ip4_addr.h"
#include "lwip/netif.h"
#include "lwip/pbuf.h"
#include "netif/ethernet.h"

#include <board.h>
#include "board_hw.h"
#include "lan9118.h"
#include "satchel/error.h"
#include "semihost.h"

#define REG(off) (*(volatile uint32_t *)(BOARD_LAN9118_BASE + (off)))
#define RX_DATA_FIFO 0x00
#define TX_DATA_FIFO 0x20
#define RX_STATUS_FIFO 0x40
#define ID_REV 0x50
#define IRQ_CFG 0x54
#define INT_STS 0x58
#define INT_EN 0x5C
#define BYTE_TEST 0x64
#define FIFO_INT 0x68
#define TX_CFG 0x70
#define HW_CFG 0x74
#define RX_FIFO_INF 0x7C
#define TX_FIFO_INF 0x80
#define PMT_CTRL 0x84
#define FREE_RUN 0x9C
#define MAC_CSR_CMD 0xA4
#define MAC_CSR_DATA 0xA8

#define MAC_CR 1
#define ADDRH 2
#define ADDRL 3
#define MII_ACC 6
#define MII_DATA 7

#define INT_RSFL (1u << 3)

/* 10.0.2.2 is QEMU user networking's alias for the host's 127.0.0.1. */
#define HOST_ALIAS 0x0a000202u

static struct {
    struct netif netif;
    uint32_t frames_in, frames_out, rx_errors;
    uint8_t frame[1600];
} nic;

/* ---- clock ---- */

static uint32_t clock_last, clock_high;
static uint64_t clock_base; /* ticks counted before the last chip reset */

void clock_init(void)
{
    /* SysTick wakes the idle loop every 10 ms so that timeouts are seen
     * on time; the time itself comes from FREE_RUN. */
    *(volatile uint32_t *)0xE000E014u = BOARD_CPU_HZ / 100 - 1; /* LOAD */
    *(volatile uint32_t *)0xE000E018u = 0;                      /* VAL */
    *(volatile uint32_t *)0xE000E010u = 7; /* CPU clock, interrupt, enable */
    clock_last = REG(FREE_RUN);
}

uint64_t board_now_us(void)
{
    uint32_t now, primask;
    uint64_t ticks;
    __asm__ volatile("mrs %0, primask\ncpsid i" : "=r"(primask)::"memory");
    now = REG(FREE_RUN);
    if (now < clock_last)
        clock_high++;
    clock_last = now;
    ticks = clock_base + ((uint64_t)clock_high << 32 | now);
    __asm__ volatile("msr primask, %0" ::"r"(primask) : "memory");
    return ticks / (BOARD_FREE_RUN_HZ / 1000000u);
}

/* ---- MAC and PHY registers ---- */

static uint32_t mac_read(uint32_t reg)
{
    REG(MAC_CSR_CMD) = (1u << 31) | (1u << 30) | reg;
    while (REG(MAC_CSR_CMD) & (1u << 31))
        ;
    return REG(MAC_CSR_DATA);
}

static void mac_write(uint32_t reg, uint32_t v)
{
    REG(MAC_CSR_DATA) = v;
    REG(MAC_CSR_CMD) = (1u << 31) | reg;
    while (REG(MAC_CSR_CMD) & (1u << 31))
        ;
}

static uint16_t phy_read(uint32_t reg)
{
    mac_write(MII_ACC, (1u << 11) | (reg << 6) | 1u);
    while (mac_read(MII_ACC) & 1u)
        ;
    return (uint16_t)mac_read(MII_DATA);
}

/* ---- frames ---- */

static err_t nic_output(struct netif *n, struct pbuf *p)
{
    uint32_t len = p->tot_len, words, i;
    (void)n;
    if (len > sizeof nic.frame)
        return ERR_IF;
    pbuf_copy_partial(p, nic.frame, (u16_t)len, 0);
    words = (len + 3) / 4;
    while ((REG(TX_FIFO_INF) & 0xffffu) < words * 4 + 8)
        ;
    /* Command A: first and last segment, buffer size; B: tag, length. */
    REG(TX_DATA_FIFO) = (1u << 13) | (1u << 12) | len;
    REG(TX_DATA_FIFO) = (len << 16) | len;
    for (i = 0; i < words; i++) {
        uint32_t w;
        memcpy(&w, nic.frame + i * 4, 4);
        REG(TX_DATA_FIFO) = w;
    }
    nic.frames_out++;
    return ERR_OK;
}

/* Hand every waiting frame to lwIP.  Returns how many there were. */
static int nic_receive(void)
{
    int count = 0;
    while ((REG(RX_FIFO_INF) >> 16) & 0xffu) {
        uint32_t status = REG(RX_STATUS_FIFO);
        uint32_t len = (status >> 16) & 0x3fffu, words = (len + 3) / 4, i;
        struct pbuf *p;
        for (i = 0; i < words; i++) {
            uint32_t w = REG(RX_DATA_FIFO);
            if (i * 4 + 4 <= sizeof nic.frame)
                memcpy(nic.frame + i * 4, &w, 4);
        }
        count++;
        /* Error summary, or a frame we cannot hold: dropped (TCP resends). */
        if ((status & (1u << 15)) || len < 4 + 14 || len > sizeof nic.frame) {
            nic.rx_errors++;
            continue;
        }
        len -= 4; /* the FCS */
        p = pbuf_alloc(PBUF_RAW, (u16_t)len, PBUF_POOL);
        if (!p) {
            nic.rx_errors++;
            continue;
        }
        pbuf_take(p, nic.frame, (u16_t)len);
        nic.frames_in++;
        if (nic.netif.input(p, &nic.netif) != ERR_OK)
            pbuf_free(p);
    }
    return count;
}

static err_t nic_netif_init(struct netif *n)
{
    uint32_t lo = mac_read(ADDRL), hi = mac_read(ADDRH);
    n->name[0] = 'e';
    n->name[1] = 'n';
    n->output = etharp_output;
    n->linkoutput = nic_output;
    n->mtu = 1500;
    n->hwaddr_len = ETH_HWADDR_LEN;
    n->hwaddr[0] = (u8_t)lo;
    n->hwaddr[1] = (u8_t)(lo >> 8);
    n->hwaddr[2] = (u8_t)(lo >> 16);
    n->hwaddr[3] = (u8_t)(lo >> 24);
    n->hwaddr[4] = (u8_t)hi;
    n->hwaddr[5] = (u8_t)(hi >> 8);
    n->flags = NETIF_FLAG_BROADCAST | NETIF_FLAG_ETHARP | NETIF_FLAG_ETHERNET;
    return ERR_OK;
}

static int nic_start(void *ctx)
{
    (void)ctx;
    if (REG(BYTE_TEST) != 0x87654321u)
        return SATCHEL_E_IO;
    /* A soft reset restarts FREE_RUN from 0: carry the time over. */
    __asm__ volatile("cpsid i" ::: "memory");
    clock_base += (uint64_t)clock_high << 32 | REG(FREE_RUN);
    REG(HW_CFG) = 1u; /* soft reset */
    while (REG(HW_CFG) & 1u)
        ;
    clock_high = 0;
    clock_last = REG(FREE_RUN);
    __asm__ volatile("cpsie i" ::: "memory");
    while (!(REG(PMT_CTRL) & 1u))
        ;
    REG(INT_EN) = 0;
    REG(INT_STS) = 0xffffffffu;
    REG(FIFO_INT) = 0; /* RX status level interrupt at one frame */
    REG(IRQ_CFG) = (1u << 8) | (1u << 4) | 1u; /* enable, active high, push-pull */
    REG(INT_EN) = INT_RSFL;
    REG(TX_CFG) = (1u << 2) | (1u << 1); /* status may overrun; TX on */
    mac_write(MAC_CR, (1u << 20) | (1u << 3) | (1u << 2)); /* full duplex, TX, RX */
    if (!netif_add(&nic.netif, NULL, NULL, NULL, NULL, nic_netif_init, ethernet_input))
        return SATCHEL_E_IO;
    netif_set_default(&nic.netif);
    netif_set_up(&nic.netif);
    if (phy_read(1) & (1u << 2)) /* basic status: link up */
        netif_set_link_up(&nic.netif);
    if (dhcp_start(&nic.netif) != ERR_OK)
        return SATCHEL_E_IO;
    return 0;
}

static uint64_t nic_now_ms(void *ctx)
{
    (void)ctx;
    return board_now_us() / 1000u;
}

static void nic_poll(void *ctx, uint32_t max_ms)
{
    uint64_t deadline = nic_now_ms(ctx) + max_ms;
    for (;;) {
        if (!netif_is_link_up(&nic.netif) && (phy_read(1) & (1u << 2)))
            netif_set_link_up(&nic.netif);
        if (nic_receive() > 0 || nic_now_ms(ctx) >= deadline)
            return;
        board_idle();
    }
}

static int nic_entropy(void *ctx, uint8_t *buf, size_t len)
{
    /* The emulated board has no TRNG: the host's, through semihosting. */
    int h = sh_open("/dev/urandom", SH_MODE_RB);
    long left;
    (void)ctx;
    if (h < 0)
        return SATCHEL_E_IO;
    left = sh_read(h, buf, len);
    sh_close(h);
    return left == 0 ? 0 : SATCHEL_E_IO;
}

/* No DNS: "localhost" and 127/8 are the host (10.0.2.2); other dotted
 * quads are used as given. */
static int nic_resolve(void *ctx, const char *host, satchel_lwip_addr *out, int max)
{
    ip4_addr_t a;
    (void)ctx;
    if (max < 1 || !host)
        return -1;
    memset(out, 0, sizeof *out);
    out->family = 4;
    if (strcmp(host, "localhost") == 0) {
        out->v4 = HOST_ALIAS;
        return 1;
    }
    if (!ip4addr_aton(host, &a))
        return -1;
    out->v4 = lwip_ntohl(ip4_addr_get_u32(&a));
    if ((out->v4 >> 24) == 127)
        out->v4 = HOST_ALIAS;
    return 1;
}

const satchel_lwip_link *lan9118_link(void)
{
    static const satchel_lwip_link link = {NULL, nic_start, nic_poll, nic_now_ms,
                                           nic_entropy, nic_resolve};
    return &link;
}

void lan9118_stats(uint32_t *in, uint32_t *out, uint32_t *errors, uint32_t *ip)
{
    *in = nic.frames_in;
    *out = nic.frames_out;
    *errors = nic.rx_errors;
    *ip = lwip_ntohl(ip4_addr_get_u32(netif_ip4_addr(&nic.netif)));
}

void board_idle(void)
{
    /* Sleep with interrupts masked so that a frame arriving between the
     * check and the WFI still wakes it; the handler runs after cpsie. */
    __asm__ volatile("cpsid i" ::: "memory");
    if (!((REG(RX_FIFO_INF) >> 16) & 0xffu)) {
        board_irq_enable(BOARD_LAN9118_IRQ);
        __asm__ volatile("wfi" ::: "memory");
    }
    __asm__ volatile("cpsie i" ::: "memory");
}

/* Unit tests of the link emulator core (boards/host/slirp_link.c built with
 * SATCHEL_LINK_EMU_ONLY) and of the --link spec parser, with a fake clock:
 * no slirp, no lwIP, no sockets. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "satchel/error.h"
#include "slirp_link.h"

#define MS 1000000ull /* ns */
#define GUEST 0x0a00020fu
#define HOST 0x0a000202u

/* ---- frame builders ---- */

static void put16(uint8_t *p, unsigned v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* An Ethernet/IPv4/TCP frame with payload zero bytes; returns its length. */
static size_t tcp_frame(uint8_t *f, int dir, uint16_t gport, uint16_t rport,
                        uint32_t seq, uint8_t flags, size_t payload)
{
    size_t total = 20 + 20 + payload;
    uint32_t src = dir == SATCHEL_LINK_UP ? GUEST : HOST;
    uint32_t dst = dir == SATCHEL_LINK_UP ? HOST : GUEST;
    memset(f, 0, 14 + total);
    memset(f, 0xaa, 6);
    memset(f + 6, 0xbb, 6);
    put16(f + 12, 0x0800);
    f[14] = 0x45;
    put16(f + 16, (unsigned)total);
    f[22] = 64;
    f[23] = 6;
    put32(f + 26, src);
    put32(f + 30, dst);
    put16(f + 34, dir == SATCHEL_LINK_UP ? gport : rport);
    put16(f + 36, dir == SATCHEL_LINK_UP ? rport : gport);
    put32(f + 38, seq);
    f[46] = 5 << 4;
    f[47] = flags;
    return 14 + total;
}

#define F_SYN 0x02
#define F_RST 0x04
#define F_ACK 0x10

static size_t plain_frame(uint8_t *f, size_t len)
{
    memset(f, 0, len);
    put16(f + 12, 0x0806); /* ARP: not TCP */
    return len;
}

static satchel_link_config cfg_of(const char *spec)
{
    satchel_link_config c;
    memset(&c, 0, sizeof c);
    if (satchel_link_parse(spec, &c) != 0) {
        fprintf(stderr, "cannot parse %s\n", spec);
        failed++;
    }
    return c;
}

/* ---- parser ---- */

static void test_parse(void)
{
    satchel_link_config c;
    CHECK_THAT(satchel_link_parse("rtt=300ms,rate=64kbit,loss=1%,cut-after=200KB,"
                                  "cut-random=500KB,stall=5s,stall-after=100KB,seed=42",
                                  &c) == 0);
    CHECK_THAT(c.rtt_ms == 300);
    CHECK_THAT(c.rate_bps == 64000);
    CHECK_THAT(c.loss_ppm == 10000);
    CHECK_THAT(c.cut_after == 200 * 1024);
    CHECK_THAT(c.cut_random_bytes == 500 * 1024);
    CHECK_THAT(c.stall_ms == 5000);
    CHECK_THAT(c.stall_after == 100 * 1024);
    CHECK_THAT(c.seed == 42);

    CHECK_THAT(satchel_link_parse("rate=2mbit, rtt=1.5s ,loss=0.25%", &c) == 0);
    CHECK_THAT(c.rate_bps == 2000000 && c.rtt_ms == 1500 && c.loss_ppm == 2500);
    CHECK_THAT(c.seed == 0 && c.cut_after == 0);
    CHECK_THAT(satchel_link_parse("rate=1200bit,loss=50ppm,cut-after=3MB,rtt=20", &c) == 0);
    CHECK_THAT(c.rate_bps == 1200 && c.loss_ppm == 50 && c.cut_after == 3u << 20 &&
               c.rtt_ms == 20);
    CHECK_THAT(satchel_link_parse("cut-after=1500B,rate=1gbit,stall-after=0", &c) == 0);
    CHECK_THAT(c.cut_after == 1500 && c.rate_bps == 1000000000ull && c.stall_after == 0);
    CHECK_THAT(satchel_link_parse("RTT=10MS", &c) == 0 && c.rtt_ms == 10);
    CHECK_THAT(satchel_link_parse("", &c) == 0 && c.rtt_ms == 0 && c.rate_bps == 0);
    CHECK_THAT(satchel_link_parse("none", &c) == 0 && c.loss_ppm == 0);
    CHECK_THAT(satchel_link_parse("loss=100%", &c) == 0 && c.loss_ppm == 1000000);

    CHECK_THAT(satchel_link_parse("loss=101%", &c) == SATCHEL_E_INVAL);
    CHECK_THAT(satchel_link_parse("loss=1", &c) == SATCHEL_E_INVAL);
    CHECK_THAT(satchel_link_parse("rtt=5min", &c) == SATCHEL_E_INVAL);
    CHECK_THAT(satchel_link_parse("rate=64kbps", &c) == SATCHEL_E_INVAL);
    CHECK_THAT(satchel_link_parse("bogus=1", &c) == SATCHEL_E_INVAL);
    CHECK_THAT(satchel_link_parse("rtt", &c) == SATCHEL_E_INVAL);
    CHECK_THAT(satchel_link_parse("rtt=", &c) == SATCHEL_E_INVAL);
    CHECK_THAT(satchel_link_parse("rtt=ms", &c) == SATCHEL_E_INVAL);
    CHECK_THAT(satchel_link_parse("seed=1.5", &c) == SATCHEL_E_INVAL);
    CHECK_THAT(satchel_link_parse("rtt=99999999999s", &c) == SATCHEL_E_INVAL);
    CHECK_THAT(satchel_link_parse("seed=99999999999999999999999", &c) == SATCHEL_E_INVAL);
    CHECK_THAT(satchel_link_parse(NULL, &c) == SATCHEL_E_INVAL);
}

/* ---- delay ---- */

static void test_delay(void)
{
    satchel_link_config cfg = cfg_of("rtt=200ms");
    satchel_link_emu *e = satchel_link_emu_new(&cfg);
    uint8_t f[64], out[64];
    satchel_link_event ev;
    size_t n = plain_frame(f, 60);
    int d;
    for (d = 0; d < 2; d++) {
        uint64_t t0 = 1000 * MS;
        f[20] = (uint8_t)(7 + d);
        CHECK_THAT(satchel_link_emu_push(e, d, f, n, t0) == SATCHEL_LINK_QUEUED);
        CHECK_THAT(satchel_link_emu_next_due(e, t0) == t0 + 100 * MS);
        CHECK_THAT(satchel_link_emu_pop(e, d, t0 + 100 * MS - 1, out, sizeof out, &ev) == 0);
        CHECK_THAT(satchel_link_emu_pop(e, d, t0 + 100 * MS, out, sizeof out, &ev) == 1);
        CHECK_THAT(ev.kind == SATCHEL_LINK_EV_FRAME && ev.len == n);
        CHECK_THAT(memcmp(out, f, n) == 0);
        CHECK_THAT(satchel_link_emu_next_due(e, t0) == UINT64_MAX);
    }
    /* The two directions are independent: UP does not wait for DOWN. */
    CHECK_THAT(satchel_link_emu_push(e, SATCHEL_LINK_DOWN, f, n, 2000 * MS) == 0);
    CHECK_THAT(satchel_link_emu_push(e, SATCHEL_LINK_UP, f, n, 2050 * MS) == 0);
    CHECK_THAT(satchel_link_emu_pop(e, SATCHEL_LINK_UP, 2149 * MS, out, sizeof out, &ev) == 0);
    CHECK_THAT(satchel_link_emu_pop(e, SATCHEL_LINK_DOWN, 2100 * MS, out, sizeof out, &ev) == 1);
    CHECK_THAT(satchel_link_emu_pop(e, SATCHEL_LINK_UP, 2150 * MS, out, sizeof out, &ev) == 1);
    satchel_link_emu_free(e);

    /* A perfect link delivers at once. */
    e = satchel_link_emu_new(NULL);
    CHECK_THAT(satchel_link_emu_push(e, 0, f, n, 5) == 0);
    CHECK_THAT(satchel_link_emu_next_due(e, 5) == 5);
    CHECK_THAT(satchel_link_emu_pop(e, 0, 5, out, sizeof out, &ev) == 1);
    satchel_link_emu_free(e);
}

/* ---- rate ---- */

static void test_rate(void)
{
    satchel_link_config cfg = cfg_of("rate=1mbit,rtt=20ms");
    satchel_link_emu *e = satchel_link_emu_new(&cfg);
    uint8_t f[1600], out[1600];
    satchel_link_event ev;
    size_t n = plain_frame(f, 1250); /* 10000 bits: 10 ms at 1 Mbit/s */
    uint64_t t, last = 0;
    int i, got = 0;

    for (i = 0; i < 3; i++)
        CHECK_THAT(satchel_link_emu_push(e, 0, f, n, 0) == 0);
    /* Back to back: 10, 20, 30 ms of serialization, + 10 ms one way. */
    CHECK_THAT(satchel_link_emu_next_due(e, 0) == 20 * MS);
    CHECK_THAT(satchel_link_emu_pop(e, 0, 20 * MS - 1, out, sizeof out, &ev) == 0);
    CHECK_THAT(satchel_link_emu_pop(e, 0, 20 * MS, out, sizeof out, &ev) == 1);
    CHECK_THAT(satchel_link_emu_next_due(e, 20 * MS) == 30 * MS);
    CHECK_THAT(satchel_link_emu_pop(e, 0, 30 * MS, out, sizeof out, &ev) == 1);
    CHECK_THAT(satchel_link_emu_pop(e, 0, 39 * MS, out, sizeof out, &ev) == 0);
    CHECK_THAT(satchel_link_emu_pop(e, 0, 40 * MS, out, sizeof out, &ev) == 1);
    /* An idle link starts a new frame at once. */
    CHECK_THAT(satchel_link_emu_push(e, 0, f, n, 100 * MS) == 0);
    CHECK_THAT(satchel_link_emu_next_due(e, 100 * MS) == 120 * MS);
    CHECK_THAT(satchel_link_emu_pop(e, 0, 120 * MS, out, sizeof out, &ev) == 1);
    satchel_link_emu_free(e);

    /* Sustained: 100 frames offered every 5 ms (twice the rate) come out
     * at the link rate, 10 ms apart (the router buffer holds them). */
    cfg = cfg_of("rate=1mbit");
    e = satchel_link_emu_new(&cfg);
    for (t = 0; got < 100; t += MS) {
        if (t % (5 * MS) == 0 && t < 500 * MS)
            CHECK_THAT(satchel_link_emu_push(e, 1, f, n, t) == 0);
        while (satchel_link_emu_pop(e, 1, t, out, sizeof out, &ev)) {
            got++;
            last = t;
        }
    }
    CHECK_THAT(last == 1000 * MS);
    satchel_link_emu_free(e);

    /* Rounding: 1 byte at 3 bit/s is 8/3 s, rounded up to the ns. */
    cfg = cfg_of("rate=3bit");
    e = satchel_link_emu_new(&cfg);
    CHECK_THAT(satchel_link_emu_push(e, 0, f, 1, 0) == SATCHEL_LINK_QUEUED);
    CHECK_THAT(satchel_link_emu_next_due(e, 0) == 2666666667ull);
    satchel_link_emu_free(e);
}

/* ---- bounded memory ---- */

static void test_queue_cap(void)
{
    satchel_link_config cfg = cfg_of("rate=8kbit"); /* 1000 bytes: 1 s */
    satchel_link_emu *e = satchel_link_emu_new(&cfg);
    uint8_t f[1600], out[1600];
    satchel_link_event ev;
    satchel_link_stats st;
    size_t n = plain_frame(f, 1000);
    int i, queued = 0, full = 0;
    for (i = 0; i < 300; i++) {
        int r = satchel_link_emu_push(e, 0, f, n, 0);
        queued += r == SATCHEL_LINK_QUEUED;
        full += r == SATCHEL_LINK_FULL;
    }
    /* One on the wire, SATCHEL_LINK_QUEUE_FRAMES waiting, the rest dropped. */
    CHECK_THAT(queued == 1 + (int)SATCHEL_LINK_QUEUE_FRAMES);
    CHECK_THAT(full == 300 - queued);
    CHECK_THAT(satchel_link_emu_held(e, 0) == (size_t)queued);
    satchel_link_emu_stats(e, &st);
    CHECK_THAT(st.full[0] == (uint64_t)full && st.frames_in[0] == 300);
    /* Once one is sent, one more fits. */
    CHECK_THAT(satchel_link_emu_pop(e, 0, 1000 * MS, out, sizeof out, &ev) == 1);
    CHECK_THAT(satchel_link_emu_push(e, 0, f, n, 1000 * MS) == SATCHEL_LINK_QUEUED);
    CHECK_THAT(satchel_link_emu_push(e, 0, f, n, 1000 * MS) == SATCHEL_LINK_FULL);
    /* Too big. */
    CHECK_THAT(satchel_link_emu_push(e, 1, f, SATCHEL_LINK_MAX_FRAME + 1, 0) ==
               SATCHEL_LINK_TOOBIG);
    satchel_link_emu_free(e);
}

/* ---- loss ---- */

static void loss_pattern(const char *spec, uint8_t *lost, int count, int dir)
{
    satchel_link_config cfg = cfg_of(spec);
    satchel_link_emu *e = satchel_link_emu_new(&cfg);
    uint8_t f[64], out[64];
    satchel_link_event ev;
    size_t n = plain_frame(f, 60);
    int i;
    for (i = 0; i < count; i++) {
        uint64_t t = (uint64_t)i * MS;
        lost[i] = satchel_link_emu_push(e, dir, f, n, t) == SATCHEL_LINK_LOST;
        while (satchel_link_emu_pop(e, dir, t, out, sizeof out, &ev))
            ;
    }
    satchel_link_emu_free(e);
}

static int count_ones(const uint8_t *v, int n)
{
    int i, c = 0;
    for (i = 0; i < n; i++)
        c += v[i];
    return c;
}

static void test_loss(void)
{
    enum { N = 20000 };
    static uint8_t a[N], b[N], c[N], d[N];
    int na;
    loss_pattern("loss=10%,seed=42", a, N, 0);
    loss_pattern("loss=10%,seed=42", b, N, 0);
    loss_pattern("loss=10%,seed=43", c, N, 0);
    loss_pattern("loss=10%,seed=42", d, N, 1);
    na = count_ones(a, N);
    CHECK_THAT(na > N / 10 - N / 50 && na < N / 10 + N / 50); /* 10% +- 2 points */
    CHECK_THAT(memcmp(a, b, N) == 0);                        /* reproducible */
    CHECK_THAT(memcmp(a, c, N) != 0);                        /* seed matters */
    CHECK_THAT(memcmp(a, d, N) != 0);                        /* own stream per direction */
    loss_pattern("loss=0.1%,seed=1", a, N, 0);
    na = count_ones(a, N);
    CHECK_THAT(na > 5 && na < 45);
    loss_pattern("loss=100%,seed=1", a, N, 1);
    CHECK_THAT(count_ones(a, N) == N);
    loss_pattern("seed=1", a, N, 1);
    CHECK_THAT(count_ones(a, N) == 0);
}

/* ---- cut ---- */

static void test_cut(void)
{
    satchel_link_config cfg = cfg_of("cut-after=10000,rtt=10ms");
    satchel_link_emu *e = satchel_link_emu_new(&cfg);
    uint8_t f[1600], out[1600];
    satchel_link_event ev;
    satchel_link_stats st;
    uint32_t hs = 5000; /* host ISN */
    size_t n;
    int i, frames = 0, cuts = 0;

    n = tcp_frame(f, 0, 40000, 993, 100, F_SYN, 0);
    CHECK_THAT(satchel_link_emu_push(e, 0, f, n, 0) == SATCHEL_LINK_QUEUED);
    n = tcp_frame(f, 1, 40000, 993, hs, F_SYN | F_ACK, 0);
    CHECK_THAT(satchel_link_emu_push(e, 1, f, n, 0) == SATCHEL_LINK_QUEUED);
    /* The guest sends 500 bytes: counted too. */
    n = tcp_frame(f, 0, 40000, 993, 101, F_ACK, 500);
    CHECK_THAT(satchel_link_emu_push(e, 0, f, n, 1 * MS) == SATCHEL_LINK_QUEUED);
    /* The host sends 1000-byte segments: 9 fit (500 + 9000 <= 10000), the
     * 10th crosses the cut point. */
    for (i = 0; i < 9; i++) {
        n = tcp_frame(f, 1, 40000, 993, hs + 1 + (uint32_t)i * 1000, F_ACK, 1000);
        CHECK_THAT(satchel_link_emu_push(e, 1, f, n, 2 * MS) == SATCHEL_LINK_QUEUED);
    }
    /* A retransmission of old data is not new bytes. */
    n = tcp_frame(f, 1, 40000, 993, hs + 1, F_ACK, 1000);
    CHECK_THAT(satchel_link_emu_push(e, 1, f, n, 3 * MS) == SATCHEL_LINK_QUEUED);
    n = tcp_frame(f, 1, 40000, 993, hs + 1 + 9000, F_ACK, 1000);
    CHECK_THAT(satchel_link_emu_push(e, 1, f, n, 4 * MS) == SATCHEL_LINK_CUT);
    /* Everything after is dropped, both ways, except the guest's reset. */
    n = tcp_frame(f, 1, 40000, 993, hs + 1 + 9000, F_ACK, 100);
    CHECK_THAT(satchel_link_emu_push(e, 1, f, n, 5 * MS) == SATCHEL_LINK_CUT);
    n = tcp_frame(f, 0, 40000, 993, 601, F_ACK, 0);
    CHECK_THAT(satchel_link_emu_push(e, 0, f, n, 5 * MS) == SATCHEL_LINK_CUT);
    n = tcp_frame(f, 0, 40000, 993, 601, F_RST | F_ACK, 0);
    CHECK_THAT(satchel_link_emu_push(e, 0, f, n, 6 * MS) == SATCHEL_LINK_QUEUED);
    /* Another connection is not affected. */
    n = tcp_frame(f, 1, 40001, 993, 77, F_ACK, 1000);
    CHECK_THAT(satchel_link_emu_push(e, 1, f, n, 7 * MS) == SATCHEL_LINK_QUEUED);

    /* Downstream: SYN-ACK, 10 data frames, then the cut marker (after
     * what was sent before the cut), then the other connection's frame. */
    for (i = 0; i < 20 && satchel_link_emu_pop(e, 1, 100 * MS, out, sizeof out, &ev); i++) {
        if (ev.kind == SATCHEL_LINK_EV_FRAME) {
            frames++;
        } else {
            cuts++;
            CHECK_THAT(frames == 11);
            CHECK_THAT(ev.guest_port == 40000 && ev.remote_port == 993);
            CHECK_THAT(ev.guest_ip == GUEST && ev.remote_ip == HOST);
            CHECK_THAT(ev.conn_index == 0);
        }
    }
    CHECK_THAT(frames == 12 && cuts == 1);
    satchel_link_emu_stats(e, &st);
    CHECK_THAT(st.cuts == 1 && st.conns == 2);
    CHECK_THAT(st.cut_dropped[1] == 2 && st.cut_dropped[0] == 1);
    /* Upstream: SYN, data, RST. */
    frames = 0;
    while (satchel_link_emu_pop(e, 0, 100 * MS, out, sizeof out, &ev))
        frames += ev.kind == SATCHEL_LINK_EV_FRAME;
    CHECK_THAT(frames == 3);

    /* A new connection on the same port (a fresh SYN) starts from zero. */
    n = tcp_frame(f, 0, 40000, 993, 9000, F_SYN, 0);
    CHECK_THAT(satchel_link_emu_push(e, 0, f, n, 200 * MS) == SATCHEL_LINK_QUEUED);
    n = tcp_frame(f, 1, 40000, 993, 1, F_SYN | F_ACK, 0);
    CHECK_THAT(satchel_link_emu_push(e, 1, f, n, 200 * MS) == SATCHEL_LINK_QUEUED);
    n = tcp_frame(f, 1, 40000, 993, 2, F_ACK, 1000);
    CHECK_THAT(satchel_link_emu_push(e, 1, f, n, 201 * MS) == SATCHEL_LINK_QUEUED);
    satchel_link_emu_stats(e, &st);
    CHECK_THAT(st.conns == 3);
    satchel_link_emu_free(e);
}

static void test_cut_random(void)
{
    satchel_link_config a = cfg_of("cut-random=500KB,seed=42");
    satchel_link_config b = cfg_of("cut-random=500KB,seed=42");
    satchel_link_config c = cfg_of("cut-random=500KB,seed=7");
    satchel_link_config m = cfg_of("cut-after=100KB,cut-random=1KB,seed=42");
    satchel_link_config none = cfg_of("rtt=5ms");
    uint64_t p0 = satchel_link_emu_cut_point(&a, 0);
    uint32_t i;
    int differ_idx = 0, differ_seed = 0, in_range = 1;
    for (i = 0; i < 50; i++) {
        uint64_t p = satchel_link_emu_cut_point(&a, i);
        if (p >= 500 * 1024)
            in_range = 0;
        if (p != satchel_link_emu_cut_point(&b, i))
            in_range = 0;
        differ_idx += p != p0;
        differ_seed += p != satchel_link_emu_cut_point(&c, i);
        p = satchel_link_emu_cut_point(&m, i);
        if (p < 100 * 1024 || p >= 101 * 1024)
            in_range = 0;
    }
    CHECK_THAT(in_range);
    CHECK_THAT(differ_idx >= 45);
    CHECK_THAT(differ_seed >= 45);
    CHECK_THAT(satchel_link_emu_cut_point(&none, 0) == UINT64_MAX);
    printf("test_link: cut-random=500KB,seed=42 cuts connections 0..2 at %llu, "
           "%llu, %llu bytes\n",
           (unsigned long long)satchel_link_emu_cut_point(&a, 0),
           (unsigned long long)satchel_link_emu_cut_point(&a, 1),
           (unsigned long long)satchel_link_emu_cut_point(&a, 2));

    /* The emulator cuts at the point it announces. */
    {
        satchel_link_emu *e = satchel_link_emu_new(&a);
        uint8_t f[1600];
        uint64_t sent = 0, point = satchel_link_emu_cut_point(&a, 0);
        uint32_t seq = 1;
        size_t n = tcp_frame(f, 0, 50000, 143, 0, F_SYN, 0);
        int r = satchel_link_emu_push(e, 0, f, n, 0);
        while (r == SATCHEL_LINK_QUEUED && sent < 2 * 1024 * 1024) {
            n = tcp_frame(f, 1, 50000, 143, seq, F_ACK, 1460);
            r = satchel_link_emu_push(e, 1, f, n, 0);
            if (r == SATCHEL_LINK_QUEUED) {
                sent += 1460;
                seq += 1460;
                /* drain, so the router buffer never fills */
                {
                    uint8_t out[1600];
                    satchel_link_event ev;
                    while (satchel_link_emu_pop(e, 1, 0, out, sizeof out, &ev))
                        ;
                }
            }
        }
        CHECK_THAT(r == SATCHEL_LINK_CUT);
        CHECK_THAT(sent <= point && sent + 1460 > point);
        satchel_link_emu_free(e);
    }
}

/* ---- stall ---- */

static void test_stall(void)
{
    satchel_link_config cfg = cfg_of("stall=500ms,stall-after=5000,rtt=10ms");
    satchel_link_emu *e = satchel_link_emu_new(&cfg);
    uint8_t f[1600], out[1600];
    satchel_link_event ev;
    satchel_link_stats st;
    size_t n;
    int i;

    n = tcp_frame(f, 0, 41000, 143, 0, F_SYN, 0);
    CHECK_THAT(satchel_link_emu_push(e, 0, f, n, 0) == 0);
    for (i = 0; i < 5; i++) { /* 5000 bytes: not past stall-after yet */
        n = tcp_frame(f, 1, 41000, 143, 1 + (uint32_t)i * 1000, F_ACK, 1000);
        CHECK_THAT(satchel_link_emu_push(e, 1, f, n, 10 * MS) == 0);
    }
    CHECK_THAT(satchel_link_emu_pop(e, 1, 15 * MS, out, sizeof out, &ev) == 1);
    /* The 6th segment (at 20 ms) starts the stall: nothing until 520 ms. */
    n = tcp_frame(f, 1, 41000, 143, 5001, F_ACK, 1000);
    CHECK_THAT(satchel_link_emu_push(e, 1, f, n, 20 * MS) == 0);
    CHECK_THAT(satchel_link_emu_pop(e, 1, 25 * MS, out, sizeof out, &ev) == 0);
    CHECK_THAT(satchel_link_emu_pop(e, 0, 25 * MS, out, sizeof out, &ev) == 0);
    CHECK_THAT(satchel_link_emu_next_due(e, 25 * MS) == 520 * MS);
    CHECK_THAT(satchel_link_emu_pop(e, 1, 519 * MS, out, sizeof out, &ev) == 0);
    for (i = 0; satchel_link_emu_pop(e, 1, 520 * MS, out, sizeof out, &ev); i++)
        ;
    CHECK_THAT(i == 5);
    CHECK_THAT(satchel_link_emu_pop(e, 0, 520 * MS, out, sizeof out, &ev) == 1);
    /* Once per connection. */
    n = tcp_frame(f, 1, 41000, 143, 6001, F_ACK, 1000);
    CHECK_THAT(satchel_link_emu_push(e, 1, f, n, 600 * MS) == 0);
    CHECK_THAT(satchel_link_emu_pop(e, 1, 605 * MS, out, sizeof out, &ev) == 1);
    satchel_link_emu_stats(e, &st);
    CHECK_THAT(st.stalls == 1);
    satchel_link_emu_free(e);
}

int main(void)
{
    test_parse();
    test_delay();
    test_rate();
    test_queue_cap();
    test_loss();
    test_cut();
    test_cut_random();
    test_stall();
    return check_report("test_link");
}

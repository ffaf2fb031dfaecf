/* The simulator's network: a link emulator between lwIP and libslirp.
 *
 * Built in parts: SATCHEL_LINK_EMU_ONLY gives the spec parser and the
 * emulator core (no dependencies; what tests/unit/test_link.c links),
 * SATCHEL_LINK_GLUE_ONLY gives the slirp glue alone (linked together with
 * the former), neither gives both. */
#define _POSIX_C_SOURCE 200809L
#include "slirp_link.h"

#include <stdlib.h>
#include <string.h>

#include "satchel/ascii.h"
#include "satchel/error.h"

#ifndef SATCHEL_LINK_GLUE_ONLY

/* ------------------------------------------------------------------ */
/* Spec parser                                                         */
/* ------------------------------------------------------------------ */

struct unit {
    const char *name;
    uint64_t mult;
};

static const struct unit time_units[] = {
    {"", 1}, {"ms", 1}, {"s", 1000}, {NULL, 0}};
static const struct unit rate_units[] = {
    {"", 1}, {"bit", 1}, {"kbit", 1000}, {"mbit", 1000000},
    {"gbit", 1000000000}, {NULL, 0}};
static const struct unit size_units[] = {
    {"", 1}, {"b", 1}, {"kb", 1024}, {"kib", 1024}, {"mb", 1024 * 1024},
    {"mib", 1024 * 1024}, {"gb", 1024ull * 1024 * 1024},
    {"gib", 1024ull * 1024 * 1024}, {NULL, 0}};
static const struct unit loss_units[] = {{"%", 10000}, {"ppm", 1}, {NULL, 0}};
static const struct unit seed_units[] = {{"", 1}, {NULL, 0}};

/* value[.fraction]unit, all of [s, s+n), into *out (rounded down). */
static int parse_value(const char *s, size_t n, const struct unit *units,
                       int allow_frac, uint64_t *out)
{
    uint64_t ip = 0, frac = 0, fscale = 1, mult = 0, v;
    size_t i = 0, digits = 0;
    const struct unit *u;
    int found = 0;

    while (i < n && s[i] >= '0' && s[i] <= '9') {
        unsigned d = (unsigned)(s[i] - '0');
        if (ip > (UINT64_MAX - d) / 10)
            return SATCHEL_E_INVAL;
        ip = ip * 10 + d;
        i++;
        digits++;
    }
    if (i < n && s[i] == '.') {
        if (!allow_frac)
            return SATCHEL_E_INVAL;
        i++;
        while (i < n && s[i] >= '0' && s[i] <= '9') {
            if (fscale < 1000000000ull) {
                frac = frac * 10 + (uint64_t)(s[i] - '0');
                fscale *= 10;
            }
            i++;
            digits++;
        }
    }
    if (digits == 0)
        return SATCHEL_E_INVAL;
    for (u = units; u->name; u++) {
        if (satchel_ascii_ieq(s + i, n - i, u->name)) {
            mult = u->mult;
            found = 1;
            break;
        }
    }
    if (!found)
        return SATCHEL_E_INVAL;
    if (ip != 0 && mult > UINT64_MAX / ip)
        return SATCHEL_E_INVAL;
    v = ip * mult;
    /* frac < 1e9 and mult <= 1e9: the product fits. */
    if (frac) {
        uint64_t f = frac * mult / fscale;
        if (v > UINT64_MAX - f)
            return SATCHEL_E_INVAL;
        v += f;
    }
    *out = v;
    return 0;
}

int satchel_link_parse(const char *spec, satchel_link_config *out)
{
    satchel_link_config c;
    const char *p = spec;

    memset(&c, 0, sizeof c);
    if (!spec || !out)
        return SATCHEL_E_INVAL;
    while (*p == ' ')
        p++;
    if (satchel_ascii_ieq(p, strlen(p), "none")) {
        *out = c;
        return 0;
    }
    while (*p) {
        const char *tok = p, *eq, *end;
        size_t klen, vlen;
        uint64_t v;
        int rc;

        end = strchr(p, ',');
        if (!end)
            end = p + strlen(p);
        p = *end ? end + 1 : end;
        while (tok < end && *tok == ' ')
            tok++;
        while (end > tok && end[-1] == ' ')
            end--;
        if (tok == end)
            continue; /* empty item: "a,,b" or a trailing comma */
        eq = memchr(tok, '=', (size_t)(end - tok));
        if (!eq)
            return SATCHEL_E_INVAL;
        klen = (size_t)(eq - tok);
        vlen = (size_t)(end - eq - 1);
        eq++;
#define KEY(lit) satchel_ascii_ieq(tok, klen, lit)
        if (KEY("rtt")) {
            rc = parse_value(eq, vlen, time_units, 1, &v);
            if (rc < 0 || v > UINT32_MAX)
                return SATCHEL_E_INVAL;
            c.rtt_ms = (uint32_t)v;
        } else if (KEY("rate")) {
            rc = parse_value(eq, vlen, rate_units, 1, &v);
            if (rc < 0)
                return SATCHEL_E_INVAL;
            c.rate_bps = v;
        } else if (KEY("loss")) {
            rc = parse_value(eq, vlen, loss_units, 1, &v);
            if (rc < 0 || v > 1000000)
                return SATCHEL_E_INVAL;
            c.loss_ppm = (uint32_t)v;
        } else if (KEY("cut-after") || KEY("cut_after")) {
            rc = parse_value(eq, vlen, size_units, 1, &v);
            if (rc < 0)
                return SATCHEL_E_INVAL;
            c.cut_after = v;
        } else if (KEY("cut-random") || KEY("cut_random")) {
            rc = parse_value(eq, vlen, size_units, 1, &v);
            if (rc < 0 || v > UINT32_MAX)
                return SATCHEL_E_INVAL;
            c.cut_random_bytes = (uint32_t)v;
        } else if (KEY("stall")) {
            rc = parse_value(eq, vlen, time_units, 1, &v);
            if (rc < 0 || v > UINT32_MAX)
                return SATCHEL_E_INVAL;
            c.stall_ms = (uint32_t)v;
        } else if (KEY("stall-after") || KEY("stall_after")) {
            rc = parse_value(eq, vlen, size_units, 1, &v);
            if (rc < 0)
                return SATCHEL_E_INVAL;
            c.stall_after = v;
        } else if (KEY("seed")) {
            rc = parse_value(eq, vlen, seed_units, 0, &v);
            if (rc < 0)
                return SATCHEL_E_INVAL;
            c.seed = v;
        } else {
            return SATCHEL_E_INVAL;
        }
#undef KEY
    }
    *out = c;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Emulator core                                                       */
/* ------------------------------------------------------------------ */

#define RING_CAP (SATCHEL_LINK_MAX_HELD + SATCHEL_LINK_MAX_CONNS)
#define NO_CUT UINT64_MAX

struct held {
    uint64_t tx_start; /* when the serializer starts on it */
    uint64_t due;      /* when it comes out of the far end */
    uint8_t *data;     /* NULL for a cut marker */
    size_t len;
    satchel_link_event ev;
};

struct dirq {
    struct held *ring;
    size_t head, count, frames; /* frames: held entries that are frames */
    uint64_t busy_until;        /* serializer busy until (ns) */
    uint64_t rng;               /* loss PRNG state */
};

struct conn {
    int used;
    int family;
    uint8_t gaddr[16], raddr[16];
    uint16_t gport, rport;
    uint32_t index;
    int have[2];
    uint32_t hi[2]; /* highest sequence number seen + 1, per direction */
    uint64_t bytes; /* new payload, both directions */
    uint64_t cut_point;
    int cut, stalled;
    uint64_t last_used;
};

struct satchel_link_emu {
    satchel_link_config cfg;
    uint64_t delay_ns; /* one way */
    struct dirq q[2];
    struct conn conns[SATCHEL_LINK_MAX_CONNS];
    uint32_t next_index;
    uint64_t use_tick;
    uint64_t stall_until;
    satchel_link_stats st;
};

static uint64_t splitmix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* xorshift64* */
static uint64_t rng_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545f4914f6cdd1dull;
}

uint64_t satchel_link_emu_cut_point(const satchel_link_config *cfg,
                                    uint32_t conn_index)
{
    uint64_t p;
    if (!cfg || (cfg->cut_after == 0 && cfg->cut_random_bytes == 0))
        return NO_CUT;
    p = cfg->cut_after;
    if (cfg->cut_random_bytes)
        p += splitmix64(cfg->seed ^ 0x6375742d706f696eull ^
                        ((uint64_t)conn_index * 0x100000001b3ull)) %
             cfg->cut_random_bytes;
    return p;
}

satchel_link_emu *satchel_link_emu_new(const satchel_link_config *cfg)
{
    satchel_link_emu *e = calloc(1, sizeof *e);
    int d;
    if (!e)
        return NULL;
    if (cfg)
        e->cfg = *cfg;
    e->delay_ns = (uint64_t)e->cfg.rtt_ms * 1000000u / 2u;
    for (d = 0; d < 2; d++) {
        e->q[d].ring = calloc(RING_CAP, sizeof *e->q[d].ring);
        if (!e->q[d].ring) {
            satchel_link_emu_free(e);
            return NULL;
        }
        /* xorshift needs a non-zero state. */
        e->q[d].rng = splitmix64(e->cfg.seed ^ (0x6c6f7373ull + (uint64_t)d));
        if (e->q[d].rng == 0)
            e->q[d].rng = 1;
    }
    return e;
}

void satchel_link_emu_free(satchel_link_emu *e)
{
    int d;
    if (!e)
        return;
    for (d = 0; d < 2; d++) {
        struct dirq *q = &e->q[d];
        if (!q->ring)
            continue;
        while (q->count) {
            free(q->ring[q->head].data);
            q->head = (q->head + 1) % RING_CAP;
            q->count--;
        }
        free(q->ring);
    }
    free(e);
}

struct tcpinfo {
    int is_tcp;
    int family;
    uint8_t src[16], dst[16];
    uint16_t sport, dport;
    uint32_t seq;
    uint8_t flags;
    size_t payload;
};

#define TH_FIN 0x01
#define TH_SYN 0x02
#define TH_RST 0x04
#define TH_ACK 0x10

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint16_t be16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static void parse_tcp(const uint8_t *t, size_t tcp_len, struct tcpinfo *ti)
{
    size_t thl;
    if (tcp_len < 20)
        return;
    thl = (size_t)(t[12] >> 4) * 4;
    if (thl < 20 || tcp_len < thl)
        return;
    ti->is_tcp = 1;
    ti->sport = be16(t);
    ti->dport = be16(t + 2);
    ti->seq = be32(t + 4);
    ti->flags = t[13];
    ti->payload = tcp_len - thl;
}

static void parse_frame(const uint8_t *f, size_t len, struct tcpinfo *ti)
{
    size_t off = 14;
    uint16_t type;
    memset(ti, 0, sizeof *ti);
    if (len < 14)
        return;
    type = be16(f + 12);
    if (type == 0x8100 && len >= 18) { /* one VLAN tag */
        type = be16(f + 16);
        off = 18;
    }
    if (type == 0x0800 && len >= off + 20 && (f[off] >> 4) == 4) {
        size_t ihl = (size_t)(f[off] & 0x0f) * 4, total = be16(f + off + 2);
        if (ihl < 20 || total < ihl || off + total > len || f[off + 9] != 6)
            return;
        if ((be16(f + off + 6) & 0x3fff) != 0) /* a fragment */
            return;
        ti->family = 4;
        memcpy(ti->src, f + off + 12, 4);
        memcpy(ti->dst, f + off + 16, 4);
        parse_tcp(f + off + ihl, total - ihl, ti);
    } else if (type == 0x86dd && len >= off + 40 && (f[off] >> 4) == 6) {
        size_t plen = be16(f + off + 4);
        /* TCP right after the fixed header: neither lwIP nor slirp puts
         * extension headers on TCP. */
        if (f[off + 6] != 6 || off + 40 + plen > len)
            return;
        ti->family = 6;
        memcpy(ti->src, f + off + 8, 16);
        memcpy(ti->dst, f + off + 24, 16);
        parse_tcp(f + off + 40, plen, ti);
    }
}

static struct conn *conn_find(satchel_link_emu *e, int dir,
                              const struct tcpinfo *ti)
{
    const uint8_t *ga = dir == SATCHEL_LINK_UP ? ti->src : ti->dst;
    const uint8_t *ra = dir == SATCHEL_LINK_UP ? ti->dst : ti->src;
    uint16_t gport = dir == SATCHEL_LINK_UP ? ti->sport : ti->dport;
    uint16_t rport = dir == SATCHEL_LINK_UP ? ti->dport : ti->sport;
    int fresh_syn = dir == SATCHEL_LINK_UP && (ti->flags & TH_SYN) &&
                    !(ti->flags & TH_ACK);
    struct conn *c = NULL, *victim = NULL;
    size_t i;

    for (i = 0; i < SATCHEL_LINK_MAX_CONNS && !c; i++) {
        struct conn *k = &e->conns[i];
        if (k->used && k->family == ti->family && k->gport == gport &&
            k->rport == rport && memcmp(k->gaddr, ga, 16) == 0 &&
            memcmp(k->raddr, ra, 16) == 0)
            c = k;
    }
    /* A slot for a new connection: a free one, else the least recently
     * used. */
    for (i = 0; i < SATCHEL_LINK_MAX_CONNS; i++) {
        struct conn *k = &e->conns[i];
        if (!k->used) {
            victim = k;
            break;
        }
        if (!victim || k->last_used < victim->last_used)
            victim = k;
    }
    /* A SYN on a known 4-tuple after the old connection saw data or a cut
     * starts a new connection (retransmitted SYNs do not). */
    if (c && fresh_syn && (c->bytes > 0 || c->cut || c->have[SATCHEL_LINK_DOWN]))
        victim = c, c = NULL;
    if (!c) {
        c = victim;
        memset(c, 0, sizeof *c);
        c->used = 1;
        c->family = ti->family;
        memcpy(c->gaddr, ga, 16);
        memcpy(c->raddr, ra, 16);
        c->gport = gport;
        c->rport = rport;
        c->index = e->next_index++;
        c->cut_point = satchel_link_emu_cut_point(&e->cfg, c->index);
        e->st.conns++;
    }
    c->last_used = ++e->use_tick;
    return c;
}

/* New payload bytes this segment carries (0 for retransmissions). */
static uint64_t conn_advance(struct conn *c, int dir, const struct tcpinfo *ti)
{
    uint32_t start = ti->seq + ((ti->flags & TH_SYN) ? 1u : 0u);
    uint32_t end = start + (uint32_t)ti->payload;
    int32_t d;
    if (!c->have[dir]) {
        c->have[dir] = 1;
        c->hi[dir] = start;
    }
    d = (int32_t)(end - c->hi[dir]);
    if (d <= 0)
        return 0;
    c->hi[dir] = end;
    return (uint64_t)(uint32_t)d;
}

static size_t waiting(const struct dirq *q, uint64_t now)
{
    size_t n = 0, i;
    for (i = q->count; i > 0; i--) {
        const struct held *h = &q->ring[(q->head + i - 1) % RING_CAP];
        if (h->tx_start <= now)
            break;
        if (h->data)
            n++;
    }
    return n;
}

static struct held *ring_append(struct dirq *q)
{
    struct held *h;
    if (q->count >= RING_CAP)
        return NULL;
    h = &q->ring[(q->head + q->count) % RING_CAP];
    memset(h, 0, sizeof *h);
    q->count++;
    return h;
}

static void add_marker(satchel_link_emu *e, int dir, const struct conn *c,
                       uint64_t now)
{
    struct dirq *q = &e->q[dir];
    struct held *h = ring_append(q);
    uint64_t start = q->busy_until > now ? q->busy_until : now;
    if (!h)
        return; /* cannot happen: RING_CAP leaves room for markers */
    h->tx_start = start;
    h->due = start + e->delay_ns;
    h->ev.kind = SATCHEL_LINK_EV_CUT;
    h->ev.family = c->family;
    memcpy(h->ev.guest_addr, c->gaddr, 16);
    memcpy(h->ev.remote_addr, c->raddr, 16);
    if (c->family == 4) {
        h->ev.guest_ip = be32(c->gaddr);
        h->ev.remote_ip = be32(c->raddr);
    }
    h->ev.guest_port = c->gport;
    h->ev.remote_port = c->rport;
    h->ev.conn_index = c->index;
}

int satchel_link_emu_push(satchel_link_emu *e, int dir, const uint8_t *frame,
                          size_t len, uint64_t now)
{
    struct dirq *q;
    struct held *h;
    struct tcpinfo ti;
    uint64_t start, tx = 0;
    int bypass_loss = 0;

    if (dir != SATCHEL_LINK_UP && dir != SATCHEL_LINK_DOWN)
        return SATCHEL_LINK_NOMEM;
    q = &e->q[dir];
    e->st.frames_in[dir]++;
    if (len > SATCHEL_LINK_MAX_FRAME || len == 0)
        return SATCHEL_LINK_TOOBIG;
    parse_frame(frame, len, &ti);
    if (ti.is_tcp) {
        struct conn *c = conn_find(e, dir, &ti);
        uint64_t adv;
        if (c->cut) {
            /* The guest's reset after the abort still reaches slirp, so the
             * host server's socket is closed rather than left hanging. */
            if (dir == SATCHEL_LINK_UP && (ti.flags & TH_RST)) {
                bypass_loss = 1;
            } else {
                e->st.cut_dropped[dir]++;
                return SATCHEL_LINK_CUT;
            }
        } else if ((adv = conn_advance(c, dir, &ti)) > 0) {
            uint64_t nb = c->bytes + adv;
            if (c->cut_point != NO_CUT && nb > c->cut_point) {
                c->bytes = nb;
                c->cut = 1;
                e->st.cuts++;
                e->st.cut_dropped[dir]++;
                add_marker(e, dir, c, now);
                return SATCHEL_LINK_CUT;
            }
            c->bytes = nb;
            if (e->cfg.stall_ms && !c->stalled && nb > e->cfg.stall_after) {
                uint64_t until = now + (uint64_t)e->cfg.stall_ms * 1000000u;
                c->stalled = 1;
                e->st.stalls++;
                if (until > e->stall_until)
                    e->stall_until = until;
            }
        }
    }
    if (!bypass_loss && e->cfg.loss_ppm &&
        (rng_next(&q->rng) >> 11) % 1000000u < e->cfg.loss_ppm) {
        e->st.lost[dir]++;
        return SATCHEL_LINK_LOST;
    }
    if (q->frames >= SATCHEL_LINK_MAX_HELD ||
        waiting(q, now) >= SATCHEL_LINK_QUEUE_FRAMES) {
        e->st.full[dir]++;
        return SATCHEL_LINK_FULL;
    }
    h = ring_append(q);
    if (!h) {
        e->st.full[dir]++;
        return SATCHEL_LINK_FULL;
    }
    h->data = malloc(len);
    if (!h->data) {
        q->count--;
        return SATCHEL_LINK_NOMEM;
    }
    memcpy(h->data, frame, len);
    h->len = len;
    h->ev.kind = SATCHEL_LINK_EV_FRAME;
    h->ev.len = len;
    if (e->cfg.rate_bps)
        tx = ((uint64_t)len * 8u * 1000000000u + e->cfg.rate_bps - 1) /
             e->cfg.rate_bps;
    start = q->busy_until > now ? q->busy_until : now;
    q->busy_until = start + tx;
    h->tx_start = start;
    h->due = start + tx + e->delay_ns;
    q->frames++;
    return SATCHEL_LINK_QUEUED;
}

int satchel_link_emu_pop(satchel_link_emu *e, int dir, uint64_t now,
                         uint8_t *buf, size_t cap, satchel_link_event *ev)
{
    struct dirq *q;
    struct held *h;
    if (dir != SATCHEL_LINK_UP && dir != SATCHEL_LINK_DOWN)
        return 0;
    q = &e->q[dir];
    if (q->count == 0 || now < e->stall_until)
        return 0;
    h = &q->ring[q->head];
    if (h->due > now)
        return 0;
    *ev = h->ev;
    if (h->data) {
        memcpy(buf, h->data, h->len < cap ? h->len : cap);
        free(h->data);
        h->data = NULL;
        q->frames--;
        e->st.frames_out[dir]++;
        e->st.bytes_out[dir] += h->len;
    }
    q->head = (q->head + 1) % RING_CAP;
    q->count--;
    return 1;
}

uint64_t satchel_link_emu_next_due(const satchel_link_emu *e, uint64_t now)
{
    uint64_t best = UINT64_MAX;
    int d;
    (void)now;
    for (d = 0; d < 2; d++) {
        const struct dirq *q = &e->q[d];
        uint64_t t;
        if (q->count == 0)
            continue;
        t = q->ring[q->head].due;
        if (t < e->stall_until)
            t = e->stall_until;
        if (t < best)
            best = t;
    }
    return best;
}

size_t satchel_link_emu_held(const satchel_link_emu *e, int dir)
{
    return (dir == 0 || dir == 1) ? e->q[dir].count : 0;
}

void satchel_link_emu_stats(const satchel_link_emu *e, satchel_link_stats *out)
{
    *out = e->st;
}

#endif /* !SATCHEL_LINK_GLUE_ONLY */

#ifndef SATCHEL_LINK_EMU_ONLY

/* ------------------------------------------------------------------ */
/* slirp glue                                                          */
/* ------------------------------------------------------------------ */

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <time.h>

#include <libslirp.h>

struct stimer {
    SlirpTimerCb cb;
    void *cb_opaque;
    int64_t expire_ms; /* -1: not armed */
    struct stimer *next;
};

struct satchel_slirp_link {
    Slirp *slirp;
    satchel_link_emu *emu;
    satchel_slirp_link_cb cb;
    struct stimer *timers;
    struct pollfd *pfd;
    size_t npfd, pfd_cap;
    int delivering;
    uint8_t buf[SATCHEL_LINK_MAX_FRAME];
};

uint64_t satchel_slirp_link_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static ssize_t cb_send_packet(const void *buf, size_t len, void *opaque)
{
    satchel_slirp_link *l = opaque;
    satchel_link_emu_push(l->emu, SATCHEL_LINK_DOWN, buf, len,
                          satchel_slirp_link_now_ns());
    return (ssize_t)len;
}

static void cb_guest_error(const char *msg, void *opaque)
{
    (void)opaque;
    fprintf(stderr, "slirp: guest error: %s\n", msg);
}

static int64_t cb_clock_get_ns(void *opaque)
{
    (void)opaque;
    return (int64_t)satchel_slirp_link_now_ns();
}

static void *cb_timer_new(SlirpTimerCb cb, void *cb_opaque, void *opaque)
{
    satchel_slirp_link *l = opaque;
    struct stimer *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->cb = cb;
    t->cb_opaque = cb_opaque;
    t->expire_ms = -1;
    t->next = l->timers;
    l->timers = t;
    return t;
}

static void cb_timer_free(void *timer, void *opaque)
{
    satchel_slirp_link *l = opaque;
    struct stimer **pp;
    for (pp = &l->timers; *pp; pp = &(*pp)->next) {
        if (*pp == timer) {
            *pp = ((struct stimer *)timer)->next;
            free(timer);
            return;
        }
    }
}

static void cb_timer_mod(void *timer, int64_t expire_ms, void *opaque)
{
    (void)opaque;
    if (timer)
        ((struct stimer *)timer)->expire_ms = expire_ms;
}

static void cb_register_poll_fd(int fd, void *opaque)
{
    (void)fd;
    (void)opaque;
}

static void cb_unregister_poll_fd(int fd, void *opaque)
{
    (void)fd;
    (void)opaque;
}

static void cb_notify(void *opaque)
{
    (void)opaque; /* single-threaded: the loop runs again anyway */
}

static int cb_add_poll(int fd, int events, void *opaque)
{
    satchel_slirp_link *l = opaque;
    struct pollfd *p;
    if (l->npfd == l->pfd_cap) {
        size_t cap = l->pfd_cap ? l->pfd_cap * 2 : 16;
        struct pollfd *n = realloc(l->pfd, cap * sizeof *n);
        if (!n)
            return -1;
        l->pfd = n;
        l->pfd_cap = cap;
    }
    p = &l->pfd[l->npfd];
    p->fd = fd;
    p->events = 0;
    p->revents = 0;
    if (events & SLIRP_POLL_IN)
        p->events |= POLLIN;
    if (events & SLIRP_POLL_OUT)
        p->events |= POLLOUT;
    if (events & SLIRP_POLL_PRI)
        p->events |= POLLPRI;
    return (int)l->npfd++;
}

static int cb_get_revents(int idx, void *opaque)
{
    satchel_slirp_link *l = opaque;
    short r;
    int ev = 0;
    if (idx < 0 || (size_t)idx >= l->npfd)
        return 0;
    r = l->pfd[idx].revents;
    if (r & POLLIN)
        ev |= SLIRP_POLL_IN;
    if (r & POLLOUT)
        ev |= SLIRP_POLL_OUT;
    if (r & POLLPRI)
        ev |= SLIRP_POLL_PRI;
    if (r & (POLLERR | POLLNVAL))
        ev |= SLIRP_POLL_ERR;
    if (r & POLLHUP)
        ev |= SLIRP_POLL_HUP;
    return ev;
}

static void fire_timers(satchel_slirp_link *l)
{
    int64_t now_ms = (int64_t)(satchel_slirp_link_now_ns() / 1000000u);
    int again = 1;
    while (again) {
        struct stimer *t;
        again = 0;
        for (t = l->timers; t; t = t->next) {
            if (t->expire_ms >= 0 && t->expire_ms <= now_ms) {
                t->expire_ms = -1;
                t->cb(t->cb_opaque);
                again = 1; /* the callback may have changed the list */
                break;
            }
        }
    }
}

static void deliver_due(satchel_slirp_link *l)
{
    uint64_t now = satchel_slirp_link_now_ns();
    satchel_link_event ev;
    int progress = 1;
    if (l->delivering)
        return;
    l->delivering = 1;
    while (progress) {
        progress = 0;
        while (satchel_link_emu_pop(l->emu, SATCHEL_LINK_UP, now, l->buf,
                                    sizeof l->buf, &ev)) {
            progress = 1;
            if (ev.kind == SATCHEL_LINK_EV_FRAME)
                slirp_input(l->slirp, l->buf, (int)ev.len);
            else if (l->cb.cut)
                l->cb.cut(l->cb.ctx, &ev);
        }
        while (satchel_link_emu_pop(l->emu, SATCHEL_LINK_DOWN, now, l->buf,
                                    sizeof l->buf, &ev)) {
            progress = 1;
            if (ev.kind == SATCHEL_LINK_EV_FRAME) {
                if (l->cb.deliver)
                    l->cb.deliver(l->cb.ctx, l->buf, ev.len);
            } else if (l->cb.cut) {
                l->cb.cut(l->cb.ctx, &ev);
            }
        }
    }
    l->delivering = 0;
}

static const SlirpCb slirp_callbacks = {
    .send_packet = cb_send_packet,
    .guest_error = cb_guest_error,
    .clock_get_ns = cb_clock_get_ns,
    .timer_new = cb_timer_new,
    .timer_free = cb_timer_free,
    .timer_mod = cb_timer_mod,
    .register_poll_fd = cb_register_poll_fd,
    .unregister_poll_fd = cb_unregister_poll_fd,
    .notify = cb_notify,
};

satchel_slirp_link *satchel_slirp_link_new(const satchel_link_config *cfg,
                                           const satchel_slirp_link_cb *cb)
{
    satchel_slirp_link *l = calloc(1, sizeof *l);
    SlirpConfig sc;
    if (!l)
        return NULL;
    if (cb)
        l->cb = *cb;
    l->emu = satchel_link_emu_new(cfg);
    if (!l->emu) {
        free(l);
        return NULL;
    }
    memset(&sc, 0, sizeof sc);
    sc.version = 4;
    sc.restricted = 0;
    sc.in_enabled = true;
    inet_pton(AF_INET, "10.0.2.0", &sc.vnetwork);
    inet_pton(AF_INET, "255.255.255.0", &sc.vnetmask);
    inet_pton(AF_INET, "10.0.2.2", &sc.vhost);
    inet_pton(AF_INET, "10.0.2.15", &sc.vdhcp_start);
    inet_pton(AF_INET, "10.0.2.3", &sc.vnameserver);
    sc.in6_enabled = true;
    inet_pton(AF_INET6, "fec0::", &sc.vprefix_addr6);
    sc.vprefix_len = 64;
    inet_pton(AF_INET6, "fec0::2", &sc.vhost6);
    inet_pton(AF_INET6, "fec0::3", &sc.vnameserver6);
    sc.vhostname = "satchel-sim";
    sc.if_mtu = 1500;
    sc.if_mru = 1500;
    sc.disable_host_loopback = false;
    sc.enable_emu = false;
    sc.disable_dns = true;
    sc.disable_dhcp = true;
    l->slirp = slirp_new(&sc, &slirp_callbacks, l);
    if (!l->slirp) {
        satchel_link_emu_free(l->emu);
        free(l);
        return NULL;
    }
    return l;
}

void satchel_slirp_link_free(satchel_slirp_link *l)
{
    if (!l)
        return;
    slirp_cleanup(l->slirp);
    while (l->timers) {
        struct stimer *t = l->timers;
        l->timers = t->next;
        free(t);
    }
    satchel_link_emu_free(l->emu);
    free(l->pfd);
    free(l);
}

void satchel_slirp_link_output(satchel_slirp_link *l, const uint8_t *frame,
                               size_t len)
{
    satchel_link_emu_push(l->emu, SATCHEL_LINK_UP, frame, len,
                          satchel_slirp_link_now_ns());
}

int satchel_slirp_link_poll(satchel_slirp_link *l, uint32_t timeout_ms)
{
    uint32_t to = timeout_ms;
    uint64_t now, due;
    struct stimer *t;
    int rc;

    fire_timers(l);
    deliver_due(l);
    l->npfd = 0;
    slirp_pollfds_fill(l->slirp, &to, cb_add_poll, l);
    now = satchel_slirp_link_now_ns();
    due = satchel_link_emu_next_due(l->emu, now);
    if (due != UINT64_MAX) {
        uint64_t ms = due <= now ? 0 : (due - now + 999999u) / 1000000u;
        if (ms < to)
            to = (uint32_t)ms;
    }
    for (t = l->timers; t; t = t->next) {
        if (t->expire_ms >= 0) {
            int64_t left = t->expire_ms - (int64_t)(now / 1000000u);
            uint32_t ms = left <= 0 ? 0 : (uint32_t)left;
            if (ms < to)
                to = ms;
        }
    }
    if (to > INT_MAX)
        to = INT_MAX;
    rc = poll(l->pfd, (nfds_t)l->npfd, (int)to);
    if (rc < 0 && errno == EINTR) {
        size_t i;
        for (i = 0; i < l->npfd; i++)
            l->pfd[i].revents = 0;
        rc = 0;
    }
    slirp_pollfds_poll(l->slirp, rc < 0, cb_get_revents, l);
    fire_timers(l);
    deliver_due(l);
    return rc < 0 ? -1 : 0;
}

satchel_link_emu *satchel_slirp_link_emu(satchel_slirp_link *l)
{
    return l->emu;
}

#endif /* !SATCHEL_LINK_EMU_ONLY */

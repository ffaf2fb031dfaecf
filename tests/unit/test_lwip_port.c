/* End-to-end test of the "lwip" port: lwIP + link emulator + libslirp,
 * against a Python server on 127.0.0.1 that the test starts itself (plain
 * and TLS listeners, throwaway CA and certificate made with openssl in a
 * temporary directory).  Each scenario runs in a child process, because the
 * port (like lwIP) is started once per process with one link config.
 *
 * Prints one line per measurement and ends with
 * "test_lwip_port: N passed, M failed".  Only talks to 127.0.0.1. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "satchel/error.h"
#include "satchel/port_lwip.h"
#include "satchel/tls.h"
#include "slirp_link.h"

/* The server: "PING\n" -> "PONG\n"; "BULK n\n" -> n pattern bytes, then
 * close; "SINK n\n" -> reads n bytes, "OK\n".  Plain and TLS listeners on
 * 127.0.0.1, a plain one on ::1; prints "PORTS plain tls plain6". */
static const char server_py[] =
    "import socket, socketserver, ssl, sys, threading\n"
    "cert, key = sys.argv[1], sys.argv[2]\n"
    "PAT = bytes((i * 7 + 3) & 255 for i in range(251)) * 64\n"
    "def pattern(n):\n"
    "    out = bytearray(); off = 0\n"
    "    while len(out) < n:\n"
    "        out += PAT\n"
    "    return bytes(out[:n])\n"
    "def serve(f, w):\n"
    "    while True:\n"
    "        line = f.readline()\n"
    "        if not line:\n"
    "            return\n"
    "        parts = line.split()\n"
    "        if parts[:1] == [b'PING']:\n"
    "            w(b'PONG\\n')\n"
    "        elif parts[:1] == [b'BULK']:\n"
    "            w(pattern(int(parts[1])))\n"
    "            return\n"
    "        elif parts[:1] == [b'SINK']:\n"
    "            n = int(parts[1])\n"
    "            while n > 0:\n"
    "                b = f.read(min(n, 65536))\n"
    "                if not b:\n"
    "                    return\n"
    "                n -= len(b)\n"
    "            w(b'OK\\n')\n"
    "        else:\n"
    "            return\n"
    "class Plain(socketserver.BaseRequestHandler):\n"
    "    def handle(self):\n"
    "        s = self.request\n"
    "        try:\n"
    "            serve(s.makefile('rb'), s.sendall)\n"
    "        except OSError:\n"
    "            pass\n"
    "ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\n"
    "ctx.load_cert_chain(cert, key)\n"
    "class Tls(socketserver.BaseRequestHandler):\n"
    "    def handle(self):\n"
    "        try:\n"
    "            s = ctx.wrap_socket(self.request, server_side=True)\n"
    "            serve(s.makefile('rb'), s.sendall)\n"
    "            s.unwrap()\n"
    "        except (OSError, ssl.SSLError):\n"
    "            pass\n"
    "class S(socketserver.ThreadingTCPServer):\n"
    "    daemon_threads = True\n"
    "    allow_reuse_address = True\n"
    "class S6(S):\n"
    "    address_family = socket.AF_INET6\n"
    "a = S(('127.0.0.1', 0), Plain)\n"
    "b = S(('127.0.0.1', 0), Tls)\n"
    "c = S6(('::1', 0), Plain)\n"
    "for s in (a, b, c):\n"
    "    threading.Thread(target=s.serve_forever, daemon=True).start()\n"
    "print('PORTS', a.server_address[1], b.server_address[1], c.server_address[1],\n"
    "      flush=True)\n"
    "sys.stdin.read()\n";

static uint16_t plain_port, tls_port, plain6_port;
static char tmpdir[64];
static char ca_file[128];

static uint8_t pat(uint64_t i)
{
    return (uint8_t)(((i % 251) * 7 + 3) & 255);
}

/* ---- helpers over the port ---- */

static const satchel_port *P;

static uint64_t now_ms(void)
{
    return P->now_ms(P->ctx);
}

static int send_all(satchel_conn *c, const void *buf, size_t len, uint32_t timeout)
{
    const uint8_t *p = buf;
    uint64_t deadline = now_ms() + timeout;
    while (len > 0) {
        long n = P->send(c, p, len);
        if (n == SATCHEL_E_AGAIN) {
            if (now_ms() >= deadline)
                return SATCHEL_E_TIMEOUT;
            if (P->wait(c, 1, (uint32_t)(deadline - now_ms())) < 0)
                return SATCHEL_E_IO;
            continue;
        }
        if (n <= 0)
            return n == 0 ? SATCHEL_E_IO : (int)n;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Read exactly len bytes.  0, SATCHEL_E_IO (incl. EOF) or _TIMEOUT. */
static int recv_exact(satchel_conn *c, void *buf, size_t len, uint32_t timeout)
{
    uint8_t *p = buf;
    uint64_t deadline = now_ms() + timeout;
    while (len > 0) {
        long n = P->recv(c, p, len);
        if (n == SATCHEL_E_AGAIN) {
            uint64_t t = now_ms();
            if (t >= deadline)
                return SATCHEL_E_TIMEOUT;
            P->wait(c, 0, (uint32_t)(deadline - t));
            continue;
        }
        if (n <= 0)
            return n == 0 ? SATCHEL_E_IO : (int)n;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Read to the end; count bytes and check the pattern.  Returns the final
 * recv result: 0 at EOF, SATCHEL_E_IO on a reset, SATCHEL_E_TIMEOUT. */
static int recv_bulk(satchel_conn *c, uint64_t *got, int *pattern_ok, uint32_t timeout)
{
    static uint8_t buf[16384];
    uint64_t deadline = now_ms() + timeout;
    *got = 0;
    *pattern_ok = 1;
    for (;;) {
        long n = P->recv(c, buf, sizeof buf), i;
        if (n == SATCHEL_E_AGAIN) {
            uint64_t t = now_ms();
            if (t >= deadline)
                return SATCHEL_E_TIMEOUT;
            P->wait(c, 0, (uint32_t)(deadline - t));
            continue;
        }
        if (n <= 0)
            return (int)n;
        for (i = 0; i < n; i++)
            if (buf[i] != pat(*got + (uint64_t)i))
                *pattern_ok = 0;
        *got += (uint64_t)n;
    }
}

static int open_at(const char *host, uint16_t port, satchel_conn **c, uint64_t *ms)
{
    uint64_t t0 = now_ms();
    int rc = P->open(P->ctx, host, port, 10000, c);
    if (ms)
        *ms = now_ms() - t0;
    return rc;
}

static int open_plain(const char *host, satchel_conn **c, uint64_t *ms)
{
    uint64_t t0 = now_ms();
    int rc = P->open(P->ctx, host, plain_port, 10000, c);
    if (ms)
        *ms = now_ms() - t0;
    return rc;
}

/* Round trips of PING/PONG: min and median in ms. */
static int ping_rtt(satchel_conn *c, int count, uint64_t *min, uint64_t *median)
{
    uint64_t v[64];
    int i, j;
    char pong[5];
    if (count > 64)
        count = 64;
    for (i = 0; i < count; i++) {
        uint64_t t0 = now_ms();
        if (send_all(c, "PING\n", 5, 10000) < 0 || recv_exact(c, pong, 5, 10000) < 0 ||
            memcmp(pong, "PONG\n", 5) != 0)
            return -1;
        v[i] = now_ms() - t0;
    }
    for (i = 1; i < count; i++) /* insertion sort */
        for (j = i; j > 0 && v[j - 1] > v[j]; j--) {
            uint64_t t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    *min = v[0];
    *median = v[count / 2];
    return 0;
}

/* BULK n over a fresh connection to host:port: bytes, ms, final rc. */
static int bulk_at(const char *host, uint16_t port, uint64_t n, uint64_t *got,
                   uint64_t *ms, int *ok, uint32_t timeout)
{
    satchel_conn *c;
    char cmd[48];
    uint64_t t0;
    int rc;
    if (open_at(host, port, &c, NULL) < 0)
        return SATCHEL_E_INVAL;
    snprintf(cmd, sizeof cmd, "BULK %llu\n", (unsigned long long)n);
    t0 = now_ms();
    if (send_all(c, cmd, strlen(cmd), 10000) < 0) {
        P->close(c);
        return SATCHEL_E_INVAL;
    }
    rc = recv_bulk(c, got, ok, timeout);
    *ms = now_ms() - t0;
    P->close(c);
    return rc;
}

static int bulk(uint64_t n, uint64_t *got, uint64_t *ms, int *ok, uint32_t timeout)
{
    return bulk_at("127.0.0.1", plain_port, n, got, ms, ok, timeout);
}

static double kbit_s(uint64_t bytes, uint64_t ms)
{
    return ms ? (double)bytes * 8.0 / (double)ms : 0.0;
}

/* ---- scenarios (each in its own process) ---- */

static void start(const char *spec)
{
    satchel_link_config cfg;
    if (satchel_link_parse(spec, &cfg) != 0) {
        fprintf(stderr, "bad spec %s\n", spec);
        exit(100);
    }
    P = satchel_port_lwip(&cfg);
    if (!P) {
        fprintf(stderr, "satchel_port_lwip failed\n");
        exit(100);
    }
    CHECK_THAT(satchel_port_lwip(NULL) == P); /* one instance per process */
    CHECK_THAT(strcmp(P->name, "lwip") == 0 && P->version == SATCHEL_PORT_VERSION);
}

static void sc_perfect(void)
{
    satchel_conn *c;
    uint64_t ms, mn = UINT64_MAX, med = UINT64_MAX, got; /* set by ping_rtt on success */
    int ok, rc;
    uint8_t rnd[32], zero[32] = {0};
    start("");
    CHECK_THAT(open_plain("127.0.0.1", &c, &ms) == 0);
    printf("  perfect: connect %llu ms\n", (unsigned long long)ms);
    CHECK_THAT(ping_rtt(c, 20, &mn, &med) == 0);
    printf("  perfect: PING rtt min %llu ms, median %llu ms\n",
           (unsigned long long)mn, (unsigned long long)med);
    CHECK_THAT(med < 50);
    /* Upload. */
    {
        static uint8_t up[1 << 20];
        char okb[3];
        uint64_t t0 = now_ms();
        CHECK_THAT(send_all(c, "SINK 1048576\n", 13, 10000) == 0);
        CHECK_THAT(send_all(c, up, sizeof up, 60000) == 0);
        CHECK_THAT(recv_exact(c, okb, 3, 60000) == 0 && memcmp(okb, "OK\n", 3) == 0);
        ms = now_ms() - t0;
        printf("  perfect: upload 1 MB in %llu ms (%.0f kbit/s)\n",
               (unsigned long long)ms, kbit_s(sizeof up, ms));
    }
    P->close(c);
    rc = bulk(4u << 20, &got, &ms, &ok, 60000);
    CHECK_THAT(rc == 0 && got == 4u << 20 && ok);
    printf("  perfect: download 4 MB in %llu ms (%.0f kbit/s)\n",
           (unsigned long long)ms, kbit_s(got, ms));
    /* Host names that mean the host. */
    CHECK_THAT(open_plain("localhost", &c, NULL) == 0 && ping_rtt(c, 1, &mn, &med) == 0);
    P->close(c);
    /* IPv6: ::1 is slirp's fec0::2, which reaches the host's ::1. */
    CHECK_THAT(open_at("::1", plain6_port, &c, NULL) == 0 && ping_rtt(c, 1, &mn, &med) == 0);
    P->close(c);
    CHECK_THAT(open_at("[::1]", plain6_port, &c, NULL) == 0 && ping_rtt(c, 1, &mn, &med) == 0);
    P->close(c);
    /* "localhost": 127.0.0.1 refuses that port, ::1 answers. */
    CHECK_THAT(open_at("localhost", plain6_port, &c, NULL) == 0 &&
               ping_rtt(c, 1, &mn, &med) == 0);
    P->close(c);
    CHECK_THAT(open_at("127.0.0.1", plain6_port, &c, NULL) == SATCHEL_E_IO);
    rc = bulk_at("::1", plain6_port, 4u << 20, &got, &ms, &ok, 60000);
    CHECK_THAT(rc == 0 && got == 4u << 20 && ok);
    printf("  perfect: download 4 MB over IPv6 in %llu ms (%.0f kbit/s)\n",
           (unsigned long long)ms, kbit_s(got, ms));
    /* Refused: nothing listens on 127.0.0.1:1. */
    {
        uint64_t t0 = now_ms();
        rc = P->open(P->ctx, "127.0.0.1", 1, 5000, &c);
        CHECK_THAT(rc == SATCHEL_E_IO);
        printf("  perfect: refused connect -> %s in %llu ms\n", satchel_strerror(rc),
               (unsigned long long)(now_ms() - t0));
    }
    /* Entropy and clock. */
    CHECK_THAT(P->entropy(P->ctx, rnd, sizeof rnd) == 0 && memcmp(rnd, zero, 32) != 0);
    CHECK_THAT(P->now_ms(P->ctx) >= ms);
}

static void sc_rtt(const char *spec, uint64_t rtt)
{
    satchel_conn *c;
    uint64_t ms, mn, med;
    start(spec);
    CHECK_THAT(open_plain("127.0.0.1", &c, &ms) == 0);
    /* ARP, then SYN/SYN-ACK: two round trips for the first connection. */
    printf("  %s: connect %llu ms\n", spec, (unsigned long long)ms);
    CHECK_THAT(ms >= rtt);
    CHECK_THAT(ping_rtt(c, 10, &mn, &med) == 0);
    printf("  %s: PING rtt min %llu ms, median %llu ms\n", spec,
           (unsigned long long)mn, (unsigned long long)med);
    CHECK_THAT(mn >= rtt);
    CHECK_THAT(med < rtt + 60);
    P->close(c);
    CHECK_THAT(open_plain("127.0.0.1", &c, &ms) == 0);
    printf("  %s: second connect %llu ms\n", spec, (unsigned long long)ms);
    CHECK_THAT(ms >= rtt && ms < rtt + 60);
    P->close(c);
}

static void sc_rate(const char *spec, uint64_t rate, uint64_t n)
{
    uint64_t got, ms;
    int ok, rc;
    double r, ideal = (double)rate / 1000.0 * 1460.0 / 1514.0;
    satchel_link_stats st;
    start(spec);
    rc = bulk(n, &got, &ms, &ok, 120000);
    CHECK_THAT(rc == 0 && got == n && ok);
    r = kbit_s(got, ms);
    satchel_port_lwip_link_stats(&st);
    printf("  %s: download %llu KB in %llu ms = %.1f kbit/s (wire limit for "
           "payload %.1f kbit/s, %.0f%%); dropped at the router %llu\n",
           spec, (unsigned long long)(n / 1024), (unsigned long long)ms, r, ideal,
           100.0 * r / ideal, (unsigned long long)st.full[1]);
    CHECK_THAT(r <= ideal * 1.02);
    CHECK_THAT(r >= ideal * 0.80);
}

static void sc_upload_rate(const char *spec, uint64_t rate)
{
    static uint8_t up[128 * 1024];
    satchel_conn *c;
    char okb[3], cmd[32];
    uint64_t t0, ms;
    double r, ideal = (double)rate / 1000.0 * 1460.0 / 1514.0;
    start(spec);
    CHECK_THAT(open_plain("127.0.0.1", &c, NULL) == 0);
    snprintf(cmd, sizeof cmd, "SINK %zu\n", sizeof up);
    t0 = now_ms();
    CHECK_THAT(send_all(c, cmd, strlen(cmd), 10000) == 0);
    CHECK_THAT(send_all(c, up, sizeof up, 60000) == 0);
    CHECK_THAT(recv_exact(c, okb, 3, 60000) == 0 && memcmp(okb, "OK\n", 3) == 0);
    ms = now_ms() - t0;
    r = kbit_s(sizeof up, ms);
    printf("  %s: upload 128 KB in %llu ms = %.1f kbit/s (%.0f%% of payload limit)\n",
           spec, (unsigned long long)ms, r, 100.0 * r / ideal);
    CHECK_THAT(r <= ideal * 1.02 && r >= ideal * 0.75);
    P->close(c);
}

static void sc_loss(void)
{
    const char *spec = "loss=2%,seed=7,rtt=20ms";
    uint64_t got, ms;
    int ok, rc;
    satchel_link_stats st;
    start(spec);
    rc = bulk(1u << 20, &got, &ms, &ok, 120000);
    satchel_port_lwip_link_stats(&st);
    CHECK_THAT(rc == 0 && got == 1u << 20 && ok);
    printf("  %s: download 1 MB intact in %llu ms; frames lost up %llu/%llu, "
           "down %llu/%llu\n",
           spec, (unsigned long long)ms, (unsigned long long)st.lost[0],
           (unsigned long long)st.frames_in[0], (unsigned long long)st.lost[1],
           (unsigned long long)st.frames_in[1]);
    CHECK_THAT(st.lost[0] + st.lost[1] > 0);
}

static void sc_cut(void)
{
    const char *spec = "cut-after=100KB,rtt=40ms";
    uint64_t got, ms, mn, med;
    int ok, rc;
    satchel_conn *c;
    satchel_link_stats st;
    start(spec);
    rc = bulk(1u << 20, &got, &ms, &ok, 60000);
    printf("  %s: download cut after %llu bytes -> %s after %llu ms\n", spec,
           (unsigned long long)got, satchel_strerror(rc), (unsigned long long)ms);
    CHECK_THAT(rc == SATCHEL_E_IO);
    CHECK_THAT(ok);
    /* "BULK 1048576\n" (13 bytes) counts too; the segment crossing the
     * point is the first one lost. */
    CHECK_THAT(got <= 100 * 1024 - 13 && got + 1460 > 100 * 1024 - 13);
    /* A cut connection keeps failing, for send too. */
    {
        uint8_t b[64];
        CHECK_THAT(open_plain("127.0.0.1", &c, NULL) == 0);
        CHECK_THAT(send_all(c, "BULK 1048576\n", 13, 10000) == 0);
        rc = recv_bulk(c, &got, &ok, 60000);
        CHECK_THAT(rc == SATCHEL_E_IO);
        CHECK_THAT(P->recv(c, b, sizeof b) == SATCHEL_E_IO);
        CHECK_THAT(P->send(c, b, sizeof b) == SATCHEL_E_IO);
        CHECK_THAT(P->wait(c, 0, 1000) == 1 && P->wait(c, 1, 1000) == 1);
        P->close(c);
    }
    CHECK_THAT(open_plain("127.0.0.1", &c, NULL) == 0);
    CHECK_THAT(ping_rtt(c, 3, &mn, &med) == 0); /* a new connection is fine */
    P->close(c);
    satchel_port_lwip_link_stats(&st);
    CHECK_THAT(st.cuts == 2);
}

static void sc_cut_random(void)
{
    const char *spec = "cut-random=300KB,seed=42";
    satchel_link_config cfg;
    uint64_t got, ms;
    int ok, rc;
    uint32_t i;
    start(spec);
    satchel_link_parse(spec, &cfg);
    for (i = 0; i < 3; i++) {
        uint64_t point = satchel_link_emu_cut_point(&cfg, i);
        rc = bulk(1u << 20, &got, &ms, &ok, 60000);
        printf("  %s: connection %u cut at %llu bytes (model: %llu) -> %s\n", spec,
               i, (unsigned long long)got, (unsigned long long)point,
               satchel_strerror(rc));
        CHECK_THAT(rc == SATCHEL_E_IO && ok);
        CHECK_THAT(got <= point - 13 && got + 1460 > point - 13);
    }
}

static void sc_ipv6(void)
{
    const char *spec = "rtt=100ms,cut-after=50KB";
    satchel_conn *c;
    uint64_t ms, mn, med, got;
    int ok, rc;
    start(spec);
    CHECK_THAT(open_at("::1", plain6_port, &c, &ms) == 0);
    printf("  %s: IPv6 connect %llu ms\n", spec, (unsigned long long)ms);
    CHECK_THAT(ping_rtt(c, 5, &mn, &med) == 0);
    printf("  %s: IPv6 PING rtt min %llu ms, median %llu ms\n", spec,
           (unsigned long long)mn, (unsigned long long)med);
    CHECK_THAT(mn >= 100 && med < 160);
    P->close(c);
    rc = bulk_at("::1", plain6_port, 1u << 20, &got, &ms, &ok, 60000);
    printf("  %s: IPv6 download cut after %llu bytes -> %s\n", spec,
           (unsigned long long)got, satchel_strerror(rc));
    CHECK_THAT(rc == SATCHEL_E_IO && ok);
    CHECK_THAT(got <= 50 * 1024 - 13 && got + 1440 > 50 * 1024 - 13);
}

static void sc_stall(void)
{
    const char *spec = "stall=2s,stall-after=50KB";
    uint64_t got, ms;
    int ok, rc;
    start(spec);
    rc = bulk(200 * 1024, &got, &ms, &ok, 60000);
    printf("  %s: download 200 KB in %llu ms\n", spec, (unsigned long long)ms);
    CHECK_THAT(rc == 0 && got == 200 * 1024 && ok);
    CHECK_THAT(ms >= 2000 && ms < 5000);
}

static void sc_timeout(void)
{
    satchel_conn *c = NULL;
    uint64_t t0;
    int rc;
    start("loss=100%");
    t0 = now_ms();
    rc = P->open(P->ctx, "127.0.0.1", plain_port, 1500, &c);
    printf("  loss=100%%: connect -> %s after %llu ms\n", satchel_strerror(rc),
           (unsigned long long)(now_ms() - t0));
    CHECK_THAT(rc == SATCHEL_E_TIMEOUT && c == NULL);
    CHECK_THAT(now_ms() - t0 >= 1500 && now_ms() - t0 < 2500);
}

/* The TLS module takes PEM text; reading the file is the caller's job. */
static char ca_pem[16384];

static int load_ca(const char *path)
{
    FILE *f = fopen(path, "rb");
    size_t n;
    if (!f)
        return -1;
    n = fread(ca_pem, 1, sizeof ca_pem - 1, f);
    fclose(f);
    ca_pem[n] = '\0';
    return n > 0 ? 0 : -1;
}

static int tls_session(const char *connect_host, const char *name, const char *ca,
                       satchel_tls **out_tls, satchel_conn **out_conn,
                       uint64_t *hs_ms)
{
    satchel_tls_config tc;
    satchel_tls *t;
    satchel_conn *c;
    uint64_t t0;
    int rc;
    if (load_ca(ca) < 0)
        return SATCHEL_E_CERT;
    tc.ca_pem = ca_pem;
    tc.hostname = name;
    if ((rc = satchel_tls_new(NULL, &tc, &t)) < 0)
        return rc;
    if ((rc = P->open(P->ctx, connect_host, tls_port, 10000, &c)) < 0) {
        satchel_tls_free(t);
        return rc;
    }
    t0 = now_ms();
    rc = satchel_tls_handshake(t, P, c, 20000);
    *hs_ms = now_ms() - t0;
    if (rc < 0) {
        printf("    (%s: %s)\n", name, satchel_tls_detail(t));
        satchel_tls_free(t);
        P->close(c);
        return rc;
    }
    *out_tls = t;
    *out_conn = c;
    return 0;
}

static int tls_recv_exact(satchel_tls *t, satchel_conn *c, uint8_t *buf, size_t len,
                          uint64_t *pos, int check_pattern)
{
    uint64_t deadline = now_ms() + 120000;
    while (len > 0) {
        long n = satchel_tls_recv(t, buf, len), i;
        if (n == SATCHEL_E_AGAIN) {
            if (now_ms() >= deadline)
                return SATCHEL_E_TIMEOUT;
            if (satchel_tls_pending(t) == 0)
                P->wait(c, 0, 1000);
            continue;
        }
        if (n <= 0)
            return n == 0 ? SATCHEL_E_IO : (int)n;
        if (check_pattern)
            for (i = 0; i < n; i++)
                if (buf[i] != pat(*pos + (uint64_t)i))
                    return SATCHEL_E_PROTO;
        *pos += (uint64_t)n;
        if (!check_pattern)
            buf += n;
        len -= (size_t)n;
    }
    return 0;
}

static int tls_send_all(satchel_tls *t, satchel_conn *c, const char *s)
{
    size_t len = strlen(s);
    while (len > 0) {
        long n = satchel_tls_send(t, (const uint8_t *)s, len);
        if (n == SATCHEL_E_AGAIN) {
            P->wait(c, 1, 1000);
            continue;
        }
        if (n <= 0)
            return (int)n;
        s += n;
        len -= (size_t)n;
    }
    return 0;
}

static void sc_tls(const char *spec)
{
    satchel_tls *t = NULL;
    satchel_conn *c = NULL;
    uint64_t hs, pos = 0, t0, ms;
    uint8_t buf[16384];
    int rc;
    start(spec);
    rc = tls_session("localhost", "localhost", ca_file, &t, &c, &hs);
    CHECK_THAT(rc == 0);
    if (rc == 0) {
        printf("  %s: TLS handshake (name localhost) %llu ms: %s %s\n", spec,
               (unsigned long long)hs, satchel_tls_version(t), satchel_tls_ciphersuite(t));
        CHECK_THAT(tls_send_all(t, c, "PING\n") == 0);
        CHECK_THAT(tls_recv_exact(t, c, buf, 5, &pos, 0) == 0 && memcmp(buf, "PONG\n", 5) == 0);
        /* 16 KB records through the 34 KB window, the app reading slowly
         * (never more than 1000 bytes at a time). */
        CHECK_THAT(tls_send_all(t, c, "BULK 300000\n") == 0);
        t0 = now_ms();
        pos = 0;
        while (pos < 300000) {
            size_t want = 300000 - pos < 1000 ? (size_t)(300000 - pos) : 1000;
            rc = tls_recv_exact(t, c, buf, want, &pos, 1);
            if (rc < 0)
                break;
        }
        ms = now_ms() - t0;
        CHECK_THAT(rc == 0 && pos == 300000);
        printf("  %s: 300000 bytes over TLS in %llu ms (%.0f kbit/s)\n", spec,
               (unsigned long long)ms, kbit_s(pos, ms));
        satchel_tls_close(t);
        satchel_tls_free(t);
        P->close(c);
    }
    /* By address: the certificate's iPAddress 127.0.0.1. */
    rc = tls_session("127.0.0.1", "127.0.0.1", ca_file, &t, &c, &hs);
    CHECK_THAT(rc == 0);
    if (rc == 0) {
        printf("  %s: TLS handshake (address 127.0.0.1) %llu ms\n", spec,
               (unsigned long long)hs);
        satchel_tls_close(t);
        satchel_tls_free(t);
        P->close(c);
    }
    /* Wrong name, and an unknown CA: refused. */
    rc = tls_session("127.0.0.1", "imap.example.org", ca_file, &t, &c, &hs);
    CHECK_THAT(rc == SATCHEL_E_CERT);
    rc = tls_session("127.0.0.1", "localhost", NULL /* system bundle */, &t, &c, &hs);
    CHECK_THAT(rc == SATCHEL_E_CERT);
}

/* ---- driver ---- */

typedef void (*scenario_fn)(void);

static void sc_rtt200(void) { sc_rtt("rtt=200ms", 200); }
static void sc_rtt300(void) { sc_rtt("rtt=300ms", 300); }
static void sc_rate256(void) { sc_rate("rate=256kbit", 256000, 256 * 1024); }
static void sc_rate64(void) { sc_rate("rate=64kbit,rtt=100ms", 64000, 64 * 1024); }
static void sc_rate1m(void) { sc_rate("rate=1mbit,rtt=100ms", 1000000, 1u << 20); }
static void sc_up256(void) { sc_upload_rate("rate=256kbit,rtt=50ms", 256000); }
static void sc_tls_fast(void) { sc_tls("rtt=20ms"); }
static void sc_tls_slow(void) { sc_tls("rtt=300ms,rate=256kbit"); }

static const struct {
    const char *name;
    scenario_fn fn;
} scenarios[] = {
    {"perfect", sc_perfect},     {"rtt200", sc_rtt200},   {"rtt300", sc_rtt300},
    {"rate256", sc_rate256},     {"rate64", sc_rate64},   {"rate1m", sc_rate1m},
    {"upload256", sc_up256},     {"loss", sc_loss},       {"cut", sc_cut},
    {"cut-random", sc_cut_random}, {"ipv6", sc_ipv6},     {"stall", sc_stall},
    {"timeout", sc_timeout},
    {"tls", sc_tls_fast},        {"tls-slow", sc_tls_slow},
};

static int make_certs(void)
{
    char cmd[2048];
    snprintf(ca_file, sizeof ca_file, "%s/ca.pem", tmpdir);
    snprintf(cmd, sizeof cmd,
             "cd %s && "
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 "
             "-nodes -keyout ca.key -out ca.pem -days 2 -subj '/CN=Satchel lwIP test CA' "
             ">/dev/null 2>&1 && "
             "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
             "-keyout srv.key -out srv.csr -subj '/CN=localhost' >/dev/null 2>&1 && "
             "printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n"
             "basicConstraints=CA:FALSE\\nextendedKeyUsage=serverAuth\\n' > ext.cnf && "
             "openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
             "-out srv.pem -days 2 -extfile ext.cnf >/dev/null 2>&1",
             tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static pid_t server_pid = -1;
static FILE *server_in;

static int start_server(void)
{
    int out[2], in[2];
    char line[128], cert[128], key[128];
    FILE *f;
    snprintf(cert, sizeof cert, "%s/srv.pem", tmpdir);
    snprintf(key, sizeof key, "%s/srv.key", tmpdir);
    if (pipe(out) < 0 || pipe(in) < 0)
        return -1;
    server_pid = fork();
    if (server_pid < 0)
        return -1;
    if (server_pid == 0) {
        dup2(out[1], 1);
        dup2(in[0], 0);
        close(out[0]);
        close(out[1]);
        close(in[0]);
        close(in[1]);
        execlp("python3", "python3", "-c", server_py, cert, key, (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    close(in[0]);
    server_in = fdopen(in[1], "w"); /* closing it stops the server */
    f = fdopen(out[0], "r");
    if (!f || !fgets(line, sizeof line, f))
        return -1;
    {
        unsigned a, b, c;
        if (sscanf(line, "PORTS %u %u %u", &a, &b, &c) != 3)
            return -1;
        plain_port = (uint16_t)a;
        tls_port = (uint16_t)b;
        plain6_port = (uint16_t)c;
    }
    fclose(f);
    return 0;
}

static void stop_server(void)
{
    if (server_in)
        fclose(server_in);
    if (server_pid > 0) {
        kill(server_pid, SIGTERM);
        waitpid(server_pid, NULL, 0);
    }
}

int main(int argc, char **argv)
{
    size_t i;
    int total_pass = 0, total_fail = 0;
    char cmd[128];

    setvbuf(stdout, NULL, _IOLBF, 0);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/satchel-lwip-XXXXXX");
    if (!mkdtemp(tmpdir) || make_certs() < 0) {
        fprintf(stderr, "test_lwip_port: cannot make certificates (openssl?)\n");
        return 1;
    }
    if (start_server() < 0) {
        fprintf(stderr, "test_lwip_port: cannot start the python3 server\n");
        stop_server();
        return 1;
    }
    printf("test_lwip_port: server on 127.0.0.1:%u (plain), :%u (TLS)\n", plain_port,
           tls_port);
    for (i = 0; i < sizeof scenarios / sizeof scenarios[0]; i++) {
        int fds[2], status;
        pid_t pid;
        uint64_t t0;
        if (argc > 1) { /* run only the named scenarios */
            int k, want = 0;
            for (k = 1; k < argc; k++)
                want |= strcmp(argv[k], scenarios[i].name) == 0;
            if (!want)
                continue;
        }
        if (pipe(fds) < 0)
            return 1;
        printf("%s\n", scenarios[i].name);
        fflush(stdout);
        fflush(stderr);
        t0 = satchel_slirp_link_now_ns();
        pid = fork();
        if (pid == 0) {
            int counts[2];
            close(fds[0]);
            alarm(240);
            scenarios[i].fn();
            fflush(stdout);
            counts[0] = passed;
            counts[1] = failed;
            if (write(fds[1], counts, sizeof counts) != sizeof counts)
                _exit(3);
            _exit(0);
        }
        close(fds[1]);
        {
            int counts[2] = {0, 0};
            ssize_t r = read(fds[0], counts, sizeof counts);
            waitpid(pid, &status, 0);
            close(fds[0]);
            if (r != sizeof counts || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                fprintf(stderr, "FAIL scenario %s: child died (status %d)\n",
                        scenarios[i].name, status);
                total_fail++;
            } else {
                total_pass += counts[0];
                total_fail += counts[1];
            }
        }
        printf("  (%s: %.1f s)\n", scenarios[i].name,
               (double)(satchel_slirp_link_now_ns() - t0) / 1e9);
    }
    stop_server();
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "test_lwip_port: could not remove %s\n", tmpdir);
    printf("test_lwip_port: %d passed, %d failed\n", total_pass, total_fail);
    return total_fail ? 1 : 0;
}

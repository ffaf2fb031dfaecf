/* The command queue against scripted servers.
 *
 * Without LITERAL+ or LITERAL- every literal is synchronizing, so no byte
 * after a "{n}\r\n" may leave before the server's "+"; a literal the server
 * refuses takes the rest of its command with it; and 60 queued CREATEs of
 * 190-byte names (more than the queue and the output hold at once) all go
 * out whole as the output drains.  With UTF8=ACCEPT offered, no CREATE of a
 * non-ASCII name leaves before the server answered ENABLE, and the names
 * go out as UTF-8 when it confirmed, as modified UTF-7 when it did not.
 *
 * Streaming (a table of cases): a command with a 70,000-byte literal read
 * from a source callback (larger than the queue, the output buffer and 64
 * KB), then one with a 100-byte one, then a NOOP, under LITERAL+, LITERAL-
 * (the large literal synchronizing, the small one not), neither (both
 * synchronizing), a NO instead of "+" (the command ends after its "{n}",
 * the next one starts cleanly), and a connection cut in the middle of the
 * literal.  Every server reply is fed one byte at a time, the port takes
 * 777 bytes at a time, and the exact bytes on the wire are checked. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../fuzz/client_driver.h"
#include "../../core/client_internal.h"
#include "satchel/client.h"
#include "satchel/ops.h"
#include "satchel/store.h"

static int failures, checks;

#define CHECK(cond, ...)                                                   \
    do {                                                                   \
        checks++;                                                          \
        if (!(cond)) {                                                     \
            failures++;                                                    \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);                    \
            printf(__VA_ARGS__);                                           \
            printf("\n");                                                  \
        }                                                                  \
    } while (0)

/* The server's view: bytes received, and commands parsed out of them. */
struct server {
    char in[1 << 20];
    size_t len, parsed;
    int holds_seen;  /* "+" sent for a synchronizing literal */
    int early;       /* bytes offered after a "{n}\r\n" before its "+" */
    int creates;
    int utf8_accept; /* offer UTF8=ACCEPT after login (2: and never
                        confirm it) */
    size_t enable_answered; /* bytes received when ENABLE was answered */
    size_t first_create;    /* where the first CREATE began (+1; 0: none) */
    char names[64][256];
    char last_tag[32];
};

static void feed(satchel_client *c, const char *s)
{
    int rc = satchel_client_recv(c, (const uint8_t *)s, strlen(s), 1);
    CHECK(rc == 0 || rc == SATCHEL_E_AUTH, "recv(%.40s) = %d", s, rc);
}

/* Length of the literal announced at the end of in[a..b), or -1 when the
 * line does not end in a literal.  *sync: no "+" in the braces. */
static long literal_at_end(const char *p, size_t n, int *sync)
{
    size_t i;
    long v = 0, mul = 1;
    if (n < 3 || p[n - 1] != '}')
        return -1;
    i = n - 2;
    *sync = p[i] != '+';
    if (!*sync)
        i--;
    if (p[i] < '0' || p[i] > '9')
        return -1;
    while (i > 0 && p[i] >= '0' && p[i] <= '9') {
        v += (p[i] - '0') * mul;
        mul *= 10;
        i--;
    }
    return p[i] == '{' ? v : -1;
}

/* Parse whole commands received so far; answer each "tag OK".  A CREATE's
 * name (a literal here) is kept. */
static void serve(struct server *s, satchel_client *c)
{
    for (;;) {
        size_t at = s->parsed, line_start = at, cmd_start = at;
        char name[256] = "";
        int complete = 0;
        for (;;) {
            char *nl = memchr(s->in + at, '\n', s->len - at);
            long lit;
            int sync = 0;
            if (!nl)
                break;
            line_start = at;
            at = (size_t)(nl - s->in) + 1;
            lit = literal_at_end(s->in + line_start, at - 2 - line_start, &sync);
            if (lit < 0) {
                complete = 1;
                break;
            }
            if (s->len - at < (size_t)lit)
                break;
            if (lit < (long)sizeof name) {
                memcpy(name, s->in + at, (size_t)lit);
                name[lit] = '\0';
            }
            at += (size_t)lit;
        }
        if (!complete)
            return;
        {
            char tag[32], verb[32], resp[128];
            if (sscanf(s->in + cmd_start, "%31s %31s", tag, verb) != 2)
                return;
            snprintf(s->last_tag, sizeof s->last_tag, "%s", tag);
            if (strcmp(verb, "CREATE") == 0) {
                if (!s->first_create)
                    s->first_create = cmd_start + 1;
                /* The name: a literal (kept above) or a quoted string. */
                const char *q = strchr(s->in + cmd_start, ' ');
                q = q ? strchr(q + 1, ' ') : NULL;
                if (q && q[1] == '"') {
                    size_t k = 0;
                    for (q += 2; *q && *q != '"' && k + 1 < sizeof name; q++) {
                        if (*q == '\\')
                            q++;
                        name[k++] = *q;
                    }
                    name[k] = '\0';
                } else if (q && q[1] != '{') {
                    size_t k = 0; /* an atom */
                    for (q++; *q && *q != '\r' && k + 1 < sizeof name; q++)
                        name[k++] = *q;
                    name[k] = '\0';
                }
                if (s->creates < 64)
                    memcpy(s->names[s->creates], name, sizeof name);
                s->creates++;
            }
            if (strcmp(verb, "LOGOUT") == 0)
                feed(c, "* BYE bye\r\n");
            /* UTF8=ACCEPT (RFC 6855): names go out as UTF-8, so 8-bit ones
             * need literals, and without LITERAL+ synchronizing ones. */
            if (strcmp(verb, "CAPABILITY") == 0)
                feed(c, s->utf8_accept ? "* CAPABILITY IMAP4rev1 ENABLE UTF8=ACCEPT\r\n"
                                       : "* CAPABILITY IMAP4rev1\r\n");
            if (strcmp(verb, "ENABLE") == 0) {
                s->enable_answered = s->len;
                if (s->utf8_accept == 1)
                    feed(c, "* ENABLED UTF8=ACCEPT\r\n");
            }
            snprintf(resp, sizeof resp, "%s OK done\r\n", tag);
            s->parsed = at;
            feed(c, resp);
        }
    }
}

/* Take what the client offers, as a port would; say "+" to a held
 * literal.  Returns 0 when nothing moved. */
static int pump(struct server *s, satchel_client *c)
{
    const uint8_t *p;
    size_t n = satchel_client_pending(c, &p);
    int sync = 0;
    long lit;
    if (n == 0)
        return 0;
    if (s->len + n > sizeof s->in)
        n = sizeof s->in - s->len;
    memcpy(s->in + s->len, p, n);
    s->len += n;
    satchel_client_sent(c, n);
    /* A synchronizing literal header must end what the client offered. */
    {
        size_t i;
        for (i = s->len - n; i + 1 < s->len; i++) {
            if (s->in[i] == '}' && s->in[i + 1] == '\r') {
                size_t j = i;
                while (j > 0 && s->in[j] != '{')
                    j--;
                if (literal_at_end(s->in + j, i + 1 - j, &sync) >= 0 && sync &&
                    i + 3 != s->len)
                    s->early++;
            }
        }
    }
    if (s->len >= 2 && s->in[s->len - 1] == '\n') {
        size_t e = s->len - 2, b = e;
        while (b > 0 && s->in[b - 1] != '\n')
            b--;
        lit = literal_at_end(s->in + b, e - b, &sync);
        if (lit >= 0 && sync) {
            s->holds_seen++;
            feed(c, "+ go ahead\r\n");
            return 1;
        }
    }
    serve(s, c);
    return 1;
}

static satchel_client *connect_client(satchel_store *st, const char *user,
                                      const char *pass)
{
    satchel_client_config cfg;
    satchel_client *c = NULL;
    memset(&cfg, 0, sizeof cfg);
    cfg.security = SATCHEL_SECURITY_NONE;
    cfg.user = user;
    cfg.password = pass;
    CHECK(satchel_client_new(NULL, &cfg, st, &c) == 0, "client_new");
    satchel_client_connected(c, 1, 0);
    return c;
}

/* LOGIN with two 8-bit credentials: two holds, each released by "+". */
static void test_login_literals(satchel_store *st)
{
    static struct server s;
    const char *user = "us\xc3\xa9r", *pass = "p\xc3\xa4ssw\xc3\xb6rd";
    char want[128];
    const uint8_t *p;
    size_t n;
    satchel_client *c = connect_client(st, user, pass);
    memset(&s, 0, sizeof s);
    feed(c, "* OK [CAPABILITY IMAP4rev1] ready\r\n");
    n = satchel_client_pending(c, &p);
    snprintf(want, sizeof want, "S1 LOGIN {%zu}\r\n", strlen(user));
    CHECK(n == strlen(want) && memcmp(p, want, n) == 0,
          "first flight stops after the literal header: %.*s", (int)n, (const char *)p);
    satchel_client_sent(c, n);
    CHECK(satchel_client_pending(c, &p) == 0, "nothing more before \"+\"");
    CHECK(!(satchel_client_want(c) & SATCHEL_WANT_WRITE), "no write wanted while held");
    feed(c, "+ ready\r\n");
    n = satchel_client_pending(c, &p);
    snprintf(want, sizeof want, "%s {%zu}\r\n", user, strlen(pass));
    CHECK(n == strlen(want) && memcmp(p, want, n) == 0, "second piece: %.*s", (int)n,
          (const char *)p);
    satchel_client_sent(c, n);
    feed(c, "+ ready\r\n");
    n = satchel_client_pending(c, &p);
    snprintf(want, sizeof want, "%s\r\n", pass);
    CHECK(n == strlen(want) && memcmp(p, want, n) == 0, "last piece: %.*s", (int)n,
          (const char *)p);
    satchel_client_sent(c, n);
    feed(c, "S1 OK [CAPABILITY IMAP4rev1] in\r\n");
    CHECK(satchel_client_result(c) == 0, "login ok: %s", satchel_client_error_text(c));
    satchel_client_free(c);
}

/* The server refuses the literal: the command ends there, nothing of it
 * is sent later, and the session reports the refusal. */
static void test_refused_literal(satchel_store *st)
{
    const uint8_t *p;
    size_t n;
    satchel_client *c = connect_client(st, "us\xc3\xa9r", "secret");
    feed(c, "* OK [CAPABILITY IMAP4rev1] ready\r\n");
    n = satchel_client_pending(c, &p);
    CHECK(n > 0 && memcmp(p, "S1 LOGIN {5}\r\n", n) == 0, "held LOGIN: %.*s", (int)n,
          (const char *)p);
    satchel_client_sent(c, n);
    feed(c, "S1 NO [CANNOT] no 8-bit user names\r\n");
    CHECK(satchel_client_pending(c, &p) == 0, "no rest of a refused command: %zu bytes",
          satchel_client_pending(c, &p));
    CHECK(satchel_client_result(c) == SATCHEL_E_AUTH, "login refused: %d",
          satchel_client_result(c));
    satchel_client_free(c);
}

/* 60 offline mkdirs of 190-byte names with 8-bit bytes, on a server with
 * UTF8=ACCEPT (names go out as UTF-8 quoted strings), or of Latin-1 names
 * on one without (literals), and no LITERAL+:
 * 12 KB of CREATEs and then 12 KB of SELECTs, more than the output buffer
 * holds, all whole, and no literal's data ahead of its "+". */
static void test_many_creates(satchel_store *st, int utf8_accept)
{
    static struct server s;
    char names[60][200];
    int i, steps = 0, found = 0;
    satchel_client *c;
    memset(&s, 0, sizeof s);
    s.utf8_accept = utf8_accept;
    for (i = 0; i < 60; i++) {
        int k;
        /* UTF-8 names, or Latin-1 ones (not UTF-8: they go out as they
         * are, which takes a literal, synchronizing without LITERAL+). */
        snprintf(names[i], sizeof names[i],
                 utf8_accept ? "F%d%02d-\xc3\xa9t\xc3\xa9-" : "L%d%02d-\xe9t\xe9-", utf8_accept,
                 i);
        for (k = (int)strlen(names[i]); k < 190; k++)
            names[i][k] = (char)('a' + (k + i) % 26);
        names[i][190] = '\0';
        CHECK(satchel_ops_mkdir(st, names[i]) == 0, "mkdir %d", i);
    }
    c = connect_client(st, "alice", "secret");
    CHECK(satchel_client_sync(c, NULL) == 0, "sync");
    feed(c, "* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR] ready\r\n");
    while (steps++ < 100000 && pump(&s, c))
        ;
    printf("many creates (%s): %d CREATEs, %d literals released by \"+\", %zu bytes "
           "to the server\n",
           utf8_accept == 1   ? "UTF8=ACCEPT"
           : utf8_accept == 2 ? "UTF8=ACCEPT offered, not confirmed"
                              : "Latin-1 names",
           s.creates, s.holds_seen, s.len);
    if (utf8_accept) {
        /* Every CREATE waited for the answer to ENABLE. */
        CHECK(s.enable_answered > 0 && s.first_create > s.enable_answered,
              "first CREATE at byte %zu, ENABLE answered after byte %zu", s.first_create - 1,
              s.enable_answered);
    }
    if (utf8_accept == 2) {
        /* Not confirmed: the server gets modified UTF-7. */
        for (i = 0; i < s.creates && i < 64; i++) {
            char dec[256];
            size_t dn = 0;
            int rc = satchel_mutf7_decode(s.names[i], strlen(s.names[i]), dec, sizeof dec,
                                          &dn, NULL);
            CHECK(rc == 0 && strchr(s.names[i], 0xc3) == NULL,
                  "CREATE name in modified UTF-7: %.40s", s.names[i]);
            if (rc == 0)
                memcpy(s.names[i], dec, dn + 1);
        }
    }
    CHECK(s.creates == 60, "60 CREATEs sent: %d", s.creates);
    for (i = 0; i < 60; i++) {
        int j;
        for (j = 0; j < s.creates && j < 64; j++)
            if (strcmp(s.names[j], names[i]) == 0)
                break;
        found += j < s.creates;
    }
    CHECK(found == 60, "every name went out whole: %d of 60", found);
    CHECK(utf8_accept || s.holds_seen >= 60, "each name waited for \"+\": %d",
          s.holds_seen);
    CHECK(s.early == 0, "bytes after a held literal offered early: %d", s.early);
    CHECK(satchel_client_result(c) == 0, "sync ok: %s", satchel_client_error_text(c));
    {
        uint64_t pending = 1, failed = 1;
        satchel_store_queue_counts(st, &pending, &failed);
        CHECK(pending == 0 && failed == 0, "queue empty: %llu pending, %llu failed",
              (unsigned long long)pending, (unsigned long long)failed);
    }
    satchel_client_free(c);
}


/* ---------- streaming literals from a source ---------- */

#define BIG_N 70000u
#define SMALL_N 100u

struct source {
    uint64_t n, next; /* size; the offset the next read must ask for */
    unsigned seed;
    int bad;          /* reads out of order or past the end */
};

static uint8_t src_byte(unsigned seed, uint64_t off)
{
    static const char text[] = "The quick brown fox jumps over the lazy dog.\r\n";
    return (uint8_t)(text[(off + seed) % (sizeof text - 1)] ^ (off % 97 == 0 ? 0x80 : 0));
}

static long src_read(void *ctx, uint64_t off, uint8_t *buf, size_t cap)
{
    struct source *s = ctx;
    size_t i, n = cap;
    if (off != s->next || off >= s->n || cap == 0)
        s->bad++;
    if (n > s->n - off)
        n = (size_t)(s->n - off);
    if (n > 1000)
        n = 1000; /* a source may give less than asked */
    for (i = 0; i < n; i++)
        buf[i] = src_byte(s->seed, off + i);
    s->next = off + n;
    return (long)n;
}

enum reply { R_PLUS, R_NO, R_CUT };

struct stream_case {
    const char *name;
    const char *caps;    /* after AUTH=PLAIN SASL-IR */
    enum reply big;      /* the server's reply to the large literal's "{n}" */
    /* The wire after login: '@' is the large source's bytes, '#' the small
     * one's; "+" lines are fed where the wire stops after a "{n}". */
    const char *wire;
    int pluses;          /* "+" continuations the server sends */
};

static const struct stream_case stream_cases[] = {
    {"LITERAL+", "LITERAL+", R_PLUS,
     "S2 APPEND INBOX (\\Seen) {70000+}\r\n@\r\nS3 APPEND Sent {100+}\r\n#\r\nS4 NOOP\r\n", 0},
    {"LITERAL-", "LITERAL-", R_PLUS,
     "S2 APPEND INBOX (\\Seen) {70000}\r\n@\r\nS3 APPEND Sent {100+}\r\n#\r\nS4 NOOP\r\n", 1},
    {"neither", "", R_PLUS,
     "S2 APPEND INBOX (\\Seen) {70000}\r\n@\r\nS3 APPEND Sent {100}\r\n#\r\nS4 NOOP\r\n", 2},
    {"NO instead of +", "", R_NO,
     "S2 APPEND INBOX (\\Seen) {70000}\r\nS3 APPEND Sent {100}\r\n#\r\nS4 NOOP\r\n", 1},
    {"cut mid-literal", "LITERAL+", R_CUT, "S2 APPEND INBOX (\\Seen) {70000+}\r\n@", 0},
};

static void feed_bytes(satchel_client *c, const char *s)
{
    size_t i;
    for (i = 0; s[i]; i++) {
        int rc = satchel_client_recv(c, (const uint8_t *)s + i, 1, 2);
        CHECK(rc == 0, "recv byte %zu of %.30s: %d", i, s, rc);
    }
}

/* Take what the client offers, 777 bytes at a time, up to limit bytes. */
static size_t drain(satchel_client *c, uint8_t *wire, size_t len, size_t cap, size_t limit)
{
    const uint8_t *p;
    size_t n;
    while (len < limit && (n = satchel_client_pending(c, &p)) > 0) {
        if (n > 777)
            n = 777;
        if (n > limit - len)
            n = limit - len;
        if (len + n > cap)
            n = cap - len;
        memcpy(wire + len, p, n);
        len += n;
        satchel_client_sent(c, n);
    }
    return len;
}

static int ends_with_sync_header(const uint8_t *w, size_t n)
{
    size_t i;
    if (n < 4 || memcmp(w + n - 3, "}\r\n", 3) != 0 || w[n - 4] == '+')
        return 0;
    for (i = n - 4; i > 0 && w[i] >= '0' && w[i] <= '9'; i--)
        ;
    return w[i] == '{';
}

static void run_stream_case(satchel_store *st, const struct stream_case *tc)
{
    static uint8_t wire[BIG_N + 4096], want[BIG_N + 4096];
    struct source big = {BIG_N, 0, 3, 0}, small = {SMALL_N, 0, 11, 0};
    char greet[160];
    size_t len = 0, wn = 0, i;
    int pluses = 0, refused = 0, rounds = 0, rc;
    satchel_client *c = connect_client(st, "alice", "secret");

    /* Log in; no ENABLE (not offered), no job: the queue is the test's. */
    snprintf(greet, sizeof greet, "* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR %s] hi\r\n",
             tc->caps);
    feed_bytes(c, greet);
    len = drain(c, wire, 0, sizeof wire, sizeof wire);
    CHECK(len > 0 && memcmp(wire, "S1 AUTHENTICATE PLAIN ", 22) == 0, "%s: login sent",
          tc->name);
    snprintf(greet, sizeof greet, "S1 OK [CAPABILITY IMAP4rev1 %s] in\r\n", tc->caps);
    feed_bytes(c, greet);
    len = 0;

    /* Three commands queued at once: the first two with literals from a
     * source, each larger than what the queue and the output hold. */
    rc = cl_cmd_begin(c, K_NONE);
    if (rc == 0)
        rc = cl_out_str(c, "APPEND INBOX (\\Seen) ");
    if (rc == 0)
        rc = cl_out_literal_src(c, BIG_N, src_read, &big);
    if (rc == 0)
        rc = cl_cmd_end(c);
    if (rc == 0)
        rc = cl_cmd_begin(c, K_NONE);
    if (rc == 0)
        rc = cl_out_str(c, "APPEND ");
    if (rc == 0)
        rc = cl_out_mailbox(c, "Sent");
    if (rc == 0)
        rc = cl_out_str(c, " ");
    if (rc == 0)
        rc = cl_out_literal_src(c, SMALL_N, src_read, &small);
    if (rc == 0)
        rc = cl_cmd_end(c);
    if (rc == 0)
        rc = cl_simple_cmd(c, K_NONE, "NOOP");
    CHECK(rc == 0, "%s: three commands queued: %d", tc->name, rc);

    for (;;) {
        size_t limit = tc->big == R_CUT ? 30000 : sizeof wire;
        len = drain(c, wire, len, sizeof wire, limit);
        if (tc->big == R_CUT && len == limit) {
            satchel_client_closed(c, SATCHEL_E_IO);
            CHECK(satchel_client_pending(c, &(const uint8_t *){NULL}) == 0,
                  "%s: nothing more after the cut", tc->name);
            CHECK(satchel_client_want(c) & SATCHEL_WANT_CLOSE, "%s: wants to close",
                  tc->name);
            break;
        }
        if (!ends_with_sync_header(wire, len) || rounds++ > 10)
            break;
        if (tc->big == R_NO && !refused) {
            /* The first "{n}" is the large literal's: refused. */
            feed_bytes(c, "S2 NO [TOOBIG] Message too large\r\n");
            refused = 1;
            continue;
        }
        pluses++;
        feed_bytes(c, "+ go ahead\r\n");
    }

    for (i = 0; tc->wire[i]; i++) {
        if (tc->wire[i] == '@' || tc->wire[i] == '#') {
            const struct source *src = tc->wire[i] == '@' ? &big : &small;
            uint64_t k, n = tc->big == R_CUT ? 30000 - wn : src->n;
            for (k = 0; k < n; k++)
                want[wn++] = src_byte(src->seed, k);
        } else {
            want[wn++] = (uint8_t)tc->wire[i];
        }
    }
    {
        size_t at = 0;
        while (at < len && at < wn && wire[at] == want[at])
            at++;
        CHECK(len == wn && at == wn,
              "%s: wire of %zu bytes, %zu expected, first difference at %zu: got %.20s", tc->name,
              len, wn, at, at < len ? (const char *)wire + at : "(end)");
    }
    CHECK(pluses == tc->pluses, "%s: %d \"+\" sent, %d expected", tc->name, pluses,
          tc->pluses);
    CHECK(big.bad == 0 && small.bad == 0, "%s: sources read in order: %d %d", tc->name,
          big.bad, small.bad);
    if (tc->big != R_CUT) {
        if (tc->big != R_NO)
            feed_bytes(c, "S2 OK [APPENDUID 1 1] done\r\n");
        feed_bytes(c, "S3 OK [APPENDUID 1 2] done\r\nS4 OK done\r\n");
        CHECK(satchel_client_idle(c), "%s: every command answered, none left", tc->name);
        CHECK(satchel_client_result(c) == 0, "%s: no error: %s", tc->name,
              satchel_client_error_text(c));
    }
    printf("stream %-16s %6zu bytes on the wire, %d \"+\"\n", tc->name, len, pluses);
    satchel_client_free(c);
}

/* A command whose parts cannot fit the whole queue is refused whole, and
 * nothing of it is sent. */
static void test_too_large(satchel_store *st)
{
    static char big[SATCHEL_OPT_CMDQ + 10];
    const uint8_t *p;
    satchel_client *c = connect_client(st, "alice", "secret");
    int rc;
    feed_bytes(c, "* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR LITERAL+] hi\r\n");
    drain(c, (uint8_t[256]){0}, 0, 256, 256);
    feed_bytes(c, "S1 OK done\r\n");
    drain(c, (uint8_t[256]){0}, 0, 256, 256);
    memset(big, 'x', sizeof big - 1);
    rc = cl_cmd_begin(c, K_NONE);
    if (rc == 0)
        rc = cl_out_str(c, "SEARCH TEXT ");
    if (rc == 0)
        rc = cl_out_astring(c, big);
    CHECK(rc == SATCHEL_E_RANGE, "a command larger than the queue: %d", rc);
    CHECK(satchel_client_pending(c, &p) == 0, "nothing of it sent");
    CHECK(cl_simple_cmd(c, K_NONE, "NOOP") == 0, "the next command queues");
    CHECK(satchel_client_pending(c, &p) == 9 && memcmp(p, "S3 NOOP\r\n", 9) == 0,
          "and goes out with the next tag");
    satchel_client_free(c);
}

/* A server that answers a command the port has not taken yet (its tag
 * cannot have been read) is a protocol error: believing it would report as
 * done a command that then never goes out. */
static void test_answer_before_sent(satchel_store *st)
{
    const char *ans = "S3 OK done\r\n";
    const uint8_t *p;
    satchel_client *c = connect_client(st, "alice", "secret");
    size_t i;
    int rc = 0;
    feed_bytes(c, "* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR LITERAL+] hi\r\n");
    drain(c, (uint8_t[256]){0}, 0, 256, 256);
    feed_bytes(c, "S1 OK done\r\n");
    drain(c, (uint8_t[256]){0}, 0, 256, 256);
    CHECK(cl_simple_cmd(c, K_NONE, "NOOP") == 0, "NOOP queues");
    CHECK(satchel_client_pending(c, &p) == 9, "and waits for the port");
    for (i = 0; ans[i] && rc == 0; i++)
        rc = satchel_client_recv(c, (const uint8_t *)ans + i, 1, 2);
    CHECK(rc == SATCHEL_E_PROTO, "an answer to S3 before it was sent: %d (%s)", rc,
          satchel_client_error_text(c));
    satchel_client_free(c);
}

/* The longest name a folder may have, with a space and a quote, and the
 * rest one repeated unit: its modified UTF-7 form (several times the
 * output buffer) goes out quoted and whole, however the port drains it.
 * Draining a byte at a time once cost seconds of CPU per command (the
 * form was encoded again from its start for every byte sent): the form is
 * now encoded once, resuming where the wire stopped; the CPU time is
 * printed to show it. */
struct long_case {
    const char *unit; /* repeated to the limit */
    size_t piece;     /* bytes the port takes per send */
};

static const struct long_case long_cases[] = {
    {"\xc3\xa9", 777},     /* é: one long shifted section */
    {"\xc3\xa9", 1},
    {"\x01" "a", 1},        /* a section opened and closed per byte: 3x */
    {"&\xf0\x9f\x93\xa7", 3}, /* "&-" and a surrogate pair */
    {"\\\"", 2},          /* quoting around nothing to encode */
};

static void test_long_mailbox(satchel_store *st, const struct long_case *lc)
{
    static char name[SATCHEL_OPT_MAX_FOLDER_NAME + 1];
    static char form[SATCHEL_MUTF7_ENCODED_MAX(SATCHEL_OPT_MAX_FOLDER_NAME) + 1];
    static uint8_t wire[SATCHEL_MUTF7_ENCODED_MAX(SATCHEL_OPT_MAX_FOLDER_NAME) * 2 + 64];
    static char want[sizeof wire];
    size_t n = 0, fn = 0, wn, i, len = 0, u = strlen(lc->unit), sends = 0;
    const uint8_t *p;
    clock_t t0;
    satchel_client *c = connect_client(st, "alice", "secret");
    int rc;
    memcpy(name, "a \"b\x01", 5);
    n = 5;
    while (n + u <= SATCHEL_OPT_MAX_FOLDER_NAME) {
        memcpy(name + n, lc->unit, u);
        n += u;
    }
    name[n] = '\0';
    CHECK(satchel_mutf7_encode(name, n, form, sizeof form, &fn, NULL) == 0, "encode");
    feed_bytes(c, "* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR] hi\r\n");
    drain(c, wire, 0, sizeof wire, sizeof wire);
    feed_bytes(c, "S1 OK [CAPABILITY IMAP4rev1] done\r\n");
    rc = cl_cmd_begin(c, K_NONE);
    if (rc == 0)
        rc = cl_out_str(c, "SELECT ");
    if (rc == 0)
        rc = cl_out_mailbox(c, name);
    if (rc == 0)
        rc = cl_cmd_end(c);
    CHECK(rc == 0, "a %zu-byte name queues: %d", n, rc);
    t0 = clock();
    while ((i = satchel_client_pending(c, &p)) > 0 && len < sizeof wire) {
        if (i > lc->piece)
            i = lc->piece;
        if (i > sizeof wire - len)
            i = sizeof wire - len;
        memcpy(wire + len, p, i);
        len += i;
        satchel_client_sent(c, i);
        sends++;
    }
    wn = (size_t)snprintf(want, sizeof want, "S2 SELECT \"");
    for (i = 0; i < fn; i++) {
        if (form[i] == '"' || form[i] == '\\')
            want[wn++] = '\\';
        want[wn++] = form[i];
    }
    memcpy(want + wn, "\"\r\n", 3);
    wn += 3;
    CHECK(len == wn && memcmp(wire, want, wn) == 0,
          "a %zu-byte name goes out as its %zu-byte modified UTF-7 form, quoted, "
          "%zu bytes a send: %zu bytes on the wire, %zu expected",
          n, fn, lc->piece, len, wn);
    printf("long name: %zu bytes of UTF-8, %zu on the wire in %zu sends, %.3f s CPU\n", n,
           len, sends, (double)(clock() - t0) / CLOCKS_PER_SEC);
    satchel_client_free(c);
}

int main(void)
{
    char dir[256];
    satchel_store *st = NULL;
    if (cd_mkdtemp(dir, sizeof dir, "cmdq") < 0 ||
        satchel_store_open(NULL, dir, 0, &st) < 0) {
        printf("FAIL: cannot open a store in %s\n", dir);
        return 1;
    }
    test_login_literals(st);
    test_refused_literal(st);
    test_many_creates(st, 1);
    test_many_creates(st, 2);
    test_many_creates(st, 0);
    {
        size_t i;
        for (i = 0; i < sizeof stream_cases / sizeof stream_cases[0]; i++)
            run_stream_case(st, &stream_cases[i]);
    }
    test_too_large(st);
    test_answer_before_sent(st);
    {
        size_t i;
        for (i = 0; i < sizeof long_cases / sizeof long_cases[0]; i++)
            test_long_mailbox(st, &long_cases[i]);
    }
    satchel_store_close(st);
    printf("test_cmdq: %d passed, %d failed\n", checks - failures, failures);
    return failures ? 1 : 0;
}

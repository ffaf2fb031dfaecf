/* The command queue against a scripted server that offers neither LITERAL+
 * nor LITERAL-: every literal is synchronizing, so no byte after a
 * "{n}\r\n" may leave before the server's "+"; a literal the server refuses
 * takes the rest of its command with it; and 60 queued CREATEs of 190-byte
 * names (more than the output buffer and the hold table hold at once) all
 * go out whole as the output drains. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../fuzz/client_driver.h"
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
    int utf8_accept; /* offer UTF8=ACCEPT after login */
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
            if (strcmp(verb, "ENABLE") == 0)
                feed(c, "* ENABLED UTF8=ACCEPT\r\n");
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
                 utf8_accept ? "F%02d-\xc3\xa9t\xc3\xa9-" : "L%02d-\xe9t\xe9-", i);
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
           "to the server\n", utf8_accept ? "UTF8=ACCEPT" : "Latin-1 names", s.creates, s.holds_seen, s.len);
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
    test_many_creates(st, 0);
    satchel_store_close(st);
    printf("test_cmdq: %d passed, %d failed\n", checks - failures, failures);
    return failures ? 1 : 0;
}

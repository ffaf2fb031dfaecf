/* Parser tests, data-driven: each fixture is a recorded server transcript and
 * the expected dump of every response.  Every fixture is also fed one byte
 * at a time and at every two-way split point (as Dovecot's test-imap-parser
 * does); all feeds must give the same dump. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "satchel/imap.h"
#include "satchel/opt.h"
#include "satchel/seqset.h"

struct dump {
    char buf[65536];
    size_t n;
};

static void dput(struct dump *d, const char *s, size_t n)
{
    if (d->n + n < sizeof d->buf) {
        memcpy(d->buf + d->n, s, n);
        d->n += n;
        d->buf[d->n] = '\0';
    }
}

static void dputs(struct dump *d, const char *s)
{
    dput(d, s, strlen(s));
}

static void dump_args(struct dump *d, const satchel_imap_arg *a)
{
    for (; a; a = a->next) {
        char tmp[32];
        switch (a->type) {
        case SATCHEL_ARG_ATOM:
            dput(d, a->str, a->len);
            break;
        case SATCHEL_ARG_NIL:
            /* The spelling is kept (a LIST name may be "nil"). */
            if (strcmp(a->str, "NIL") == 0) {
                dputs(d, "NIL");
            } else {
                dputs(d, "NIL<");
                dputs(d, a->str);
                dputs(d, ">");
            }
            break;
        case SATCHEL_ARG_STRING:
            if (a->flags & SATCHEL_ARG_F_LITERAL) {
                snprintf(tmp, sizeof tmp, "{%llu}", (unsigned long long)a->size);
                dputs(d, tmp);
            }
            dputs(d, "\"");
            dput(d, a->str, a->len);
            dputs(d, "\"");
            if (a->flags & SATCHEL_ARG_F_TRUNCATED)
                dputs(d, "...");
            break;
        case SATCHEL_ARG_LIST:
            dputs(d, "(");
            dump_args(d, a->child);
            dputs(d, ")");
            break;
        case SATCHEL_ARG_TEXT:
            dputs(d, "TEXT[");
            dput(d, a->str, a->len);
            dputs(d, "]");
            break;
        }
        if (a->next)
            dputs(d, " ");
    }
}

static void dump_resp(struct dump *d, const satchel_imap_resp *r)
{
    static const char *const st[] = {"-", "OK", "NO", "BAD", "PREAUTH", "BYE"};
    if (r->kind == SATCHEL_RESP_TAGGED) {
        dputs(d, "T:");
        dputs(d, r->tag);
    } else if (r->kind == SATCHEL_RESP_UNTAGGED) {
        dputs(d, "U");
    } else {
        dputs(d, "C");
    }
    dputs(d, "|");
    dputs(d, st[r->status]);
    dputs(d, "|");
    dump_args(d, r->args);
    if (r->code) {
        dputs(d, "|code=");
        dump_args(d, r->code);
    }
    if (r->status != SATCHEL_STATUS_NONE) {
        dputs(d, "|text=");
        dput(d, r->text, r->text_len);
    }
    if (r->truncated)
        dputs(d, "|TRUNCATED");
    dputs(d, "\n");
}

struct sink_log {
    unsigned long long bytes;
    char items[256];
};

static int sink(void *ctx, const char *item, uint64_t off, uint64_t total,
                const uint8_t *data, size_t len)
{
    struct sink_log *l = ctx;
    (void)data;
    (void)total;
    if (off == 0 && strlen(l->items) + strlen(item) + 2 < sizeof l->items) {
        strcat(l->items, item);
        strcat(l->items, ";");
    }
    l->bytes += len;
    return 0;
}

/* Feed input in pieces of the given sizes (cycled); returns the final rc. */
static int feed(const satchel_imap_parser_config *cfg, const char *in, size_t len,
                const size_t *pieces, size_t npieces, struct dump *d,
                struct sink_log *sl)
{
    satchel_imap_parser *p;
    size_t pos = 0, k = 0;
    int rc = 0;
    d->n = 0;
    d->buf[0] = '\0';
    if (sl)
        memset(sl, 0, sizeof *sl);
    if (satchel_imap_parser_new(NULL, cfg, &p) != 0)
        return -999;
    if (sl)
        satchel_imap_parser_set_sink(p, sink, sl);
    while (pos < len) {
        size_t chunk = pieces[k % npieces], off = 0;
        k++;
        if (chunk > len - pos)
            chunk = len - pos;
        while (off < chunk) {
            const satchel_imap_resp *r;
            size_t used;
            rc = satchel_imap_parser_feed(p, (const uint8_t *)in + pos + off,
                                          chunk - off, &used, &r);
            if (rc < 0)
                goto out;
            off += used;
            if (rc == 1)
                dump_resp(d, r);
        }
        pos += chunk;
    }
out:
    satchel_imap_parser_free(p);
    return rc < 0 ? rc : 0;
}

struct fixture {
    const char *name;
    const char *in;
    const char *expect;
};

/* Responses from RFC 9051 (section 7 and 8 examples), RFC 7162 (CONDSTORE
 * and QRESYNC) and Dovecot sessions. */
static const struct fixture fixtures[] = {
    {"greeting",
     "* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ STARTTLS AUTH=PLAIN] Dovecot ready.\r\n",
     "U|OK|OK|code=CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ STARTTLS AUTH=PLAIN|text=Dovecot ready.\n"},
    {"tagged ok with code",
     "A142 OK [READ-WRITE] SELECT completed\r\n",
     "T:A142|OK|OK|code=READ-WRITE|text=SELECT completed\n"},
    {"select (RFC 9051 6.3.2)",
     "* 172 EXISTS\r\n* OK [UIDVALIDITY 3857529045] UIDs valid\r\n"
     "* OK [UIDNEXT 4392] Predicted next UID\r\n"
     "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n"
     "* OK [PERMANENTFLAGS (\\Deleted \\Seen \\*)] Limited\r\n"
     "* LIST () \"/\" INBOX\r\nA142 OK [READ-WRITE] SELECT completed\r\n",
     "U|-|172 EXISTS\nU|OK|OK|code=UIDVALIDITY 3857529045|text=UIDs valid\n"
     "U|OK|OK|code=UIDNEXT 4392|text=Predicted next UID\n"
     "U|-|FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\n"
     "U|OK|OK|code=PERMANENTFLAGS (\\Deleted \\Seen \\*)|text=Limited\n"
     "U|-|LIST () \"/\" INBOX\nT:A142|OK|OK|code=READ-WRITE|text=SELECT completed\n"},
    {"fetch with literal and envelope (RFC 9051 7.5.2)",
     "* 12 FETCH (FLAGS (\\Seen) INTERNALDATE \"17-Jul-1996 02:44:25 -0700\" "
     "RFC822.SIZE 4286 ENVELOPE (\"Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\" "
     "\"IMAP4rev2 WG mtg summary and minutes\" "
     "((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) NIL NIL "
     "((NIL NIL \"imap\" \"cac.washington.edu\")) NIL NIL NIL "
     "\"<B27397-0100000@cac.washington.edu>\") "
     "BODY[HEADER.FIELDS (FROM SUBJECT)] {26}\r\nFrom: a@b\r\nSubject: hi\r\n\r\n)\r\n",
     "U|-|12 FETCH (FLAGS (\\Seen) INTERNALDATE \"17-Jul-1996 02:44:25 -0700\" "
     "RFC822.SIZE 4286 ENVELOPE (\"Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\" "
     "\"IMAP4rev2 WG mtg summary and minutes\" "
     "((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) NIL NIL "
     "((NIL NIL \"imap\" \"cac.washington.edu\")) NIL NIL NIL "
     "\"<B27397-0100000@cac.washington.edu>\") "
     "BODY[HEADER.FIELDS (FROM SUBJECT)] {26}\"From: a@b\r\nSubject: hi\r\n\r\n\")\n"},
    {"bodystructure (RFC 9051 7.5.2)",
     "* 3 FETCH (UID 7 BODYSTRUCTURE ((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 1152 23)"
     "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\" \"NAME\" \"cc.diff\") "
     "\"<960723163407.20117h@cac.washington.edu>\" \"Compiler diff\" \"BASE64\" 4554 73) \"MIXED\"))\r\n",
     "U|-|3 FETCH (UID 7 BODYSTRUCTURE ((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 1152 23) "
     "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\" \"NAME\" \"cc.diff\") "
     "\"<960723163407.20117h@cac.washington.edu>\" \"Compiler diff\" \"BASE64\" 4554 73) \"MIXED\"))\n"},
    {"condstore select (RFC 7162 3.1.2.1)",
     "* OK [HIGHESTMODSEQ 715194045007]\r\nA142 OK [READ-WRITE] SELECT completed, CONDSTORE is now enabled\r\n",
     "U|OK|OK|code=HIGHESTMODSEQ 715194045007|text=\n"
     "T:A142|OK|OK|code=READ-WRITE|text=SELECT completed, CONDSTORE is now enabled\n"},
    {"nomodseq",
     "* OK [NOMODSEQ] Sorry, this mailbox format doesn't support modsequences\r\n",
     "U|OK|OK|code=NOMODSEQ|text=Sorry, this mailbox format doesn't support modsequences\n"},
    {"qresync select (RFC 7162 3.2.5.1)",
     "* OK [CLOSED]\r\n* 100 EXISTS\r\n* 11 RECENT\r\n* OK [UIDVALIDITY 67890007] UIDVALIDITY\r\n"
     "* OK [UIDNEXT 600] Predicted next UID\r\n* OK [HIGHESTMODSEQ 90060115205545359] Highest\r\n"
     "* VANISHED (EARLIER) 41,43:116,118,120:211,214:540\r\n"
     "* 49 FETCH (UID 117 FLAGS (\\Seen \\Answered) MODSEQ (90060115194045001))\r\n"
     "A02 OK [READ-WRITE] Sorry, UIDVALIDITY mismatch\r\n",
     "U|OK|OK|code=CLOSED|text=\nU|-|100 EXISTS\nU|-|11 RECENT\n"
     "U|OK|OK|code=UIDVALIDITY 67890007|text=UIDVALIDITY\n"
     "U|OK|OK|code=UIDNEXT 600|text=Predicted next UID\n"
     "U|OK|OK|code=HIGHESTMODSEQ 90060115205545359|text=Highest\n"
     "U|-|VANISHED (EARLIER) 41,43:116,118,120:211,214:540\n"
     "U|-|49 FETCH (UID 117 FLAGS (\\Seen \\Answered) MODSEQ (90060115194045001))\n"
     "T:A02|OK|OK|code=READ-WRITE|text=Sorry, UIDVALIDITY mismatch\n"},
    {"list with special-use and quoted delimiter",
     "* LIST (\\HasNoChildren \\Sent) \"/\" Sent\r\n* LIST (\\Noselect \\HasChildren) \"/\" \"Lists\"\r\n"
     "* LIST (\\HasNoChildren) \"/\" {9}\r\nLists/Dev\r\n* LIST () NIL \"flat\"\r\n",
     "U|-|LIST (\\HasNoChildren \\Sent) \"/\" Sent\nU|-|LIST (\\Noselect \\HasChildren) \"/\" \"Lists\"\n"
     "U|-|LIST (\\HasNoChildren) \"/\" {9}\"Lists/Dev\"\nU|-|LIST () NIL \"flat\"\n"},
    {"quoted escapes",
     "* LIST () \"\\\\\" \"a \\\"b\\\" c\"\r\n",
     "U|-|LIST () \"\\\" \"a \"b\" c\"\n"},
    {"continuation",
     "+ Ready for additional command text\r\n+\r\n+ \r\n",
     "C|-|TEXT[Ready for additional command text]\nC|-|TEXT[]\nC|-|TEXT[]\n"},
    {"bye and no text",
     "* BYE Autologout; idle for too long\r\n* OK\r\nA1 NO\r\n",
     "U|BYE|BYE|text=Autologout; idle for too long\nU|OK|OK|text=\nT:A1|NO|NO|text=\n"},
    {"text with brackets and parens",
     "a1 BAD [PARSE] Error in IMAP command ((: unbalanced [ \"\r\n",
     "T:a1|BAD|BAD|code=PARSE|text=Error in IMAP command ((: unbalanced [ \"\n"},
    {"zero-length literal and literal8",
     "* 1 FETCH (BODY[1] {0}\r\n BINARY[2] ~{3}\r\nabc UID 5)\r\n",
     "U|-|1 FETCH (BODY[1] {0}\"\" BINARY[2] {3}\"abc\" UID 5)\n"},
    {"partial body atom",
     "* 2 FETCH (UID 9 BODY[]<0> {5}\r\nHello)\r\n",
     "U|-|2 FETCH (UID 9 BODY[]<0> {5}\"Hello\")\n"},
    {"bare LF line ends",
     "* 3 EXISTS\n* OK [UIDNEXT 5] x\nA1 OK done\n",
     "U|-|3 EXISTS\nU|OK|OK|code=UIDNEXT 5|text=x\nT:A1|OK|OK|text=done\n"},
    {"esearch and enabled",
     "* ESEARCH (TAG \"A282\") UID MIN 2 COUNT 3\r\n* ENABLED QRESYNC\r\n* VANISHED 405,407,410,425\r\n",
     "U|-|ESEARCH (TAG \"A282\") UID MIN 2 COUNT 3\nU|-|ENABLED QRESYNC\nU|-|VANISHED 405,407,410,425\n"},
    /* Mailbox names in every form a server may send (issue 12): brackets
     * are plain characters outside FETCH data and response codes. */
    {"list names with brackets (Dovecot sends them unquoted)",
     "* LIST (\\HasNoChildren) \".\" foo.[bar\r\n* LIST () \".\" foo]bar\r\n"
     "* LIST () \".\" [x]\r\n* LIST () \".\" a[b]c[d\r\n* LIST () \".\" a[b c]\r\n"
     "* LSUB () \".\" [Gmail]\r\n* STATUS foo.[bar] (MESSAGES 3 UIDNEXT 9)\r\n",
     "U|-|LIST (\\HasNoChildren) \".\" foo.[bar\nU|-|LIST () \".\" foo]bar\n"
     "U|-|LIST () \".\" [x]\nU|-|LIST () \".\" a[b]c[d\nU|-|LIST () \".\" a[b c]\n"
     "U|-|LSUB () \".\" [Gmail]\nU|-|STATUS foo.[bar] (MESSAGES 3 UIDNEXT 9)\n"},
    {"brackets stay special in FETCH and codes",
     "* 1 FETCH (BODY[HEADER.FIELDS (A B)]<0> {2}\r\nhi UID 3)\r\n"
     "* OK [PERMANENTFLAGS (\\Seen [x)] t\r\n",
     "U|-|1 FETCH (BODY[HEADER.FIELDS (A B)]<0> {2}\"hi\" UID 3)\n"
     "U|OK|OK|code=PERMANENTFLAGS (\\Seen [x)|text=t\n"},
    {"list name NIL (a folder, not an absent name) and NIL delimiter",
     "* LIST () \"/\" NIL\r\n* LIST () NIL nil\r\n* LIST () \"/\" \"NIL\"\r\n"
     "* LIST (\\Noselect) NIL Nil\r\n",
     "U|-|LIST () \"/\" NIL\nU|-|LIST () NIL NIL<nil>\nU|-|LIST () \"/\" \"NIL\"\n"
     "U|-|LIST (\\Noselect) NIL NIL<Nil>\n"},
    {"list INBOX in any case, any delimiter",
     "* LIST () \"/\" Inbox\r\n* LIST () \".\" inbox.Sub\r\n* LIST () \"\\\\\" \"a\\\\b\"\r\n"
     "* LIST () \"&\" x&y\r\n* LIST () \"#\" \"#news#a\"\r\n",
     "U|-|LIST () \"/\" Inbox\nU|-|LIST () \".\" inbox.Sub\nU|-|LIST () \"\\\" \"a\\b\"\n"
     "U|-|LIST () \"&\" x&y\nU|-|LIST () \"#\" \"#news#a\"\n"},
    {"list names with quotes, backslashes, spaces, 8-bit bytes",
     "* LIST () \"/\" \"say \\\"hi\\\" \\\\ there\"\r\n"
     "* LIST () \"/\" {10}\r\nbad \xff\xfe\x80 \"\\\r\n"
     "* LIST () \"/\" \"  spaced  \"\r\n",
     "U|-|LIST () \"/\" \"say \"hi\" \\ there\"\n"
     "U|-|LIST () \"/\" {10}\"bad \xff\xfe\x80 \"\\\"\n"
     "U|-|LIST () \"/\" \"  spaced  \"\n"},
    {"list names in modified UTF-7",
     "* LIST (\\HasNoChildren) \"/\" \"Donn&AOk-es/&AMk-t&AOk-\"\r\n"
     "* LIST () \".\" Entw&APw-rfe\r\n* LIST () \"/\" ~peter/mail/&U,BTFw-/&ZeVnLIqe-\r\n"
     "* LIST () \"/\" ~\r\n* 1 FETCH (BINARY[1] ~{2}\r\nab)\r\n",
     "U|-|LIST (\\HasNoChildren) \"/\" \"Donn&AOk-es/&AMk-t&AOk-\"\n"
     "U|-|LIST () \".\" Entw&APw-rfe\nU|-|LIST () \"/\" ~peter/mail/&U,BTFw-/&ZeVnLIqe-\n"
     "U|-|LIST () \"/\" ~\nU|-|1 FETCH (BINARY[1] {2}\"ab\")\n"},
    {"8-bit UTF-8 in quoted string",
     "* LIST () \"/\" \"Entw\xc3\xbcrfe\"\r\n",
     "U|-|LIST () \"/\" \"Entw\xc3\xbcrfe\"\n"},
};

struct bad {
    const char *name;
    const char *in;
    int rc;
};

static const struct bad bads[] = {
    {"NUL in line", "* OK hi\0there\r\n", SATCHEL_E_PROTO},
    {"unbalanced close", "* LIST ) x\r\n", SATCHEL_E_PROTO},
    {"unclosed list", "* LIST (a b\r\n", SATCHEL_E_PROTO},
    {"literal too large", "* 1 FETCH (BODY[] {99999999999999999999}\r\n", SATCHEL_E_PROTO_LIMIT},
    {"literal 2^64", "* 1 FETCH (BODY[] {18446744073709551616}\r\n", SATCHEL_E_PROTO_LIMIT},
    {"literal above max", "* 1 FETCH (BODY[] {4294967297}\r\n", SATCHEL_E_PROTO_LIMIT},
    {"literal without CRLF", "* 1 FETCH (BODY[] {3}abc)\r\n", SATCHEL_E_PROTO},
    {"empty literal size", "* 1 FETCH (BODY[] {}\r\n", SATCHEL_E_PROTO},
    {"tagged without status", "A1 FETCH\r\n", SATCHEL_E_PROTO},
    {"tagged alone", "A1\r\n", SATCHEL_E_PROTO},
    {"star without space", "*OK\r\n", SATCHEL_E_PROTO},
    {"CR without LF", "* OK x\ry\r\n", SATCHEL_E_PROTO},
    {"line break in quoted", "* LIST () \"/\" \"a\r\nb\"\r\n", SATCHEL_E_PROTO},
    {"stray bracket", "* 1 FETCH (UID 5])\r\n", SATCHEL_E_PROTO},
    {"bad first byte", "(* OK\r\n", SATCHEL_E_PROTO},
};

static int check_fixture(const struct fixture *f)
{
    static struct dump whole, part;
    static const size_t one = 1;
    size_t len = strlen(f->in), i;
    int ok = 1;
    int rc = feed(NULL, f->in, len, &len, 1, &whole, NULL);
    CHECK(rc == 0, "%s: whole feed rc %d", f->name, rc);
    CHECK(strcmp(whole.buf, f->expect) == 0, "%s:\n got: %s\nwant: %s", f->name,
          whole.buf, f->expect);
    rc = feed(NULL, f->in, len, &one, 1, &part, NULL);
    CHECK(rc == 0 && strcmp(part.buf, whole.buf) == 0, "%s: byte-at-a-time differs",
          f->name);
    for (i = 1; i < len; i++) {
        size_t pieces[2] = {i, len};
        rc = feed(NULL, f->in, len, pieces, 2, &part, NULL);
        if (rc != 0 || strcmp(part.buf, whole.buf) != 0) {
            ok = 0;
            printf("  split at %zu differs for %s\n", i, f->name);
            break;
        }
    }
    CHECK(ok, "%s: every 2-way split", f->name);
    return ok;
}

static void test_bad(void)
{
    size_t i;
    for (i = 0; i < sizeof bads / sizeof bads[0]; i++) {
        static struct dump d;
        const char *in = bads[i].in;
        /* The NUL case needs its real length. */
        size_t len = strcmp(bads[i].name, "NUL in line") == 0 ? 16 : strlen(in);
        static const size_t one = 1;
        int rc = feed(NULL, in, len, &len, 1, &d, NULL);
        CHECK(rc == bads[i].rc, "%s: rc %d, want %d", bads[i].name, rc, bads[i].rc);
        rc = feed(NULL, in, len, &one, 1, &d, NULL);
        CHECK(rc == bads[i].rc, "%s (bytewise): rc %d, want %d", bads[i].name, rc,
              bads[i].rc);
    }
}

static void test_limits(void)
{
    satchel_imap_parser_config cfg;
    static struct dump d;
    static char big[300000];
    struct sink_log sl;
    size_t n, i;
    int rc;

    /* Line length: past max_line the response is delivered marked
     * truncated (framing is intact); past 16 times it is an error. */
    memset(&cfg, 0, sizeof cfg);
    cfg.max_line = 1000;
    n = (size_t)snprintf(big, sizeof big, "* OK ");
    memset(big + n, 'x', 2000);
    memcpy(big + n + 2000, "\r\n* 2 EXISTS\r\n", 15);
    rc = feed(&cfg, big, strlen(big), &n, 1, &d, NULL);
    CHECK(rc == 0 && strstr(d.buf, "TRUNCATED") && strstr(d.buf, "U|-|2 EXISTS\n"),
          "soft line cap: rc %d", rc);
    n = (size_t)snprintf(big, sizeof big, "* OK ");
    memset(big + n, 'x', 20000);
    memcpy(big + n + 20000, "\r\n", 3);
    rc = feed(&cfg, big, strlen(big), &n, 1, &d, NULL);
    CHECK(rc == SATCHEL_E_PROTO_LIMIT, "hard line cap: rc %d", rc);

    /* Nesting 10,000 deep: lists past max_depth are skipped (nothing kept,
     * no memory), the response arrives truncated; deeper than max_line
     * levels is an error. */
    n = (size_t)snprintf(big, sizeof big, "* 1 FETCH ");
    for (i = 0; i < 10000; i++)
        big[n++] = '(';
    for (i = 0; i < 10000; i++)
        big[n++] = ')';
    memcpy(big + n, "\r\n", 3);
    n += 2;
    rc = feed(NULL, big, n, &n, 1, &d, NULL);
    CHECK(rc == 0 && strstr(d.buf, "TRUNCATED"), "deep nesting skipped: rc %d", rc);
    rc = feed(&cfg, big, n, &n, 1, &d, NULL);
    CHECK(rc == SATCHEL_E_PROTO_LIMIT, "depth beyond max_line levels: rc %d", rc);

    /* A literal bigger than the arena streams to the sink; a prefix is kept. */
    n = (size_t)snprintf(big, sizeof big, "* 1 FETCH (UID 3 BODY[1] {200000}\r\n");
    memset(big + n, 'a', 200000);
    n += 200000;
    memcpy(big + n, " FLAGS (\\Seen))\r\n", 18);
    n += 17;
    {
        size_t piece = 4096;
        rc = feed(NULL, big, n, &piece, 1, &d, &sl);
    }
    CHECK(rc == 0, "big literal rc %d", rc);
    CHECK(sl.bytes == 200000, "sink got %llu bytes", sl.bytes);
    CHECK(strcmp(sl.items, "BODY[1];") == 0, "sink item '%s'", sl.items);
    CHECK(strstr(d.buf, "{200000}\"aaaa") != NULL && strstr(d.buf, "\"... FLAGS (\\Seen))") != NULL,
          "big literal dump: %.80s", d.buf);

    /* Arena overflow: a huge list is parsed to the end but marked truncated,
     * and the next response is intact. */
    cfg.max_line = 0;
    cfg.arena_size = 4096;
    n = (size_t)snprintf(big, sizeof big, "* 1 FETCH (FLAGS (");
    for (i = 0; i < 3000; i++)
        n += (size_t)snprintf(big + n, sizeof big - n, "kw%zu ", i);
    n += (size_t)snprintf(big + n, sizeof big - n, "))\r\n* 2 EXISTS\r\n");
    rc = feed(&cfg, big, n, &n, 1, &d, NULL);
    CHECK(rc == 0 && strstr(d.buf, "TRUNCATED") && strstr(d.buf, "U|-|2 EXISTS\n"),
          "arena overflow: rc %d", rc);
}

static void test_args(void)
{
    satchel_imap_arg a;
    uint64_t v;
    uint32_t u;
    memset(&a, 0, sizeof a);
    a.type = SATCHEL_ARG_ATOM;
    a.str = "4294967296";
    a.len = 10;
    CHECK(satchel_imap_arg_u32(&a, &u) == SATCHEL_E_RANGE, "u32 overflow");
    CHECK(satchel_imap_arg_u64(&a, UINT64_MAX, &v) == 0 && v == 4294967296ull, "u64");
    a.str = "18446744073709551616";
    a.len = 20;
    CHECK(satchel_imap_arg_u64(&a, UINT64_MAX, &v) == SATCHEL_E_RANGE, "u64 overflow");
    a.str = "12a";
    a.len = 3;
    CHECK(satchel_imap_arg_u32(&a, &u) == SATCHEL_E_PROTO, "not a number");
    a.str = "fetch";
    a.len = 5;
    CHECK(satchel_imap_arg_is(&a, "FETCH") && !satchel_imap_arg_is(&a, "FETCHX") &&
              !satchel_imap_arg_is(&a, "FETC"),
          "arg_is");
}

struct seqcase {
    const char *in;
    const char *expect; /* "lo-hi,..." or "ERR" */
};

static const struct seqcase seqcases[] = {
    {"41,43:116,118", "41-41,43-116,118-118"},
    {"5:3", "3-5"},
    {"1:*", "1-4294967295"},
    {"4294967295", "4294967295-4294967295"},
    {"4294967296", "ERR"},
    {"0", "ERR"},
    {"1,", "ERR"},
    {",1", "ERR"},
    {"1::2", "ERR"},
    {"1:2:3", "ERR"},
    {"", ""},
};

static void test_seqset(void)
{
    size_t i;
    for (i = 0; i < sizeof seqcases / sizeof seqcases[0]; i++) {
        satchel_seqset_iter it;
        char out[200] = "";
        uint32_t lo, hi;
        int rc;
        satchel_seqset_init(&it, seqcases[i].in, strlen(seqcases[i].in), UINT32_MAX);
        while ((rc = satchel_seqset_next(&it, &lo, &hi)) == 1) {
            char t[40];
            snprintf(t, sizeof t, "%s%u-%u", out[0] ? "," : "", lo, hi);
            strcat(out, t);
        }
        if (rc < 0)
            strcpy(out, "ERR");
        CHECK(strcmp(out, seqcases[i].expect) == 0, "seqset '%s': got %s want %s",
              seqcases[i].in, out, seqcases[i].expect);
    }
}

/* A 1,000-byte mailbox name, as a literal and as a quoted string, byte by
 * byte: kept whole, not truncated. */
static void test_long_names(void)
{
    static char in[4096], want[4096];
    static struct dump whole, part;
    static const size_t one = 1;
    char name[1001];
    size_t i, len;
    int rc;
    for (i = 0; i < 1000; i++)
        name[i] = (char)('a' + i % 26);
    name[1000] = '\0';
    len = (size_t)snprintf(in, sizeof in,
                           "* LIST () \"/\" {1000}\r\n%s\r\n* LIST () \"/\" \"%s\"\r\n",
                           name, name);
    snprintf(want, sizeof want, "U|-|LIST () \"/\" {1000}\"%s\"\nU|-|LIST () \"/\" \"%s\"\n",
             name, name);
    rc = feed(NULL, in, len, &len, 1, &whole, NULL);
    CHECK(rc == 0 && strcmp(whole.buf, want) == 0, "1,000-byte names: %.200s", whole.buf);
    rc = feed(NULL, in, len, &one, 1, &part, NULL);
    CHECK(rc == 0 && strcmp(part.buf, want) == 0, "1,000-byte names byte by byte");
}

int main(void)
{
    size_t i;
    for (i = 0; i < sizeof fixtures / sizeof fixtures[0]; i++)
        check_fixture(&fixtures[i]);
    test_bad();
    test_limits();
    test_long_names();
    test_args();
    test_seqset();
    return check_report("test_imap_parser");
}

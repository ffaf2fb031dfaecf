/* A scripted IMAP server for driving the sans-I/O client without a network.
 *
 * It holds a small model (folders, messages with UIDs, flags and MODSEQs,
 * expunged UIDs for QRESYNC) and answers the commands the client sends,
 * using the client's own tags: it reads the client's pending output, splits
 * it into command lines (LITERAL+ literals included), and queues canned
 * responses in the shape Dovecot 2.3 gives them.  Everything it ever sent
 * can be logged, which is how the client fuzz harness gets its seeds.
 *
 * Header-only, test code: plain malloc, abort() on allocation failure. */
#ifndef SATCHEL_MOCK_SERVER_H
#define SATCHEL_MOCK_SERVER_H

#include <ctype.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "satchel/client.h"

#if defined(__GNUC__) || defined(__clang__)
#define MOCK_UNUSED __attribute__((unused))
#define MOCK_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define MOCK_UNUSED
#define MOCK_PRINTF(a, b)
#endif

#define MOCK_MAX_FOLDERS 128
#define MOCK_F_SEEN 0x01u
#define MOCK_F_ANSWERED 0x02u
#define MOCK_F_FLAGGED 0x04u
#define MOCK_F_DELETED 0x08u
#define MOCK_F_DRAFT 0x10u
#define MOCK_F_KEYWORD 0x20u /* $Forwarded */

/* Message variants: how big and odd the generated content is. */
#define MOCK_V_PLAIN 0
#define MOCK_V_MULTIPART 1
#define MOCK_V_BIG 2      /* long subject, big BODYSTRUCTURE: fills stores */
#define MOCK_V_ENCODED 3  /* Latin-1 encoded-words, quoted From, no Date */
#define MOCK_V_BADZONE 4  /* Date: with a +99:59 zone (valid syntax) */
#define MOCK_V_HUGEFLAGS 5 /* 2500 keywords: the FETCH overflows the arena */

typedef struct mock_msg {
    uint32_t uid, flags, variant;
    uint64_t modseq;
} mock_msg;

typedef struct mock_gone {
    uint32_t uid;
    uint64_t modseq;
} mock_gone;

typedef struct mock_folder {
    char name[64];
    const char *attrs;
    uint32_t uidvalidity, uidnext;
    uint64_t hms;
    mock_msg *msgs;
    uint32_t n, cap;
    mock_gone *gone;
    uint32_t ngone, gcap;
} mock_folder;

/* Answer rewrites, for regression tests of what a server may legally do
 * (RFC 9051 promises no order of untagged responses, allows unilateral
 * FETCH and EXISTS at any time) or of a server's faults.  A rule applies to
 * the answer of every command containing `match` (after the tag), at most
 * `times` times (0: always). */
#define MOCK_R_NONE 0     /* the answer as it is (counts the command) */
#define MOCK_R_PREPEND 1  /* text before the answer's first response */
#define MOCK_R_INSERT 2   /* text before untagged response number arg */
#define MOCK_R_REVERSE 3  /* untagged responses in reverse order */
#define MOCK_R_NO 4       /* the tagged OK becomes NO */
#define MOCK_R_DROP_UID 5 /* untagged response number arg loses "UID n " */
#define MOCK_R_DROP 6     /* untagged responses left out */
#define MOCK_R_DROP_TEXT 7 /* untagged responses containing text left out */

typedef struct mock_rule {
    const char *match;
    int action;
    const char *text;
    unsigned arg;
    unsigned times, used;
} mock_rule;

typedef struct mock_server {
    mock_rule *rules;
    unsigned nrules;
    /* BODY.PEEK[1]<o.l>: every message's part 1 is body_len bytes; with
     * body_whole the server ignores <o.l> and sends the whole part */
    uint32_t body_len;
    int body_whole;
    unsigned body_requests;
    const char *greeting_caps;
    const char *caps;
    int sasl_ir;
    int no_login_caps; /* LOGIN/AUTHENTICATE OK without [CAPABILITY ...] */
    int enabled_qresync; /* the client sent ENABLE QRESYNC (ever) */
    mock_folder f[MOCK_MAX_FOLDERS];
    int nf;
    /* session */
    int sel;
    int qresync, condstore;
    int authed;
    char auth_tag[64];
    int want_auth_line;
    char *line;
    size_t line_len, line_cap;
    uint64_t lit_need;
    /* output */
    uint8_t *out;
    size_t out_len, out_off, out_cap;
    /* everything sent, when logging */
    int logging;
    uint8_t *log;
    size_t log_len, log_cap;
    unsigned commands;
    int closed;
} mock_server;

static MOCK_UNUSED void mock_grow(uint8_t **p, size_t *cap, size_t need)
{
    if (need > *cap) {
        size_t c = *cap ? *cap : 1024;
        uint8_t *np;
        while (c < need)
            c *= 2;
        np = realloc(*p, c);
        if (!np)
            abort();
        *p = np;
        *cap = c;
    }
}

static MOCK_UNUSED void mock_send(mock_server *ms, const void *p, size_t n)
{
    mock_grow(&ms->out, &ms->out_cap, ms->out_len + n);
    memcpy(ms->out + ms->out_len, p, n);
    ms->out_len += n;
}

static void mock_sendf(mock_server *ms, const char *fmt, ...) MOCK_PRINTF(2, 3);
static MOCK_UNUSED void mock_sendf(mock_server *ms, const char *fmt, ...)
{
    char tmp[8192];
    va_list ap;
    int n;
    va_start(ap, fmt);
    n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof tmp)
        abort();
    mock_send(ms, tmp, (size_t)n);
}

/* ---- model ------------------------------------------------------------- */

#define MOCK_CAPS_FULL                                                         \
    "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ NAMESPACE "     \
    "UIDPLUS LIST-EXTENDED CONDSTORE QRESYNC ESEARCH MOVE SPECIAL-USE"
#define MOCK_CAPS_CONDSTORE                                                    \
    "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ NAMESPACE "     \
    "UIDPLUS LIST-EXTENDED CONDSTORE ESEARCH MOVE SPECIAL-USE"
#define MOCK_CAPS_NONE                                                         \
    "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ NAMESPACE "     \
    "UIDPLUS ESEARCH MOVE"

static MOCK_UNUSED void mock_init(mock_server *ms, const char *caps)
{
    memset(ms, 0, sizeof *ms);
    ms->greeting_caps =
        "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ AUTH=PLAIN";
    ms->caps = caps ? caps : MOCK_CAPS_FULL;
    ms->sasl_ir = 1;
    ms->sel = -1;
}

static MOCK_UNUSED void mock_free(mock_server *ms)
{
    int i;
    for (i = 0; i < ms->nf; i++) {
        free(ms->f[i].msgs);
        free(ms->f[i].gone);
    }
    free(ms->line);
    free(ms->out);
    free(ms->log);
    memset(ms, 0, sizeof *ms);
}

static MOCK_UNUSED int mock_add_folder(mock_server *ms, const char *name,
                                       const char *attrs, uint32_t uidvalidity)
{
    mock_folder *f;
    if (ms->nf >= MOCK_MAX_FOLDERS)
        abort();
    f = &ms->f[ms->nf];
    memset(f, 0, sizeof *f);
    snprintf(f->name, sizeof f->name, "%s", name);
    f->attrs = attrs ? attrs : "";
    f->uidvalidity = uidvalidity;
    f->uidnext = 1;
    f->hms = 1;
    return ms->nf++;
}

/* The folder added last is gone from the server (with its mail). */
static MOCK_UNUSED void mock_drop_last_folder(mock_server *ms)
{
    mock_folder *f;
    if (ms->nf == 0)
        return;
    f = &ms->f[--ms->nf];
    free(f->msgs);
    free(f->gone);
    memset(f, 0, sizeof *f);
}

static MOCK_UNUSED uint32_t mock_add_msg(mock_server *ms, int fi, uint32_t flags,
                                         uint32_t variant)
{
    mock_folder *f = &ms->f[fi];
    mock_msg *m;
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2u : 16u;
        size_t bytes = cap * sizeof *f->msgs;
        uint8_t *p = (uint8_t *)f->msgs;
        size_t old = f->cap * sizeof *f->msgs;
        mock_grow(&p, &old, bytes);
        f->msgs = (mock_msg *)p;
        f->cap = (uint32_t)cap;
    }
    m = &f->msgs[f->n++];
    m->uid = f->uidnext++;
    m->flags = flags;
    m->variant = variant;
    m->modseq = ++f->hms;
    return m->uid;
}

static MOCK_UNUSED mock_msg *mock_find(mock_server *ms, int fi, uint32_t uid)
{
    uint32_t i;
    for (i = 0; i < ms->f[fi].n; i++)
        if (ms->f[fi].msgs[i].uid == uid)
            return &ms->f[fi].msgs[i];
    return NULL;
}

static MOCK_UNUSED void mock_set_flags(mock_server *ms, int fi, uint32_t uid,
                                       uint32_t flags)
{
    mock_msg *m = mock_find(ms, fi, uid);
    if (m) {
        m->flags = flags;
        m->modseq = ++ms->f[fi].hms;
    }
}

static MOCK_UNUSED void mock_expunge(mock_server *ms, int fi, uint32_t uid)
{
    mock_folder *f = &ms->f[fi];
    uint32_t i;
    for (i = 0; i < f->n; i++) {
        if (f->msgs[i].uid == uid) {
            memmove(&f->msgs[i], &f->msgs[i + 1],
                    (f->n - i - 1) * sizeof f->msgs[0]);
            f->n--;
            if (f->ngone == f->gcap) {
                size_t old = f->gcap * sizeof *f->gone;
                uint8_t *p = (uint8_t *)f->gone;
                f->gcap = f->gcap ? f->gcap * 2u : 16u;
                mock_grow(&p, &old, f->gcap * sizeof *f->gone);
                f->gone = (mock_gone *)p;
            }
            f->gone[f->ngone].uid = uid;
            f->gone[f->ngone].modseq = ++f->hms;
            f->ngone++;
            return;
        }
    }
}

/* New UIDVALIDITY: every message gets a new UID. */
static MOCK_UNUSED void mock_renumber(mock_server *ms, int fi)
{
    mock_folder *f = &ms->f[fi];
    uint32_t i;
    f->uidvalidity++;
    f->ngone = 0;
    for (i = 0; i < f->n; i++) {
        f->msgs[i].uid = f->uidnext++;
        f->msgs[i].modseq = ++f->hms;
    }
}

/* ---- generated message content ---------------------------------------- */

static MOCK_UNUSED void mock_flags_str(uint32_t fl, char *out, size_t cap)
{
    snprintf(out, cap, "%s%s%s%s%s%s", fl & MOCK_F_SEEN ? "\\Seen " : "",
             fl & MOCK_F_ANSWERED ? "\\Answered " : "",
             fl & MOCK_F_FLAGGED ? "\\Flagged " : "",
             fl & MOCK_F_DELETED ? "\\Deleted " : "",
             fl & MOCK_F_DRAFT ? "\\Draft " : "",
             fl & MOCK_F_KEYWORD ? "$Forwarded " : "");
    if (out[0])
        out[strlen(out) - 1] = '\0';
}

static MOCK_UNUSED void mock_headers(const mock_msg *m, int fi, char *out,
                                     size_t cap)
{
    uint32_t u = m->uid;
    switch (m->variant) {
    case MOCK_V_ENCODED:
        snprintf(out, cap,
                 "From: \"=?ISO-8859-1?Q?J=F6rg_M=FCller?=\" <jorg@example.de>\r\n"
                 "Subject: =?iso-8859-1?q?Gr=FC=DFe?= =?UTF-8?B?4oKs?= %u\r\n"
                 "Message-ID: <enc%u.%d@example.de>\r\n\r\n",
                 u, u, fi);
        break;
    case MOCK_V_BADZONE:
        snprintf(out, cap,
                 "Date: Mon, 2 Jan 2023 10:00:00 +9959\r\n"
                 "From: Zone <zone%u@example.org>\r\n"
                 "Subject: Far zone %u\r\nMessage-ID: <z%u.%d@example.org>\r\n\r\n",
                 u, u, u, fi);
        break;
    case MOCK_V_BIG: {
        char subj[300];
        size_t i;
        for (i = 0; i < 250; i++)
            subj[i] = (char)('a' + (i + u) % 26);
        subj[250] = '\0';
        snprintf(out, cap,
                 "Date: Tue, 3 Jan 2023 09:%02u:00 -0800 (PST)\r\n"
                 "From: \"A very long display name for sender number %u\" "
                 "<someone.with.a.long.address.%u@mail.example.com>\r\n"
                 "Subject: %s\r\n"
                 "Message-ID: <big.%u.%d.0123456789abcdef0123456789abcdef@"
                 "example.com>\r\n\r\n",
                 u % 60, u, u, subj, u, fi);
        break;
    }
    default:
        snprintf(out, cap,
                 "Date: Mon, 2 Jan 2023 10:%02u:%02u +0100\r\n"
                 "From: Sender %u <s%u@example.org>\r\n"
                 "Subject: Message %u in folder %d\r\n"
                 "Message-ID: <%u.%d@example.org>\r\n\r\n",
                 u % 60, (u * 7) % 60, u, u, u, fi, u, fi);
        break;
    }
}

static MOCK_UNUSED void mock_bodystructure(const mock_msg *m, char *out,
                                           size_t cap)
{
    switch (m->variant) {
    case MOCK_V_MULTIPART:
        snprintf(out, cap,
                 "((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" "
                 "%u 4 NIL NIL NIL NIL)(\"application\" \"pdf\" (\"name\" "
                 "\"r%u.pdf\") NIL NIL \"base64\" 4410 NIL (\"attachment\" "
                 "(\"filename\" \"r%u.pdf\")) NIL NIL) \"mixed\" (\"boundary\" "
                 "\"b%u\") NIL NIL NIL)",
                 100 + m->uid, m->uid, m->uid, m->uid);
        break;
    case MOCK_V_BIG: {
        size_t n = 0;
        int i;
        out[n++] = '(';
        for (i = 0; i < 16 && n + 200 < cap; i++)
            n += (size_t)snprintf(out + n, cap - n,
                                  "(\"application\" \"octet-stream\" (\"name\" "
                                  "\"attachment-%02d-of-message-%u.bin\") NIL NIL "
                                  "\"base64\" %u NIL NIL NIL NIL)",
                                  i, m->uid, 1000u + (uint32_t)i);
        snprintf(out + n, cap - n, " \"mixed\" (\"boundary\" \"x%u\") NIL NIL NIL)",
                 m->uid);
        break;
    }
    default:
        snprintf(out, cap,
                 "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" "
                 "%u 3 NIL NIL NIL NIL)",
                 100 + m->uid);
        break;
    }
}

/* ---- command handling --------------------------------------------------- */

static MOCK_UNUSED int mock_folder_by_name(mock_server *ms, const char *name)
{
    int i;
    for (i = 0; i < ms->nf; i++)
        if (strcmp(ms->f[i].name, name) == 0)
            return i;
    return -1;
}

/* Reads an astring (atom or quoted; literals were turned into quoted). */
static MOCK_UNUSED const char *mock_astring(const char *s, char *out, size_t cap)
{
    size_t n = 0;
    while (*s == ' ')
        s++;
    if (*s == '"') {
        s++;
        while (*s && *s != '"') {
            if (*s == '\\' && s[1])
                s++;
            if (n + 1 < cap)
                out[n++] = *s;
            s++;
        }
        if (*s == '"')
            s++;
    } else {
        while (*s && *s != ' ' && *s != '(' && *s != ')') {
            if (n + 1 < cap)
                out[n++] = *s;
            s++;
        }
    }
    out[n] = '\0';
    return s;
}

/* Sequence-set membership: "a", "a:b", "*", comma lists. */
static MOCK_UNUSED int mock_in_set(const char *set, uint32_t v, uint32_t star)
{
    const char *p = set;
    while (*p && *p != ' ') {
        uint32_t a, b;
        if (*p == '*') {
            a = star;
            p++;
        } else {
            a = (uint32_t)strtoul(p, (char **)&p, 10);
        }
        b = a;
        if (*p == ':') {
            p++;
            if (*p == '*') {
                b = star;
                p++;
            } else {
                b = (uint32_t)strtoul(p, (char **)&p, 10);
            }
        }
        if (a > b) {
            uint32_t t = a;
            a = b;
            b = t;
        }
        if (v >= a && v <= b)
            return 1;
        if (*p == ',')
            p++;
        else
            break;
    }
    return 0;
}

static MOCK_UNUSED void mock_fetch_one(mock_server *ms, int fi, uint32_t seq,
                                       const mock_msg *m, const char *items,
                                       int uid_cmd, int with_modseq)
{
    char flags[128], buf[4096];
    int first = 1;
    mock_sendf(ms, "* %u FETCH (", seq);
    if (uid_cmd || strstr(items, "UID")) {
        mock_sendf(ms, "UID %u", m->uid);
        first = 0;
    }
    if (strstr(items, "FLAGS")) {
        mock_flags_str(m->flags, flags, sizeof flags);
        mock_sendf(ms, "%sFLAGS (%s", first ? "" : " ", flags);
        if (m->variant == MOCK_V_HUGEFLAGS) {
            int k;
            for (k = 0; k < 2500; k++)
                mock_sendf(ms, " $kw%04d", k);
        }
        mock_send(ms, ")", 1);
        first = 0;
    }
    if (strstr(items, "RFC822.SIZE")) {
        mock_sendf(ms, " RFC822.SIZE %u", 1000 + m->uid * 3);
    }
    if (strstr(items, "INTERNALDATE")) {
        mock_sendf(ms, " INTERNALDATE \"%2u-Jan-2023 10:00:%02u +0100\"",
                   1 + m->uid % 28, m->uid % 60);
    }
    if (strstr(items, "BODYSTRUCTURE")) {
        mock_bodystructure(m, buf, sizeof buf);
        mock_sendf(ms, " BODYSTRUCTURE %s", buf);
    }
    if (strstr(items, "BODY.PEEK[HEADER.FIELDS")) {
        mock_headers(m, fi, buf, sizeof buf);
        mock_sendf(ms,
                   " BODY[HEADER.FIELDS (DATE FROM SUBJECT MESSAGE-ID)] {%zu}\r\n",
                   strlen(buf));
        mock_send(ms, buf, strlen(buf));
    }
    if (strstr(items, "BODY.PEEK[1]<")) {
        unsigned long long o = 0, l = 0, k;
        sscanf(strstr(items, "BODY.PEEK[1]<") + 13, "%llu.%llu", &o, &l);
        ms->body_requests++;
        if (ms->body_whole) {
            o = 0;
            l = ms->body_len;
            mock_sendf(ms, " BODY[1] {%llu}\r\n", l);
        } else {
            if (o > ms->body_len)
                o = ms->body_len;
            if (l > ms->body_len - o)
                l = ms->body_len - o;
            mock_sendf(ms, " BODY[1]<%llu> {%llu}\r\n", o, l);
        }
        for (k = o; k < o + l; k++) {
            char ch = (char)('a' + (k * 7 + m->uid) % 26);
            mock_send(ms, &ch, 1);
        }
    }
    if (with_modseq)
        mock_sendf(ms, " MODSEQ (%llu)", (unsigned long long)m->modseq);
    mock_send(ms, ")\r\n", 3);
}

static MOCK_UNUSED void mock_select(mock_server *ms, const char *tag,
                                    const char *args)
{
    char name[256];
    const char *rest = mock_astring(args, name, sizeof name);
    int fi = mock_folder_by_name(ms, name);
    mock_folder *f;
    const char *q;
    uint32_t i;
    if (fi < 0) {
        ms->sel = -1;
        mock_sendf(ms, "%s NO Mailbox doesn't exist: %s\r\n", tag, name);
        return;
    }
    f = &ms->f[fi];
    ms->sel = fi;
    if (strstr(rest, "CONDSTORE"))
        ms->condstore = 1;
    mock_sendf(ms, "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Forwarded)\r\n"
                   "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen "
                   "\\Draft $Forwarded \\*)] Flags permitted.\r\n"
                   "* %u EXISTS\r\n* 0 RECENT\r\n"
                   "* OK [UIDVALIDITY %u] UIDs valid\r\n"
                   "* OK [UIDNEXT %u] Predicted next UID\r\n",
               f->n, f->uidvalidity, f->uidnext);
    if (ms->condstore || ms->qresync)
        mock_sendf(ms, "* OK [HIGHESTMODSEQ %llu] Highest\r\n",
                   (unsigned long long)f->hms);
    q = strstr(rest, "QRESYNC (");
    if (q && ms->qresync) {
        unsigned long uv = 0;
        unsigned long long since = 0;
        if (sscanf(q, "QRESYNC (%lu %llu", &uv, &since) == 2 &&
            uv == f->uidvalidity) {
            int any = 0;
            for (i = 0; i < f->ngone; i++) {
                if (f->gone[i].modseq > since) {
                    mock_sendf(ms, "%s%u", any ? "," : "* VANISHED (EARLIER) ",
                               f->gone[i].uid);
                    any = 1;
                }
            }
            if (any)
                mock_send(ms, "\r\n", 2);
            for (i = 0; i < f->n; i++)
                if (f->msgs[i].modseq > since)
                    mock_fetch_one(ms, fi, i + 1, &f->msgs[i], "FLAGS", 1, 1);
        }
    }
    mock_sendf(ms, "%s OK [READ-WRITE] Select completed (0.001 + 0.000 secs).\r\n",
               tag);
}

static MOCK_UNUSED void mock_fetch(mock_server *ms, const char *tag,
                                   const char *args, int uid_cmd)
{
    mock_folder *f;
    const char *items, *cs;
    unsigned long long since = 0;
    int changedsince = 0, with_modseq;
    uint32_t i, star;
    if (ms->sel < 0) {
        mock_sendf(ms, "%s BAD No mailbox selected.\r\n", tag);
        return;
    }
    f = &ms->f[ms->sel];
    items = strchr(args, ' ');
    if (!items) {
        mock_sendf(ms, "%s BAD Error in IMAP command FETCH.\r\n", tag);
        return;
    }
    cs = strstr(items, "CHANGEDSINCE ");
    if (cs && sscanf(cs, "CHANGEDSINCE %llu", &since) == 1)
        changedsince = 1;
    with_modseq = changedsince || strstr(items, "MODSEQ") != NULL;
    if (changedsince || with_modseq)
        ms->condstore = 1;
    star = uid_cmd ? (f->n ? f->msgs[f->n - 1].uid : 0) : f->n;
    for (i = 0; i < f->n; i++) {
        const mock_msg *m = &f->msgs[i];
        uint32_t key = uid_cmd ? m->uid : i + 1;
        if (!mock_in_set(args, key, star))
            continue;
        if (changedsince && m->modseq <= since)
            continue;
        mock_fetch_one(ms, ms->sel, i + 1, m, items, uid_cmd, with_modseq);
    }
    mock_sendf(ms, "%s OK Fetch completed (0.001 + 0.000 secs).\r\n", tag);
}

static MOCK_UNUSED uint32_t mock_flag_bits(const char *list)
{
    uint32_t f = 0;
    if (strstr(list, "\\Seen"))
        f |= MOCK_F_SEEN;
    if (strstr(list, "\\Answered"))
        f |= MOCK_F_ANSWERED;
    if (strstr(list, "\\Flagged"))
        f |= MOCK_F_FLAGGED;
    if (strstr(list, "\\Deleted"))
        f |= MOCK_F_DELETED;
    if (strstr(list, "\\Draft"))
        f |= MOCK_F_DRAFT;
    if (strstr(list, "$Forwarded"))
        f |= MOCK_F_KEYWORD;
    return f;
}

/* UID STORE set +FLAGS[.SILENT] (...) / -FLAGS / FLAGS */
static MOCK_UNUSED void mock_store(mock_server *ms, const char *tag, const char *args)
{
    mock_folder *f;
    const char *op = strchr(args, ' ');
    uint32_t i, bits, star;
    if (ms->sel < 0 || !op) {
        mock_sendf(ms, "%s BAD No mailbox selected.\r\n", tag);
        return;
    }
    f = &ms->f[ms->sel];
    op++;
    bits = mock_flag_bits(op);
    star = f->n ? f->msgs[f->n - 1].uid : 0;
    for (i = 0; i < f->n; i++) {
        mock_msg *m = &f->msgs[i];
        char set[256];
        size_t n = (size_t)(op - 1 - args);
        if (n >= sizeof set)
            n = sizeof set - 1;
        memcpy(set, args, n);
        set[n] = '\0';
        if (!mock_in_set(set, m->uid, star))
            continue;
        if (op[0] == '+')
            m->flags |= bits;
        else if (op[0] == '-')
            m->flags &= ~bits;
        else
            m->flags = bits;
        m->modseq = ++f->hms;
        if (!strstr(op, ".SILENT"))
            mock_fetch_one(ms, ms->sel, i + 1, m, "FLAGS", 1, ms->condstore);
    }
    mock_sendf(ms, "%s OK Store completed.\r\n", tag);
}

/* UID COPY/MOVE set dest: new UIDs in dest, COPYUID, and for MOVE the
 * source's expunges. */
static MOCK_UNUSED void mock_copy(mock_server *ms, const char *tag, const char *args,
                                  int move)
{
    char set[256], name[256], src[1024] = "", dst[1024] = "";
    const char *sp = strchr(args, ' ');
    mock_folder *f;
    int di;
    uint32_t i, star;
    size_t n;
    if (ms->sel < 0 || !sp) {
        mock_sendf(ms, "%s BAD No mailbox selected.\r\n", tag);
        return;
    }
    n = (size_t)(sp - args) < sizeof set - 1 ? (size_t)(sp - args) : sizeof set - 1;
    memcpy(set, args, n);
    set[n] = '\0';
    mock_astring(sp + 1, name, sizeof name);
    di = mock_folder_by_name(ms, name);
    if (di < 0) {
        mock_sendf(ms, "%s NO [TRYCREATE] Mailbox doesn't exist: %s\r\n", tag, name);
        return;
    }
    f = &ms->f[ms->sel];
    star = f->n ? f->msgs[f->n - 1].uid : 0;
    for (i = 0; i < f->n; i++) {
        mock_msg m = f->msgs[i];
        uint32_t nu;
        if (!mock_in_set(set, m.uid, star) || di == ms->sel)
            continue;
        nu = mock_add_msg(ms, di, m.flags, m.variant);
        f = &ms->f[ms->sel]; /* (the destination may have grown) */
        if (strlen(src) + 24 < sizeof src && strlen(dst) + 24 < sizeof dst) {
            snprintf(src + strlen(src), sizeof src - strlen(src), "%s%u", src[0] ? "," : "",
                     m.uid);
            snprintf(dst + strlen(dst), sizeof dst - strlen(dst), "%s%u", dst[0] ? "," : "",
                     nu);
        }
    }
    if (move) {
        for (i = f->n; i-- > 0;) {
            uint32_t u = f->msgs[i].uid;
            if (!mock_in_set(set, u, star))
                continue;
            if (ms->qresync)
                mock_sendf(ms, "* VANISHED %u\r\n", u);
            else
                mock_sendf(ms, "* %u EXPUNGE\r\n", i + 1);
            mock_expunge(ms, ms->sel, u);
        }
    }
    if (src[0])
        mock_sendf(ms, "%s OK [COPYUID %u %s %s] %s completed.\r\n", tag,
                   ms->f[di].uidvalidity, src, dst, move ? "Move" : "Copy");
    else
        mock_sendf(ms, "%s OK No messages found.\r\n", tag);
}

static MOCK_UNUSED void mock_uid_expunge(mock_server *ms, const char *tag, const char *set)
{
    mock_folder *f;
    uint32_t i, star;
    if (ms->sel < 0) {
        mock_sendf(ms, "%s BAD No mailbox selected.\r\n", tag);
        return;
    }
    f = &ms->f[ms->sel];
    star = f->n ? f->msgs[f->n - 1].uid : 0;
    for (i = f->n; i-- > 0;) {
        uint32_t u = f->msgs[i].uid;
        if (!mock_in_set(set, u, star) || !(f->msgs[i].flags & MOCK_F_DELETED))
            continue;
        if (ms->qresync)
            mock_sendf(ms, "* VANISHED %u\r\n", u);
        else
            mock_sendf(ms, "* %u EXPUNGE\r\n", i + 1);
        mock_expunge(ms, ms->sel, u);
    }
    mock_sendf(ms, "%s OK Expunge completed.\r\n", tag);
}

static MOCK_UNUSED void mock_logged_in(mock_server *ms, const char *tag)
{
    if (ms->no_login_caps)
        mock_sendf(ms, "%s OK Logged in\r\n", tag);
    else
        mock_sendf(ms, "%s OK [CAPABILITY %s] Logged in\r\n", tag, ms->caps);
}

/* Length of the response starting at p (its literals included), or 0. */
static MOCK_UNUSED size_t mock_resp_len(const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        const uint8_t *nl = memchr(p + i, '\n', n - i);
        size_t e;
        if (!nl)
            return 0;
        e = (size_t)(nl - p) + 1;
        if (e >= 3 && p[e - 3] == '}') {
            size_t k = e - 3;
            while (k > i && p[k - 1] != '{')
                k--;
            if (k > i) {
                i = e + strtoull((const char *)p + k, NULL, 10);
                continue;
            }
        }
        return e;
    }
    return 0;
}

static MOCK_UNUSED void mock_rewrite(mock_server *ms, const char *cmd, size_t start)
{
    unsigned r;
    for (r = 0; r < ms->nrules; r++) {
        mock_rule *ru = &ms->rules[r];
        uint8_t *old;
        size_t len = ms->out_len - start, off[512], ln[512], nr = 0, i, pos;
        if (!strstr(cmd, ru->match) || (ru->times && ru->used >= ru->times))
            continue;
        ru->used++;
        old = malloc(len + 1);
        if (!old)
            abort();
        memcpy(old, ms->out + start, len);
        for (pos = 0; pos < len && nr < 512;) {
            size_t l = mock_resp_len(old + pos, len - pos);
            if (!l)
                break;
            off[nr] = pos;
            ln[nr++] = l;
            pos += l;
        }
        ms->out_len = start;
        /* the last response is the tagged one: rules work on the others */
        for (i = 0; i < nr; i++) {
            size_t k = i;
            int tagged = i + 1 == nr;
            if (ru->action == MOCK_R_REVERSE && !tagged)
                k = nr - 2 - i;
            if (i == 0 && ru->action == MOCK_R_PREPEND)
                mock_send(ms, ru->text, strlen(ru->text));
            if (i == ru->arg && !tagged && ru->action == MOCK_R_INSERT)
                mock_send(ms, ru->text, strlen(ru->text));
            if (tagged && ru->action == MOCK_R_NO) {
                const uint8_t *ok = memchr(old + off[k], ' ', ln[k]);
                size_t head = ok ? (size_t)(ok - (old + off[k])) + 1 : 0;
                mock_send(ms, old + off[k], head);
                mock_send(ms, "NO Simulated failure\r\n", 22);
                continue;
            }
            if (!tagged && ru->action == MOCK_R_DROP)
                continue;
            if (!tagged && ru->action == MOCK_R_DROP_TEXT) {
                size_t tl = strlen(ru->text), j;
                int hit = 0;
                for (j = 0; j + tl <= ln[k] && !hit; j++)
                    hit = memcmp(old + off[k] + j, ru->text, tl) == 0;
                if (hit)
                    continue;
            }
            if (i == ru->arg && !tagged && ru->action == MOCK_R_DROP_UID) {
                const char *u = NULL, *b = (const char *)old + off[k];
                size_t j;
                for (j = 0; j + 4 <= ln[k] && !u; j++)
                    if (memcmp(b + j, "UID ", 4) == 0)
                        u = b + j;
                if (u) {
                    const char *e = u + 4;
                    while (*e >= '0' && *e <= '9')
                        e++;
                    if (*e == ' ')
                        e++;
                    mock_send(ms, old + off[k], (size_t)((const uint8_t *)u - (old + off[k])));
                    mock_send(ms, e, ln[k] - (size_t)((const uint8_t *)e - (old + off[k])));
                    continue;
                }
            }
            mock_send(ms, old + off[k], ln[k]);
        }
        if (pos < len)
            mock_send(ms, old + pos, len - pos);
        free(old);
    }
}

static void mock_command_inner(mock_server *ms, char *line);

static MOCK_UNUSED void mock_command(mock_server *ms, char *line)
{
    size_t start = ms->out_len;
    const char *cmd = strchr(line, ' ');
    mock_command_inner(ms, line);
    if (ms->nrules && cmd)
        mock_rewrite(ms, cmd + 1, start);
}

static MOCK_UNUSED void mock_command_inner(mock_server *ms, char *line)
{
    char tag[64];
    const char *cmd;
    size_t n = 0;
    ms->commands++;
    if (ms->want_auth_line) {
        ms->want_auth_line = 0;
        ms->authed = 1;
        mock_logged_in(ms, ms->auth_tag);
        return;
    }
    while (line[n] && line[n] != ' ' && n + 1 < sizeof tag) {
        tag[n] = line[n];
        n++;
    }
    tag[n] = '\0';
    cmd = line + n;
    while (*cmd == ' ')
        cmd++;
#define MOCK_IS(word) (strncmp(cmd, word, strlen(word)) == 0)
    if (MOCK_IS("CAPABILITY")) {
        mock_sendf(ms, "* CAPABILITY %s\r\n%s OK Pre-login capabilities listed, "
                       "post-login capabilities have more.\r\n",
                   ms->authed ? ms->caps : ms->greeting_caps, tag);
    } else if (MOCK_IS("AUTHENTICATE PLAIN")) {
        if (cmd[18] == ' ') {
            ms->authed = 1;
            mock_logged_in(ms, tag);
        } else {
            snprintf(ms->auth_tag, sizeof ms->auth_tag, "%s", tag);
            ms->want_auth_line = 1;
            mock_send(ms, "+ \r\n", 4);
        }
    } else if (MOCK_IS("LOGIN ")) {
        ms->authed = 1;
        mock_logged_in(ms, tag);
    } else if (MOCK_IS("ENABLE ")) {
        if (strstr(cmd, "QRESYNC") && strstr(ms->caps, "QRESYNC")) {
            ms->qresync = ms->condstore = 1;
            ms->enabled_qresync = 1;
            mock_send(ms, "* ENABLED QRESYNC\r\n", 19);
        }
        mock_sendf(ms, "%s OK Enabled.\r\n", tag);
    } else if (MOCK_IS("LIST ")) {
        int i;
        for (i = 0; i < ms->nf; i++) {
            const mock_folder *f = &ms->f[i];
            int plain = 1;
            const char *c;
            for (c = f->name; *c; c++)
                if ((unsigned char)*c >= 0x80 || *c == ' ' || *c == '"')
                    plain = 0;
            if (plain)
                mock_sendf(ms, "* LIST (\\HasNoChildren%s%s) \"/\" %s\r\n",
                           f->attrs[0] ? " " : "", f->attrs, f->name);
            else
                mock_sendf(ms, "* LIST (\\HasNoChildren%s%s) \"/\" {%zu}\r\n%s\r\n",
                           f->attrs[0] ? " " : "", f->attrs, strlen(f->name),
                           f->name);
        }
        mock_sendf(ms, "%s OK List completed (0.001 + 0.000 secs).\r\n", tag);
    } else if (MOCK_IS("SELECT ") || MOCK_IS("EXAMINE ")) {
        mock_select(ms, tag, strchr(cmd, ' ') + 1);
    } else if (MOCK_IS("UID STORE ")) {
        mock_store(ms, tag, cmd + 10);
    } else if (MOCK_IS("UID MOVE ")) {
        mock_copy(ms, tag, cmd + 9, 1);
    } else if (MOCK_IS("UID COPY ")) {
        mock_copy(ms, tag, cmd + 9, 0);
    } else if (MOCK_IS("UID EXPUNGE ")) {
        mock_uid_expunge(ms, tag, cmd + 12);
    } else if (MOCK_IS("STATUS ")) {
        char name[256];
        int fi;
        mock_astring(cmd + 7, name, sizeof name);
        fi = mock_folder_by_name(ms, name);
        if (fi < 0) {
            mock_sendf(ms, "%s NO Mailbox doesn't exist: %s\r\n", tag, name);
        } else {
            const mock_folder *f = &ms->f[fi];
            mock_sendf(ms, "* STATUS %s (MESSAGES %u UIDNEXT %u UIDVALIDITY %u", f->name, f->n,
                       f->uidnext, f->uidvalidity);
            if (strstr(cmd, "HIGHESTMODSEQ"))
                mock_sendf(ms, " HIGHESTMODSEQ %llu", (unsigned long long)f->hms);
            mock_sendf(ms, ")\r\n%s OK Status completed.\r\n", tag);
        }
    } else if (MOCK_IS("CREATE ")) {
        /* Like Courier: a plain NO, no [ALREADYEXISTS], for a folder that
         * exists; a name with "Forbidden" in it is refused outright. */
        char name[256];
        mock_astring(cmd + 7, name, sizeof name);
        if (mock_folder_by_name(ms, name) >= 0) {
            mock_sendf(ms, "%s NO Mailbox already exists\r\n", tag);
        } else if (strstr(name, "Forbidden") || ms->nf >= MOCK_MAX_FOLDERS) {
            mock_sendf(ms, "%s NO [NOPERM] Permission denied\r\n", tag);
        } else {
            mock_add_folder(ms, name, "", 8000u + (uint32_t)ms->nf);
            mock_sendf(ms, "%s OK Create completed\r\n", tag);
        }
    } else if (MOCK_IS("UID SEARCH DELETED") && ms->sel >= 0) {
        const mock_folder *f = &ms->f[ms->sel];
        uint32_t i;
        mock_send(ms, "* SEARCH", 8);
        for (i = 0; i < f->n; i++)
            if (f->msgs[i].flags & MOCK_F_DELETED)
                mock_sendf(ms, " %u", f->msgs[i].uid);
        mock_sendf(ms, "\r\n%s OK Search completed.\r\n", tag);
    } else if (MOCK_IS("UID SEARCH ")) {
        mock_sendf(ms, "* SEARCH\r\n%s OK Search completed.\r\n", tag);
    } else if (MOCK_IS("EXPUNGE") && ms->sel >= 0) {
        mock_uid_expunge(ms, tag, "1:*");
    } else if (MOCK_IS("UID FETCH ")) {
        mock_fetch(ms, tag, cmd + 10, 1);
    } else if (MOCK_IS("FETCH ")) {
        mock_fetch(ms, tag, cmd + 6, 0);
    } else if (MOCK_IS("NOOP")) {
        mock_sendf(ms, "%s OK NOOP completed.\r\n", tag);
    } else if (MOCK_IS("LOGOUT")) {
        mock_sendf(ms, "* BYE Logging out\r\n%s OK Logout completed.\r\n", tag);
        ms->closed = 1;
    } else {
        mock_sendf(ms, "%s BAD Error in IMAP command received by server.\r\n",
                   tag);
    }
#undef MOCK_IS
}

/* ---- byte interface ----------------------------------------------------- */

static MOCK_UNUSED void mock_connect(mock_server *ms)
{
    ms->sel = -1;
    ms->qresync = ms->condstore = 0;
    ms->authed = 0;
    ms->want_auth_line = 0;
    ms->line_len = 0;
    ms->lit_need = 0;
    ms->out_len = ms->out_off = 0;
    ms->closed = 0;
    mock_sendf(ms, "* OK [CAPABILITY %s] Dovecot (Debian) ready.\r\n",
               ms->greeting_caps);
}

static MOCK_UNUSED void mock_line_put(mock_server *ms, const void *p, size_t n)
{
    uint8_t *l = (uint8_t *)ms->line;
    mock_grow(&l, &ms->line_cap, ms->line_len + n + 1);
    ms->line = (char *)l;
    memcpy(ms->line + ms->line_len, p, n);
    ms->line_len += n;
    ms->line[ms->line_len] = '\0';
}

/* Client bytes in.  LITERAL+ literals become quoted strings in the line. */
static MOCK_UNUSED void mock_input(mock_server *ms, const uint8_t *p, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) {
        uint8_t c = p[i];
        if (ms->lit_need) {
            if (c == '"' || c == '\\')
                mock_line_put(ms, "\\", 1);
            mock_line_put(ms, &c, 1);
            if (--ms->lit_need == 0)
                mock_line_put(ms, "\"", 1);
            continue;
        }
        if (c == '\n') {
            size_t L = ms->line_len;
            if (L && ms->line[L - 1] == '\r')
                ms->line[--L] = '\0';
            ms->line_len = L;
            if (L && ms->line[L - 1] == '}') {
                /* "{N+}" or "{N}" ends the line: a literal follows. */
                char *open = strrchr(ms->line, '{');
                if (open) {
                    int sync = ms->line[L - 2] != '+';
                    ms->lit_need = strtoull(open + 1, NULL, 10);
                    ms->line_len = (size_t)(open - ms->line);
                    ms->line[ms->line_len] = '\0';
                    mock_line_put(ms, "\"", 1);
                    if (sync)
                        mock_send(ms, "+ OK\r\n", 6);
                    if (ms->lit_need == 0)
                        mock_line_put(ms, "\"", 1);
                    continue;
                }
            }
            mock_command(ms, ms->line);
            ms->line_len = 0;
            if (ms->line)
                ms->line[0] = '\0';
            continue;
        }
        mock_line_put(ms, &c, 1);
    }
}

static MOCK_UNUSED size_t mock_pending(mock_server *ms, const uint8_t **p)
{
    *p = ms->out + ms->out_off;
    return ms->out_len - ms->out_off;
}

static MOCK_UNUSED void mock_consume(mock_server *ms, size_t n)
{
    if (ms->logging) {
        mock_grow(&ms->log, &ms->log_cap, ms->log_len + n);
        memcpy(ms->log + ms->log_len, ms->out + ms->out_off, n);
        ms->log_len += n;
    }
    ms->out_off += n;
    if (ms->out_off == ms->out_len)
        ms->out_off = ms->out_len = 0;
}

#endif

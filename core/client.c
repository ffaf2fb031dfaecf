/* Sans-I/O IMAP client: session set-up (greeting, STARTTLS, capabilities,
 * authentication, ENABLE) and the header sync job.
 *
 * Sync of one folder, in the order the server sees it:
 *   SELECT f [(QRESYNC (uidvalidity modseq)) | (CONDSTORE)]
 *     QRESYNC: VANISHED (EARLIER) and changed FLAGS arrive here.
 *   then, without QRESYNC, as one pipelined flight:
 *     UID FETCH 1:U-1 (UID FLAGS) (CHANGEDSINCE m)   CONDSTORE, flags
 *     UID FETCH 1:U-1 (UID [FLAGS])                  reconcile (expunges)
 *     UID FETCH U:* (UID)                            count new messages
 *   then new messages, newest first, by sequence windows:
 *     FETCH a:b (UID FLAGS RFC822.SIZE INTERNALDATE BODYSTRUCTURE
 *                BODY.PEEK[HEADER.FIELDS (...)])
 * where U is the stored UIDNEXT: every UID below it is in the store.  U and
 * HIGHESTMODSEQ are written only in the transaction that completes the
 * folder, so an interrupted sync resumes from a state that is still true. */
#include "satchel/client.h"
#include "satchel/imap.h"
#include "satchel/mime.h"
#include "satchel/opt.h"
#include "satchel/ops.h"
#include "satchel/seqset.h"

#include <string.h>

#define MAX_INFLIGHT 128
#define MAX_USER 128
#define MAX_PASS 256
#define HDR_FIELDS "DATE FROM SUBJECT MESSAGE-ID"
#define WINDOWS_IN_FLIGHT 2

enum cmd_kind {
    K_NONE,
    K_CAPABILITY,
    K_STARTTLS,
    K_AUTH,
    K_LOGIN,
    K_ENABLE,
    K_LIST,
    K_SELECT,
    K_CHANGED,   /* UID FETCH .. CHANGEDSINCE */
    K_RECONCILE, /* UID FETCH 1:U-1 */
    K_NEWUIDS,   /* UID FETCH U:* (UID) */
    K_WINDOW,    /* FETCH a:b headers */
    K_RESUME,    /* UID FETCH a:b headers, resuming a cut folder */
    K_BLOCK,     /* UID FETCH minp:maxp (UID FLAGS): is the kept block current? */
    K_BODYFETCH, /* UID FETCH n (BODY.PEEK[s]<o.l>) */
    K_CREATE,    /* replay: CREATE (arg: op id) */
    K_RSELECT,   /* replay: SELECT the batch's folder */
    K_RCHECK,    /* replay: UID FETCH set (UID FLAGS) */
    K_RCMD,      /* replay: STORE/MOVE/COPY/EXPUNGE (arg: group | kind) */
    K_RVSELECT,  /* replay: SELECT a move's destination to check it */
    K_RVSEARCH,  /* replay: UID SEARCH HEADER Message-ID there */
    K_LOGOUT
};

enum phase {
    PH_DOWN,      /* no connection */
    PH_GREETING,
    PH_PREAUTH,   /* capabilities, STARTTLS, authentication */
    PH_TLS,       /* waiting for the port's handshake */
    PH_AUTHED,
    PH_LOGOUT,
    PH_CLOSED
};

enum job_state {
    J_NONE,
    J_QUEUED,
    J_LIST,
    J_NEXT_FOLDER,
    J_SELECT,
    J_FOLLOW,
    J_WINDOWS,
    J_BODY_SELECT,
    J_BODY_FETCH,
    J_REPLAY_MKDIR,
    J_REPLAY_SELECT,
    J_REPLAY_OPS,
    J_REPLAY_VERIFY,
    J_DONE
};

struct inflight {
    uint32_t tag;
    uint8_t kind;
    uint64_t arg; /* K_BODYFETCH: the offset asked for */
};

struct body_job {
    uint32_t fid, uid;
    char section[SATCHEL_SECTION_MAX];
    uint64_t expected;
    uint64_t committed;   /* bytes in the store, committed */
    uint64_t written;     /* bytes written in the open transaction */
    uint64_t next_req;    /* next offset to ask for */
    uint64_t lit_origin;  /* origin of the literal being received */
    int lit_skip;         /* ignore the rest of this literal */
    int done, retry, seen, completed;
    size_t chunk_len;
};

struct folder_sync {
    satchel_folder f;       /* stored state; sync state fields stay old
                               until the folder completes */
    uint32_t exists;
    uint32_t uidvalidity;
    uint32_t uidnext;       /* server's, 0 if not reported */
    uint64_t hms;           /* server's HIGHESTMODSEQ, 0 if none */
    uint8_t nomodseq;
    uint8_t used_qresync;
    uint8_t incomplete;     /* anomaly: keep old UIDNEXT/MODSEQ */
    uint8_t reconcile_unsorted;
    uint8_t reconcile_sent, reconcile_done;
    uint32_t k_new;         /* server messages with UID >= U */
    uint32_t max_uid;       /* highest UID fetched */
    uint32_t merge_last;    /* reconcile position */
    uint32_t win_next_hi;   /* next window's top sequence number */
    uint32_t win_lo;        /* lowest sequence number to fetch */
    uint32_t n_new, n_changed, n_vanished;
    uint32_t placeholders;  /* offline moves waiting in this folder */
    uint8_t resume;         /* headers at or above U kept from a cut sync */
    uint32_t minp, maxp;    /* their UID span (the newest-first block) */
    uint32_t newuid_from;   /* K_NEWUIDS counts UIDs from here */
    uint32_t since_commit;  /* messages stored since the last commit */
    uint8_t upward;         /* the maxp+1:* fetch is running */
    /* Windows in flight, oldest first, as [lo, hi] of their key (sequence
     * numbers, or UIDs when resuming).  The first response keyed in a later
     * window proves the earlier ones complete: they commit then, not at
     * their tagged OK, which Dovecot may send only after the next window's
     * data. */
    uint32_t wlo[2], whi[2];
    uint32_t nwin;
    uint32_t rnext_hi;      /* next lower UID window ends here (0: none) */
    uint32_t rwidth;        /* its UID width */
};

#define RCMD_COPY 0x100u     /* K_RCMD arg flag: a COPY awaiting its OK */
#define RCMD_DELSTORE 0x200u /* K_RCMD arg flag: \Deleted STORE, then UID EXPUNGE */
#define REPLAY_BATCH 40 /* worst case 3 commands each + 1 within MAX_INFLIGHT */

/* One queued change in the batch being replayed. */
struct rop {
    uint64_t id;
    uint32_t uid, mapped;  /* MOVE: UID in dest from COPYUID */
    uint8_t type, exists, failed, group;
    uint32_t sflags;       /* server flags seen by the check FETCH */
};

struct replay {
    char folder[SATCHEL_OPT_MAX_FOLDER_NAME + 1];
    char selected[SATCHEL_OPT_MAX_FOLDER_NAME + 1];
    struct rop ops[REPLAY_BATCH];
    uint32_t n;
    uint32_t uidvalidity;
    char reason[160];
    uint32_t done, failed; /* counters for the report */
    uint64_t verify_id;    /* move being checked in its destination */
    int verify_found;
    int map_mode;          /* the search maps a finished move (no COPYUID) */
    uint32_t found_uid;
};

struct satchel_client {
    const satchel_allocator *alloc;
    satchel_store *store;
    satchel_imap_parser *parser;
    satchel_event_cb ev_cb;
    void *ev_ctx;

    uint8_t security;
    uint32_t fetch_window, timeout_ms, disable_caps;
    char user[MAX_USER];
    char pass[MAX_PASS];

    /* connection */
    enum phase ph;
    int tls_active;
    int caps_known;
    uint32_t caps;
    int qresync_on;
    int want_starttls;
    int auth_sent;
    int failed;
    uint32_t next_tag;
    struct inflight inflight[MAX_INFLIGHT];
    uint32_t n_inflight;
    uint64_t now, last_activity;
    satchel_counters ctr;

    uint8_t out[SATCHEL_OPT_OUTBUF];
    size_t out_len, out_off;

    /* job */
    enum job_state job;
    int job_rc;
    int job_all;
    char job_folder[SATCHEL_OPT_MAX_FOLDER_NAME + 1];
    char cursor[SATCHEL_OPT_MAX_FOLDER_NAME + 1]; /* last folder visited */
    uint32_t list_gen;
    uint32_t clean[SATCHEL_OPT_MAX_FOLDERS]; /* folders LIST-STATUS showed unchanged */
    uint32_t n_clean;
    satchel_store_txn *txn;
    struct folder_sync fs;
    struct body_job body;
    struct replay rp;
    int want_replay;
    int authed_started; /* post-login set-up (ENABLE) done */
    int job_kind;    /* 1 sync, 2 body */
    int interrupted; /* the job ended with the connection, unfinished */
    int window_cut;  /* ... in the middle of a header window */
    int resuming;    /* requeued after a lost connection */
    char done_cursor[SATCHEL_OPT_MAX_FOLDER_NAME + 1]; /* last folder finished */
    satchel_op op; /* scratch */
    uint8_t chunk[SATCHEL_OPT_BODY_CHUNK];
    satchel_msg msg; /* scratch for one FETCH */
    satchel_msg scratch2;
    char hdr[1024];  /* scratch for header values */
    char err_text[200];
};

/* ---------- small helpers ---------- */

static void set_error(satchel_client *c, int rc, const char *what,
                      const char *detail, size_t dlen)
{
    size_t n = 0, i;
    const char *s = what;
    while (*s && n + 1 < sizeof c->err_text)
        c->err_text[n++] = *s++;
    if (detail && dlen && n + 3 < sizeof c->err_text) {
        c->err_text[n++] = ':';
        c->err_text[n++] = ' ';
        /* Server text is untrusted: keep printable ASCII and UTF-8 only. */
        for (i = 0; i < dlen && n + 1 < sizeof c->err_text; i++) {
            unsigned char ch = (unsigned char)detail[i];
            c->err_text[n++] = (ch < 0x20 || ch == 0x7f) ? ' ' : (char)ch;
        }
    }
    c->err_text[n] = '\0';
    if (rc < 0 && c->job_rc == 0)
        c->job_rc = rc;
}

static void emit(satchel_client *c, satchel_event *ev)
{
    if (c->ev_cb)
        c->ev_cb(c->ev_ctx, ev);
}

static int fail(satchel_client *c, int rc, const char *what)
{
    if (!c->failed) {
        set_error(c, rc, what, NULL, 0);
        if (c->job_rc == 0)
            c->job_rc = rc;
    }
    c->failed = 1;
    c->ph = PH_CLOSED;
    if (c->txn) {
        satchel_store_abort(c->txn);
        c->txn = NULL;
    }
    if (c->job != J_NONE && c->job != J_DONE) {
        c->interrupted = 1; /* the next connection may resume it */
        c->window_cut = c->job == J_WINDOWS;
    }
    if (c->job != J_NONE)
        c->job = J_DONE;
    return rc;
}

static int out_put(satchel_client *c, const void *p, size_t n)
{
    if (c->out_off > 0 && c->out_off == c->out_len) {
        c->out_off = 0;
        c->out_len = 0;
    }
    if (n > sizeof c->out - c->out_len) {
        /* Compact before giving up: sent bytes are dead. */
        memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
        c->out_len -= c->out_off;
        c->out_off = 0;
        if (n > sizeof c->out - c->out_len)
            return SATCHEL_E_RANGE;
    }
    memcpy(c->out + c->out_len, p, n);
    c->out_len += n;
    return 0;
}

static int out_str(satchel_client *c, const char *s)
{
    return out_put(c, s, strlen(s));
}

static int out_u64(satchel_client *c, uint64_t v)
{
    char b[24];
    size_t n = sizeof b;
    do {
        b[--n] = (char)('0' + v % 10u);
        v /= 10u;
    } while (v);
    return out_put(c, b + n, sizeof b - n);
}

/* Folder names and other strings as IMAP quoted strings.  Names with bytes
 * a quoted string cannot carry go as a non-synchronizing literal when the
 * server allows one; otherwise the caller gets SATCHEL_E_NOTSUP. */
static int out_astring(satchel_client *c, const char *s)
{
    size_t i, n = strlen(s);
    int plain = 1;
    for (i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '\r' || ch == '\n' || ch >= 0x80)
            plain = 0;
    }
    if (!plain) {
        int rc;
        if (!(c->caps & (SATCHEL_CAP_LITERAL_PLUS | SATCHEL_CAP_LITERAL_MINUS)))
            return SATCHEL_E_NOTSUP;
        if ((rc = out_str(c, "{")) < 0 || (rc = out_u64(c, n)) < 0 ||
            (rc = out_str(c, "+}\r\n")) < 0)
            return rc;
        return out_put(c, s, n);
    }
    if (out_put(c, "\"", 1) < 0)
        return SATCHEL_E_RANGE;
    for (i = 0; i < n; i++) {
        if ((s[i] == '"' || s[i] == '\\') && out_put(c, "\\", 1) < 0)
            return SATCHEL_E_RANGE;
        if (out_put(c, s + i, 1) < 0)
            return SATCHEL_E_RANGE;
    }
    return out_put(c, "\"", 1);
}

/* Start a command: writes the tag.  A command issued while none is
 * outstanding costs a round trip; pipelined ones do not. */
static int cmd_begin(satchel_client *c, uint8_t kind)
{
    int rc;
    if (c->n_inflight >= MAX_INFLIGHT)
        return SATCHEL_E_BUSY;
    if (c->n_inflight == 0)
        c->ctr.round_trips++;
    c->ctr.commands++;
    c->next_tag++;
    c->inflight[c->n_inflight].tag = c->next_tag;
    c->inflight[c->n_inflight].kind = kind;
    c->inflight[c->n_inflight].arg = 0;
    c->n_inflight++;
    if (c->n_inflight == 1)
        c->last_activity = c->now;
    if ((rc = out_str(c, "S")) < 0 || (rc = out_u64(c, c->next_tag)) < 0 ||
        (rc = out_str(c, " ")) < 0)
        return rc;
    return 0;
}

static int cmd_end(satchel_client *c)
{
    return out_str(c, "\r\n");
}

static int simple_cmd(satchel_client *c, uint8_t kind, const char *text)
{
    int rc;
    if ((rc = cmd_begin(c, kind)) < 0 || (rc = out_str(c, text)) < 0)
        return rc;
    return cmd_end(c);
}

static int count_inflight(const satchel_client *c, uint8_t kind)
{
    uint32_t i;
    int n = 0;
    for (i = 0; i < c->n_inflight; i++)
        if (c->inflight[i].kind == kind)
            n++;
    return n;
}

static void base64_encode(const uint8_t *in, size_t n, char *out)
{
    static const char tbl[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t i, o = 0;
    for (i = 0; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = tbl[v >> 18 & 63];
        out[o++] = tbl[v >> 12 & 63];
        out[o++] = tbl[v >> 6 & 63];
        out[o++] = tbl[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)in[i + 1] << 8;
        out[o++] = tbl[v >> 18 & 63];
        out[o++] = tbl[v >> 12 & 63];
        out[o++] = i + 1 < n ? tbl[v >> 6 & 63] : '=';
        out[o++] = '=';
    }
    out[o] = '\0';
}

static void wipe(void *p, size_t n)
{
    volatile unsigned char *v = p;
    while (n--)
        *v++ = 0;
}

/* ---------- capabilities ---------- */

static const struct {
    const char *name;
    uint32_t bit;
} cap_names[] = {
    {"IMAP4REV1", SATCHEL_CAP_IMAP4REV1}, {"IMAP4REV2", SATCHEL_CAP_IMAP4REV2},
    {"STARTTLS", SATCHEL_CAP_STARTTLS},   {"LOGINDISABLED", SATCHEL_CAP_LOGINDISABLED},
    {"AUTH=PLAIN", SATCHEL_CAP_AUTH_PLAIN}, {"SASL-IR", SATCHEL_CAP_SASL_IR},
    {"CONDSTORE", SATCHEL_CAP_CONDSTORE}, {"QRESYNC", SATCHEL_CAP_QRESYNC},
    {"ENABLE", SATCHEL_CAP_ENABLE},       {"SPECIAL-USE", SATCHEL_CAP_SPECIAL_USE},
    {"LIST-EXTENDED", SATCHEL_CAP_LIST_EXTENDED}, {"MOVE", SATCHEL_CAP_MOVE},
    {"UIDPLUS", SATCHEL_CAP_UIDPLUS},     {"LITERAL+", SATCHEL_CAP_LITERAL_PLUS},
    {"LITERAL-", SATCHEL_CAP_LITERAL_MINUS}, {"IDLE", SATCHEL_CAP_IDLE},
    {"ESEARCH", SATCHEL_CAP_ESEARCH},     {"PREVIEW", SATCHEL_CAP_PREVIEW},
    {"NAMESPACE", SATCHEL_CAP_NAMESPACE}, {"LIST-STATUS", SATCHEL_CAP_LIST_STATUS},
};

static void read_caps(satchel_client *c, const satchel_imap_arg *a)
{
    uint32_t caps = 0;
    size_t i;
    for (; a; a = a->next)
        for (i = 0; i < sizeof cap_names / sizeof cap_names[0]; i++)
            if (satchel_imap_arg_is(a, cap_names[i].name))
                caps |= cap_names[i].bit;
    /* QRESYNC implies CONDSTORE (RFC 7162 section 3.2.3). */
    if (caps & SATCHEL_CAP_QRESYNC)
        caps |= SATCHEL_CAP_CONDSTORE;
    c->caps = caps & ~c->disable_caps;
    c->caps_known = 1;
}

/* ---------- store transaction ---------- */

static int txn(satchel_client *c)
{
    int rc;
    if (c->txn)
        return 0;
    rc = satchel_store_begin(c->store, &c->txn);
    if (rc < 0)
        return fail(c, rc, "cannot begin a store transaction");
    return 0;
}

static int commit(satchel_client *c, int write_folder)
{
    int rc = 0;
    if (!c->txn)
        return 0;
    if (write_folder)
        rc = satchel_store_folder_put(c->txn, &c->fs.f);
    if (rc < 0) {
        satchel_store_abort(c->txn);
        c->txn = NULL;
        return fail(c, rc, "cannot write folder record");
    }
    rc = satchel_store_commit(c->txn);
    c->txn = NULL;
    if (rc < 0)
        return fail(c, rc, "store commit failed");
    return 0;
}

/* ---------- LIST ---------- */

static uint8_t role_from_name(const char *name, char delim)
{
    /* Without SPECIAL-USE, guess from the leaf name as common servers and
     * clients spell it (Thunderbird, K-9 and Dovecot's defaults). */
    static const struct {
        const char *n;
        uint8_t role;
    } guess[] = {
        {"sent", SATCHEL_ROLE_SENT},          {"sent items", SATCHEL_ROLE_SENT},
        {"sent messages", SATCHEL_ROLE_SENT}, {"sent mail", SATCHEL_ROLE_SENT},
        {"drafts", SATCHEL_ROLE_DRAFTS},      {"draft", SATCHEL_ROLE_DRAFTS},
        {"trash", SATCHEL_ROLE_TRASH},        {"deleted items", SATCHEL_ROLE_TRASH},
        {"deleted messages", SATCHEL_ROLE_TRASH}, {"bin", SATCHEL_ROLE_TRASH},
        {"junk", SATCHEL_ROLE_JUNK},          {"spam", SATCHEL_ROLE_JUNK},
        {"junk e-mail", SATCHEL_ROLE_JUNK},   {"archive", SATCHEL_ROLE_ARCHIVE},
        {"archives", SATCHEL_ROLE_ARCHIVE},
    };
    const char *leaf = name;
    size_t i, j;
    if (delim) {
        const char *p = strrchr(name, delim);
        if (p)
            leaf = p + 1;
    }
    for (i = 0; i < sizeof guess / sizeof guess[0]; i++) {
        const char *g = guess[i].n;
        for (j = 0; leaf[j] && g[j]; j++) {
            char ch = leaf[j];
            if (ch >= 'A' && ch <= 'Z')
                ch = (char)(ch + 32);
            if (ch != g[j])
                break;
        }
        if (!leaf[j] && !g[j])
            return guess[i].role;
    }
    return SATCHEL_ROLE_NONE;
}

static void on_status(satchel_client *c, const satchel_imap_arg *a);

static int on_list(satchel_client *c, const satchel_imap_arg *a)
{
    /* a = "LIST" (attrs) delim name */
    const satchel_imap_arg *attrs = a->next, *delim, *name;
    satchel_folder f, old;
    const char *s;
    uint32_t n;
    uint8_t role = SATCHEL_ROLE_NONE, flags = 0;
    int rc;

    if (!attrs || attrs->type != SATCHEL_ARG_LIST || !(delim = attrs->next) ||
        !(name = delim->next) || !satchel_imap_arg_string(name, &s, &n))
        return 0; /* malformed LIST lines are ignored, not fatal */
    if (n == 0 || n > SATCHEL_OPT_MAX_FOLDER_NAME || memchr(s, 0, n) ||
        (name->flags & SATCHEL_ARG_F_TRUNCATED))
        return 0;
    for (a = attrs->child; a; a = a->next) {
        if (satchel_imap_arg_is(a, "\\Noselect") ||
            satchel_imap_arg_is(a, "\\NonExistent"))
            flags |= SATCHEL_FOLDER_NOSELECT;
        else if (satchel_imap_arg_is(a, "\\Noinferiors"))
            flags |= SATCHEL_FOLDER_NOINFERIORS;
        else if (satchel_imap_arg_is(a, "\\Sent"))
            role = SATCHEL_ROLE_SENT;
        else if (satchel_imap_arg_is(a, "\\Drafts"))
            role = SATCHEL_ROLE_DRAFTS;
        else if (satchel_imap_arg_is(a, "\\Trash"))
            role = SATCHEL_ROLE_TRASH;
        else if (satchel_imap_arg_is(a, "\\Archive"))
            role = SATCHEL_ROLE_ARCHIVE;
        else if (satchel_imap_arg_is(a, "\\Junk"))
            role = SATCHEL_ROLE_JUNK;
        else if (satchel_imap_arg_is(a, "\\All"))
            role = SATCHEL_ROLE_ALL;
        else if (satchel_imap_arg_is(a, "\\Flagged"))
            role = SATCHEL_ROLE_FLAGGED;
    }
    if ((rc = txn(c)) < 0)
        return rc;
    memset(&f, 0, sizeof f);
    memcpy(f.name, s, n);
    f.name[n] = '\0';
    rc = satchel_store_folder_get(c->store, c->txn, f.name, &old);
    if (rc == 0)
        f = old;
    else if (rc != SATCHEL_E_NOTFOUND)
        return fail(c, rc, "cannot read folder record");
    f.delim = 0;
    if (delim->type == SATCHEL_ARG_STRING && delim->len == 1)
        f.delim = delim->str[0];
    if (n == 5 && (s[0] | 0x20) == 'i' && (s[1] | 0x20) == 'n' &&
        (s[2] | 0x20) == 'b' && (s[3] | 0x20) == 'o' && (s[4] | 0x20) == 'x')
        role = SATCHEL_ROLE_INBOX;
    if (role == SATCHEL_ROLE_NONE && !(c->caps & SATCHEL_CAP_SPECIAL_USE))
        role = role_from_name(f.name, f.delim);
    f.role = role;
    f.flags = flags;
    f.list_gen = c->list_gen;
    rc = satchel_store_folder_put(c->txn, &f);
    if (rc == 0 && f.id)
        rc = 0;
    if (rc < 0)
        return fail(c, rc, "cannot store folder");
    return 0;
}

/* LIST-STATUS: a folder whose UIDVALIDITY, UIDNEXT, message count and
 * HIGHESTMODSEQ all equal the stored ones has nothing to sync.  Without
 * HIGHESTMODSEQ flag changes would be invisible, so such folders are
 * always selected. */
static void on_status(satchel_client *c, const satchel_imap_arg *a)
{
    const satchel_imap_arg *name = a->next, *list, *k;
    uint64_t messages = UINT64_MAX, uidnext = 0, uidvalidity = 0, hms = 0, v;
    satchel_folder f;
    uint32_t pending = 0;
    const char *s;
    uint32_t n;
    char buf[SATCHEL_OPT_MAX_FOLDER_NAME + 1];
    if (!name || !(list = name->next) || list->type != SATCHEL_ARG_LIST ||
        !satchel_imap_arg_string(name, &s, &n) || n == 0 ||
        n > SATCHEL_OPT_MAX_FOLDER_NAME || memchr(s, 0, n) ||
        c->n_clean >= SATCHEL_OPT_MAX_FOLDERS)
        return;
    for (k = list->child; k && k->next; k = k->next->next) {
        if (satchel_imap_arg_u64(k->next, UINT64_MAX, &v) < 0)
            continue;
        if (satchel_imap_arg_is(k, "MESSAGES"))
            messages = v;
        else if (satchel_imap_arg_is(k, "UIDNEXT"))
            uidnext = v;
        else if (satchel_imap_arg_is(k, "UIDVALIDITY"))
            uidvalidity = v;
        else if (satchel_imap_arg_is(k, "HIGHESTMODSEQ"))
            hms = v;
    }
    memcpy(buf, s, n);
    buf[n] = '\0';
    if (satchel_store_folder_get(c->store, c->txn, buf, &f) < 0 ||
        satchel_store_msg_count_pending(c->store, c->txn, f.id, &pending) < 0)
        return;
    if (hms && hms == f.highestmodseq && uidvalidity == f.uidvalidity &&
        uidnext == f.uidnext && f.uidvalidity && messages == (uint64_t)(f.count - pending))
        c->clean[c->n_clean++] = f.id;
}

/* Folders the server no longer lists are gone: drop them with their mail. */
static int list_done(satchel_client *c)
{
    satchel_folder f;
    char after[SATCHEL_OPT_MAX_FOLDER_NAME + 1] = "";
    int rc;
    if ((rc = txn(c)) < 0)
        return rc;
    for (;;) {
        rc = satchel_store_folder_next(c->store, c->txn, after, &f);
        if (rc == SATCHEL_E_NOTFOUND)
            break;
        if (rc < 0)
            return fail(c, rc, "cannot read folders");
        memcpy(after, f.name, sizeof after);
        if (f.list_gen != c->list_gen && f.list_gen != UINT32_MAX) {
            /* (UINT32_MAX: created offline, not yet on the server) */
            rc = satchel_store_folder_delete(c->txn, f.name);
            if (rc < 0)
                return fail(c, rc, "cannot delete folder");
        }
    }
    return commit(c, 0);
}

/* ---------- FETCH ---------- */

static void parse_flags(const satchel_imap_arg *list, uint32_t *flags,
                        char *kw, size_t kwcap)
{
    const satchel_imap_arg *a;
    size_t n = 0;
    *flags = 0;
    kw[0] = '\0';
    for (a = list ? list->child : NULL; a; a = a->next) {
        if (a->type != SATCHEL_ARG_ATOM)
            continue;
        if (satchel_imap_arg_is(a, "\\Seen"))
            *flags |= SATCHEL_FLAG_SEEN;
        else if (satchel_imap_arg_is(a, "\\Answered"))
            *flags |= SATCHEL_FLAG_ANSWERED;
        else if (satchel_imap_arg_is(a, "\\Flagged"))
            *flags |= SATCHEL_FLAG_FLAGGED;
        else if (satchel_imap_arg_is(a, "\\Deleted"))
            *flags |= SATCHEL_FLAG_DELETED;
        else if (satchel_imap_arg_is(a, "\\Draft"))
            *flags |= SATCHEL_FLAG_DRAFT;
        else if (satchel_imap_arg_is(a, "\\Recent"))
            continue; /* session state, not message state */
        else if (n + a->len + 2 <= kwcap) {
            if (n)
                kw[n++] = ' ';
            memcpy(kw + n, a->str, a->len);
            n += a->len;
            kw[n] = '\0';
        }
    }
}

/* Serialize an argument tree back to IMAP syntax (for BODYSTRUCTURE). */
static int ser(const satchel_imap_arg *a, char *out, size_t cap, size_t *n)
{
    for (; a; a = a->next) {
        uint32_t i;
        if (*n + 2 >= cap)
            return SATCHEL_E_RANGE;
        switch (a->type) {
        case SATCHEL_ARG_LIST:
            out[(*n)++] = '(';
            if (ser(a->child, out, cap, n) < 0)
                return SATCHEL_E_RANGE;
            if (*n + 2 >= cap)
                return SATCHEL_E_RANGE;
            out[(*n)++] = ')';
            break;
        case SATCHEL_ARG_NIL:
            if (*n + 4 >= cap)
                return SATCHEL_E_RANGE;
            memcpy(out + *n, "NIL", 3);
            *n += 3;
            break;
        case SATCHEL_ARG_STRING:
            out[(*n)++] = '"';
            for (i = 0; i < a->len; i++) {
                char ch = a->str[i];
                if (*n + 3 >= cap)
                    return SATCHEL_E_RANGE;
                if (ch == '"' || ch == '\\')
                    out[(*n)++] = '\\';
                out[(*n)++] = (ch == '\r' || ch == '\n' || ch == 0) ? ' ' : ch;
            }
            if (*n + 2 >= cap)
                return SATCHEL_E_RANGE;
            out[(*n)++] = '"';
            break;
        default:
            if (*n + a->len + 2 >= cap)
                return SATCHEL_E_RANGE;
            memcpy(out + *n, a->str, a->len);
            *n += a->len;
            break;
        }
        if (a->next)
            out[(*n)++] = ' ';
    }
    out[*n] = '\0';
    return 0;
}

struct fetch_items {
    uint32_t uid;
    int has_flags, has_headers, has_bs, bs_truncated;
    uint32_t flags;
    uint64_t modseq;
    const satchel_imap_arg *size, *idate, *hdr, *bs, *preview;
    char kw[128];
};

static void reconcile_step(satchel_client *c, uint32_t uid);
static void replay_copyuid(satchel_client *c, const satchel_imap_arg *code);
static int replay_on_fetch(satchel_client *c, const satchel_imap_arg *list);
static int job_advance(satchel_client *c);
static int body_on_fetch(satchel_client *c, const satchel_imap_arg *list);
static int send_reconcile(satchel_client *c, int with_flags);
static int after_follow(satchel_client *c);

static int win_seen(satchel_client *c, uint32_t k);
static int win_done(satchel_client *c, uint32_t lo, uint32_t hi);
static void win_push(satchel_client *c, uint32_t lo, uint32_t hi);

static int store_new_message(satchel_client *c, const struct fetch_items *it)
{
    satchel_msg *m = &c->msg;
    int64_t epoch;
    int tz, rc, is_new = 0;
    size_t n = 0;

    memset(m, 0, sizeof *m);
    m->uid = it->uid;
    m->flags = it->flags;
    memcpy(m->keywords, it->kw, sizeof m->keywords);
    m->modseq = it->modseq;
    if (it->size) {
        uint32_t sz = 0;
        if (satchel_imap_arg_u32(it->size, &sz) == 0)
            m->size = sz;
    }
    if (it->idate && it->idate->type == SATCHEL_ARG_STRING &&
        satchel_mime_parse_internaldate(it->idate->str, it->idate->len, &epoch,
                                        &tz) == 0) {
        m->internaldate = epoch;
        m->internaldate_tz = (int16_t)(tz >= -1440 && tz <= 1440 ? tz : 0);
    }
    m->date = m->internaldate;
    m->date_tz = m->internaldate_tz;
    if (it->hdr && (it->hdr->type == SATCHEL_ARG_STRING)) {
        const char *h = it->hdr->str;
        size_t hl = it->hdr->len;
        int hn;
        hn = satchel_mime_header_get(h, hl, "Subject", c->hdr, sizeof c->hdr);
        if (hn >= 0 || hn == SATCHEL_E_RANGE)
            satchel_mime_decode_header(c->hdr, strlen(c->hdr), m->subject,
                                       sizeof m->subject);
        hn = satchel_mime_header_get(h, hl, "From", c->hdr, sizeof c->hdr);
        if (hn >= 0 || hn == SATCHEL_E_RANGE)
            satchel_mime_format_from(c->hdr, strlen(c->hdr), m->from,
                                     sizeof m->from);
        hn = satchel_mime_header_get(h, hl, "Message-ID", c->hdr, sizeof c->hdr);
        if (hn >= 0 && strlen(c->hdr) < sizeof m->message_id)
            memcpy(m->message_id, c->hdr, strlen(c->hdr) + 1);
        hn = satchel_mime_header_get(h, hl, "Date", c->hdr, sizeof c->hdr);
        if (hn >= 0 &&
            satchel_mime_parse_date(c->hdr, strlen(c->hdr), &epoch, &tz) == 0) {
            m->date = epoch;
            /* Records keep zones within a day; a hostile "+9959" becomes
             * UTC rather than a record nobody can read back. */
            m->date_tz = (int16_t)(tz >= -1440 && tz <= 1440 ? tz : 0);
        }
    }
    if (it->preview && it->preview->type == SATCHEL_ARG_STRING)
        satchel_mime_to_utf8("utf-8", 5, (const uint8_t *)it->preview->str,
                             it->preview->len, m->preview, sizeof m->preview, &n);
    n = 0;
    if (it->bs_truncated) {
        m->mflags |= SATCHEL_MSG_F_BS_TRUNCATED;
        m->bodystructure[0] = '\0';
    } else if (it->bs && it->bs->type == SATCHEL_ARG_LIST) {
        if (ser(it->bs->child, m->bodystructure + 1,
                sizeof m->bodystructure - 2, &n) < 0) {
            m->mflags |= SATCHEL_MSG_F_BS_TRUNCATED;
            m->bodystructure[0] = '\0';
        } else {
            m->bodystructure[0] = '(';
            m->bodystructure[n + 1] = ')';
            m->bodystructure[n + 2] = '\0';
        }
    }
    if ((rc = txn(c)) < 0)
        return rc;
    {
        /* A server UID equal to a local placeholder (a server may use UIDs
         * in that range): keep the queued message; fetch this one after the
         * move has replayed. */
        satchel_msg *old = &c->scratch2;
        if (satchel_store_msg_get(c->store, c->txn, c->fs.f.id, m->uid, old) == 0 &&
            (old->mflags & SATCHEL_MSG_F_PENDING)) {
            c->fs.incomplete = 1;
            return 0;
        }
    }
    rc = satchel_store_msg_put(c->txn, &c->fs.f, m, &is_new);
    if (rc < 0)
        return fail(c, rc, "cannot store message");
    if (is_new)
        c->fs.n_new++;
    if (it->uid > c->fs.max_uid)
        c->fs.max_uid = it->uid;
    /* The open-ended newer range commits in batches: any prefix of it
     * keeps the stored block contiguous.  Nothing else commits mid-way. */
    if (c->fs.upward && ++c->fs.since_commit >= c->fetch_window) {
        c->fs.since_commit = 0;
        if ((rc = commit(c, 1)) < 0)
            return rc;
    }
    return 0;
}

static int on_fetch(satchel_client *c, const satchel_imap_arg *a,
                    int truncated)
{
    /* a = seq "FETCH" (items) */
    const satchel_imap_arg *list = a->next ? a->next->next : NULL, *k;
    struct fetch_items it;
    int rc;
    int in_select = c->job == J_SELECT || c->job == J_FOLLOW ||
                    c->job == J_WINDOWS;

    if (list && list->type == SATCHEL_ARG_LIST && c->job == J_BODY_FETCH)
        return body_on_fetch(c, list);
    if (list && list->type == SATCHEL_ARG_LIST && c->job == J_REPLAY_OPS)
        return replay_on_fetch(c, list);
    if (!list || list->type != SATCHEL_ARG_LIST || !in_select)
        return 0; /* not ours: unsolicited or outside a folder sync */
    memset(&it, 0, sizeof it);
    for (k = list->child; k && k->next; k = k->next->next) {
        const satchel_imap_arg *v = k->next;
        if (satchel_imap_arg_is(k, "UID")) {
            if (satchel_imap_arg_u32(v, &it.uid) < 0)
                it.uid = 0;
        } else if (satchel_imap_arg_is(k, "FLAGS") && v->type == SATCHEL_ARG_LIST) {
            it.has_flags = 1;
            parse_flags(v, &it.flags, it.kw, sizeof it.kw);
        } else if (satchel_imap_arg_is(k, "MODSEQ") && v->type == SATCHEL_ARG_LIST) {
            if (satchel_imap_arg_u64(v->child, UINT64_MAX, &it.modseq) < 0)
                it.modseq = 0;
        } else if (satchel_imap_arg_is(k, "RFC822.SIZE")) {
            it.size = v;
        } else if (satchel_imap_arg_is(k, "INTERNALDATE")) {
            it.idate = v;
        } else if (satchel_imap_arg_is(k, "PREVIEW")) {
            it.preview = v;
        } else if (satchel_imap_arg_is(k, "BODYSTRUCTURE")) {
            it.bs = v;
            it.has_bs = 1;
        } else if (k->type == SATCHEL_ARG_ATOM && k->len >= 18 &&
                   memcmp(k->str, "BODY[HEADER.FIELDS", 18) == 0) {
            it.hdr = v;
            it.has_headers = 1;
        }
    }
    if (it.uid == 0) {
        /* A FETCH without a usable UID cannot be placed: never guess. */
        if (count_inflight(c, K_WINDOW) || count_inflight(c, K_RECONCILE) ||
            count_inflight(c, K_RESUME))
            c->fs.incomplete = 1;
        return 0;
    }
    if (truncated && (count_inflight(c, K_WINDOW) || count_inflight(c, K_RESUME))) {
        /* The response did not fit: items after the overflow are missing.
         * Keep it only if UID, FLAGS and the headers survived (what was cut
         * is then the BODYSTRUCTURE); otherwise fetch it again next time. */
        if (!it.has_flags || !it.has_headers ||
            (it.hdr && it.hdr->type != SATCHEL_ARG_STRING)) {
            c->fs.incomplete = 1;
            return 0;
        }
        it.bs_truncated = 1;
    }
    if (it.has_headers || it.has_bs) {
        uint32_t seq = 0;
        if (truncated && !it.has_flags)
            c->fs.incomplete = 1;
        /* Resume windows are keyed by UID, first-pass windows by sequence. */
        if (c->fs.nwin && count_inflight(c, K_RESUME))
            rc = win_seen(c, it.uid);
        else if (c->fs.nwin && satchel_imap_arg_u32(a, &seq) == 0)
            rc = win_seen(c, seq);
        else
            rc = 0;
        if (rc < 0)
            return rc;
        return store_new_message(c, &it);
    }
    if (count_inflight(c, K_BLOCK) && it.uid >= c->fs.minp && it.uid <= c->fs.maxp) {
        reconcile_step(c, it.uid);
        if (it.has_flags) {
            if ((rc = txn(c)) < 0)
                return rc;
            rc = satchel_store_msg_set_flags(c->txn, &c->fs.f, it.uid, it.flags, it.kw,
                                             it.modseq);
            if (rc == 1)
                c->fs.n_changed++;
            else if (rc < 0 && rc != SATCHEL_E_NOTFOUND)
                return fail(c, rc, "cannot update flags");
        }
        return 0;
    }
    if (it.uid >= c->fs.f.uidnext) {
        if (count_inflight(c, K_NEWUIDS) && it.uid >= c->fs.newuid_from)
            c->fs.k_new++;
        return 0; /* a new message: fetched whole in a window */
    }
    if (count_inflight(c, K_RECONCILE))
        reconcile_step(c, it.uid);
    if (it.has_flags) {
        if ((rc = txn(c)) < 0)
            return rc;
        rc = satchel_store_msg_set_flags(c->txn, &c->fs.f, it.uid, it.flags,
                                         it.kw, it.modseq);
        if (rc == 1)
            c->fs.n_changed++;
        else if (rc < 0 && rc != SATCHEL_E_NOTFOUND)
            return fail(c, rc, "cannot update flags");
    }
    return 0;
}

/* Reconcile: the server lists every UID below U in ascending order; stored
 * UIDs it skipped were expunged. */
static void reconcile_step(satchel_client *c, uint32_t uid)
{
    uint32_t n = 0;
    if (c->fs.reconcile_unsorted)
        return;
    if (uid <= c->fs.merge_last) {
        c->fs.reconcile_unsorted = 1; /* cannot merge: keep everything */
        return;
    }
    if (txn(c) < 0)
        return;
    if (uid > c->fs.merge_last + 1 &&
        satchel_store_msg_del_server_range(c->txn, &c->fs.f, c->fs.merge_last + 1,
                                    uid - 1, &n) < 0) {
        fail(c, SATCHEL_E_STORE, "cannot delete expunged messages");
        return;
    }
    c->fs.n_vanished += n;
    c->fs.merge_last = uid;
}

static int on_vanished(satchel_client *c, const satchel_imap_arg *a)
{
    const satchel_imap_arg *set = a->next;
    satchel_seqset_iter it;
    uint32_t lo, hi, n;
    int rc;
    if (set && set->type == SATCHEL_ARG_LIST) /* (EARLIER) */
        set = set->next;
    if (!set || set->type != SATCHEL_ARG_ATOM)
        return 0;
    if (!(c->job == J_SELECT || c->job == J_FOLLOW || c->job == J_WINDOWS))
        return 0;
    if (c->job == J_WINDOWS)
        c->fs.incomplete = 1; /* sequence numbers moved under the windows */
    satchel_seqset_init(&it, set->str, set->len, UINT32_MAX);
    if ((rc = txn(c)) < 0)
        return rc;
    while ((rc = satchel_seqset_next(&it, &lo, &hi)) == 1) {
        if (satchel_store_msg_del_server_range(c->txn, &c->fs.f, lo, hi, &n) < 0)
            return fail(c, SATCHEL_E_STORE, "cannot delete vanished messages");
        c->fs.n_vanished += n;
    }
    if (rc < 0) {
        /* Some ranges may be applied; the rest will be reconciled by the
         * next sync since we keep the old modseq. */
        c->fs.incomplete = 1;
    }
    return 0;
}

/* ---------- untagged dispatch ---------- */

static int on_untagged(satchel_client *c, const satchel_imap_resp *r)
{
    const satchel_imap_arg *a = r->args;
    uint32_t num;

    if (r->status != SATCHEL_STATUS_NONE) {
        const satchel_imap_arg *code = r->code;
        if (r->status == SATCHEL_STATUS_BYE) {
            if (c->ph != PH_LOGOUT)
                set_error(c, SATCHEL_E_IO, "server closed the session",
                          r->text, r->text_len);
            return 0;
        }
        if (code && satchel_imap_arg_is(code, "ALERT") && c->ph == PH_AUTHED) {
            satchel_event ev;
            memset(&ev, 0, sizeof ev);
            ev.type = SATCHEL_EV_ALERT;
            ev.text = r->text;
            emit(c, &ev);
        }
        /* Data in response codes is trusted only once authenticated over
         * the chosen security: nothing before that changes state, except
         * capabilities that are re-read after STARTTLS anyway. */
        if (code && c->job == J_REPLAY_SELECT &&
            satchel_imap_arg_is(code, "UIDVALIDITY"))
            satchel_imap_arg_u32(code->next, &c->rp.uidvalidity);
        if (code && c->job == J_REPLAY_OPS && satchel_imap_arg_is(code, "COPYUID"))
            replay_copyuid(c, code);
        if (code && c->job == J_SELECT) {
            if (satchel_imap_arg_is(code, "UIDVALIDITY"))
                satchel_imap_arg_u32(code->next, &c->fs.uidvalidity);
            else if (satchel_imap_arg_is(code, "UIDNEXT"))
                satchel_imap_arg_u32(code->next, &c->fs.uidnext);
            else if (satchel_imap_arg_is(code, "HIGHESTMODSEQ"))
                satchel_imap_arg_u64(code->next, UINT64_MAX, &c->fs.hms);
            else if (satchel_imap_arg_is(code, "NOMODSEQ"))
                c->fs.nomodseq = 1;
        }
        return 0;
    }
    if (!a)
        return 0;
    if (satchel_imap_arg_is(a, "CAPABILITY")) {
        if (count_inflight(c, K_CAPABILITY))
            read_caps(c, a->next);
        return 0;
    }
    if (c->ph != PH_AUTHED)
        return 0; /* nothing else counts before authentication */
    if (satchel_imap_arg_is(a, "LIST")) {
        if (count_inflight(c, K_LIST))
            return on_list(c, a);
        return 0;
    }
    if (satchel_imap_arg_is(a, "VANISHED"))
        return on_vanished(c, a);
    if (satchel_imap_arg_is(a, "STATUS")) {
        if (count_inflight(c, K_LIST))
            on_status(c, a);
        return 0;
    }
    if (satchel_imap_arg_is(a, "SEARCH")) {
        if (c->job == J_REPLAY_VERIFY && count_inflight(c, K_RVSEARCH) && a->next) {
            c->rp.verify_found = 1;
            if (satchel_imap_arg_u32(a->next, &c->rp.found_uid) < 0)
                c->rp.found_uid = 0;
        }
        return 0;
    }
    if (satchel_imap_arg_is(a, "ENABLED")) {
        for (a = a->next; a; a = a->next)
            if (satchel_imap_arg_is(a, "QRESYNC"))
                c->qresync_on = 1;
        return 0;
    }
    if (satchel_imap_arg_u32(a, &num) == 0 && a->next) {
        const satchel_imap_arg *w = a->next;
        if (satchel_imap_arg_is(w, "EXISTS")) {
            if (c->job == J_SELECT)
                c->fs.exists = num;
        } else if (satchel_imap_arg_is(w, "EXPUNGE")) {
            /* Sequence-numbered expunge: we do not map sequence numbers to
             * UIDs, so let the next sync reconcile. */
            if (c->job == J_FOLLOW || c->job == J_WINDOWS || c->job == J_SELECT)
                c->fs.incomplete = 1;
        } else if (satchel_imap_arg_is(w, "FETCH")) {
            return on_fetch(c, a, r->truncated);
        }
    }
    return 0;
}

/* ---------- job steps ---------- */

static int send_list(satchel_client *c)
{
    /* Mark and sweep: folders the LIST does not stamp with a generation
     * newer than any stored one are gone from the server. */
    satchel_folder f;
    char after[SATCHEL_OPT_MAX_FOLDER_NAME + 1] = "";
    uint32_t gen = 0;
    while (satchel_store_folder_next(c->store, NULL, after, &f) == 0) {
        if (f.list_gen > gen && f.list_gen != UINT32_MAX)
            gen = f.list_gen;
        memcpy(after, f.name, sizeof after);
    }
    c->list_gen = gen + 1;
    c->n_clean = 0;
    if (c->caps & SATCHEL_CAP_LIST_EXTENDED) {
        /* RFC 5819: the state of every folder in the same round trip, so
         * unchanged folders need no SELECT at all. */
        int su = (c->caps & SATCHEL_CAP_SPECIAL_USE) != 0;
        int st = (c->caps & SATCHEL_CAP_LIST_STATUS) != 0;
        int ms = st && (c->caps & SATCHEL_CAP_CONDSTORE);
        int rc;
        if (su || st) {
            if ((rc = cmd_begin(c, K_LIST)) < 0 ||
                (rc = out_str(c, "LIST \"\" \"*\" RETURN (")) < 0 ||
                (su && (rc = out_str(c, "SPECIAL-USE")) < 0) ||
                (su && st && (rc = out_str(c, " ")) < 0) ||
                (st && (rc = out_str(c, ms ? "STATUS (MESSAGES UIDNEXT UIDVALIDITY "
                                             "HIGHESTMODSEQ)"
                                           : "STATUS (MESSAGES UIDNEXT UIDVALIDITY)")) < 0) ||
                (rc = out_str(c, ")")) < 0 || (rc = cmd_end(c)) < 0)
                return rc;
            return 0;
        }
    }
    return simple_cmd(c, K_LIST, "LIST \"\" \"*\"");
}

static void folder_event(satchel_client *c, int type, int err,
                         const char *text)
{
    satchel_event ev;
    memset(&ev, 0, sizeof ev);
    ev.type = type;
    ev.folder = c->fs.f.name;
    ev.n_new = c->fs.n_new;
    ev.n_changed = c->fs.n_changed;
    ev.n_vanished = c->fs.n_vanished;
    ev.total = c->fs.f.count;
    ev.err = err;
    ev.text = text;
    emit(c, &ev);
}

static int send_select(satchel_client *c)
{
    int rc;
    satchel_folder *f = &c->fs.f;
    if ((rc = cmd_begin(c, K_SELECT)) < 0 || (rc = out_str(c, "SELECT ")) < 0)
        return rc;
    rc = out_astring(c, f->name);
    if (rc < 0)
        return rc;
    if (c->qresync_on && f->uidvalidity && f->highestmodseq && f->uidnext > 1) {
        c->fs.used_qresync = 1;
        if ((rc = out_str(c, " (QRESYNC (")) < 0 ||
            (rc = out_u64(c, f->uidvalidity)) < 0 || (rc = out_str(c, " ")) < 0 ||
            (rc = out_u64(c, f->highestmodseq)) < 0 ||
            (rc = out_str(c, "))")) < 0)
            return rc;
    } else if (c->caps & SATCHEL_CAP_CONDSTORE) {
        if ((rc = out_str(c, " (CONDSTORE)")) < 0)
            return rc;
    }
    return cmd_end(c);
}

/* Pick the next folder to sync: in name order after c->cursor, or the one
 * folder the job names. */
static int next_folder(satchel_client *c)
{
    int rc;
    for (;;) {
        satchel_folder f;
        if (c->job_all) {
            rc = satchel_store_folder_next(c->store, NULL, c->cursor, &f);
        } else if (c->cursor[0]) {
            rc = SATCHEL_E_NOTFOUND;
        } else {
            rc = satchel_store_folder_get(c->store, NULL, c->job_folder, &f);
            if (rc == SATCHEL_E_NOTFOUND || (rc == 0 && (f.flags & SATCHEL_FOLDER_NOSELECT))) {
                set_error(c, SATCHEL_E_NOTFOUND, "no such folder", c->job_folder,
                          strlen(c->job_folder));
                c->job = J_DONE;
                return 0;
            }
        }
        if (rc == SATCHEL_E_NOTFOUND) {
            c->job = J_DONE;
            return 0;
        }
        if (rc < 0)
            return fail(c, rc, "cannot read folders");
        memcpy(c->cursor, f.name, sizeof c->cursor);
        if (f.flags & SATCHEL_FOLDER_NOSELECT)
            continue;
        {
            uint32_t i;
            for (i = 0; i < c->n_clean && c->clean[i] != f.id; i++)
                ;
            if (i < c->n_clean) {
                /* Unchanged on the server: report it, select nothing. */
                memset(&c->fs, 0, sizeof c->fs);
                c->fs.f = f;
                folder_event(c, SATCHEL_EV_FOLDER_SYNCED, 0, NULL);
                memcpy(c->done_cursor, f.name, sizeof c->done_cursor);
                continue;
            }
        }
        memset(&c->fs, 0, sizeof c->fs);
        c->fs.f = f;
        c->job = J_SELECT;
        rc = send_select(c);
        if (rc == SATCHEL_E_NOTSUP) {
            /* A name we cannot express without LITERAL+: report, go on. */
            c->n_inflight--;
            c->job = J_NEXT_FOLDER;
            folder_event(c, SATCHEL_EV_FOLDER_ERROR, rc,
                         "folder name needs a literal the server does not allow");
            continue;
        }
        return rc < 0 ? fail(c, rc, "command buffer overflow") : 0;
    }
}

static int send_window(satchel_client *c)
{
    struct folder_sync *fs = &c->fs;
    uint32_t hi = fs->win_next_hi, lo;
    int rc;
    if (hi < fs->win_lo || hi == 0)
        return 0;
    lo = hi - fs->win_lo + 1 > c->fetch_window ? hi - c->fetch_window + 1
                                               : fs->win_lo;
    fs->win_next_hi = lo - 1;
    win_push(c, lo, hi);
    if ((rc = cmd_begin(c, K_WINDOW)) < 0 || (rc = out_str(c, "FETCH ")) < 0 ||
        (rc = out_u64(c, lo)) < 0 || (rc = out_str(c, ":")) < 0 ||
        (rc = out_u64(c, hi)) < 0 ||
        (rc = out_str(c, " (UID FLAGS RFC822.SIZE INTERNALDATE BODYSTRUCTURE "
                         "BODY.PEEK[HEADER.FIELDS (" HDR_FIELDS ")]")) < 0)
        return rc;
    c->inflight[c->n_inflight - 1].arg = (uint64_t)lo << 32 | hi;
    if (c->caps & SATCHEL_CAP_CONDSTORE && !fs->nomodseq &&
        (rc = out_str(c, " MODSEQ")) < 0)
        return rc;
    /* RFC 8970: a short preview with the headers, in the same round trip. */
    if ((c->caps & SATCHEL_CAP_PREVIEW) && (rc = out_str(c, " PREVIEW")) < 0)
        return rc;
    if ((rc = out_str(c, ")")) < 0)
        return rc;
    return cmd_end(c);
}

static int finish_folder(satchel_client *c)
{
    struct folder_sync *fs = &c->fs;
    int rc;
    if ((rc = txn(c)) < 0)
        return rc;
    if (fs->incomplete) {
        /* Something was skipped: what is stored at or above U may have
         * holes, so it cannot be resumed from.  Start over next time. */
        uint32_t n;
        if ((rc = satchel_store_msg_del_server_range(c->txn, &fs->f, fs->f.uidnext,
                                                     UINT32_MAX, &n)) < 0)
            return fail(c, rc, "cannot drop partial messages");
        fs->n_new = fs->n_new > n ? fs->n_new - n : 0;
    }
    if (!fs->incomplete) {
        uint32_t next = fs->uidnext;
        if (next == 0 || next <= fs->max_uid)
            next = fs->max_uid + 1;
        if (next < fs->f.uidnext)
            next = fs->f.uidnext;
        fs->f.uidnext = next;
        fs->f.highestmodseq =
            (c->caps & SATCHEL_CAP_CONDSTORE) && !fs->nomodseq ? fs->hms : 0;
    }
    if (!fs->incomplete && (rc = satchel_store_synced_mark(c->txn, fs->f.id)) < 0)
        return fail(c, rc, "cannot mark folder synced");
    if ((rc = commit(c, 1)) < 0)
        return rc;
    folder_event(c, SATCHEL_EV_FOLDER_SYNCED, 0, NULL);
    memcpy(c->done_cursor, fs->f.name, sizeof c->done_cursor);
    c->job = J_NEXT_FOLDER;
    return 0;
}

static int resume_fetch(satchel_client *c, uint32_t lo, uint32_t hi)
{
    int rc;
    if (hi)
        win_push(c, lo, hi);
    if ((rc = cmd_begin(c, K_RESUME)) < 0 || (rc = out_str(c, "UID FETCH ")) < 0 ||
        (rc = out_u64(c, lo)) < 0 || (rc = out_str(c, ":")) < 0 ||
        (hi ? (rc = out_u64(c, hi)) : (rc = out_str(c, "*"))) < 0 ||
        (rc = out_str(c, " (UID FLAGS RFC822.SIZE INTERNALDATE BODYSTRUCTURE "
                         "BODY.PEEK[HEADER.FIELDS (" HDR_FIELDS ")]")) < 0)
        return fail(c, rc, "command buffer overflow");
    if (c->caps & SATCHEL_CAP_CONDSTORE && !c->fs.nomodseq &&
        (rc = out_str(c, " MODSEQ")) < 0)
        return fail(c, rc, "command buffer overflow");
    if ((c->caps & SATCHEL_CAP_PREVIEW) && (rc = out_str(c, " PREVIEW")) < 0)
        return fail(c, rc, "command buffer overflow");
    if ((rc = out_str(c, ")")) < 0 || (rc = cmd_end(c)) < 0)
        return fail(c, rc, "command buffer overflow");
    c->inflight[c->n_inflight - 1].arg = (uint64_t)lo << 32 | hi;
    return 0;
}

static void win_push(satchel_client *c, uint32_t lo, uint32_t hi)
{
    struct folder_sync *fs = &c->fs;
    if (fs->nwin < 2) {
        fs->wlo[fs->nwin] = lo;
        fs->whi[fs->nwin] = hi;
        fs->nwin++;
    }
}

/* A response keyed k arrived: commit windows it shows complete. */
static int win_seen(satchel_client *c, uint32_t k)
{
    struct folder_sync *fs = &c->fs;
    int rc;
    if (fs->nwin == 2 && !(k >= fs->wlo[0] && k <= fs->whi[0]) &&
        k >= fs->wlo[1] && k <= fs->whi[1]) {
        if ((rc = commit(c, 1)) < 0)
            return rc;
        fs->wlo[0] = fs->wlo[1];
        fs->whi[0] = fs->whi[1];
        fs->nwin = 1;
    }
    return 0;
}

/* A window's tagged OK.  Returns 1 when it was still the oldest open
 * window: then the transaction holds exactly its data and may commit.  When
 * a later window's data already came (and committed this one), committing
 * now would store a partial later window. */
static int win_done(satchel_client *c, uint32_t lo, uint32_t hi)
{
    struct folder_sync *fs = &c->fs;
    uint32_t i;
    for (i = 0; i < fs->nwin; i++) {
        if (fs->wlo[i] == lo && fs->whi[i] == hi) {
            if (i == 0 && fs->nwin == 2) {
                fs->wlo[0] = fs->wlo[1];
                fs->whi[0] = fs->whi[1];
            }
            fs->nwin--;
            return i == 0;
        }
    }
    return 0;
}

static int start_windows(satchel_client *c)
{
    struct folder_sync *fs = &c->fs;
    int rc;
    if (fs->resume) {
        /* Newer than the kept block first (the "*" of maxp+1:* can name
         * maxp itself when nothing is newer: it is just stored again), then
         * older, in descending UID windows that each extend the block. */
        c->job = J_WINDOWS;
        fs->upward = 1;
        fs->since_commit = 0;
        fs->rnext_hi = fs->minp > fs->f.uidnext ? fs->minp - 1 : 0;
        fs->rwidth = c->fetch_window;
        /* The kept block may have changed since: its flags and expunges
         * come first, at a few dozen bytes a message. */
        fs->merge_last = fs->minp - 1;
        fs->reconcile_unsorted = 0;
        if ((rc = cmd_begin(c, K_BLOCK)) < 0 || (rc = out_str(c, "UID FETCH ")) < 0 ||
            (rc = out_u64(c, fs->minp)) < 0 || (rc = out_str(c, ":")) < 0 ||
            (rc = out_u64(c, fs->maxp)) < 0 || (rc = out_str(c, " (UID FLAGS)")) < 0 ||
            (rc = cmd_end(c)) < 0)
            return fail(c, rc, "command buffer overflow");
        return resume_fetch(c, fs->maxp + 1, 0);
    }
    if (fs->k_new > fs->exists)
        fs->k_new = fs->exists;
    if (fs->k_new == 0)
        return finish_folder(c);
    fs->win_lo = fs->exists - fs->k_new + 1;
    fs->win_next_hi = fs->exists;
    c->job = J_WINDOWS;
    while (fs->win_next_hi >= fs->win_lo && fs->win_next_hi > 0 &&
           count_inflight(c, K_WINDOW) < WINDOWS_IN_FLIGHT)
        if ((rc = send_window(c)) < 0)
            return fail(c, rc, "command buffer overflow");
    return 0;
}

/* SELECT completed: decide what else the folder needs. */
static int after_select(satchel_client *c)
{
    struct folder_sync *fs = &c->fs;
    satchel_folder *f = &fs->f;
    uint32_t partial = 0, U;
    int rc, qresync_ok, condstore_ok;

    if ((rc = txn(c)) < 0)
        return rc;
    if (fs->uidvalidity == 0) {
        /* RFC 9051 requires it; without it UIDs mean nothing. */
        fs->incomplete = 1;
    }
    if (f->uidvalidity != fs->uidvalidity || f->uidnext == 0) {
        /* New folder, or UIDs were renumbered: nothing stored is valid. */
        if (f->count) {
            uint32_t gone = 0;
            if ((rc = satchel_store_msg_del_server_range(c->txn, f, 0, UINT32_MAX,
                                                         &gone)) < 0)
                return fail(c, rc, "cannot clear folder");
            fs->n_vanished += gone;
        }
        f->uidvalidity = fs->uidvalidity;
        f->uidnext = 1;
        f->highestmodseq = 0;
        fs->used_qresync = 0;
    }
    U = f->uidnext;
    fs->newuid_from = U;
    /* Headers at or above U are what a cut sync of this folder committed:
     * the newest-first windows leave one block, [minp, maxp], holding every
     * server message of that span.  Keep it and fetch only what is around
     * it (by UID).  Without a usable span, drop them and start over. */
    if ((rc = satchel_store_msg_span_from(c->store, c->txn, f->id, U, &partial,
                                          &fs->minp, &fs->maxp)) < 0)
        return fail(c, rc, "cannot read partial messages");
    if (partial && fs->maxp < UINT32_MAX && fs->uidvalidity == f->uidvalidity) {
        fs->resume = 1;
        fs->newuid_from = fs->maxp + 1;
    } else if ((rc = satchel_store_msg_del_server_range(c->txn, f, U, UINT32_MAX,
                                                        &partial)) < 0) {
        return fail(c, rc, "cannot drop partial messages");
    }
    /* Messages moved here offline wait under placeholder UIDs: they are not
     * on the server yet and do not count against EXISTS. */
    if ((rc = satchel_store_msg_count_pending(c->store, c->txn, f->id,
                                              &fs->placeholders)) < 0)
        return fail(c, rc, "cannot count placeholders");
    if ((rc = commit(c, 1)) < 0)
        return rc;

    c->job = J_FOLLOW;
    qresync_ok = fs->used_qresync && fs->hms && !fs->nomodseq;
    condstore_ok = (c->caps & SATCHEL_CAP_CONDSTORE) && fs->hms &&
                   !fs->nomodseq && f->highestmodseq;
    if (U == 1) {
        fs->k_new = fs->exists;
        return start_windows(c);
    }
    if (fs->resume && qresync_ok)
        return start_windows(c); /* VANISHED covered the kept block */
    if (qresync_ok && fs->exists >= f->count - fs->placeholders) {
        fs->k_new = fs->exists - (f->count - fs->placeholders);
        return start_windows(c);
    }
    if (condstore_ok && fs->hms != f->highestmodseq) {
        if ((rc = cmd_begin(c, K_CHANGED)) < 0 ||
            (rc = out_str(c, "UID FETCH 1:")) < 0 || (rc = out_u64(c, U - 1)) < 0 ||
            (rc = out_str(c, " (UID FLAGS) (CHANGEDSINCE ")) < 0 ||
            (rc = out_u64(c, f->highestmodseq)) < 0 || (rc = out_str(c, ")")) < 0 ||
            (rc = cmd_end(c)) < 0)
            return fail(c, rc, "command buffer overflow");
    }
    if (!condstore_ok && (rc = send_reconcile(c, 1)) < 0)
        return rc;
    fs->k_new = 0;
    if (fs->uidnext == 0 || fs->uidnext > U) {
        if ((rc = cmd_begin(c, K_NEWUIDS)) < 0 ||
            (rc = out_str(c, "UID FETCH ")) < 0 || (rc = out_u64(c, fs->newuid_from)) < 0 ||
            (rc = out_str(c, ":* (UID)")) < 0 || (rc = cmd_end(c)) < 0)
            return fail(c, rc, "command buffer overflow");
    }
    if (count_inflight(c, K_CHANGED) + count_inflight(c, K_RECONCILE) +
            count_inflight(c, K_NEWUIDS) == 0)
        return after_follow(c); /* CONDSTORE and nothing changed */
    return 0;
}

static int send_reconcile(satchel_client *c, int with_flags)
{
    int rc;
    c->fs.merge_last = 0;
    c->fs.reconcile_sent = 1;
    if ((rc = cmd_begin(c, K_RECONCILE)) < 0 ||
        (rc = out_str(c, "UID FETCH 1:")) < 0 ||
        (rc = out_u64(c, c->fs.f.uidnext - 1)) < 0 ||
        (rc = out_str(c, with_flags ? " (UID FLAGS)" : " (UID)")) < 0 ||
        (rc = cmd_end(c)) < 0)
        return fail(c, rc, "command buffer overflow");
    return 0;
}

/* All follow-up commands of a folder completed. */
static int after_follow(satchel_client *c)
{
    struct folder_sync *fs = &c->fs;
    uint32_t n = 0;
    int rc;
    if (fs->reconcile_sent && !fs->reconcile_done && !fs->reconcile_unsorted) {
        /* Stored UIDs above the last one listed (and below U) are gone. */
        if ((rc = txn(c)) < 0)
            return rc;
        if (fs->f.uidnext > fs->merge_last + 1 &&
            satchel_store_msg_del_server_range(c->txn, &fs->f, fs->merge_last + 1,
                                        fs->f.uidnext - 1, &n) < 0)
            return fail(c, SATCHEL_E_STORE, "cannot delete expunged messages");
        fs->n_vanished += n;
        fs->reconcile_done = 1;
    }
    if ((rc = commit(c, 1)) < 0)
        return rc;
    if (fs->reconcile_unsorted)
        fs->incomplete = 1;
    if (!fs->resume && fs->exists != fs->f.count - fs->placeholders + fs->k_new) {
        /* Counts disagree: something below U was expunged. */
        if (!fs->reconcile_sent)
            return send_reconcile(c, 0);
        fs->incomplete = 1; /* changed under us; the next sync retries */
    }
    return start_windows(c);
}

/* ---------- body download ---------- */

/* "BODY[1.2]<4096>": does it name our section, and from which origin? */
static int body_item(const satchel_client *c, const char *item, uint64_t *origin)
{
    size_t sl = strlen(c->body.section);
    const char *p;
    uint64_t o = 0;
    if (strncmp(item, "BODY[", 5) != 0 || strncmp(item + 5, c->body.section, sl) != 0 ||
        item[5 + sl] != ']')
        return 0;
    p = item + 5 + sl + 1;
    if (*p == '<') {
        for (p++; *p >= '0' && *p <= '9'; p++) {
            if (o > (UINT64_MAX - 9) / 10)
                return 0;
            o = o * 10 + (uint64_t)(*p - '0');
        }
        if (*p != '>')
            return 0;
    }
    *origin = o;
    return 1;
}

static int body_flush(satchel_client *c)
{
    struct body_job *b = &c->body;
    int rc;
    if (b->chunk_len == 0)
        return 0;
    if ((rc = txn(c)) < 0)
        return rc;
    rc = satchel_store_body_write(c->txn, b->fid, b->uid, b->section,
                                  b->committed + b->written, c->chunk,
                                  b->chunk_len, b->expected);
    if (rc == SATCHEL_E_STORE_FULL) {
        /* The map is full: drop this transaction, make room, and ask again
         * from what is committed. */
        satchel_store_abort(c->txn);
        c->txn = NULL;
        b->written = 0;
        b->chunk_len = 0;
        b->lit_skip = 1;
        b->retry = 1;
        if (satchel_store_begin(c->store, &c->txn) == 0) {
            if (satchel_store_cache_make_room(c->txn, 4u * SATCHEL_OPT_BODY_REQUEST) < 0 ||
                satchel_store_commit(c->txn) < 0) {
                c->txn = NULL;
                return fail(c, SATCHEL_E_STORE_FULL, "store full: nothing left to evict");
            }
            c->txn = NULL;
        }
        return 0;
    }
    if (rc < 0)
        return fail(c, rc, rc == SATCHEL_E_RANGE
                               ? "part is larger than the whole cache budget"
                               : "cannot store body chunk");
    b->written += b->chunk_len;
    b->chunk_len = 0;
    /* Commit every few chunks, mid-literal too: a link that cannot carry
     * a whole request still makes progress, resumed from here. */
    if (b->written >= 4u * SATCHEL_OPT_BODY_CHUNK) {
        if ((rc = commit(c, 0)) < 0)
            return rc;
        b->committed += b->written;
        b->written = 0;
    }
    return 0;
}

/* Literal bytes of the part stream through here in bounded chunks. */
static int body_sink(void *ctx, const char *item, uint64_t off, uint64_t total,
                     const uint8_t *data, size_t len)
{
    satchel_client *c = ctx;
    struct body_job *b = &c->body;
    if (c->job != J_BODY_FETCH || c->failed)
        return 0;
    if (off == 0) {
        uint64_t origin;
        b->lit_skip = 1;
        if (!body_item(c, item, &origin))
            return 0;
        b->lit_origin = origin;
        /* Only bytes that continue exactly where the store ends are kept;
         * a repeat after a retry or a gap is dropped. */
        b->lit_skip = origin != b->committed + b->written + b->chunk_len || b->retry;
    }
    if (b->lit_skip)
        return 0;
    if (c->ctr.body_first_ms == 0)
        c->ctr.body_first_ms = c->now ? c->now : 1;
    while (len > 0) {
        size_t room = sizeof c->chunk - b->chunk_len;
        size_t k = len < room ? len : room;
        memcpy(c->chunk + b->chunk_len, data, k);
        b->chunk_len += k;
        data += k;
        len -= k;
        if (b->chunk_len == sizeof c->chunk && body_flush(c) < 0)
            return SATCHEL_E_STORE;
        if (b->lit_skip)
            return 0;
    }
    (void)total;
    return 0;
}

static int body_on_fetch(satchel_client *c, const satchel_imap_arg *list)
{
    struct body_job *b = &c->body;
    const satchel_imap_arg *k;
    uint32_t uid = 0;
    for (k = list->child; k && k->next; k = k->next->next)
        if (satchel_imap_arg_is(k, "UID"))
            satchel_imap_arg_u32(k->next, &uid);
    if (uid != b->uid)
        return 0; /* another message's flags, pushed by the server */
    for (k = list->child; k && k->next; k = k->next->next) {
        const satchel_imap_arg *v = k->next;
        uint64_t origin, size;
        int rc;
        if (k->type != SATCHEL_ARG_ATOM || !body_item(c, k->str, &origin))
            continue;
        b->seen = 1;
        if (v->type == SATCHEL_ARG_NIL) {
            set_error(c, SATCHEL_E_NOTFOUND, "no such part on the server",
                      b->section, strlen(b->section));
            return fail(c, SATCHEL_E_NOTFOUND, c->err_text);
        }
        if (v->type != SATCHEL_ARG_STRING)
            return fail(c, SATCHEL_E_PROTO, "malformed body in FETCH");
        size = v->size;
        if (!(v->flags & SATCHEL_ARG_F_LITERAL) && v->len > 0 && !b->retry &&
            origin == b->committed + b->written + b->chunk_len) {
            /* A quoted string never went through the sink. */
            const char *p = v->str;
            size_t left = v->len;
            while (left) {
                size_t room = sizeof c->chunk - b->chunk_len;
                size_t n = left < room ? left : room;
                memcpy(c->chunk + b->chunk_len, p, n);
                b->chunk_len += n;
                p += n;
                left -= n;
                if (b->chunk_len == sizeof c->chunk && (rc = body_flush(c)) < 0)
                    return rc;
            }
        }
        if (!b->retry && (rc = body_flush(c)) < 0)
            return rc;
        if (size < SATCHEL_OPT_BODY_REQUEST && origin <= b->committed + b->written)
            b->done = 1;
    }
    return 0;
}

static int body_request(satchel_client *c)
{
    struct body_job *b = &c->body;
    int rc;
    if ((rc = cmd_begin(c, K_BODYFETCH)) < 0 || (rc = out_str(c, "UID FETCH ")) < 0 ||
        (rc = out_u64(c, b->uid)) < 0 || (rc = out_str(c, " (BODY.PEEK[")) < 0 ||
        (rc = out_str(c, b->section)) < 0 || (rc = out_str(c, "]<")) < 0 ||
        (rc = out_u64(c, b->next_req)) < 0 || (rc = out_str(c, ".")) < 0 ||
        (rc = out_u64(c, SATCHEL_OPT_BODY_REQUEST)) < 0 ||
        (rc = out_str(c, ">)")) < 0 || (rc = cmd_end(c)) < 0)
        return fail(c, rc, "command buffer overflow");
    c->inflight[c->n_inflight - 1].arg = b->next_req;
    b->next_req += SATCHEL_OPT_BODY_REQUEST;
    return 0;
}

/* Keep up to two requests in flight while the end is not known to be
 * reached: the second hides the round trip on slow links. */
static int body_pump(satchel_client *c)
{
    struct body_job *b = &c->body;
    int rc;
    while (!b->done && !c->failed && count_inflight(c, K_BODYFETCH) < 2) {
        if (b->expected && b->next_req > b->expected + SATCHEL_OPT_BODY_REQUEST &&
            count_inflight(c, K_BODYFETCH) > 0)
            break; /* far past the announced size: wait for the answer */
        if ((rc = body_request(c)) < 0)
            return rc;
    }
    return 0;
}

static int body_tagged(satchel_client *c, int ok, const satchel_imap_resp *r)
{
    struct body_job *b = &c->body;
    int rc;
    if (!ok) {
        set_error(c, SATCHEL_E_SERVER, "server refused the body FETCH", r->text,
                  r->text_len);
        return fail(c, SATCHEL_E_SERVER, c->err_text);
    }
    if (c->failed)
        return c->job_rc;
    if ((rc = body_flush(c)) < 0)
        return rc;
    if (b->done && !b->retry && !b->completed) {
        b->completed = 1;
        if ((rc = txn(c)) < 0)
            return rc;
        if ((rc = satchel_store_body_complete(c->txn, b->fid, b->uid, b->section)) < 0 ||
            (rc = satchel_store_body_touch(c->txn, b->fid, b->uid, b->section, 0)) < 0)
            return fail(c, rc, "cannot complete body");
    }
    if ((rc = commit(c, 0)) < 0)
        return rc;
    b->committed += b->written;
    b->written = 0;
    if (!b->seen) {
        set_error(c, SATCHEL_E_NOTFOUND, "message no longer on the server", NULL, 0);
        return fail(c, SATCHEL_E_NOTFOUND, c->err_text);
    }
    if (b->done && !b->retry) {
        if (count_inflight(c, K_BODYFETCH) == 0)
            c->job = J_DONE;
        return 0;
    }
    if (b->retry) {
        if (count_inflight(c, K_BODYFETCH))
            return 0; /* let the other answer drain first */
        b->retry = 0;
        b->done = 0;
        b->next_req = b->committed;
    }
    return body_pump(c);
}

/* ---------- offline queue replay ----------
 *
 * Queued changes replay before a sync, folder by folder in batches: one
 * SELECT (skipped when the folder is already selected), then one pipelined
 * flight with a UID FETCH that tells which messages still exist, the flag
 * changes grouped into as few UID STOREs as there are distinct changes,
 * and moves grouped by destination (UID MOVE, or UID COPY + STORE \Deleted
 * + UID EXPUNGE).  Each change leaves the queue in the transaction that
 * records the server's answer; one that fails goes to the failed list with
 * the reason, its local effect is rolled back to the server's truth, and
 * the rest replay regardless. */

static void replay_reason(satchel_client *c, const char *what, const char *text,
                          size_t len)
{
    size_t n = 0, i;
    while (*what && n + 1 < sizeof c->rp.reason)
        c->rp.reason[n++] = *what++;
    if (text && len && n + 3 < sizeof c->rp.reason) {
        c->rp.reason[n++] = ':';
        c->rp.reason[n++] = ' ';
        for (i = 0; i < len && n + 1 < sizeof c->rp.reason; i++)
            c->rp.reason[n++] = (unsigned char)text[i] < 0x20 ? ' ' : text[i];
    }
    c->rp.reason[n] = '\0';
}

static int out_uidset(satchel_client *c, const uint32_t *uids, uint32_t n)
{
    uint32_t i = 0;
    int rc;
    /* uids are ascending; write ranges. */
    while (i < n) {
        uint32_t j = i;
        while (j + 1 < n && uids[j + 1] == uids[j] + 1)
            j++;
        if (i && (rc = out_str(c, ",")) < 0)
            return rc;
        if ((rc = out_u64(c, uids[i])) < 0)
            return rc;
        if (j > i && ((rc = out_str(c, ":")) < 0 || (rc = out_u64(c, uids[j])) < 0))
            return rc;
        i = j + 1;
    }
    return 0;
}

static int out_flags(satchel_client *c, uint32_t bits, const char *kw)
{
    static const char *const names[] = {"\\Seen", "\\Answered", "\\Flagged",
                                        "\\Deleted", "\\Draft"};
    int first = 1, rc, i;
    if ((rc = out_str(c, "(")) < 0)
        return rc;
    for (i = 0; i < 5; i++) {
        if (bits & (1u << i)) {
            if ((!first && (rc = out_str(c, " ")) < 0) ||
                (rc = out_str(c, names[i])) < 0)
                return rc;
            first = 0;
        }
    }
    if (*kw) {
        if ((!first && (rc = out_str(c, " ")) < 0) || (rc = out_str(c, kw)) < 0)
            return rc;
    }
    return out_str(c, ")");
}

/* Sorted UIDs of the batch ops matching a predicate. */
static uint32_t batch_uids(satchel_client *c, int type, int group, uint32_t *out)
{
    uint32_t i, j, n = 0;
    for (i = 0; i < c->rp.n; i++) {
        const struct rop *r = &c->rp.ops[i];
        if ((type && r->type != type) || (group >= 0 && r->group != group))
            continue;
        for (j = n; j > 0 && out[j - 1] > r->uid; j--)
            out[j] = out[j - 1];
        out[j] = r->uid;
        n++;
    }
    /* dedupe */
    for (i = 0, j = 0; i < n; i++)
        if (j == 0 || out[j - 1] != out[i])
            out[j++] = out[i];
    return j;
}

static int replay_next(satchel_client *c);
static int replay_send_delete(satchel_client *c, uint32_t group, const uint32_t *uids,
                              uint32_t n);
static int replay_send_expunge(satchel_client *c, uint32_t group);

static int start_sync_after_replay(satchel_client *c)
{
    c->rp.selected[0] = '\0';
    c->job = J_QUEUED;
    return job_advance(c);
}

static int rollback(satchel_client *c, satchel_op *op, const struct rop *r)
{
    satchel_folder f, d;
    satchel_msg *m = &c->msg;
    uint32_t n;
    int rc = 0;
    if (satchel_store_folder_get(c->store, c->txn, op->folder, &f) < 0)
        memset(&f, 0, sizeof f);
    switch (op->type) {
    case SATCHEL_OP_FLAG:
        if (!f.id)
            return 0;
        if (r && r->exists)
            rc = satchel_store_msg_set_flags(c->txn, &f, op->uid, r->sflags, "", 0);
        else
            rc = satchel_store_msg_del(c->txn, &f, op->uid);
        if (rc >= 0)
            rc = satchel_store_folder_put(c->txn, &f);
        return rc < 0 && rc != SATCHEL_E_NOTFOUND ? rc : 0;
    case SATCHEL_OP_MOVE:
        if (satchel_store_folder_get(c->store, c->txn, op->dest, &d) == 0 &&
            satchel_store_msg_get(c->store, c->txn, d.id, op->dest_uid, m) == 0) {
            if ((rc = satchel_store_msg_del(c->txn, &d, op->dest_uid)) < 0 ||
                (rc = satchel_store_folder_put(c->txn, &d)) < 0)
                return rc;
            satchel_store_op_index(c->txn, d.id, op->dest_uid, 0);
            if (f.id && (!r || r->exists)) {
                m->uid = op->uid;
                m->mflags &= ~(uint32_t)SATCHEL_MSG_F_PENDING;
                if ((rc = satchel_store_msg_put(c->txn, &f, m, NULL)) < 0 ||
                    (rc = satchel_store_folder_put(c->txn, &f)) < 0)
                    return rc;
            }
            return 0;
        }
        /* No copy kept: have the next sync fetch the message again. */
        if (f.id && (!r || r->exists) && f.uidnext > op->uid) {
            f.uidnext = op->uid;
            return satchel_store_folder_put(c->txn, &f);
        }
        return 0;
    case SATCHEL_OP_EXPUNGE:
        if (f.id && (!r || r->exists) && f.uidnext > op->uid) {
            f.uidnext = op->uid;
            return satchel_store_folder_put(c->txn, &f);
        }
        return 0;
    case SATCHEL_OP_MKDIR:
        rc = satchel_store_folder_delete(c->txn, op->dest);
        (void)n;
        return rc == SATCHEL_E_NOTFOUND ? 0 : rc;
    }
    return 0;
}

static int op_fail(satchel_client *c, satchel_op *op, const struct rop *r,
                   const char *reason)
{
    int rc;
    op->state = SATCHEL_OP_FAILED;
    op->attempts++;
    {
        size_t n = strlen(reason);
        if (n >= sizeof op->reason)
            n = sizeof op->reason - 1;
        memcpy(op->reason, reason, n);
        op->reason[n] = '\0';
    }
    if ((rc = rollback(c, op, r)) < 0)
        return rc;
    c->rp.failed++;
    return satchel_store_op_put(c->txn, op);
}

/* Ops that still name a placeholder of a completed move now name the real
 * UID (or, without COPYUID, cannot be placed and fail). */
static int retarget(satchel_client *c, const char *dest, uint32_t from, uint32_t to)
{
    uint64_t at = 0;
    satchel_op *op = &c->op;
    int rc;
    while (satchel_store_op_next(c->store, c->txn, at, op) == 0) {
        at = op->id;
        if (op->state != SATCHEL_OP_PENDING || op->uid != from ||
            !op->on_placeholder || strcmp(op->folder, dest) != 0)
            continue;
        if (to) {
            op->uid = to;
            op->on_placeholder = 0;
            rc = satchel_store_op_put(c->txn, op);
        } else {
            rc = op_fail(c, op, NULL, "moved message has no known UID yet "
                                      "(server lacks UIDPLUS); retry after a sync");
        }
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int replay_finish_batch(satchel_client *c)
{
    uint32_t i;
    int rc;
    if ((rc = txn(c)) < 0)
        return rc;
    for (i = 0; i < c->rp.n; i++) {
        struct rop *r = &c->rp.ops[i];
        satchel_op *op = &c->op;
        if (satchel_store_op_get(c->store, c->txn, r->id, op) < 0)
            continue;
        if (r->failed) {
            rc = op_fail(c, op, r, c->rp.reason[0] ? c->rp.reason : "server refused");
        } else if (!r->exists && op->type == SATCHEL_OP_FLAG) {
            rc = op_fail(c, op, r, "message no longer on the server");
        } else if (!r->exists && op->type == SATCHEL_OP_MOVE && op->phase == 0) {
            rc = op_fail(c, op, r, "message no longer on the server");
        } else {
            if (op->type == SATCHEL_OP_MOVE && !r->mapped && op->message_id[0] &&
                !(c->caps & SATCHEL_CAP_UIDPLUS) && r->exists) {
                /* Moved, but the server named no new UID: find it by
                 * Message-ID before anything queued for it replays. */
                op->phase = 3;
                rc = satchel_store_op_put(c->txn, op);
                if (rc < 0)
                    return fail(c, rc, "cannot update queue");
                continue;
            }
            if (op->type == SATCHEL_OP_MOVE) {
                /* Done, or (retry with the message gone) done earlier. */
                satchel_folder d;
                if (satchel_store_folder_get(c->store, c->txn, op->dest, &d) == 0) {
                    satchel_msg *m = &c->msg;
                    if (satchel_store_msg_get(c->store, c->txn, d.id, op->dest_uid, m) == 0) {
                        satchel_store_msg_del(c->txn, &d, op->dest_uid);
                        if (r->mapped) {
                            m->uid = r->mapped;
                            m->mflags &= ~(uint32_t)SATCHEL_MSG_F_PENDING;
                            if ((rc = satchel_store_msg_put(c->txn, &d, m, NULL)) < 0)
                                return fail(c, rc, "cannot store moved message");
                        }
                        satchel_store_folder_put(c->txn, &d);
                    }
                    satchel_store_op_index(c->txn, d.id, op->dest_uid, 0);
                }
                {
                    /* retarget() reuses the scratch op: copy what it needs. */
                    char dest[SATCHEL_OPT_MAX_FOLDER_NAME + 1];
                    uint32_t from = op->dest_uid;
                    memcpy(dest, op->dest, sizeof dest);
                    if ((rc = satchel_store_op_del(c->txn, op->id)) < 0 ||
                        (rc = retarget(c, dest, from, r->mapped)) < 0)
                        return fail(c, rc, "cannot update queue");
                }
                c->rp.done++;
                continue;
            }
            {
                satchel_folder f;
                uint64_t latest;
                if (satchel_store_folder_get(c->store, c->txn, op->folder, &f) == 0 &&
                    satchel_store_op_latest(c->store, c->txn, f.id, op->uid, &latest) == 0 &&
                    latest == op->id)
                    satchel_store_op_index(c->txn, f.id, op->uid, 0);
            }
            rc = satchel_store_op_del(c->txn, op->id);
            c->rp.done++;
        }
        if (rc < 0)
            return fail(c, rc, "cannot update queue");
    }
    if ((rc = commit(c, 0)) < 0)
        return rc;
    c->rp.n = 0;
    c->rp.reason[0] = '\0';
    return replay_next(c);
}

/* The flight after SELECT: existence check, then changes. */
static int replay_send(satchel_client *c)
{
    static uint32_t uids[REPLAY_BATCH];
    uint32_t n, i, g, ngroups = 0;
    int rc, move = (c->caps & SATCHEL_CAP_MOVE) != 0;
    satchel_op *op = &c->op;

    /* Moves are marked as sent first, so a retry after a crash knows the
     * server may already have done them. */
    if ((rc = txn(c)) < 0)
        return rc;
    for (i = 0; i < c->rp.n; i++) {
        struct rop *r = &c->rp.ops[i];
        if (satchel_store_op_get(c->store, c->txn, r->id, op) < 0)
            continue;
        op->attempts++;
        if (op->type == SATCHEL_OP_MOVE && op->phase == 0)
            op->phase = 1;
        if ((rc = satchel_store_op_put(c->txn, op)) < 0)
            return fail(c, rc, "cannot update queue");
    }
    if ((rc = commit(c, 0)) < 0)
        return rc;

    c->job = J_REPLAY_OPS;
    n = batch_uids(c, 0, -1, uids);
    if ((rc = cmd_begin(c, K_RCHECK)) < 0 || (rc = out_str(c, "UID FETCH ")) < 0 ||
        (rc = out_uidset(c, uids, n)) < 0 || (rc = out_str(c, " (UID FLAGS)")) < 0 ||
        (rc = cmd_end(c)) < 0)
        return fail(c, rc, "command buffer overflow");
    /* Group equal changes: flags by (add, del, keywords); moves by dest. */
    for (i = 0; i < c->rp.n; i++)
        c->rp.ops[i].group = 0xFF; /* not grouped yet */
    /* Pass 1: every op joins the group of the first equal earlier op. */
    for (i = 0; i < c->rp.n; i++) {
        struct rop *r = &c->rp.ops[i];
        satchel_op other;
        uint32_t j;
        if (satchel_store_op_get(c->store, NULL, r->id, op) < 0)
            continue;
        uint32_t floor = 0;
        r->group = (uint8_t)ngroups;
        /* Groups go out in order: joining one must not put this change
         * before an earlier change to the same message. */
        for (j = 0; j < i; j++)
            if (c->rp.ops[j].uid == r->uid && c->rp.ops[j].group != 0xFF &&
                c->rp.ops[j].group > floor)
                floor = c->rp.ops[j].group;
        for (j = 0; j < i; j++) {
            const struct rop *q = &c->rp.ops[j];
            if (q->type != r->type || q->group == 0xFF || q->group < floor ||
                satchel_store_op_get(c->store, NULL, q->id, &other) < 0)
                continue;
            if ((r->type == SATCHEL_OP_FLAG && other.add == op->add &&
                 other.del == op->del && strcmp(other.kw_add, op->kw_add) == 0 &&
                 strcmp(other.kw_del, op->kw_del) == 0) ||
                (r->type == SATCHEL_OP_MOVE && strcmp(other.dest, op->dest) == 0 &&
                 (other.phase == 2) == (op->phase == 2)) ||
                r->type == SATCHEL_OP_EXPUNGE) {
                r->group = q->group;
                break;
            }
        }
        if (r->group == ngroups)
            ngroups++;
    }
    /* Pass 2: one command (or pair) per group, from its first op. */
    for (g = 0; g < ngroups; g++) {
        struct rop *r = NULL;
        for (i = 0; i < c->rp.n && !r; i++)
            if (c->rp.ops[i].group == g)
                r = &c->rp.ops[i];
        if (!r || satchel_store_op_get(c->store, NULL, r->id, op) < 0)
            continue;
        n = batch_uids(c, r->type, r->group, uids);
        if (r->type == SATCHEL_OP_FLAG) {
            if (op->add || op->kw_add[0]) {
                if ((rc = cmd_begin(c, K_RCMD)) < 0 || (rc = out_str(c, "UID STORE ")) < 0 ||
                    (rc = out_uidset(c, uids, n)) < 0 ||
                    (rc = out_str(c, " +FLAGS.SILENT ")) < 0 ||
                    (rc = out_flags(c, op->add, op->kw_add)) < 0 || (rc = cmd_end(c)) < 0)
                    return fail(c, rc, "command buffer overflow");
                c->inflight[c->n_inflight - 1].arg = r->group;
            }
            if (op->del || op->kw_del[0]) {
                if ((rc = cmd_begin(c, K_RCMD)) < 0 || (rc = out_str(c, "UID STORE ")) < 0 ||
                    (rc = out_uidset(c, uids, n)) < 0 ||
                    (rc = out_str(c, " -FLAGS.SILENT ")) < 0 ||
                    (rc = out_flags(c, op->del, op->kw_del)) < 0 || (rc = cmd_end(c)) < 0)
                    return fail(c, rc, "command buffer overflow");
                c->inflight[c->n_inflight - 1].arg = r->group;
            }
            continue;
        }
        if (r->type == SATCHEL_OP_MOVE && !(op->phase == 2 && !move)) {
            if ((rc = cmd_begin(c, K_RCMD)) < 0 ||
                (rc = out_str(c, move ? "UID MOVE " : "UID COPY ")) < 0 ||
                (rc = out_uidset(c, uids, n)) < 0 || (rc = out_str(c, " ")) < 0 ||
                (rc = out_astring(c, op->dest)) < 0 || (rc = cmd_end(c)) < 0)
                return fail(c, rc, "command buffer overflow");
            /* A COPY's source side waits for its OK: deleting after a
             * refused copy would lose the message. */
            c->inflight[c->n_inflight - 1].arg = r->group | (move ? 0 : RCMD_COPY);
            continue;
        }
        if ((rc = replay_send_delete(c, r->group, uids, n)) < 0)
            return rc;
    }
    return 0;
}

/* STORE \Deleted (+ UID EXPUNGE with UIDPLUS) for a group: expunges, and the
 * source side of a completed COPY. */
static int replay_send_delete(satchel_client *c, uint32_t group, const uint32_t *uids,
                              uint32_t n)
{
    int rc;
    {
        /* Never a plain EXPUNGE of the whole folder; without UIDPLUS the
         * \Deleted mark waits for a later expunge. */
        if ((rc = cmd_begin(c, K_RCMD)) < 0 || (rc = out_str(c, "UID STORE ")) < 0 ||
            (rc = out_uidset(c, uids, n)) < 0 ||
            (rc = out_str(c, " +FLAGS.SILENT (\\Deleted)")) < 0 || (rc = cmd_end(c)) < 0)
            return fail(c, rc, "command buffer overflow");
        /* UID EXPUNGE waits for this OK: pipelined right behind the STORE,
         * Dovecot 2.3 was seen to answer OK and expunge nothing (a message
         * moved in earlier in the same session). */
        c->inflight[c->n_inflight - 1].arg =
            group | ((c->caps & SATCHEL_CAP_UIDPLUS) ? RCMD_DELSTORE : 0);
    }
    return 0;
}

static int replay_send_expunge(satchel_client *c, uint32_t group)
{
    static uint32_t uids[REPLAY_BATCH];
    uint32_t n = batch_uids(c, 0, (int)group, uids);
    int rc;
    if ((rc = cmd_begin(c, K_RCMD)) < 0 || (rc = out_str(c, "UID EXPUNGE ")) < 0 ||
        (rc = out_uidset(c, uids, n)) < 0 || (rc = cmd_end(c)) < 0)
        return fail(c, rc, "command buffer overflow");
    c->inflight[c->n_inflight - 1].arg = group;
    return 0;
}

static int replay_on_fetch(satchel_client *c, const satchel_imap_arg *list)
{
    const satchel_imap_arg *k;
    uint32_t uid = 0, flags = 0, i;
    char kw[128];
    int has_flags = 0;
    for (k = list->child; k && k->next; k = k->next->next) {
        if (satchel_imap_arg_is(k, "UID"))
            satchel_imap_arg_u32(k->next, &uid);
        else if (satchel_imap_arg_is(k, "FLAGS") && k->next->type == SATCHEL_ARG_LIST) {
            parse_flags(k->next, &flags, kw, sizeof kw);
            has_flags = 1;
        }
    }
    if (!uid || !has_flags || !count_inflight(c, K_RCHECK))
        return 0;
    for (i = 0; i < c->rp.n; i++) {
        if (c->rp.ops[i].uid == uid) {
            c->rp.ops[i].exists = 1;
            c->rp.ops[i].sflags = flags;
        }
    }
    return 0;
}

static void replay_copyuid(satchel_client *c, const satchel_imap_arg *code)
{
    const satchel_imap_arg *src = code->next ? code->next->next : NULL;
    const satchel_imap_arg *dst = src ? src->next : NULL;
    satchel_seqset_iter si, di;
    uint32_t slo, shi, dlo, dhi, s, d;
    int a, b;
    if (!src || !dst || src->type != SATCHEL_ARG_ATOM || dst->type != SATCHEL_ARG_ATOM ||
        !(c->caps & SATCHEL_CAP_UIDPLUS))
        return; /* (a server without UIDPLUS would not send it) */
    satchel_seqset_init(&si, src->str, src->len, UINT32_MAX);
    satchel_seqset_init(&di, dst->str, dst->len, UINT32_MAX);
    /* The sets pair up in order (RFC 4315); walk both range by range. */
    a = satchel_seqset_next(&si, &slo, &shi);
    b = satchel_seqset_next(&di, &dlo, &dhi);
    s = slo;
    d = dlo;
    while (a == 1 && b == 1) {
        uint32_t i;
        for (i = 0; i < c->rp.n; i++)
            if (c->rp.ops[i].uid == s && c->rp.ops[i].type == SATCHEL_OP_MOVE)
                c->rp.ops[i].mapped = d;
        if (s == shi) {
            a = satchel_seqset_next(&si, &slo, &shi);
            s = slo;
        } else {
            s++;
        }
        if (d == dhi) {
            b = satchel_seqset_next(&di, &dlo, &dhi);
            d = dlo;
        } else {
            d++;
        }
    }
}

/* Look for a move's message in its destination by Message-ID: to map a
 * finished move to its new UID (map), or to learn whether a copy sent
 * before a crash happened. */
static int search_dest(satchel_client *c, const satchel_op *op, int map)
{
    int rc;
    c->rp.verify_id = op->id;
    c->rp.verify_found = 0;
    c->rp.found_uid = 0;
    c->rp.map_mode = map;
    c->rp.selected[0] = '\0';
    c->job = J_REPLAY_VERIFY;
    if ((rc = cmd_begin(c, K_RVSELECT)) < 0 || (rc = out_str(c, "SELECT ")) < 0 ||
        (rc = out_astring(c, op->dest)) < 0 || (rc = cmd_end(c)) < 0 ||
        (rc = cmd_begin(c, K_RVSEARCH)) < 0 ||
        (rc = out_str(c, "UID SEARCH HEADER Message-ID ")) < 0 ||
        (rc = out_astring(c, op->message_id)) < 0 || (rc = cmd_end(c)) < 0)
        return fail(c, SATCHEL_E_RANGE, "command buffer overflow");
    return 0;
}

/* Pick the next batch: the folder of the first pending change that names a
 * real UID, and up to REPLAY_BATCH such changes of that folder. */
static int replay_next(satchel_client *c)
{
    uint64_t at = 0;
    satchel_op *op = &c->op;
    int rc;
    c->rp.n = 0;
    c->rp.folder[0] = '\0';
    while (satchel_store_op_next(c->store, NULL, at, op) == 0) {
        at = op->id;
        if (op->state == SATCHEL_OP_PENDING && op->type == SATCHEL_OP_MOVE &&
            op->phase == 3) {
            /* A finished move waiting for its new UID: look it up. */
            c->rp.n = 0;
            return search_dest(c, op, 1);
        }
        if (op->state != SATCHEL_OP_PENDING || op->type == SATCHEL_OP_MKDIR ||
            op->on_placeholder)
            continue;
        if (!c->rp.folder[0])
            memcpy(c->rp.folder, op->folder, sizeof c->rp.folder);
        else if (strcmp(c->rp.folder, op->folder) != 0)
            continue;
        c->rp.ops[c->rp.n].id = op->id;
        c->rp.ops[c->rp.n].uid = op->uid;
        c->rp.ops[c->rp.n].type = op->type;
        c->rp.ops[c->rp.n].exists = 0;
        c->rp.ops[c->rp.n].failed = 0;
        c->rp.ops[c->rp.n].mapped = 0;
        if (++c->rp.n == REPLAY_BATCH)
            break;
    }
    if (c->rp.n == 0)
        return start_sync_after_replay(c);
    if (!(c->caps & SATCHEL_CAP_MOVE)) {
        /* A copy sent before a crash may have happened: look for it in the
         * destination before copying again, so a retry never duplicates. */
        uint32_t i;
        for (i = 0; i < c->rp.n; i++) {
            if (c->rp.ops[i].type != SATCHEL_OP_MOVE ||
                satchel_store_op_get(c->store, NULL, c->rp.ops[i].id, op) < 0 ||
                op->phase != 1)
                continue;
            if (!op->message_id[0]) {
                /* Nothing to look for: cannot be made safe; do not copy. */
                if ((rc = txn(c)) < 0)
                    return rc;
                rc = op_fail(c, op, NULL, "interrupted copy of a message without "
                                          "Message-ID; check the destination, then retry");
                if (rc < 0 || (rc = commit(c, 0)) < 0)
                    return rc < 0 ? fail(c, rc, "cannot update queue") : rc;
                return replay_next(c);
            }
            return search_dest(c, op, 0);
        }
    }
    if (strcmp(c->rp.selected, c->rp.folder) == 0)
        return replay_send(c);
    c->job = J_REPLAY_SELECT;
    c->rp.uidvalidity = 0;
    if ((rc = cmd_begin(c, K_RSELECT)) < 0 || (rc = out_str(c, "SELECT ")) < 0 ||
        (rc = out_astring(c, c->rp.folder)) < 0 || (rc = cmd_end(c)) < 0)
        return fail(c, rc == SATCHEL_E_NOTSUP ? rc : SATCHEL_E_RANGE, "cannot send SELECT");
    return 0;
}

static int replay_mkdirs(satchel_client *c)
{
    uint64_t at = 0;
    satchel_op *op = &c->op;
    int rc, sent = 0;
    c->job = J_REPLAY_MKDIR;
    while (satchel_store_op_next(c->store, NULL, at, op) == 0) {
        at = op->id;
        if (op->state != SATCHEL_OP_PENDING || op->type != SATCHEL_OP_MKDIR)
            continue;
        if (c->n_inflight + 2 >= MAX_INFLIGHT)
            break;
        if ((rc = cmd_begin(c, K_CREATE)) < 0 || (rc = out_str(c, "CREATE ")) < 0 ||
            (rc = out_astring(c, op->dest)) < 0 || (rc = cmd_end(c)) < 0)
            return fail(c, SATCHEL_E_RANGE, "command buffer overflow");
        c->inflight[c->n_inflight - 1].arg = op->id;
        sent++;
    }
    if (!sent)
        return replay_next(c);
    return 0;
}

static int replay_tagged(satchel_client *c, uint8_t kind, uint64_t arg, int ok,
                         const satchel_imap_resp *r)
{
    int rc;
    uint32_t i;
    switch (kind) {
    case K_CREATE: {
        satchel_op *op = &c->op;
        /* An existing folder is what we wanted (a retry after a crash). */
        int exists = r->code && satchel_imap_arg_is(r->code, "ALREADYEXISTS");
        if ((rc = txn(c)) < 0)
            return rc;
        if (satchel_store_op_get(c->store, c->txn, arg, op) == 0) {
            if (ok || exists) {
                rc = satchel_store_op_del(c->txn, op->id);
                c->rp.done++;
            } else {
                replay_reason(c, "server refused to create the folder", r->text, r->text_len);
                rc = op_fail(c, op, NULL, c->rp.reason);
            }
            if (rc < 0)
                return fail(c, rc, "cannot update queue");
        }
        if ((rc = commit(c, 0)) < 0)
            return rc;
        if (count_inflight(c, K_CREATE) == 0)
            return replay_mkdirs(c); /* more, or on to the folders */
        return 0;
    }
    case K_RSELECT:
        if (!ok) {
            replay_reason(c, "folder cannot be opened on the server", r->text, r->text_len);
            for (i = 0; i < c->rp.n; i++)
                c->rp.ops[i].failed = 1;
            c->rp.selected[0] = '\0';
            return replay_finish_batch(c);
        }
        memcpy(c->rp.selected, c->rp.folder, sizeof c->rp.selected);
        /* UIDs recorded under another UIDVALIDITY name other messages now. */
        for (i = 0; i < c->rp.n; i++) {
            satchel_op *op = &c->op;
            if (satchel_store_op_get(c->store, NULL, c->rp.ops[i].id, op) == 0 &&
                op->uidvalidity && c->rp.uidvalidity &&
                op->uidvalidity != c->rp.uidvalidity) {
                c->rp.ops[i].failed = 1;
                replay_reason(c, "UIDVALIDITY changed on the server", NULL, 0);
            }
        }
        if (c->rp.reason[0]) {
            /* Never send changes for renumbered messages. */
            return replay_finish_batch(c);
        }
        return replay_send(c);
    case K_RVSELECT:
        return 0;
    case K_RVSEARCH: {
        satchel_op *op = &c->op;
        if ((rc = txn(c)) < 0)
            return rc;
        if (c->rp.map_mode &&
            satchel_store_op_get(c->store, c->txn, c->rp.verify_id, op) == 0) {
            /* Re-key the placeholder to the UID found (or drop it: the sync
             * brings the message), and let queued changes follow. */
            char dest[SATCHEL_OPT_MAX_FOLDER_NAME + 1];
            uint32_t from = op->dest_uid, to = ok ? c->rp.found_uid : 0;
            satchel_folder d;
            memcpy(dest, op->dest, sizeof dest);
            if (satchel_store_folder_get(c->store, c->txn, dest, &d) == 0) {
                satchel_msg *m = &c->msg;
                if (satchel_store_msg_get(c->store, c->txn, d.id, from, m) == 0) {
                    satchel_store_msg_del(c->txn, &d, from);
                    if (to) {
                        m->uid = to;
                        m->mflags &= ~(uint32_t)SATCHEL_MSG_F_PENDING;
                        if ((rc = satchel_store_msg_put(c->txn, &d, m, NULL)) < 0)
                            return fail(c, rc, "cannot store moved message");
                    }
                    satchel_store_folder_put(c->txn, &d);
                }
                satchel_store_op_index(c->txn, d.id, from, 0);
            }
            if ((rc = satchel_store_op_del(c->txn, c->rp.verify_id)) < 0 ||
                (rc = retarget(c, dest, from, to)) < 0)
                return fail(c, rc, "cannot update queue");
            c->rp.done++;
        } else if (satchel_store_op_get(c->store, c->txn, c->rp.verify_id, op) == 0) {
            /* Found: the copy happened; only the source side is left.  Not
             * found (or the search failed): copying again is safe. */
            op->phase = ok && c->rp.verify_found ? 2 : 0;
            if ((rc = satchel_store_op_put(c->txn, op)) < 0)
                return fail(c, rc, "cannot update queue");
        }
        if ((rc = commit(c, 0)) < 0)
            return rc;
        c->job = J_REPLAY_SELECT;
        return replay_next(c);
    }
    case K_RCHECK:
    case K_RCMD:
        if (!ok && kind == K_RCMD) {
            replay_reason(c, "server refused the change", r->text, r->text_len);
            for (i = 0; i < c->rp.n; i++)
                if (c->rp.ops[i].group == (uint8_t)arg)
                    c->rp.ops[i].failed = 1;
        } else if (kind == K_RCMD && (arg & RCMD_DELSTORE)) {
            if ((rc = replay_send_expunge(c, (uint32_t)(arg & 0xFF))) < 0)
                return rc;
        } else if (kind == K_RCMD && (arg & RCMD_COPY)) {
            static uint32_t uids[REPLAY_BATCH];
            uint32_t n = batch_uids(c, SATCHEL_OP_MOVE, (int)(arg & 0xFF), uids);
            if ((rc = replay_send_delete(c, (uint32_t)(arg & 0xFF), uids, n)) < 0)
                return rc;
        }
        if (count_inflight(c, K_RCHECK) + count_inflight(c, K_RCMD) == 0)
            return replay_finish_batch(c);
        return 0;
    default:
        return 0;
    }
}

static int job_advance(satchel_client *c)
{
    int rc;
    satchel_folder f;
    if (c->ph != PH_AUTHED || c->failed)
        return 0;
    switch (c->job) {
    case J_QUEUED:
        if (c->resuming) {
            /* Folders this job already finished stay finished. */
            c->resuming = 0;
            if (c->job_all && c->done_cursor[0]) {
                c->want_replay = 0;
                c->job = J_LIST;
                rc = send_list(c);
                memcpy(c->cursor, c->done_cursor, sizeof c->cursor);
                return rc < 0 ? fail(c, rc, "command buffer overflow") : 0;
            }
        }
        if (c->want_replay) {
            uint64_t pending = 0, failed = 0;
            c->want_replay = 0;
            satchel_store_queue_counts(c->store, &pending, &failed);
            if (pending) {
                c->rp.selected[0] = '\0';
                return replay_mkdirs(c);
            }
        }
        c->cursor[0] = '\0';
        /* A single folder already known needs no LIST. */
        if (!c->job_all &&
            satchel_store_folder_get(c->store, NULL, c->job_folder, &f) == 0 &&
            !(f.flags & SATCHEL_FOLDER_NOSELECT)) {
            c->job = J_NEXT_FOLDER;
            return job_advance(c);
        }
        c->job = J_LIST;
        rc = send_list(c);
        return rc < 0 ? fail(c, rc, "command buffer overflow") : 0;
    case J_NEXT_FOLDER:
        if (c->n_inflight > (uint32_t)count_inflight(c, K_ENABLE))
            return 0;
        return next_folder(c);
    case J_BODY_SELECT:
        if (c->n_inflight > (uint32_t)count_inflight(c, K_ENABLE))
            return 0;
        if ((rc = cmd_begin(c, K_SELECT)) < 0 || (rc = out_str(c, "SELECT ")) < 0 ||
            (rc = out_astring(c, c->job_folder)) < 0 || (rc = cmd_end(c)) < 0)
            return fail(c, rc == SATCHEL_E_NOTSUP ? rc : SATCHEL_E_RANGE,
                        "cannot send SELECT");
        return 0;
    default:
        return 0;
    }
}

static int start_authenticated(satchel_client *c)
{
    int rc;
    c->ph = PH_AUTHED;
    c->authed_started = 1;
    if ((c->caps & SATCHEL_CAP_QRESYNC) && (c->caps & SATCHEL_CAP_ENABLE) &&
        !c->qresync_on) {
        /* Pipelined with whatever the job sends next. */
        if ((rc = simple_cmd(c, K_ENABLE, "ENABLE QRESYNC")) < 0)
            return fail(c, rc, "command buffer overflow");
        /* RFC 5161 lets ENABLE be pipelined; a refusal turns it off again
         * before any SELECT relies on it being granted. */
        c->qresync_on = 1;
    }
    return job_advance(c);
}

/* ---------- session set-up ---------- */

static int send_auth(satchel_client *c)
{
    int rc;
    if (!c->tls_active && c->security != SATCHEL_SECURITY_NONE)
        return fail(c, SATCHEL_E_SECURITY,
                    "refusing to authenticate without TLS");
    c->auth_sent = 1;
    if (c->caps & SATCHEL_CAP_AUTH_PLAIN) {
        /* RFC 4616: authzid NUL authcid NUL passwd, base64. */
        uint8_t raw[MAX_USER + MAX_PASS + 2];
        char b64[((MAX_USER + MAX_PASS + 2) / 3 + 1) * 4 + 1];
        size_t ul = strlen(c->user), pl = strlen(c->pass);
        raw[0] = 0;
        memcpy(raw + 1, c->user, ul);
        raw[1 + ul] = 0;
        memcpy(raw + 2 + ul, c->pass, pl);
        base64_encode(raw, ul + pl + 2, b64);
        wipe(raw, sizeof raw);
        if ((rc = cmd_begin(c, K_AUTH)) < 0 ||
            (rc = out_str(c, "AUTHENTICATE PLAIN")) < 0)
            goto out;
        if (c->caps & SATCHEL_CAP_SASL_IR) {
            if ((rc = out_str(c, " ")) < 0 || (rc = out_str(c, b64)) < 0)
                goto out;
        }
        rc = cmd_end(c);
    out:
        wipe(b64, sizeof b64);
        return rc < 0 ? fail(c, rc, "command buffer overflow") : 0;
    }
    if (c->caps & SATCHEL_CAP_LOGINDISABLED)
        return fail(c, SATCHEL_E_AUTH, "server offers no usable login method");
    if ((rc = cmd_begin(c, K_LOGIN)) < 0 || (rc = out_str(c, "LOGIN ")) < 0 ||
        (rc = out_astring(c, c->user)) < 0 || (rc = out_str(c, " ")) < 0 ||
        (rc = out_astring(c, c->pass)) < 0 || (rc = cmd_end(c)) < 0)
        return fail(c, rc, "cannot send LOGIN");
    return 0;
}

static int preauth_advance(satchel_client *c)
{
    if (c->n_inflight)
        return 0;
    if (!c->caps_known)
        return simple_cmd(c, K_CAPABILITY, "CAPABILITY");
    if (!c->tls_active) {
        if (c->security == SATCHEL_SECURITY_STARTTLS) {
            if (!(c->caps & SATCHEL_CAP_STARTTLS))
                return fail(c, SATCHEL_E_SECURITY,
                            "server does not offer STARTTLS; not logging in");
            return simple_cmd(c, K_STARTTLS, "STARTTLS");
        }
        if (c->security != SATCHEL_SECURITY_NONE)
            return fail(c, SATCHEL_E_SECURITY, "connection is not encrypted");
    }
    if (!c->auth_sent)
        return send_auth(c);
    return 0;
}

static void remove_inflight(satchel_client *c, uint32_t i)
{
    for (; i + 1 < c->n_inflight; i++)
        c->inflight[i] = c->inflight[i + 1];
    c->n_inflight--;
}

static int on_tagged(satchel_client *c, const satchel_imap_resp *r)
{
    uint32_t tag = 0, i;
    const char *t = r->tag;
    uint8_t kind = K_NONE;
    uint64_t arg;
    int ok = r->status == SATCHEL_STATUS_OK;
    int rc = 0;

    if (t[0] == 'S') {
        for (t++; *t >= '0' && *t <= '9' && tag < 100000000u; t++)
            tag = tag * 10u + (uint32_t)(*t - '0');
        if (*t)
            tag = 0;
    }
    for (i = 0; i < c->n_inflight; i++)
        if (c->inflight[i].tag == tag)
            break;
    if (tag == 0 || i == c->n_inflight)
        return fail(c, SATCHEL_E_PROTO, "server answered a command never sent");
    kind = c->inflight[i].kind;
    arg = c->inflight[i].arg;
    if (kind == K_RCMD && ok && r->code && satchel_imap_arg_is(r->code, "COPYUID"))
        replay_copyuid(c, r->code);
    remove_inflight(c, i);
    c->last_activity = c->now;

    switch (kind) {
    case K_CAPABILITY:
        if (!ok || !c->caps_known)
            return fail(c, SATCHEL_E_PROTO, "CAPABILITY failed");
        if (c->ph == PH_PREAUTH)
            return preauth_advance(c);
        if (c->ph == PH_AUTHED && !c->authed_started)
            return start_authenticated(c); /* caps after login: ENABLE now */
        return job_advance(c);
    case K_STARTTLS:
        if (!ok) {
            set_error(c, SATCHEL_E_SECURITY, "server refused STARTTLS", r->text,
                      r->text_len);
            return fail(c, SATCHEL_E_SECURITY, c->err_text);
        }
        c->ph = PH_TLS;
        c->want_starttls = 1;
        return 0;
    case K_AUTH:
    case K_LOGIN:
        if (!ok) {
            set_error(c, SATCHEL_E_AUTH, "login refused", r->text, r->text_len);
            c->failed = 1;
            c->ph = PH_CLOSED;
            if (c->job != J_NONE)
                c->job = J_DONE;
            return SATCHEL_E_AUTH;
        }
        c->caps_known = 0;
        if (r->code && satchel_imap_arg_is(r->code, "CAPABILITY"))
            read_caps(c, r->code->next);
        if (!c->caps_known) {
            c->ph = PH_AUTHED;
            return simple_cmd(c, K_CAPABILITY, "CAPABILITY");
        }
        return start_authenticated(c);
    case K_ENABLE:
        if (!ok)
            c->qresync_on = 0;
        return 0;
    case K_LIST:
        if (!ok) {
            set_error(c, SATCHEL_E_SERVER, "LIST failed", r->text, r->text_len);
            return fail(c, SATCHEL_E_SERVER, c->err_text);
        }
        if ((rc = list_done(c)) < 0)
            return rc;
        c->job = J_NEXT_FOLDER;
        /* (cursor: "" for a new job, the last finished folder on resume) */
        return job_advance(c);
    case K_SELECT:
        if (c->job == J_BODY_SELECT) {
            if (!ok) {
                set_error(c, SATCHEL_E_NOTFOUND, "cannot open folder", r->text,
                          r->text_len);
                return fail(c, SATCHEL_E_NOTFOUND, c->err_text);
            }
            c->job = J_BODY_FETCH;
            return body_pump(c);
        }
        if (!ok) {
            char text[160];
            size_t n = r->text_len < sizeof text - 1 ? r->text_len : sizeof text - 1;
            memcpy(text, r->text, n);
            text[n] = '\0';
            if (c->txn) {
                satchel_store_abort(c->txn);
                c->txn = NULL;
            }
            folder_event(c, SATCHEL_EV_FOLDER_ERROR, SATCHEL_E_SERVER, text);
            c->job = J_NEXT_FOLDER;
            return job_advance(c);
        }
        if ((rc = after_select(c)) < 0)
            return rc;
        if (c->job == J_NEXT_FOLDER)
            return job_advance(c);
        return 0;
    case K_CHANGED:
    case K_RECONCILE:
    case K_NEWUIDS:
        if (!ok) {
            c->fs.incomplete = 1;
            if (kind == K_RECONCILE)
                c->fs.reconcile_unsorted = 1;
        }
        if (count_inflight(c, K_CHANGED) + count_inflight(c, K_RECONCILE) +
                count_inflight(c, K_NEWUIDS) == 0) {
            if ((rc = after_follow(c)) < 0)
                return rc;
            if (c->job == J_NEXT_FOLDER)
                return job_advance(c);
        }
        return 0;
    case K_BLOCK:
        if (!ok || c->fs.reconcile_unsorted) {
            c->fs.incomplete = 1;
        } else if (c->fs.merge_last < c->fs.maxp) {
            /* Kept messages the server no longer lists above the last one
             * it did: expunged meanwhile. */
            uint32_t n = 0;
            if ((rc = txn(c)) < 0)
                return rc;
            if (satchel_store_msg_del_server_range(c->txn, &c->fs.f, c->fs.merge_last + 1,
                                                   c->fs.maxp, &n) < 0)
                return fail(c, SATCHEL_E_STORE, "cannot delete expunged messages");
            c->fs.n_vanished += n;
        }
        if (count_inflight(c, K_RESUME) == 0 && c->job == J_WINDOWS && !c->fs.rnext_hi) {
            if ((rc = finish_folder(c)) < 0)
                return rc;
            return job_advance(c);
        }
        return 0;
    case K_RESUME:
        if (!ok)
            c->fs.incomplete = 1;
        {
            int was_upward = c->fs.upward;
            c->fs.upward = 0;
            if ((win_done(c, (uint32_t)(arg >> 32), (uint32_t)arg) || was_upward) &&
                (rc = commit(c, 1)) < 0)
                return rc;
        }
        while (ok && c->fs.rnext_hi && count_inflight(c, K_RESUME) < WINDOWS_IN_FLIGHT) {
            struct folder_sync *fs = &c->fs;
            uint32_t hi = fs->rnext_hi, lo;
            lo = hi - fs->f.uidnext + 1 > fs->rwidth ? hi - fs->rwidth + 1 : fs->f.uidnext;
            fs->rnext_hi = lo > fs->f.uidnext ? lo - 1 : 0;
            if (fs->rwidth < (1u << 24))
                fs->rwidth *= 2; /* sparse UIDs: fewer, wider windows */
            if ((rc = resume_fetch(c, lo, hi)) < 0)
                return rc;
        }
        if (count_inflight(c, K_RESUME) == 0 && count_inflight(c, K_BLOCK) == 0) {
            if ((rc = finish_folder(c)) < 0)
                return rc;
            return job_advance(c);
        }
        return 0;
    case K_WINDOW:
        if (!ok)
            c->fs.incomplete = 1;
        if (win_done(c, (uint32_t)(arg >> 32), (uint32_t)arg) && (rc = commit(c, 1)) < 0)
            return rc;
        if (ok && c->fs.win_next_hi >= c->fs.win_lo && c->fs.win_next_hi > 0) {
            if ((rc = send_window(c)) < 0)
                return fail(c, rc, "command buffer overflow");
            return 0;
        }
        if (count_inflight(c, K_WINDOW) == 0) {
            if ((rc = finish_folder(c)) < 0)
                return rc;
            return job_advance(c);
        }
        return 0;
    case K_BODYFETCH:
        return body_tagged(c, ok, r);
    case K_CREATE:
    case K_RSELECT:
    case K_RCHECK:
    case K_RCMD:
    case K_RVSELECT:
    case K_RVSEARCH:
        return replay_tagged(c, kind, arg, ok, r);
    case K_LOGOUT:
        c->ph = PH_CLOSED;
        return 0;
    default:
        return 0;
    }
}

static int on_response(satchel_client *c, const satchel_imap_resp *r)
{
    if (r->kind == SATCHEL_RESP_CONTINUE) {
        /* Only AUTHENTICATE without SASL-IR asks to continue. */
        if (count_inflight(c, K_AUTH) && !(c->caps & SATCHEL_CAP_SASL_IR)) {
            uint8_t raw[MAX_USER + MAX_PASS + 2];
            char b64[((MAX_USER + MAX_PASS + 2) / 3 + 1) * 4 + 1];
            size_t ul = strlen(c->user), pl = strlen(c->pass);
            int rc;
            raw[0] = 0;
            memcpy(raw + 1, c->user, ul);
            raw[1 + ul] = 0;
            memcpy(raw + 2 + ul, c->pass, pl);
            base64_encode(raw, ul + pl + 2, b64);
            rc = out_str(c, b64);
            if (rc == 0)
                rc = out_str(c, "\r\n");
            wipe(raw, sizeof raw);
            wipe(b64, sizeof b64);
            return rc < 0 ? fail(c, rc, "command buffer overflow") : 0;
        }
        return fail(c, SATCHEL_E_PROTO, "unexpected continuation request");
    }
    if (r->kind == SATCHEL_RESP_TAGGED)
        return on_tagged(c, r);

    if (c->ph == PH_GREETING) {
        if (r->status == SATCHEL_STATUS_OK) {
            if (r->code && satchel_imap_arg_is(r->code, "CAPABILITY"))
                read_caps(c, r->code->next);
            c->ph = PH_PREAUTH;
            return preauth_advance(c);
        }
        if (r->status == SATCHEL_STATUS_PREAUTH) {
            if (!c->tls_active && c->security != SATCHEL_SECURITY_NONE)
                return fail(c, SATCHEL_E_SECURITY,
                            "PREAUTH on an unencrypted connection refused");
            c->caps_known = 0;
            if (r->code && satchel_imap_arg_is(r->code, "CAPABILITY"))
                read_caps(c, r->code->next);
            if (!c->caps_known) {
                c->ph = PH_AUTHED;
                return simple_cmd(c, K_CAPABILITY, "CAPABILITY");
            }
            return start_authenticated(c);
        }
        if (r->status == SATCHEL_STATUS_BYE) {
            set_error(c, SATCHEL_E_IO, "server refused the connection", r->text,
                      r->text_len);
            return fail(c, SATCHEL_E_IO, c->err_text);
        }
        return fail(c, SATCHEL_E_PROTO, "malformed greeting");
    }
    return on_untagged(c, r);
}

/* ---------- public API ---------- */

int satchel_client_new(const satchel_allocator *alloc,
                       const satchel_client_config *cfg, satchel_store *store,
                       satchel_client **out)
{
    satchel_client *c;
    int rc;
    *out = NULL;
    if (!alloc)
        alloc = satchel_allocator_default();
    if (!cfg || !store || !cfg->user || !cfg->password ||
        strlen(cfg->user) >= MAX_USER || strlen(cfg->password) >= MAX_PASS ||
        cfg->user[0] == '\0')
        return SATCHEL_E_INVAL;
    c = alloc->alloc(alloc->ctx, sizeof *c);
    if (!c)
        return SATCHEL_E_NOMEM;
    memset(c, 0, sizeof *c);
    c->alloc = alloc;
    c->store = store;
    c->security = cfg->security;
    c->fetch_window = cfg->fetch_window ? cfg->fetch_window : SATCHEL_OPT_FETCH_WINDOW;
    c->timeout_ms = cfg->timeout_ms ? cfg->timeout_ms : SATCHEL_OPT_TIMEOUT_MS;
    c->disable_caps = cfg->disable_caps;
    memcpy(c->user, cfg->user, strlen(cfg->user) + 1);
    memcpy(c->pass, cfg->password, strlen(cfg->password) + 1);
    rc = satchel_imap_parser_new(alloc, NULL, &c->parser);
    if (rc < 0) {
        wipe(c->pass, sizeof c->pass);
        alloc->free(alloc->ctx, c, sizeof *c);
        return rc;
    }
    satchel_imap_parser_set_sink(c->parser, body_sink, c);
    c->ph = PH_DOWN;
    *out = c;
    return 0;
}

void satchel_client_free(satchel_client *c)
{
    if (!c)
        return;
    if (c->txn)
        satchel_store_abort(c->txn);
    satchel_imap_parser_free(c->parser);
    wipe(c->pass, sizeof c->pass);
    wipe(c->out, sizeof c->out);
    c->alloc->free(c->alloc->ctx, c, sizeof *c);
}

void satchel_client_set_event_cb(satchel_client *c, satchel_event_cb cb,
                                 void *ctx)
{
    c->ev_cb = cb;
    c->ev_ctx = ctx;
}

int satchel_client_connected(satchel_client *c, uint64_t now_ms, int tls_active)
{
    if (c->txn) {
        satchel_store_abort(c->txn);
        c->txn = NULL;
    }
    satchel_imap_parser_reset(c->parser);
    c->ph = PH_GREETING;
    c->tls_active = tls_active;
    c->caps_known = 0;
    c->caps = 0;
    c->qresync_on = 0;
    c->want_starttls = 0;
    c->auth_sent = 0;
    c->authed_started = 0;
    c->failed = 0;
    c->n_inflight = 0;
    c->out_len = c->out_off = 0;
    c->now = c->last_activity = now_ms;
    /* Waiting for the greeting is the first round trip. */
    c->ctr.round_trips++;
    /* A job interrupted by a lost connection resumes; what it committed
     * stays committed (a body from its last chunk, a sync from the last
     * completed folder and window). */
    if (c->interrupted || (c->job != J_NONE && c->job != J_DONE)) {
        c->interrupted = 0;
        c->job_rc = 0;
        c->err_text[0] = '\0';
        c->job = c->job_kind == 2 ? J_BODY_SELECT : J_QUEUED;
        c->resuming = 1;
        /* A window that did not fit in the connection: smaller ones may. */
        if (c->window_cut && c->fetch_window > 16)
            c->fetch_window /= 2;
        c->window_cut = 0;
    }
    if (c->job == J_BODY_FETCH || c->job == J_BODY_SELECT) {
        satchel_body_info bi;
        c->job = J_BODY_SELECT;
        c->body.written = c->body.chunk_len = 0;
        c->body.done = c->body.retry = c->body.seen = 0;
        if (satchel_store_body_info(c->store, NULL, c->body.fid, c->body.uid,
                                    c->body.section, &bi) == 0)
            c->body.committed = bi.stored;
        c->body.next_req = c->body.committed;
    } else if (c->job != J_NONE && c->job != J_DONE) {
        c->job = J_QUEUED;
        c->want_replay = 1;
    }
    return 0;
}

int satchel_client_recv(satchel_client *c, const uint8_t *data, size_t len,
                        uint64_t now_ms)
{
    c->now = now_ms;
    while (len > 0) {
        const satchel_imap_resp *r;
        size_t used = 0;
        int rc;
        if (c->ph == PH_CLOSED || c->ph == PH_DOWN)
            return c->failed ? c->job_rc : 0;
        if (c->ph == PH_TLS) {
            /* Bytes after "OK Begin TLS" but before the handshake were sent
             * in the clear by someone: never act on them. */
            c->ctr.bytes_in += len;
            return 0;
        }
        rc = satchel_imap_parser_feed(c->parser, data, len, &used, &r);
        c->ctr.bytes_in += used;
        data += used;
        len -= used;
        c->last_activity = now_ms;
        if (rc < 0) {
            set_error(c, rc, "malformed server response",
                      satchel_imap_parser_error(c->parser),
                      strlen(satchel_imap_parser_error(c->parser)));
            fail(c, rc, c->err_text);
            return rc;
        }
        if (rc == 1) {
            rc = on_response(c, r);
            if (rc < 0 && SATCHEL_ERR_IS_FATAL(rc))
                return rc;
            if (c->failed)
                return c->job_rc ? c->job_rc : rc;
        }
    }
    return 0;
}

void satchel_client_closed(satchel_client *c, int err)
{
    if (c->ph == PH_LOGOUT || (c->ph == PH_CLOSED && !c->failed &&
                               c->job != J_QUEUED && c->n_inflight == 0)) {
        c->ph = PH_DOWN;
        return;
    }
    if (!c->failed)
        fail(c, err < 0 ? err : SATCHEL_E_IO,
             "connection closed by the server");
    c->ph = PH_DOWN;
}

size_t satchel_client_pending(satchel_client *c, const uint8_t **data)
{
    *data = c->out + c->out_off;
    return c->out_len - c->out_off;
}

void satchel_client_sent(satchel_client *c, size_t n)
{
    if (n > c->out_len - c->out_off)
        n = c->out_len - c->out_off;
    c->out_off += n;
    c->ctr.bytes_out += n;
    if (c->out_off == c->out_len) {
        wipe(c->out, c->out_len); /* may have held credentials */
        c->out_off = c->out_len = 0;
    }
}

int satchel_client_starttls_done(satchel_client *c)
{
    if (c->ph != PH_TLS)
        return SATCHEL_E_INVAL;
    satchel_imap_parser_reset(c->parser);
    c->want_starttls = 0;
    c->tls_active = 1;
    c->caps_known = 0; /* RFC 9051 6.2.1: capabilities before TLS are void */
    c->caps = 0;
    c->ph = PH_PREAUTH;
    return preauth_advance(c);
}

int satchel_client_want(const satchel_client *c)
{
    int w = 0;
    if (c->out_len > c->out_off)
        w |= SATCHEL_WANT_WRITE;
    if (c->want_starttls && c->out_len == c->out_off)
        return SATCHEL_WANT_STARTTLS;
    if (c->ph == PH_CLOSED || c->ph == PH_DOWN)
        return w ? w : SATCHEL_WANT_CLOSE;
    return w | SATCHEL_WANT_READ;
}

int satchel_client_tick(satchel_client *c, uint64_t now_ms)
{
    c->now = now_ms;
    if ((c->n_inflight || c->ph == PH_GREETING) &&
        now_ms - c->last_activity > c->timeout_ms)
        return fail(c, SATCHEL_E_TIMEOUT, "server did not answer in time");
    return 0;
}

uint32_t satchel_client_next_timeout(const satchel_client *c, uint64_t now_ms)
{
    uint64_t due;
    if (!(c->n_inflight || c->ph == PH_GREETING))
        return UINT32_MAX;
    due = c->last_activity + c->timeout_ms;
    return due > now_ms ? (uint32_t)(due - now_ms) : 0;
}

int satchel_client_sync(satchel_client *c, const char *folder)
{
    if (c->job != J_NONE && c->job != J_DONE)
        return SATCHEL_E_BUSY;
    if (folder && (strlen(folder) == 0 || strlen(folder) > SATCHEL_OPT_MAX_FOLDER_NAME))
        return SATCHEL_E_INVAL;
    c->job = J_QUEUED;
    c->job_kind = 1;
    c->interrupted = 0;
    c->resuming = 0;
    c->done_cursor[0] = '\0';
    c->want_replay = 1;
    memset(&c->rp, 0, sizeof c->rp);
    c->job_rc = 0;
    c->err_text[0] = '\0';
    c->job_all = folder == NULL;
    if (folder)
        memcpy(c->job_folder, folder, strlen(folder) + 1);
    else
        c->job_folder[0] = '\0';
    return job_advance(c);
}

int satchel_client_fetch_body(satchel_client *c, const char *folder,
                              uint32_t uid, const char *section,
                              uint64_t expected)
{
    satchel_folder f;
    satchel_body_info bi;
    int rc;
    if (c->job != J_NONE && c->job != J_DONE)
        return SATCHEL_E_BUSY;
    if (!folder || !section || uid == 0 || strlen(section) >= SATCHEL_SECTION_MAX ||
        strlen(folder) > SATCHEL_OPT_MAX_FOLDER_NAME)
        return SATCHEL_E_INVAL;
    if ((rc = satchel_store_folder_get(c->store, NULL, folder, &f)) < 0)
        return rc;
    memset(&c->body, 0, sizeof c->body);
    c->body.fid = f.id;
    c->body.uid = uid;
    memcpy(c->body.section, section, strlen(section) + 1);
    c->body.expected = expected;
    rc = satchel_store_body_info(c->store, NULL, f.id, uid, section, &bi);
    if (rc == 0) {
        if (bi.complete)
            return 0; /* nothing to do */
        c->body.committed = bi.stored; /* resume after the last chunk */
    } else if (rc != SATCHEL_E_NOTFOUND) {
        return rc;
    }
    c->body.next_req = c->body.committed;
    memcpy(c->job_folder, folder, strlen(folder) + 1);
    c->job_all = 0;
    c->job_rc = 0;
    c->err_text[0] = '\0';
    c->job_kind = 2;
    c->interrupted = 0;
    c->job = J_BODY_SELECT;
    return job_advance(c);
}

int satchel_client_interrupted(const satchel_client *c)
{
    return c->interrupted;
}

int satchel_client_idle(const satchel_client *c)
{
    return c->ph == PH_AUTHED && c->n_inflight == 0 &&
           (c->job == J_NONE || c->job == J_DONE);
}

int satchel_client_logout(satchel_client *c)
{
    int rc;
    if (c->ph != PH_AUTHED && c->ph != PH_PREAUTH)
        return SATCHEL_E_INVAL;
    rc = simple_cmd(c, K_LOGOUT, "LOGOUT");
    if (rc == 0)
        c->ph = PH_LOGOUT;
    return rc;
}

int satchel_client_result(const satchel_client *c)
{
    return c->job_rc;
}

const char *satchel_client_error_text(const satchel_client *c)
{
    return c->err_text[0] ? c->err_text : satchel_strerror(c->job_rc);
}

void satchel_client_get_counters(const satchel_client *c, satchel_counters *out)
{
    *out = c->ctr;
}

void satchel_client_replay_counts(const satchel_client *c, uint32_t *done,
                                  uint32_t *failed)
{
    *done = c->rp.done;
    *failed = c->rp.failed;
}

uint32_t satchel_client_caps(const satchel_client *c)
{
    return c->caps;
}

int satchel_client_tls_active(const satchel_client *c)
{
    return c->tls_active;
}

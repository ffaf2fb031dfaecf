/* The command writer: tags, commands and their arguments into the output
 * buffer, and the table of commands in flight. */
#include "client_internal.h"

#include <string.h>

/* Commands are written whole or not at all.  cl_cmd_begin opens one (tag,
 * entry in the in-flight table) and remembers where it starts; any piece
 * that does not fit takes the whole command back out, so the wire never
 * sees half a command.  The caller gets SATCHEL_E_AGAIN when the command
 * fits once the output drains (a job then sends it from its pump), and
 * SATCHEL_E_RANGE when it could never fit.
 *
 * A synchronizing literal (no LITERAL+, or LITERAL- and more than 4,096
 * bytes) is a hold: satchel_client_pending hands out bytes only up to the
 * end of the literal's "{n}\r\n" until the server's "+" releases it.
 * Everything queued behind it waits with it; a tagged answer instead of
 * "+" drops the rest of that command. */

static void cmd_abort(satchel_client *c)
{
    struct cl_conn *k = &c->conn;
    if (!k->cmd_open)
        return;
    k->out_len = k->cmd_start;
    k->n_holds = k->cmd_holds;
    k->n_inflight--;
    c->next_tag--;
    c->ctr.commands--;
    k->last_activity = k->cmd_activity;
    k->cmd_open = 0;
}

/* Move unsent bytes to the front: sent ones are dead. */
static void compact(struct cl_conn *k)
{
    size_t off = k->out_off;
    uint32_t i;
    if (off == 0)
        return;
    memmove(k->out, k->out + off, k->out_len - off);
    k->out_len -= off;
    k->out_off = 0;
    if (k->cmd_open)
        k->cmd_start -= off;
    for (i = 0; i < k->n_holds; i++) {
        k->holds[i].pos -= off;
        k->holds[i].end -= off;
    }
}

int cl_out_put(satchel_client *c, const void *p, size_t n)
{
    struct cl_conn *k = &c->conn;
    if (!k->cmd_open)
        return SATCHEL_E_INTERNAL; /* bytes outside a command */
    if (n > sizeof k->out - k->out_len) {
        compact(k);
        if (n > sizeof k->out - k->out_len) {
            int never = k->out_len - k->cmd_start + n > sizeof k->out;
            cmd_abort(c);
            return never ? SATCHEL_E_RANGE : SATCHEL_E_AGAIN;
        }
    }
    memcpy(k->out + k->out_len, p, n);
    k->out_len += n;
    return 0;
}

int cl_out_str(satchel_client *c, const char *s)
{
    return cl_out_put(c, s, strlen(s));
}

int cl_out_u64(satchel_client *c, uint64_t v)
{
    char b[24];
    size_t n = sizeof b;
    do {
        b[--n] = (char)('0' + v % 10u);
        v /= 10u;
    } while (v);
    return cl_out_put(c, b + n, sizeof b - n);
}

/* RFC 9051 ASTRING-CHAR less "]", so that no server mistakes it for the
 * end of a response code. */
static int atom_char(unsigned char ch)
{
    return ch > 0x20 && ch < 0x7f && ch != '(' && ch != ')' && ch != '{' &&
           ch != '%' && ch != '*' && ch != '"' && ch != '\\' && ch != ']';
}

/* A string as the fewest bytes its content allows: an atom, a quoted
 * string, or a literal when it holds CR, LF, NUL or 8-bit bytes.  The
 * whole command, literal included, must fit the output buffer: a longer
 * one gets SATCHEL_E_RANGE (folder names, credentials and Message-IDs are
 * bounded far below it; a message to APPEND would need its literal
 * streamed from the store, which this writer does not do yet). */
int cl_out_nstring(satchel_client *c, const char *s, size_t n)
{
    struct cl_conn *k = &c->conn;
    size_t i;
    int atom = n > 0, quoted = 1, rc;
    for (i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (!atom_char(ch))
            atom = 0;
        /* After UTF8=ACCEPT a quoted string may carry UTF-8 (RFC 6855). */
        if (ch == '\r' || ch == '\n' || ch == 0 || (ch >= 0x80 && !k->utf8_on))
            quoted = 0;
    }
    /* NIL would read as nothing where a string is optional. */
    if (atom && satchel_ascii_ieq(s, n, "NIL"))
        atom = 0;
    if (atom)
        return cl_out_put(c, s, n);
    if (quoted) {
        if ((rc = cl_out_put(c, "\"", 1)) < 0)
            return rc;
        for (i = 0; i < n; i++) {
            if ((s[i] == '"' || s[i] == '\\') && (rc = cl_out_put(c, "\\", 1)) < 0)
                return rc;
            if ((rc = cl_out_put(c, s + i, 1)) < 0)
                return rc;
        }
        return cl_out_put(c, "\"", 1);
    }
    {
        /* RFC 7888: LITERAL+ for any size, LITERAL- up to 4,096 bytes. */
        int plus = (k->caps & SATCHEL_CAP_LITERAL_PLUS) ||
                   ((k->caps & SATCHEL_CAP_LITERAL_MINUS) && n <= 4096);
        if ((rc = cl_out_str(c, "{")) < 0 || (rc = cl_out_u64(c, n)) < 0 ||
            (rc = cl_out_str(c, plus ? "+}\r\n" : "}\r\n")) < 0)
            return rc;
        if (!plus) {
            if (k->n_holds >= CL_MAX_HOLDS) {
                int never = k->cmd_holds == 0; /* all of them this command's */
                cmd_abort(c);
                return never ? SATCHEL_E_RANGE : SATCHEL_E_AGAIN;
            }
            k->holds[k->n_holds].pos = k->out_len;
            k->holds[k->n_holds].end = 0;
            k->holds[k->n_holds].tag = c->next_tag;
            k->n_holds++;
        }
        return cl_out_put(c, s, n);
    }
}

int cl_out_astring(satchel_client *c, const char *s)
{
    return cl_out_nstring(c, s, strlen(s));
}

int cl_out_mailbox(satchel_client *c, const char *name)
{
    satchel_folder *f = &c->name_scratch;
    int rc;
    if (c->conn.utf8_on)
        return cl_out_astring(c, name);
    if (satchel_store_folder_get(c->store, c->txn, name, f) == 0 &&
        (f->flags & SATCHEL_FOLDER_VERBATIM))
        return cl_out_astring(c, name);
    rc = satchel_mutf7_encode(name, strlen(name), c->wire_name, sizeof c->wire_name,
                              NULL, NULL);
    if (rc == SATCHEL_E_INVAL)
        return cl_out_astring(c, name); /* not UTF-8: stored as it came */
    if (rc < 0) {
        cl_cmd_cancel(c); /* never half a command */
        return rc;
    }
    return cl_out_astring(c, c->wire_name);
}

/* Start a command: writes the tag.  Round trips are counted when its bytes
 * leave (satchel_client_sent), not here: the answer to an earlier command may
 * still sit unparsed in the bytes being fed. */
int cl_cmd_begin(satchel_client *c, uint8_t kind)
{
    struct cl_conn *k = &c->conn;
    if (k->cmd_open)
        return SATCHEL_E_INTERNAL;
    if (k->n_inflight >= MAX_INFLIGHT)
        return SATCHEL_E_AGAIN;
    if (k->out_off > 0 && k->out_off == k->out_len)
        k->out_off = k->out_len = 0;
    k->cmd_open = 1;
    k->cmd_start = k->out_len;
    k->cmd_holds = k->n_holds;
    k->cmd_activity = k->last_activity;
    c->ctr.commands++;
    c->next_tag++;
    k->inflight[k->n_inflight].tag = c->next_tag;
    k->inflight[k->n_inflight].kind = kind;
    k->inflight[k->n_inflight].arg = 0;
    k->inflight[k->n_inflight].at = k->out_sent + (k->out_len - k->out_off);
    k->n_inflight++;
    if (k->n_inflight == 1)
        k->last_activity = c->now;
    {
        int rc;
        if ((rc = cl_out_str(c, "S")) < 0 || (rc = cl_out_u64(c, c->next_tag)) < 0 ||
            (rc = cl_out_str(c, " ")) < 0)
            return rc;
    }
    return 0;
}

/* The command being written carries arg in its in-flight entry. */
void cl_cmd_arg(satchel_client *c, uint64_t arg)
{
    if (c->conn.n_inflight)
        c->conn.inflight[c->conn.n_inflight - 1].arg = arg;
}

int cl_cmd_end(satchel_client *c)
{
    struct cl_conn *k = &c->conn;
    uint32_t i;
    int rc = cl_out_str(c, "\r\n");
    if (rc < 0)
        return rc;
    for (i = k->cmd_holds; i < k->n_holds; i++)
        k->holds[i].end = k->out_len;
    k->cmd_open = 0;
    return 0;
}

/* A caller that gives up on a command it began (an argument it cannot
 * express) takes it back whole. */
void cl_cmd_cancel(satchel_client *c)
{
    cmd_abort(c);
}

/* The one place a SELECT is written: plain, with (CONDSTORE), or with
 * (QRESYNC (uidvalidity modseq)) when uidvalidity is not 0.  Returns 0 or
 * the command writer's error; callers fail the connection with "cannot
 * send SELECT". */
int cl_select(satchel_client *c, uint8_t kind, const char *mailbox, uint32_t uidvalidity,
              uint64_t modseq, int condstore)
{
    int rc;
    if ((rc = cl_cmd_begin(c, kind)) < 0 || (rc = cl_out_str(c, "SELECT ")) < 0 ||
        (rc = cl_out_mailbox(c, mailbox)) < 0)
        return rc;
    if (uidvalidity) {
        if ((rc = cl_out_str(c, " (QRESYNC (")) < 0 || (rc = cl_out_u64(c, uidvalidity)) < 0 ||
            (rc = cl_out_str(c, " ")) < 0 || (rc = cl_out_u64(c, modseq)) < 0 ||
            (rc = cl_out_str(c, "))")) < 0)
            return rc;
    } else if (condstore && (rc = cl_out_str(c, " (CONDSTORE)")) < 0) {
        return rc;
    }
    return cl_cmd_end(c);
}

int cl_simple_cmd(satchel_client *c, uint8_t kind, const char *text)
{
    int rc;
    if ((rc = cl_cmd_begin(c, kind)) < 0 || (rc = cl_out_str(c, text)) < 0)
        return rc;
    return cl_cmd_end(c);
}

/* Continuation data the server asked for with "+" (AUTHENTICATE without
 * SASL-IR): a line outside any command, written whole or not at all. */
int cl_out_continuation(satchel_client *c, const char *line)
{
    struct cl_conn *k = &c->conn;
    size_t n = strlen(line);
    if (k->cmd_open)
        return SATCHEL_E_INTERNAL;
    if (n + 2 > sizeof k->out - k->out_len) {
        compact(k);
        if (n + 2 > sizeof k->out - k->out_len)
            return SATCHEL_E_AGAIN;
    }
    memcpy(k->out + k->out_len, line, n);
    memcpy(k->out + k->out_len + n, "\r\n", 2);
    k->out_len += n + 2;
    return 0;
}

/* Bytes the port may send now: up to the first hold. */
size_t cl_out_ready(const satchel_client *c)
{
    const struct cl_conn *k = &c->conn;
    size_t end = k->n_holds ? k->holds[0].pos : k->out_len;
    return end > k->out_off ? end - k->out_off : 0;
}

/* A "+" continuation: releases the oldest hold when its "{n}" is on the
 * wire.  Returns 1 when it did, 0 when there is no hold for it. */
int cl_hold_release(satchel_client *c)
{
    struct cl_conn *k = &c->conn;
    uint32_t i;
    if (k->n_holds == 0 || k->out_off < k->holds[0].pos)
        return 0;
    for (i = 0; i + 1 < k->n_holds; i++)
        k->holds[i] = k->holds[i + 1];
    k->n_holds--;
    return 1; /* (the wait is a round trip: cont_seen counts it) */
}

/* The server answered tag: a literal of that command still held back was
 * refused, so the rest of the command never goes out. */
void cl_hold_drop(satchel_client *c, uint32_t tag)
{
    struct cl_conn *k = &c->conn;
    uint32_t i, j;
    size_t pos, end, cut;
    for (i = 0; i < k->n_holds && k->holds[i].tag != tag; i++)
        ;
    if (i == k->n_holds)
        return;
    pos = k->holds[i].pos;
    end = k->holds[i].end;
    cut = end - pos;
    memmove(k->out + pos, k->out + end, k->out_len - end);
    k->out_len -= cut;
    /* Commands behind it now start earlier in the connection's output. */
    for (j = 0; j < k->n_inflight; j++)
        if (k->inflight[j].at >= k->out_sent + (end - k->out_off))
            k->inflight[j].at -= cut;
    for (j = i; j < k->n_holds; j++)
        if (k->holds[j].tag != tag) {
            k->holds[i] = k->holds[j];
            k->holds[i].pos -= cut;
            k->holds[i].end -= cut;
            i++;
        }
    k->n_holds = i;
}

int cl_count_inflight(const satchel_client *c, uint8_t kind)
{
    uint32_t i;
    int n = 0;
    for (i = 0; i < c->conn.n_inflight; i++)
        if (c->conn.inflight[i].kind == kind)
            n++;
    return n;
}

void cl_remove_inflight(satchel_client *c, uint32_t i)
{
    for (; i + 1 < c->conn.n_inflight; i++)
        c->conn.inflight[i] = c->conn.inflight[i + 1];
    c->conn.n_inflight--;
}

int cl_out_uidset(satchel_client *c, const uint32_t *uids, uint32_t n)
{
    uint32_t i = 0;
    int rc;
    /* uids are ascending; write ranges. */
    while (i < n) {
        uint32_t j = i;
        while (j + 1 < n && uids[j + 1] == uids[j] + 1)
            j++;
        if (i && (rc = cl_out_str(c, ",")) < 0)
            return rc;
        if ((rc = cl_out_u64(c, uids[i])) < 0)
            return rc;
        if (j > i && ((rc = cl_out_str(c, ":")) < 0 || (rc = cl_out_u64(c, uids[j])) < 0))
            return rc;
        i = j + 1;
    }
    return 0;
}

int cl_out_flags(satchel_client *c, uint32_t bits, const char *kw)
{
    int first = 1, rc;
    unsigned i;
    if ((rc = cl_out_str(c, "(")) < 0)
        return rc;
    for (i = 0; i < SATCHEL_FLAG_COUNT; i++) {
        if (bits & (1u << i)) {
            if ((!first && (rc = cl_out_str(c, " ")) < 0) ||
                (rc = cl_out_str(c, satchel_flag_name(i))) < 0)
                return rc;
            first = 0;
        }
    }
    if (*kw) {
        if ((!first && (rc = cl_out_str(c, " ")) < 0) || (rc = cl_out_str(c, kw)) < 0)
            return rc;
    }
    return cl_out_str(c, ")");
}


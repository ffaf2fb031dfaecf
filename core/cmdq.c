/* The command writer: tags, commands and their arguments into the output
 * buffer, and the table of commands in flight. */
#include "client_internal.h"

#include <string.h>

int cl_out_put(satchel_client *c, const void *p, size_t n)
{
    if (c->conn.out_off > 0 && c->conn.out_off == c->conn.out_len) {
        c->conn.out_off = 0;
        c->conn.out_len = 0;
    }
    if (n > sizeof c->conn.out - c->conn.out_len) {
        /* Compact before giving up: sent bytes are dead. */
        memmove(c->conn.out, c->conn.out + c->conn.out_off, c->conn.out_len - c->conn.out_off);
        c->conn.out_len -= c->conn.out_off;
        c->conn.out_off = 0;
        if (n > sizeof c->conn.out - c->conn.out_len)
            return SATCHEL_E_RANGE;
    }
    memcpy(c->conn.out + c->conn.out_len, p, n);
    c->conn.out_len += n;
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

/* Folder names and other strings as IMAP quoted strings.  Names with bytes
 * a quoted string cannot carry go as a non-synchronizing literal when the
 * server allows one; otherwise the caller gets SATCHEL_E_NOTSUP. */
int cl_out_astring(satchel_client *c, const char *s)
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
        if (!(c->conn.caps & (SATCHEL_CAP_LITERAL_PLUS | SATCHEL_CAP_LITERAL_MINUS)))
            return SATCHEL_E_NOTSUP;
        if ((rc = cl_out_str(c, "{")) < 0 || (rc = cl_out_u64(c, n)) < 0 ||
            (rc = cl_out_str(c, "+}\r\n")) < 0)
            return rc;
        return cl_out_put(c, s, n);
    }
    if (cl_out_put(c, "\"", 1) < 0)
        return SATCHEL_E_RANGE;
    for (i = 0; i < n; i++) {
        if ((s[i] == '"' || s[i] == '\\') && cl_out_put(c, "\\", 1) < 0)
            return SATCHEL_E_RANGE;
        if (cl_out_put(c, s + i, 1) < 0)
            return SATCHEL_E_RANGE;
    }
    return cl_out_put(c, "\"", 1);
}

/* Start a command: writes the tag.  Round trips are counted when its bytes
 * leave (satchel_client_sent), not here: the answer to an earlier command may
 * still sit unparsed in the bytes being fed. */
int cl_cmd_begin(satchel_client *c, uint8_t kind)
{
    int rc;
    if (c->conn.n_inflight >= MAX_INFLIGHT)
        return SATCHEL_E_BUSY;
    c->ctr.commands++;
    c->next_tag++;
    c->conn.inflight[c->conn.n_inflight].tag = c->next_tag;
    c->conn.inflight[c->conn.n_inflight].kind = kind;
    c->conn.inflight[c->conn.n_inflight].arg = 0;
    c->conn.inflight[c->conn.n_inflight].at =
        c->conn.out_sent + (c->conn.out_len - c->conn.out_off);
    c->conn.n_inflight++;
    if (c->conn.n_inflight == 1)
        c->conn.last_activity = c->now;
    if ((rc = cl_out_str(c, "S")) < 0 || (rc = cl_out_u64(c, c->next_tag)) < 0 ||
        (rc = cl_out_str(c, " ")) < 0)
        return rc;
    return 0;
}

int cl_cmd_end(satchel_client *c)
{
    return cl_out_str(c, "\r\n");
}

int cl_simple_cmd(satchel_client *c, uint8_t kind, const char *text)
{
    int rc;
    if ((rc = cl_cmd_begin(c, kind)) < 0 || (rc = cl_out_str(c, text)) < 0)
        return rc;
    return cl_cmd_end(c);
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
    static const char *const names[] = {"\\Seen", "\\Answered", "\\Flagged",
                                        "\\Deleted", "\\Draft"};
    int first = 1, rc, i;
    if ((rc = cl_out_str(c, "(")) < 0)
        return rc;
    for (i = 0; i < 5; i++) {
        if (bits & (1u << i)) {
            if ((!first && (rc = cl_out_str(c, " ")) < 0) ||
                (rc = cl_out_str(c, names[i])) < 0)
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


/* The command writer: tags, commands and their arguments into the output
 * buffer, and the table of commands in flight. */
#include "client_internal.h"

#include <string.h>

/* The command queue, in the manner of nghttp2's outbound items.
 *
 * Writing a command queues its parts; nothing is serialized then.  A part
 * is a tag, raw bytes (the command's own text and numbers), a string (an
 * atom, a quoted string or a literal, as its bytes and the server's
 * capabilities require when it goes out), a mailbox name (encoded when it
 * goes out: see below), or a literal whose bytes a source callback gives
 * as they are needed.  The queue (SATCHEL_OPT_CMDQ bytes) holds complete
 * commands only; cl_out_fill serializes them into the output buffer
 * (SATCHEL_OPT_OUTBUF) as the port drains it, and resumes in the middle of
 * any part, so no command, name or batch has to fit the output buffer and
 * a literal from a source may be of any size.  A command whose parts do
 * not fit the queue is taken back whole: SATCHEL_E_AGAIN when it fits once
 * the queue drains (the job sends it from its pump), SATCHEL_E_RANGE when
 * it could never fit (its parts exceed the whole queue; a literal from a
 * source takes under 32 bytes of it whatever its size).
 *
 * Serializing stops, with everything behind it, at:
 *  - a synchronizing literal (no LITERAL+, and not LITERAL- with at most
 *    4,096 bytes: RFC 7888), after its "{n}\r\n" until the server's "+";
 *    a tagged answer instead of "+" ends that command there, cleanly: the
 *    server has read a whole line and answered it, so the next command
 *    starts a new line;
 *  - a command naming a mailbox whose UTF-8 and modified UTF-7 forms
 *    differ, while an ENABLE UTF8=ACCEPT is unanswered: the name goes out
 *    as UTF-8 only once the server confirmed it (ENABLED and the tagged OK),
 *    and as modified UTF-7 otherwise, never on a guess.  The whole command
 *    waits at its tag, so no half line sits at the server meanwhile.
 * A failure never leaves a partial command on the wire but in one case
 * that does not matter: a connection that fails (cl_fail) drops what is
 * queued and unsent, and a dead connection takes with it whatever part of
 * a command was on its way. */

enum part_type { P_TAG = 1, P_RAW, P_STR, P_MBOX, P_SRC, P_END, P_CONT };
enum str_form { F_NONE, F_ATOM, F_QUOTED, F_LIT, F_SYNC };
#define PART_HDR 3u /* type, then the payload length (16 bits) */

struct src_part {
    cl_src_read read;
    void *ctx;
    uint64_t n;
};

static size_t part_len(const uint8_t *p)
{
    return PART_HDR + ((size_t)p[1] | (size_t)p[2] << 8);
}

static void wipe_bytes(uint8_t *p, size_t n)
{
    volatile uint8_t *v = p;
    while (n--)
        *v++ = 0;
}

static void cmd_abort(satchel_client *c)
{
    struct cl_conn *k = &c->conn;
    if (!k->cmd_open)
        return;
    wipe_bytes(k->q + k->cmd_start, k->q_len - k->cmd_start);
    k->q_len = k->cmd_start;
    k->q_last = UINT32_MAX;
    k->n_inflight--;
    c->next_tag--;
    c->ctr.commands--;
    k->last_activity = k->cmd_activity;
    k->cmd_open = 0;
}

/* Room for n more bytes of the open command (or of a continuation line):
 * what is serialized already leaves the front of the queue. */
static int q_room(satchel_client *c, size_t n, int in_cmd)
{
    struct cl_conn *k = &c->conn;
    size_t off = k->q_head;
    if (k->q_len + n <= sizeof k->q)
        return 0;
    if (off > 0) {
        memmove(k->q, k->q + off, k->q_len - off);
        wipe_bytes(k->q + k->q_len - off, off);
        k->q_head = 0;
        k->q_done -= (uint32_t)off;
        k->q_len -= (uint32_t)off;
        if (k->cmd_open)
            k->cmd_start -= (uint32_t)off;
        if (k->q_last != UINT32_MAX)
            k->q_last -= (uint32_t)off;
    }
    if (k->q_len + n <= sizeof k->q)
        return 0;
    if (!in_cmd)
        return k->q_len - k->q_head + n > sizeof k->q ? SATCHEL_E_RANGE : SATCHEL_E_AGAIN;
    {
        int never = k->q_len - k->cmd_start + n > sizeof k->q;
        cmd_abort(c);
        return never ? SATCHEL_E_RANGE : SATCHEL_E_AGAIN;
    }
}

/* Append a part of the open command; raw bytes join a raw part just
 * before them. */
static int q_part(satchel_client *c, uint8_t type, const void *a, size_t an, const void *b,
                  size_t bn)
{
    struct cl_conn *k = &c->conn;
    size_t n = an + bn;
    int rc;
    if (!k->cmd_open)
        return SATCHEL_E_INTERNAL; /* bytes outside a command */
    if (n > 0xffffu - PART_HDR) {
        cmd_abort(c);
        return SATCHEL_E_RANGE;
    }
    if (type == P_RAW && k->q_last != UINT32_MAX && k->q[k->q_last] == P_RAW &&
        part_len(k->q + k->q_last) + n <= 0xffffu) {
        size_t len;
        if ((rc = q_room(c, n, 1)) < 0)
            return rc;
        len = part_len(k->q + k->q_last) - PART_HDR + n;
        k->q[k->q_last + 1] = (uint8_t)len;
        k->q[k->q_last + 2] = (uint8_t)(len >> 8);
    } else {
        if ((rc = q_room(c, PART_HDR + n, 1)) < 0)
            return rc;
        k->q_last = k->q_len;
        k->q[k->q_len] = type;
        k->q[k->q_len + 1] = (uint8_t)n;
        k->q[k->q_len + 2] = (uint8_t)(n >> 8);
        k->q_len += PART_HDR;
    }
    if (an)
        memcpy(k->q + k->q_len, a, an);
    if (bn)
        memcpy(k->q + k->q_len + an, b, bn);
    k->q_len += (uint32_t)n;
    return 0;
}

int cl_out_put(satchel_client *c, const void *p, size_t n)
{
    return q_part(c, P_RAW, p, n, NULL, 0);
}

int cl_out_str(satchel_client *c, const char *s)
{
    return cl_out_put(c, s, strlen(s));
}

static size_t fmt_u64(char b[24], uint64_t v)
{
    size_t n = 24, i;
    do {
        b[--n] = (char)('0' + v % 10u);
        v /= 10u;
    } while (v);
    for (i = 0; n < 24; i++, n++)
        b[i] = b[n];
    return i;
}

int cl_out_u64(satchel_client *c, uint64_t v)
{
    char b[24];
    return cl_out_put(c, b, fmt_u64(b, v));
}

int cl_out_nstring(satchel_client *c, const char *s, size_t n)
{
    return q_part(c, P_STR, s, n, NULL, 0);
}

int cl_out_astring(satchel_client *c, const char *s)
{
    return cl_out_nstring(c, s, strlen(s));
}

int cl_out_mailbox(satchel_client *c, const char *name)
{
    uint8_t flags = 0, verbatim = 0;
    if (satchel_store_folder_flags(c->store, c->txn, name, &flags) == 0 &&
        (flags & SATCHEL_FOLDER_VERBATIM))
        verbatim = 1;
    return q_part(c, P_MBOX, &verbatim, 1, name, strlen(name));
}

int cl_out_literal_src(satchel_client *c, uint64_t n, cl_src_read read, void *ctx)
{
    struct src_part sp;
    sp.read = read;
    sp.ctx = ctx;
    sp.n = n;
    return q_part(c, P_SRC, &sp, sizeof sp, NULL, 0);
}

/* Start a command: queues its tag.  Round trips are counted when its bytes
 * leave (satchel_client_sent), not here: the answer to an earlier command
 * may still sit unparsed in the bytes being fed. */
int cl_cmd_begin(satchel_client *c, uint8_t kind)
{
    struct cl_conn *k = &c->conn;
    uint8_t tag[4];
    int rc;
    if (k->cmd_open)
        return SATCHEL_E_INTERNAL;
    if (k->n_inflight >= MAX_INFLIGHT)
        return SATCHEL_E_AGAIN;
    k->cmd_open = 1;
    k->cmd_start = k->q_len;
    k->q_last = UINT32_MAX;
    k->cmd_activity = k->last_activity;
    c->ctr.commands++;
    c->next_tag++;
    k->inflight[k->n_inflight].tag = c->next_tag;
    k->inflight[k->n_inflight].kind = kind;
    k->inflight[k->n_inflight].arg = 0;
    k->inflight[k->n_inflight].at = UINT64_MAX; /* not serialized yet */
    k->n_inflight++;
    if (k->n_inflight == 1)
        k->last_activity = c->now;
    tag[0] = (uint8_t)c->next_tag;
    tag[1] = (uint8_t)(c->next_tag >> 8);
    tag[2] = (uint8_t)(c->next_tag >> 16);
    tag[3] = (uint8_t)(c->next_tag >> 24);
    if ((rc = q_part(c, P_TAG, tag, 4, NULL, 0)) < 0)
        return rc;
    k->q_last = UINT32_MAX; /* the tag is no raw part to join */
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
    int rc = q_part(c, P_END, NULL, 0, NULL, 0);
    if (rc < 0)
        return rc;
    k->cmd_open = 0;
    k->q_last = UINT32_MAX;
    k->q_done = k->q_len;
    cl_out_fill(c);
    return 0;
}

/* A caller that gives up on a command it began (an argument it cannot
 * express) takes it back whole. */
void cl_cmd_cancel(satchel_client *c)
{
    cmd_abort(c);
}

/* Continuation data the server asked for with "+" (AUTHENTICATE without
 * SASL-IR): a line outside any command, queued whole or not at all. */
int cl_out_continuation(satchel_client *c, const char *line)
{
    struct cl_conn *k = &c->conn;
    size_t n = strlen(line);
    int rc;
    if (k->cmd_open)
        return SATCHEL_E_INTERNAL;
    if (n > 0xffffu - PART_HDR)
        return SATCHEL_E_RANGE;
    if ((rc = q_room(c, PART_HDR + n, 0)) < 0)
        return rc;
    k->q[k->q_len] = P_CONT;
    k->q[k->q_len + 1] = (uint8_t)n;
    k->q[k->q_len + 2] = (uint8_t)(n >> 8);
    memcpy(k->q + k->q_len + PART_HDR, line, n);
    k->q_len += (uint32_t)(PART_HDR + n);
    k->q_done = k->q_len;
    cl_out_fill(c);
    return 0;
}

/* ---------- serializing ---------- */

/* A part's serialized form is generated from its start every time, and
 * only the bytes from k->s_pos on that fit are kept: that is how a part
 * resumes anywhere without state of its own (parts other than a source's
 * literal data are short; that data is read by offset). */
struct emit {
    uint8_t *dst;
    size_t room, put;
    uint64_t pos;  /* bytes of the form generated so far */
    uint64_t skip; /* already sent */
    uint64_t stop; /* generate nothing from here (a literal's "+") */
};

static void emit(struct emit *e, const void *p, size_t n)
{
    const uint8_t *b = p;
    size_t i;
    for (i = 0; i < n; i++, e->pos++) {
        if (e->pos < e->skip || e->pos >= e->stop || e->put == e->room)
            continue;
        e->dst[e->put++] = b[i];
    }
}

/* RFC 9051 ASTRING-CHAR less "]", so that no server mistakes it for the
 * end of a response code. */
static int atom_char(unsigned char ch)
{
    return ch > 0x20 && ch < 0x7f && ch != '(' && ch != ')' && ch != '{' &&
           ch != '%' && ch != '*' && ch != '"' && ch != '\\' && ch != ']';
}

/* RFC 7888: LITERAL+ for any size, LITERAL- up to 4,096 bytes; else the
 * literal is synchronizing. */
static uint8_t lit_form(const struct cl_conn *k, uint64_t n)
{
    return (k->caps & SATCHEL_CAP_LITERAL_PLUS) ||
                   ((k->caps & SATCHEL_CAP_LITERAL_MINUS) && n <= 4096u)
               ? F_LIT
               : F_SYNC;
}

/* The fewest bytes a string's content allows: an atom, a quoted string,
 * or a literal when it holds CR, LF, NUL, or 8-bit bytes the server has
 * not agreed to take in a quoted string (UTF8=ACCEPT confirmed). */
static uint8_t str_form(const struct cl_conn *k, const uint8_t *s, size_t n)
{
    size_t i;
    int atom = n > 0, quoted = 1;
    for (i = 0; i < n; i++) {
        if (!atom_char(s[i]))
            atom = 0;
        if (s[i] == '\r' || s[i] == '\n' || s[i] == 0 || (s[i] >= 0x80 && !k->utf8_on))
            quoted = 0;
    }
    /* NIL would read as nothing where a string is optional. */
    if (atom && satchel_ascii_ieq((const char *)s, n, "NIL"))
        atom = 0;
    if (atom)
        return F_ATOM;
    if (quoted)
        return F_QUOTED;
    return lit_form(k, n);
}

static size_t lit_header(char h[32], uint64_t n, uint8_t form)
{
    size_t l;
    h[0] = '{';
    l = 1 + fmt_u64(h + 1, n);
    if (form == F_LIT)
        h[l++] = '+';
    memcpy(h + l, "}\r\n", 3);
    return l + 3;
}

/* A string's form: returns the whole form's length. */
static uint64_t gen_string(struct emit *e, const uint8_t *s, size_t n, uint8_t form)
{
    size_t i;
    if (form == F_ATOM) {
        emit(e, s, n);
    } else if (form == F_QUOTED) {
        emit(e, "\"", 1);
        for (i = 0; i < n; i++) {
            if (s[i] == '"' || s[i] == '\\')
                emit(e, "\\", 1);
            emit(e, s + i, 1);
        }
        emit(e, "\"", 1);
    } else {
        char h[32];
        emit(e, h, lit_header(h, n, form));
        emit(e, s, n);
    }
    return e->pos;
}

/* A mailbox name and its wire form differ only for bytes outside
 * printable US-ASCII, and for "&". */
static int name_plain(const uint8_t *s, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        if (s[i] < 0x20 || s[i] > 0x7e || s[i] == '&')
            return 0;
    return 1;
}

/* The command at p (its tag part) names a mailbox that must wait for the
 * answer to ENABLE UTF8=ACCEPT. */
static int waits_for_enable(const struct cl_conn *k, size_t p)
{
    if (!k->utf8_asked)
        return 0;
    for (; p < k->q_done && k->q[p] != P_END; p += part_len(k->q + p))
        if (k->q[p] == P_MBOX && !k->q[p + PART_HDR] &&
            !name_plain(k->q + p + PART_HDR + 1, part_len(k->q + p) - PART_HDR - 1))
            return 1;
    return 0;
}

/* A name whose modified UTF-7 form goes out: an atom, or a quoted string
 * when it holds printable US-ASCII that is no atom character (those bytes
 * pass through the encoding as they are; the rest become atom
 * characters).  It is never NIL: a name that needs encoding is not plain. */
static uint8_t mutf7_form(const uint8_t *s, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        if (s[i] >= 0x20 && s[i] < 0x7f && !atom_char(s[i]) && s[i] != '&')
            return F_QUOTED;
    return F_ATOM;
}

/* The modified UTF-7 form of a name, generated as far as the output has
 * room (it can be five times the name's length: no buffer holds it
 * whole).  It resumes from the encoder state kept at the last code point
 * boundary the wire has already taken, so each byte of the form is
 * encoded about once however slowly the output drains. */
static void gen_mutf7(struct cl_conn *k, struct emit *e, const uint8_t *s, size_t n)
{
    satchel_mutf7_state st = {0, 0, 0, 0, 0};
    char b[SATCHEL_MUTF7_STEP_MAX];
    int m = 1, i;
    if (k->s_m7_ok && k->s_m7_at <= e->skip) {
        st = k->s_m7;
        e->pos = k->s_m7_at;
    } else if (k->s_form == F_QUOTED) {
        emit(e, "\"", 1);
    }
    while (e->put < e->room) {
        /* Every byte before here is on the wire or in out[]: a state the
         * next fill may start from. */
        k->s_m7 = st;
        k->s_m7_at = e->pos;
        k->s_m7_ok = 1;
        m = satchel_mutf7_encode_step((const char *)s, n, &st, b, NULL);
        if (m <= 0)
            break;
        for (i = 0; i < m; i++) {
            if (k->s_form == F_QUOTED && (b[i] == '"' || b[i] == '\\'))
                emit(e, "\\", 1);
            emit(e, b + i, 1);
        }
    }
    if (m == 0 && k->s_form == F_QUOTED)
        emit(e, "\"", 1); /* (dropped, as it should be, when out is full) */
}

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int inflight_index(const struct cl_conn *k, uint32_t tag)
{
    uint32_t i;
    for (i = 0; i < k->n_inflight; i++)
        if (k->inflight[i].tag == tag)
            return (int)i;
    return -1;
}

/* Past the end of the command whose part is at p. */
static size_t cmd_skip(const struct cl_conn *k, size_t p)
{
    while (p < k->q_done && k->q[p] != P_END)
        p += part_len(k->q + p);
    return p < k->q_done ? p + part_len(k->q + p) : p;
}

static void next_part(struct cl_conn *k, size_t to)
{
    k->q_head = (uint32_t)to;
    k->s_pos = 0;
    k->s_form = F_NONE;
    k->s_released = 0;
    k->s_m7_on = 0;
    k->s_m7_ok = 0;
}

void cl_out_fill(satchel_client *c)
{
    struct cl_conn *k = &c->conn;
    if (k->out_off > 0) { /* sent bytes are dead (and may be credentials) */
        memmove(k->out, k->out + k->out_off, k->out_len - k->out_off);
        wipe_bytes(k->out + k->out_len - k->out_off, k->out_off);
        k->out_len -= k->out_off;
        k->out_off = 0;
    }
    if (k->s_wait == CL_WAIT_ENABLE && !k->utf8_asked)
        k->s_wait = 0; /* the answer came: the name's form is known */
    while (!k->s_wait && !k->failed && k->q_head < k->q_done &&
           k->out_len < sizeof k->out) {
        const uint8_t *p = k->q + k->q_head, *s = p + PART_HDR;
        size_t n = part_len(p) - PART_HDR;
        struct emit e;
        uint64_t total = 0;
        e.dst = k->out + k->out_len;
        e.room = sizeof k->out - k->out_len;
        e.put = 0;
        e.pos = 0;
        e.skip = k->s_pos;
        e.stop = UINT64_MAX;
        switch (p[0]) {
        case P_TAG: {
            char b[24];
            uint32_t tag = rd32(s);
            int i = inflight_index(k, tag);
            if (k->s_pos == 0) {
                if (i < 0) { /* answered before it went out: never send it */
                    next_part(k, cmd_skip(k, k->q_head));
                    continue;
                }
                if (waits_for_enable(k, k->q_head)) {
                    k->s_wait = CL_WAIT_ENABLE;
                    break;
                }
                k->inflight[i].at = k->out_sent + k->out_len;
                k->s_tag = tag;
            }
            emit(&e, "S", 1);
            emit(&e, b, fmt_u64(b, tag));
            emit(&e, " ", 1);
            total = e.pos;
            break;
        }
        case P_RAW:
            emit(&e, s, n);
            total = n;
            break;
        case P_END:
            emit(&e, "\r\n", 2);
            total = 2;
            break;
        case P_CONT:
            emit(&e, s, n);
            emit(&e, "\r\n", 2);
            total = e.pos;
            break;
        case P_MBOX:
            /* Modified UTF-7 unless the server confirmed UTF8=ACCEPT, the
             * folder is kept as the server spelled it, the name reads the
             * same both ways, or it is no UTF-8 (stored as it came: sent
             * back the same). */
            if (k->s_form == F_NONE && !s[0] && !k->utf8_on && !name_plain(s + 1, n - 1)) {
                size_t w, i, esc = 0;
                uint64_t t;
                if (satchel_mutf7_encode_window((const char *)s + 1, n - 1, 0, NULL, 0, &w,
                                                &t) == 0) {
                    k->s_form = mutf7_form(s + 1, n - 1);
                    for (i = 1; i < n; i++)
                        esc += k->s_form == F_QUOTED && (s[i] == '"' || s[i] == '\\');
                    k->s_m7_total = t + esc + (k->s_form == F_QUOTED ? 2u : 0u);
                    k->s_m7_on = 1;
                }
            }
            if (k->s_m7_on) {
                gen_mutf7(k, &e, s + 1, n - 1);
                total = k->s_m7_total;
                break;
            }
            s++;
            n--;
            /* fall through */
        case P_STR: {
            char h[32];
            if (k->s_form == F_NONE)
                k->s_form = str_form(k, s, n);
            if (k->s_form == F_SYNC && !k->s_released)
                e.stop = lit_header(h, n, F_SYNC);
            total = gen_string(&e, s, n, k->s_form);
            break;
        }
        case P_SRC: {
            struct src_part sp;
            char h[32];
            size_t hl;
            memcpy(&sp, s, sizeof sp);
            if (k->s_form == F_NONE)
                k->s_form = lit_form(k, sp.n);
            hl = lit_header(h, sp.n, k->s_form);
            total = hl + sp.n;
            if (k->s_form == F_SYNC && !k->s_released)
                e.stop = hl;
            if (k->s_pos < hl) {
                emit(&e, h, hl);
            } else if (k->s_pos < total && e.stop == UINT64_MAX) {
                uint64_t off = k->s_pos - hl, left = sp.n - off;
                size_t want = e.room < left ? e.room : (size_t)left;
                long got = sp.read(sp.ctx, off, e.dst, want);
                if (got <= 0 || (size_t)got > want) {
                    cl_fail(c, got < 0 ? (int)got : SATCHEL_E_IO,
                            "cannot read the data of a literal from its source");
                    return;
                }
                e.put = (size_t)got;
            }
            break;
        }
        default:
            cl_fail(c, SATCHEL_E_INTERNAL, "command queue damaged");
            return;
        }
        if (k->s_wait)
            break;
        k->out_len += e.put;
        k->s_pos += e.put;
        if (e.stop != UINT64_MAX && k->s_pos == e.stop) {
            k->s_wait = CL_WAIT_CONT; /* "{n}\r\n" is out: wait for "+" */
        } else if (k->s_pos == total) {
            if (p[0] == P_END)
                k->s_tag = 0;
            next_part(k, k->q_head + part_len(p));
        } else if (e.put == 0) {
            /* A part that neither ends nor moves would spin here. */
            cl_fail(c, SATCHEL_E_INTERNAL, "command queue stalled on a part");
            return;
        }
    }
    if (k->q_head == k->q_len && !k->cmd_open && k->q_len) {
        wipe_bytes(k->q, k->q_len); /* may have held credentials */
        k->q_head = k->q_done = k->q_len = 0;
    }
}

/* Bytes the port may send now. */
size_t cl_out_ready(const satchel_client *c)
{
    return c->conn.out_len - c->conn.out_off;
}

/* A "+" continuation: releases a synchronizing literal once its "{n}" is
 * on the wire.  Returns 1 when it did, 0 when nothing waits for it. */
int cl_hold_release(satchel_client *c)
{
    struct cl_conn *k = &c->conn;
    if (k->s_wait != CL_WAIT_CONT || k->out_off != k->out_len)
        return 0;
    k->s_wait = 0;
    k->s_released = 1;
    cl_out_fill(c); /* (the wait is a round trip: cont_seen counts it) */
    return 1;
}

/* The server answered tag.  A command waiting at a synchronizing literal
 * was refused there: the rest of it never goes out.  One not serialized
 * yet is skipped when its turn comes (it is no longer in flight).
 * Returns 0, or SATCHEL_E_PROTO when the server answered a command it
 * cannot have read whole: the connection's state is then unknown. */
int cl_hold_drop(satchel_client *c, uint32_t tag)
{
    struct cl_conn *k = &c->conn;
    if (k->s_tag != tag)
        return 0;
    if (k->s_wait != CL_WAIT_CONT || k->out_off != k->out_len)
        return SATCHEL_E_PROTO;
    next_part(k, cmd_skip(k, k->q_head));
    k->s_tag = 0;
    k->s_wait = 0;
    cl_out_fill(c);
    return 0;
}

/* The connection failed: nothing more of it goes out. */
void cl_out_discard(satchel_client *c)
{
    struct cl_conn *k = &c->conn;
    wipe_bytes(k->q, sizeof k->q);
    wipe_bytes(k->out, sizeof k->out);
    k->q_head = k->q_done = k->q_len = 0;
    k->out_len = k->out_off = 0;
    k->cmd_open = 0;
    k->s_wait = 0;
    k->s_tag = 0;
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


/* fuzz_bodystructure: a FETCH response with a hostile BODYSTRUCTURE (or
 * ENVELOPE) and header block, through the parser and through the client's
 * FETCH handling into a real store.
 *
 * Input: [mode] then the item value; a 0xFF byte, if any, ends the value
 * and the rest is the BODY[HEADER.FIELDS ...] literal.
 *   mode bit 0: the value goes in as ENVELOPE instead of BODYSTRUCTURE
 *   mode bit 1: parse byte at a time as well and compare the dumps
 * The client is driven through a canned fresh sync of INBOX whose only
 * message is that FETCH response.  When the message is stored, its
 * serialized BODYSTRUCTURE must parse back as IMAP, to the same tree as the
 * server's (strings with CR, LF or NUL turned into spaces), its text fields
 * must be valid UTF-8 without control characters, and the store must stay
 * consistent.  The stored value (and the raw one) also go through
 * satchel_body_parts, and the header block, as the content of each part
 * found, through the display decoder: whole and split must give the same
 * valid UTF-8. */
#define _POSIX_C_SOURCE 200809L
#include "fuzz_common.h"

#include "client_driver.h"
#include "satchel/body.h"
#include "satchel/opt.h"

static char store_dir[256];

static void remove_store_dir(void)
{
    cd_rmdir(store_dir);
}

static const char pre_session[] =
    "* OK [CAPABILITY IMAP4rev1 SASL-IR LITERAL+ AUTH=PLAIN] ready\r\n"
    "S1 OK [CAPABILITY IMAP4rev1 LITERAL+] Logged in\r\n"
    "* LIST () \"/\" INBOX\r\n"
    "S2 OK List completed\r\n"
    "* 1 EXISTS\r\n"
    "* OK [UIDVALIDITY 7] UIDs valid\r\n"
    "* OK [UIDNEXT 6] Predicted next UID\r\n"
    "S3 OK [READ-WRITE] Select completed\r\n";
static const char post_session[] = "S4 OK Fetch completed\r\n";

/* Parse one line; returns 1 and leaves the tree in *r (valid until the next
 * feed on p), or <= 0. */
static int parse_line(satchel_imap_parser *p, const uint8_t *line, size_t n,
                      size_t piece, fz_buf *dump, const satchel_imap_resp **r)
{
    size_t pos = 0;
    *r = NULL;
    while (pos < n) {
        size_t len = piece && piece < n - pos ? piece : n - pos, used = 0;
        int rc = satchel_imap_parser_feed(p, line + pos, len, &used, r);
        pos += used;
        if (rc < 0)
            return rc;
        if (rc == 1) {
            fz_check_resp(*r, SATCHEL_OPT_MAX_DEPTH);
            if (dump)
                fz_dump_resp(dump, *r);
            return pos == n ? 1 : 2;
        }
    }
    return 0;
}

static const satchel_imap_arg *find_item(const satchel_imap_resp *r,
                                         const char *name)
{
    const satchel_imap_arg *a = r->args, *k;
    if (!a || !a->next || !a->next->next ||
        a->next->next->type != SATCHEL_ARG_LIST)
        return NULL;
    for (k = a->next->next->child; k && k->next; k = k->next->next)
        if (satchel_imap_arg_is(k, name))
            return k->next;
    return NULL;
}

/* The client serializes strings with CR, LF and NUL as spaces. */
static int same_tree(const satchel_imap_arg *a, const satchel_imap_arg *b)
{
    for (; a && b; a = a->next, b = b->next) {
        uint32_t i;
        if (a->type != b->type || a->len != b->len)
            return 0;
        switch (a->type) {
        case SATCHEL_ARG_LIST:
            if (!same_tree(a->child, b->child))
                return 0;
            break;
        case SATCHEL_ARG_STRING:
            for (i = 0; i < a->len; i++) {
                char x = a->str[i];
                if (x == '\r' || x == '\n' || x == '\0')
                    x = ' ';
                if (x != b->str[i])
                    return 0;
            }
            break;
        default:
            if (memcmp(a->str, b->str, a->len) != 0)
                return 0;
            break;
        }
    }
    return a == NULL && b == NULL;
}

static int emit_cb(void *ctx, const char *utf8, size_t len)
{
    fz_buf_put(ctx, utf8, len);
    return 0;
}

/* Parts of a BODYSTRUCTURE, and each part's decoder over data. */
static void check_parts(const char *bs, size_t len, const uint8_t *data,
                        size_t dlen, uint8_t seed)
{
    static satchel_part parts[24];
    static satchel_body_decoder d1, d2;
    static fz_buf o1, o2;
    size_t n = 99, i;
    int rc, pick;
    if (len == 0)
        return;
    memset(parts, 0x5a, sizeof parts);
    rc = satchel_body_parts(NULL, bs, len, parts, 24, &n);
    FZ_CHECK(rc == 0 || rc == SATCHEL_E_PROTO, "body_parts rc %d", rc);
    FZ_CHECK(n <= 24, "body_parts n %zu", n);
    if (rc != 0)
        return;
    pick = satchel_body_pick_text(parts, n);
    FZ_CHECK(pick >= -1 && pick < (int)n, "pick_text %d of %zu", pick, n);
    for (i = 0; i < n; i++) {
        satchel_part *pt = &parts[i];
        fz_chunker ch;
        size_t pos = 0;
        FZ_CHECK(memchr(pt->section, 0, sizeof pt->section) &&
                     memchr(pt->type, 0, sizeof pt->type) &&
                     memchr(pt->subtype, 0, sizeof pt->subtype) &&
                     memchr(pt->charset, 0, sizeof pt->charset) &&
                     memchr(pt->encoding, 0, sizeof pt->encoding) &&
                     memchr(pt->name, 0, sizeof pt->name),
                 "part %zu: field not terminated", i);
        FZ_CHECK(pt->section[0] != '\0', "part %zu without a section", i);
        FZ_CHECK(fz_utf8_valid((const uint8_t *)pt->name, strlen(pt->name)),
                 "part %zu: file name is not UTF-8", i);
        if (i >= 4)
            continue;
        fz_buf_reset(&o1);
        fz_buf_reset(&o2);
        satchel_body_decoder_init(&d1, pt->encoding, pt->charset);
        rc = satchel_body_decoder_feed(&d1, data, dlen, emit_cb, &o1);
        FZ_CHECK(rc == 0, "decoder feed rc %d", rc);
        rc = satchel_body_decoder_finish(&d1, emit_cb, &o1);
        FZ_CHECK(rc == 0, "decoder finish rc %d", rc);
        satchel_body_decoder_init(&d2, pt->encoding, pt->charset);
        fz_chunker_init(&ch, (uint8_t)(seed | 1));
        while (pos < dlen) {
            size_t k = fz_chunk(&ch, dlen - pos);
            rc = satchel_body_decoder_feed(&d2, data + pos, k, emit_cb, &o2);
            FZ_CHECK(rc == 0, "decoder feed (split) rc %d", rc);
            pos += k;
        }
        rc = satchel_body_decoder_finish(&d2, emit_cb, &o2);
        FZ_CHECK(rc == 0, "decoder finish (split) rc %d", rc);
        FZ_CHECK(o1.n == o2.n && (o1.n == 0 || memcmp(o1.p, o2.p, o1.n) == 0),
                 "part %zu (%s, %s): decoded text differs whole vs split "
                 "(%zu vs %zu bytes)",
                 i, pt->encoding, pt->charset, o1.n, o2.n);
        FZ_CHECK(fz_utf8_valid((const uint8_t *)o1.p, o1.n),
                 "part %zu: decoded text is not UTF-8", i);
    }
}

struct found {
    int n;
    satchel_msg m;
};

static int find_cb(void *ctx, const satchel_msg *m)
{
    struct found *f = ctx;
    f->n++;
    f->m = *m;
    return 0;
}

static void check_field(const char *s, size_t cap, const char *what)
{
    size_t n = strnlen(s, cap), i;
    FZ_CHECK(n < cap, "%s not terminated", what);
    FZ_CHECK(fz_utf8_valid((const uint8_t *)s, n), "%s is not UTF-8", what);
    for (i = 0; i < n; i++)
        FZ_CHECK((uint8_t)s[i] >= 0x20 && s[i] != 0x7f, "%s has a control", what);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static fz_buf line, sess, d1, d2;
    static satchel_msg orig_dummy;
    satchel_imap_parser *p, *p2;
    const satchel_imap_resp *r;
    const satchel_imap_arg *bs;
    satchel_store *store;
    satchel_client *c;
    satchel_client_config cfg;
    const uint8_t *val, *hdr, *ff;
    size_t vlen, hlen;
    uint8_t mode;
    int rc, whole_rc, bs_list = 0, truncated = 0;
    char why[512];

    (void)orig_dummy;
    if (size < 1 || size > 1u << 17)
        return 0;
    mode = data[0];
    val = data + 1;
    vlen = size - 1;
    ff = memchr(val, 0xFF, vlen);
    if (ff) {
        hdr = ff + 1;
        hlen = vlen - (size_t)(ff - val) - 1;
        vlen = (size_t)(ff - val);
    } else {
        static const char def[] =
            "Date: Mon, 2 Jan 2023 10:00:00 +0100\r\nFrom: a@b.example\r\n"
            "Subject: test\r\nMessage-ID: <1@b.example>\r\n\r\n";
        hdr = (const uint8_t *)def;
        hlen = sizeof def - 1;
    }

    fz_buf_reset(&line);
    fz_buf_puts(&line, "* 1 FETCH (UID 5 FLAGS (\\Seen) RFC822.SIZE 10 "
                       "INTERNALDATE \"01-Jan-2023 00:00:00 +0000\" ");
    fz_buf_puts(&line, (mode & 1) ? "ENVELOPE " : "BODYSTRUCTURE ");
    fz_buf_put(&line, val, vlen);
    fz_buf_printf(&line, " BODY[HEADER.FIELDS (DATE FROM SUBJECT MESSAGE-ID)] {%zu}\r\n",
                  hlen);
    fz_buf_put(&line, hdr, hlen);
    fz_buf_puts(&line, ")\r\n");

    /* 1. The parser, whole (and byte at a time). */
    rc = satchel_imap_parser_new(NULL, NULL, &p);
    FZ_CHECK(rc == 0, "parser_new");
    fz_buf_reset(&d1);
    whole_rc = parse_line(p, (const uint8_t *)line.p, line.n, 0, &d1, &r);
    if (whole_rc >= 1) {
        bs = find_item(r, (mode & 1) ? "ENVELOPE" : "BODYSTRUCTURE");
        bs_list = bs && bs->type == SATCHEL_ARG_LIST;
        truncated = r->truncated;
    }
    if (mode & 2) {
        const satchel_imap_resp *r2;
        rc = satchel_imap_parser_new(NULL, NULL, &p2);
        FZ_CHECK(rc == 0, "parser_new");
        fz_buf_reset(&d2);
        rc = parse_line(p2, (const uint8_t *)line.p, line.n, 1, &d2, &r2);
        FZ_CHECK(rc == whole_rc && d1.n == d2.n &&
                     (d1.n == 0 || memcmp(d1.p, d2.p, d1.n) == 0),
                 "byte-at-a-time parse differs (rc %d vs %d)", rc, whole_rc);
        satchel_imap_parser_free(p2);
    }
    if (mode & 1) {
        satchel_imap_parser_free(p);
        return 0; /* the client does not fetch ENVELOPE */
    }
    check_parts((const char *)val, vlen, hdr, hlen, mode);

    /* 2. Through the client into a store. */
    if (!store_dir[0]) {
        if (cd_mkdtemp(store_dir, sizeof store_dir, "fuzzbs") < 0)
            abort();
        atexit(remove_store_dir);
    }
    cd_wipe_store(store_dir);
    rc = satchel_store_open(NULL, store_dir, 16u << 20, &store);
    FZ_CHECK(rc == 0, "store_open rc %d", rc);
    memset(&cfg, 0, sizeof cfg);
    cfg.security = SATCHEL_SECURITY_NONE;
    cfg.user = "alice";
    cfg.password = "pw";
    rc = satchel_client_new(NULL, &cfg, store, &c);
    FZ_CHECK(rc == 0, "client_new");
    satchel_client_connected(c, 1, 0);
    satchel_client_sync(c, NULL);
    fz_buf_reset(&sess);
    fz_buf_puts(&sess, pre_session);
    fz_buf_put(&sess, line.p, line.n);
    fz_buf_puts(&sess, post_session);
    {
        const uint8_t *out;
        size_t pos = 0;
        /* Respond in the order the client asks: drain between lines. */
        while (pos < sess.n) {
            const char *nl = memchr(sess.p + pos, '\n', sess.n - pos);
            size_t n = nl ? (size_t)(nl - (sess.p + pos)) + 1 : sess.n - pos;
            size_t pend = satchel_client_pending(c, &out);
            satchel_client_sent(c, pend);
            rc = satchel_client_recv(c, (const uint8_t *)sess.p + pos, n, 2);
            pos += n;
            if (rc < 0 && SATCHEL_ERR_IS_FATAL(rc))
                break;
        }
    }
    rc = satchel_client_result(c);
    satchel_client_free(c);
    {
        satchel_folder f;
        struct found fd;
        memset(&fd, 0, sizeof fd);
        if (satchel_store_folder_get(store, NULL, "INBOX", &f) == 0 &&
            satchel_store_msg_list(store, f.id, 0, 10, find_cb, &fd) == 0 &&
            fd.n == 1) {
            satchel_msg *m = &fd.m;
            FZ_CHECK(m->uid == 5, "stored uid %u", m->uid);
            check_field(m->subject, sizeof m->subject, "subject");
            check_field(m->from, sizeof m->from, "from");
            FZ_CHECK(strnlen(m->message_id, sizeof m->message_id) <
                         sizeof m->message_id,
                     "message-id");
            FZ_CHECK(strnlen(m->bodystructure, sizeof m->bodystructure) <
                         sizeof m->bodystructure,
                     "bodystructure");
            if (m->mflags & SATCHEL_MSG_F_BS_TRUNCATED) {
                /* What is kept of a cut structure is whole parts of it,
                 * so it must read back as a prefix without error. */
                static satchel_part cut_parts[64];
                size_t np = 0;
                FZ_CHECK(!m->bodystructure[0] ||
                             satchel_body_parts_prefix(NULL, m->bodystructure,
                                                       strlen(m->bodystructure), 1,
                                                       cut_parts, 64, &np) == 0,
                         "cut BODYSTRUCTURE prefix does not read back: %s",
                         m->bodystructure);
            } else if (m->bodystructure[0]) {
                /* Must parse back to the server's tree. */
                static fz_buf again;
                const satchel_imap_resp *r3;
                satchel_imap_parser *p3;
                const satchel_imap_arg *bs2;
                FZ_CHECK(bs_list, "BODYSTRUCTURE stored from a non-list");
                fz_buf_reset(&again);
                fz_buf_puts(&again, "* 1 FETCH (UID 5 FLAGS (\\Seen) RFC822.SIZE 10 "
                                    "INTERNALDATE \"01-Jan-2023 00:00:00 +0000\" "
                                    "BODYSTRUCTURE ");
                fz_buf_puts(&again, m->bodystructure);
                fz_buf_puts(&again, ")\r\n");
                rc = satchel_imap_parser_new(NULL, NULL, &p3);
                FZ_CHECK(rc == 0, "parser_new");
                rc = parse_line(p3, (const uint8_t *)again.p, again.n, 0, NULL, &r3);
                FZ_CHECK(rc == 1, "stored BODYSTRUCTURE does not parse (rc %d): %s",
                         rc, m->bodystructure);
                bs2 = find_item(r3, "BODYSTRUCTURE");
                FZ_CHECK(bs2 && bs2->type == SATCHEL_ARG_LIST,
                         "stored BODYSTRUCTURE is not a list");
                if (!truncated && !r3->truncated) {
                    FZ_CHECK(whole_rc >= 1, "stored without a parse");
                    bs = find_item(r, "BODYSTRUCTURE");
                    FZ_CHECK(bs && same_tree(bs->child, bs2->child),
                             "stored BODYSTRUCTURE differs from the server's: %s",
                             m->bodystructure);
                }
                satchel_imap_parser_free(p3);
                check_parts(m->bodystructure, strlen(m->bodystructure), hdr,
                            hlen, mode);
            }
        }
    }
    rc = cd_store_check(store, why, sizeof why);
    FZ_CHECK(rc == 0, "store inconsistent: %s", why);
    satchel_store_close(store);
    satchel_imap_parser_free(p);
    return 0;
}

/* Part enumeration reuses the response parser: the stored BODYSTRUCTURE is
 * IMAP syntax, so it is parsed exactly as the server's bytes were. */
#include "satchel/body.h"
#include "satchel/ascii.h"
#include "satchel/opt.h"
#include "satchel/imap.h"

#include <string.h>

static void lower_copy(char *dst, size_t cap, const satchel_imap_arg *a)
{
    size_t i, n = 0;
    if (a && (a->type == SATCHEL_ARG_STRING || a->type == SATCHEL_ARG_ATOM)) {
        for (i = 0; i < a->len && n + 1 < cap; i++) {
            char c = satchel_ascii_lower(a->str[i]);
            if ((unsigned char)c < 0x20)
                c = ' ';
            dst[n++] = c;
        }
    }
    dst[n] = '\0';
}

static int key_is(const satchel_imap_arg *a, const char *key)
{
    return a && a->type == SATCHEL_ARG_STRING && satchel_ascii_ieq(a->str, a->len, key);
}

/* Value of key in a body parameter list ("KEY" "value" ...), or NULL. */
static const satchel_imap_arg *param(const satchel_imap_arg *list, const char *key)
{
    const satchel_imap_arg *a;
    if (!list || list->type != SATCHEL_ARG_LIST)
        return NULL;
    for (a = list->child; a && a->next; a = a->next->next)
        if (key_is(a, key))
            return a->next;
    return NULL;
}

/* A file name: RFC 2231 (charset'lang'%xx) or RFC 2047 words, to UTF-8. */
static void set_name(satchel_part *p, const satchel_imap_arg *v, int ext)
{
    char raw[128];
    size_t n = 0, i = 0;
    if (!v || v->type != SATCHEL_ARG_STRING)
        return;
    if (ext) {
        const char *q1 = memchr(v->str, '\'', v->len), *q2;
        if (q1 && (q2 = memchr(q1 + 1, '\'', v->len - (size_t)(q1 + 1 - v->str)))) {
            char cs[40];
            size_t cl = (size_t)(q1 - v->str), out_len;
            for (i = (size_t)(q2 + 1 - v->str); i < v->len && n + 1 < sizeof raw; i++) {
                if (v->str[i] == '%' && i + 2 < v->len &&
                    satchel_ascii_hex(v->str[i + 1]) >= 0 &&
                    satchel_ascii_hex(v->str[i + 2]) >= 0) {
                    raw[n++] = (char)(satchel_ascii_hex(v->str[i + 1]) << 4 |
                                      satchel_ascii_hex(v->str[i + 2]));
                    i += 2;
                } else {
                    raw[n++] = v->str[i];
                }
            }
            if (cl >= sizeof cs)
                cl = 0;
            memcpy(cs, v->str, cl);
            if (cl && satchel_mime_to_utf8(cs, cl, (const uint8_t *)raw, n, p->name,
                                           sizeof p->name, &out_len) >= 0)
                return;
            satchel_mime_decode_header(raw, n, p->name, sizeof p->name);
            return;
        }
    }
    satchel_mime_decode_header(v->str, v->len, p->name, sizeof p->name);
}

struct walk {
    satchel_part *parts;
    size_t max, n;
    int cut;       /* a stored prefix: the first malformed body ends it */
    char section[SATCHEL_SECTION_MAX]; /* of the body being walked */
    size_t len;
};

#if defined(__GNUC__)
#define BODY_NOINLINE __attribute__((noinline))
#else
#define BODY_NOINLINE
#endif

/* One single-part body, at w->section.  Kept out of walk() so that each
 * level of the recursion costs only walk()'s small frame. */
static BODY_NOINLINE int leaf(struct walk *w, const satchel_imap_arg *a)
{
    satchel_part p;
    const satchel_imap_arg *f[12];
    const satchel_imap_arg *disp = NULL, *nm;
    const char *section = w->section[0] ? w->section : "1";
    size_t k = 0, ext;
    uint64_t size = 0;
    memset(&p, 0, sizeof p);
    for (; a && k < 12; a = a->next)
        f[k++] = a;
    if (k < 7)
        return SATCHEL_E_PROTO;
    memcpy(p.section, section, strlen(section) + 1);
    lower_copy(p.type, sizeof p.type, f[0]);
    lower_copy(p.subtype, sizeof p.subtype, f[1]);
    lower_copy(p.charset, sizeof p.charset, param(f[2], "CHARSET"));
    lower_copy(p.encoding, sizeof p.encoding, f[5]);
    if (satchel_imap_arg_u64(f[6], UINT64_MAX, &size) == 0)
        p.size = size;
    /* Extension data starts after the type-specific fields. */
    if (strcmp(p.type, "text") == 0)
        ext = 8;
    else if (strcmp(p.type, "message") == 0 && strcmp(p.subtype, "rfc822") == 0)
        ext = 10;
    else
        ext = 7;
    if (ext + 1 < k && f[ext + 1]->type == SATCHEL_ARG_LIST)
        disp = f[ext + 1];
    if (disp && disp->child) {
        char d[16];
        lower_copy(d, sizeof d, disp->child);
        p.attachment = strcmp(d, "attachment") == 0;
        if ((nm = param(disp->child->next, "FILENAME*")) != NULL)
            set_name(&p, nm, 1);
        else if ((nm = param(disp->child->next, "FILENAME")) != NULL)
            set_name(&p, nm, 0);
    }
    if (!p.name[0]) {
        if ((nm = param(f[2], "NAME*")) != NULL)
            set_name(&p, nm, 1);
        else if ((nm = param(f[2], "NAME")) != NULL)
            set_name(&p, nm, 0);
    }
    if (w->n < w->max)
        w->parts[w->n] = p;
    w->n++;
    return 0;
}

/* Recursion is bounded by SATCHEL_OPT_BODY_DEPTH; the section being
 * walked lives in w, so a level's frame holds no buffer (stack budget:
 * SATCHEL_OPT_BODY_STACK). */
static int walk(struct walk *w, const satchel_imap_arg *body, int depth)
{
    const satchel_imap_arg *a = body->child;
    size_t keep = w->len;
    unsigned i = 1;
    if (depth > SATCHEL_OPT_BODY_DEPTH || !a)
        return w->cut ? 1 : SATCHEL_E_PROTO;
    if (a->type != SATCHEL_ARG_LIST) {
        int rc = leaf(w, a);
        return rc < 0 && w->cut ? 1 : rc;
    }
    /* multipart: child bodies, then the subtype */
    for (; a && a->type == SATCHEL_ARG_LIST; a = a->next, i++) {
        char num[12];
        unsigned v = i;
        int k = 0, rc;
        do {
            num[k++] = (char)('0' + v % 10);
            v /= 10;
        } while (v && k < 11);
        if (keep + 1 + (size_t)k + 1 > sizeof w->section)
            return SATCHEL_E_PROTO;
        w->len = keep;
        if (keep)
            w->section[w->len++] = '.';
        while (k)
            w->section[w->len++] = num[--k];
        w->section[w->len] = '\0';
        rc = walk(w, a, depth + 1);
        w->len = keep;
        w->section[keep] = '\0';
        if (rc != 0)
            return rc; /* an error, or 1: the end of a cut prefix */
    }
    return 0;
}

static int collect(void *ctx, const char *item, uint64_t off, uint64_t total,
                   const uint8_t *data, size_t len)
{
    (void)ctx;
    (void)item;
    (void)off;
    (void)total;
    (void)data;
    (void)len;
    return 0;
}

int satchel_body_parts(const satchel_allocator *alloc, const char *bs,
                       size_t len, satchel_part *parts, size_t max, size_t *n)
{
    return satchel_body_parts_prefix(alloc, bs, len, 0, parts, max, n);
}

int satchel_body_parts_prefix(const satchel_allocator *alloc, const char *bs,
                              size_t len, int cut, satchel_part *parts, size_t max,
                              size_t *n)
{
    static const char head[] = "* 0 BODYSTRUCTURE ";
    satchel_imap_parser *p;
    satchel_imap_parser_config cfg;
    const satchel_imap_resp *r = NULL;
    const uint8_t *pieces[3];
    size_t plen[3], i;
    int rc = 0, got = 0;
    struct walk w;

    *n = 0;
    if (len == 0 || bs[0] != '(')
        return SATCHEL_E_PROTO;
    memset(&cfg, 0, sizeof cfg);
    cfg.max_depth = 40;
    if ((rc = satchel_imap_parser_new(alloc, &cfg, &p)) < 0)
        return rc;
    satchel_imap_parser_set_sink(p, collect, NULL);
    pieces[0] = (const uint8_t *)head;
    plen[0] = sizeof head - 1;
    pieces[1] = (const uint8_t *)bs;
    plen[1] = len;
    pieces[2] = (const uint8_t *)"\r\n";
    plen[2] = 2;
    for (i = 0; i < 3 && rc >= 0 && !got; i++) {
        size_t off = 0;
        while (off < plen[i]) {
            size_t used;
            rc = satchel_imap_parser_feed(p, pieces[i] + off, plen[i] - off, &used, &r);
            if (rc < 0)
                break;
            off += used;
            if (rc == 1) {
                got = 1;
                break;
            }
        }
    }
    if (rc >= 0 && got && r && (!r->truncated || cut) && r->args && r->args->next &&
        r->args->next->next && r->args->next->next->type == SATCHEL_ARG_LIST) {
        w.parts = parts;
        w.max = max;
        w.n = 0;
        w.len = 0;
        w.cut = cut;
        w.section[0] = '\0';
        rc = walk(&w, r->args->next->next, 0);
        if (rc > 0)
            rc = 0;
        *n = w.n < max ? w.n : max;
    } else if (rc >= 0) {
        rc = SATCHEL_E_PROTO;
    }
    satchel_imap_parser_free(p);
    /* The parser's caps (a literal size past 64 bits or the configured
     * maximum, a line too long) make the structure malformed here; callers
     * are promised SATCHEL_E_PROTO for that. */
    if (rc == SATCHEL_E_PROTO_LIMIT)
        rc = SATCHEL_E_PROTO;
    return rc < 0 ? rc : 0;
}

int satchel_body_pick_text(const satchel_part *parts, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        if (!parts[i].attachment && strcmp(parts[i].type, "text") == 0 &&
            strcmp(parts[i].subtype, "plain") == 0)
            return (int)i;
    for (i = 0; i < n; i++)
        if (!parts[i].attachment && strcmp(parts[i].type, "text") == 0 &&
            strcmp(parts[i].subtype, "html") == 0)
            return (int)i;
    for (i = 0; i < n; i++)
        if (strcmp(parts[i].type, "text") == 0)
            return (int)i;
    return -1;
}

/* ---- display decoder ---- */

int satchel_body_decoder_init(satchel_body_decoder *d, const char *encoding,
                              const char *charset)
{
    memset(d, 0, sizeof *d);
    if (strcmp(encoding, "base64") == 0)
        d->enc = 1;
    else if (strcmp(encoding, "quoted-printable") == 0)
        d->enc = 2;
    satchel_mime_b64_init(&d->b64);
    satchel_mime_qp_init(&d->qp);
    if (!charset || !charset[0])
        charset = "us-ascii";
    if (strlen(charset) < sizeof d->charset)
        memcpy(d->charset, charset, strlen(charset) + 1);
    d->known = satchel_mime_charset_known(d->charset, strlen(d->charset));
    if (!d->known)
        memcpy(d->charset, "utf-8", 6); /* raw: keep valid UTF-8, mark the rest */
    return d->known;
}

void satchel_body_decoder_init_bytes(satchel_body_decoder *d, const char *encoding)
{
    satchel_body_decoder_init(d, encoding, "utf-8");
    d->bytes = 1;
}

/* Convert decoded bytes to UTF-8, holding back a character cut by the
 * chunk boundary so it is not turned into U+FFFD. */
static int convert(satchel_body_decoder *d, const uint8_t *in, size_t len,
                   int last, satchel_body_emit emit, void *ctx)
{
    uint8_t buf[sizeof d->tmp + 4];
    size_t n = 0, use, out_len = 0;
    int rc;
    if (d->bytes)
        return len ? emit(ctx, (const char *)in, len) : 0;
    memcpy(buf, d->carry, d->ncarry);
    n = d->ncarry;
    if (len)
        memcpy(buf + n, in, len); /* (in may be NULL when len is 0) */
    n += len;
    d->ncarry = 0;
    use = n;
    if (!last) {
        size_t tail = satchel_mime_utf8_tail(buf, n);
        if (tail && tail < 4 && tail <= n) {
            memcpy(d->carry, buf + n - tail, tail);
            d->ncarry = tail;
            use = n - tail;
        }
    }
    if (use == 0)
        return 0;
    rc = satchel_mime_to_utf8(d->charset, strlen(d->charset), buf, use, d->out,
                              sizeof d->out, &out_len);
    if (rc < 0 && rc != SATCHEL_E_RANGE)
        return rc;
    return out_len ? emit(ctx, d->out, out_len) : 0;
}

int satchel_body_decoder_feed(satchel_body_decoder *d, const uint8_t *in,
                              size_t len, satchel_body_emit emit, void *ctx)
{
    while (len > 0) {
        size_t consumed = len, n;
        int rc;
        if (d->enc == 1) {
            n = satchel_mime_b64_decode(&d->b64, in, len, &consumed, d->tmp,
                                        sizeof d->tmp);
        } else if (d->enc == 2) {
            n = satchel_mime_qp_decode(&d->qp, in, len, &consumed, d->tmp,
                                       sizeof d->tmp);
        } else {
            n = len < sizeof d->tmp ? len : sizeof d->tmp;
            memcpy(d->tmp, in, n);
            consumed = n;
        }
        if ((rc = convert(d, d->tmp, n, 0, emit, ctx)) < 0)
            return rc;
        if (consumed == 0 && n == 0)
            return SATCHEL_E_INTERNAL; /* no progress: never loop */
        in += consumed;
        len -= consumed;
    }
    return 0;
}

int satchel_body_decoder_finish(satchel_body_decoder *d, satchel_body_emit emit,
                                void *ctx)
{
    size_t n;
    int rc;
    for (;;) {
        if (d->enc == 1)
            n = satchel_mime_b64_finish(&d->b64, d->tmp, sizeof d->tmp);
        else if (d->enc == 2)
            n = satchel_mime_qp_finish(&d->qp, d->tmp, sizeof d->tmp);
        else
            n = 0;
        if (n == 0)
            break;
        if ((rc = convert(d, d->tmp, n, 0, emit, ctx)) < 0)
            return rc;
    }
    return convert(d, NULL, 0, 1, emit, ctx);
}

/* Header fields: RFC 2047 encoded-words, the header decoder, header
 * lookup and From rendering.  See include/satchel/mime.h for the contract.
 *
 * Decoders are state machines fed one byte at a time through the bounded
 * writer (mime_int.h), so no input can make them read past len or loop. */
#include "mime_int.h"

/* ---- RFC 2047 encoded-words -------------------------------------------- */

typedef struct {
    size_t total; /* bytes of "=?...?=" */
    int cs;
    uint8_t enc; /* 'b' or 'q' */
    size_t text, text_len; /* offsets into the word */
} ew;

/* Parses "=?charset[*lang]?enc?text?=" at s.  Each '?' bounds a scan, so
 * repeated attempts over hostile text stay linear overall. */
static bool ew_parse(const char *s, size_t n, ew *e)
{
    size_t i = 2, cs_start = 2, cs_end;

    if (n < 7 || s[0] != '=' || s[1] != '?')
        return false;
    while (i < n && s[i] != '?') {
        uint8_t c = (uint8_t)s[i];
        if (c <= ' ' || c >= 0x7F || i - cs_start > 64)
            return false;
        i++;
    }
    cs_end = i;
    if (cs_end == cs_start || i + 2 >= n || s[i + 2] != '?')
        return false;
    e->enc = (uint8_t)satchel_ascii_lower(s[i + 1]);
    if (e->enc != 'b' && e->enc != 'q')
        return false;
    e->text = i + 3;
    for (i = e->text; i < n && s[i] != '?'; i++) {
        uint8_t c = (uint8_t)s[i];
        if (c <= ' ' || c >= 0x7F)
            return false;
    }
    if (i + 1 >= n || s[i + 1] != '=')
        return false;
    e->text_len = i - e->text;
    e->total = i + 2;
    for (i = cs_start; i < cs_end && s[i] != '*'; i++)
        ; /* RFC 2231 section 5 language suffix */
    e->cs = mime_charset_lookup(s + cs_start, i - cs_start);
    return true;
}


/* ---- Header decoder ---------------------------------------------------- */

/* Fed in segments so format_from can pass quoted-string contents without a
 * scratch buffer; the state carries "previous token was an encoded-word"
 * across segments so the 6.2 whitespace rule still applies. */
typedef struct {
    wb *w;
    int raw_cs;
    u8dec raw;
    bool in_ew;
    size_t pend_ws; /* whitespace after an encoded-word, not yet emitted */
    int ew_cs;
    u8dec ewd;
    bool no_ew; /* address text: encoded-words not allowed */
} hdec;

static void hd_init(hdec *h, wb *w, int raw_cs)
{
    h->w = w;
    h->raw_cs = raw_cs;
    u8_reset(&h->raw);
    h->in_ew = false;
    h->pend_ws = 0;
    h->ew_cs = CS_UNKNOWN;
    u8_reset(&h->ewd);
    h->no_ew = false;
}

static void hd_leave_ew(hdec *h)
{
    if (!h->in_ew)
        return;
    u8_flush(&h->ewd, h->w);
    for (; h->pend_ws && !h->w->trunc; h->pend_ws--)
        wb_cp(h->w, ' ');
    h->pend_ws = 0;
    h->in_ew = false;
}

static void hd_ew(hdec *h, const char *s, const ew *e)
{
    const char *t = s + e->text;
    wb *w = h->w;

    if (h->in_ew) {
        h->pend_ws = 0; /* RFC 2047 6.2 */
        if (e->cs != h->ew_cs) {
            u8_flush(&h->ewd, w);
            u8_reset(&h->ewd);
        }
    } else {
        u8_flush(&h->raw, w);
        u8_reset(&h->ewd);
    }
    if (e->enc == 'q') {
        for (size_t i = 0; i < e->text_len && !w->trunc; i++) {
            uint8_t c = (uint8_t)t[i];
            if (c == '_') {
                c = ' ';
            } else if (c == '=' && i + 2 < e->text_len &&
                       satchel_ascii_hex(t[i + 1]) >= 0 &&
                       satchel_ascii_hex(t[i + 2]) >= 0) {
                c = (uint8_t)(satchel_ascii_hex(t[i + 1]) * 16 +
                              satchel_ascii_hex(t[i + 2]));
                i += 2;
            }
            mime_cs_byte(e->cs, &h->ewd, c, w);
        }
    } else {
        /* The body decoder, stopped at the first '=': padding ends the
         * word's text, where in a body it only ends a quantum. */
        const char *pad = memchr(t, '=', e->text_len);
        size_t left = pad ? (size_t)(pad - t) : e->text_len;
        satchel_mime_b64 b64;
        uint8_t buf[48];
        satchel_mime_b64_init(&b64);
        while (left && !w->trunc) {
            size_t used, got = satchel_mime_b64_decode(&b64, (const uint8_t *)t, left, &used,
                                                       buf, sizeof buf);
            for (size_t k = 0; k < got && !w->trunc; k++)
                mime_cs_byte(e->cs, &h->ewd, buf[k], w);
            t += used;
            left -= used;
        }
    }
    h->in_ew = true;
    h->ew_cs = e->cs;
}

static void hd_feed(hdec *h, const char *s, size_t n)
{
    size_t i = 0;
    ew e;

    while (i < n && !h->w->trunc) {
        uint8_t c = (uint8_t)s[i];
        if (c == '\r' || c == '\n') {
            i++; /* unfolding; stray ones are controls anyway */
            continue;
        }
        if (is_wsp(c)) {
            if (h->in_ew) {
                h->pend_ws++;
            } else {
                u8_flush(&h->raw, h->w);
                wb_cp(h->w, ' ');
            }
            i++;
            continue;
        }
        if (c == '=' && !h->no_ew && ew_parse(s + i, n - i, &e) &&
            e.cs != CS_UNKNOWN) {
            hd_ew(h, s + i, &e);
            i += e.total;
            continue;
        }
        hd_leave_ew(h);
        mime_cs_byte(h->raw_cs, &h->raw, c, h->w);
        i++;
    }
}

static void hd_end(hdec *h)
{
    hd_leave_ew(h);
    u8_flush(&h->raw, h->w);
}

static int raw_charset(const char *in, size_t len)
{
    return u8_valid((const uint8_t *)in, len) ? CS_UTF8 : CS_1252;
}

int satchel_mime_decode_header(const char *in, size_t len,
                               char *out, size_t cap)
{
    wb w;
    hdec h;

    if ((!in && len) || (!out && cap))
        return SATCHEL_E_INVAL;
    wb_init(&w, out, cap, true);
    hd_init(&h, &w, raw_charset(in, len));
    hd_feed(&h, in, len);
    hd_end(&h);
    return wb_end(&w);
}

/* ---- Header lookup ----------------------------------------------------- */

/* Copies raw bytes without splitting a valid UTF-8 sequence, so a cut
 * value is still as valid as the input was. */
static void wb_raw(wb *w, const char *s, size_t n)
{
    size_t i = 0;
    while (i < n && !w->trunc) {
        uint32_t cp;
        size_t k = satchel_utf8_next(s + i, n - i, &cp);
        if (!k)
            k = 1;
        wb_bytes(w, (const uint8_t *)s + i, k);
        i += k;
    }
}

int satchel_mime_header_get(const char *hdr, size_t len, const char *name,
                            char *out, size_t cap)
{
    size_t nlen, pos = 0;
    wb w;

    if ((!hdr && len) || (!out && cap) || !name || !*name)
        return SATCHEL_E_INVAL;
    nlen = strlen(name);
    wb_init(&w, out, cap, false);

    while (pos < len) {
        size_t ls = pos, i, end, vs;
        while (pos < len && hdr[pos] != '\n')
            pos++;
        if (pos < len)
            pos++;
        if (hdr[ls] == '\n' || (hdr[ls] == '\r' && ls + 1 < len &&
                                hdr[ls + 1] == '\n'))
            break; /* empty line: end of the header block */
        if (is_wsp((uint8_t)hdr[ls]))
            continue; /* continuation of a field we skipped */
        if (pos - ls <= nlen || !satchel_ascii_ieq(hdr + ls, nlen, name))
            continue;
        i = ls + nlen;
        while (i < len && is_wsp((uint8_t)hdr[i]))
            i++; /* obs-optional: "Subject :" */
        if (i >= len || hdr[i] != ':')
            continue;
        vs = i + 1;
        /* The field extends over following lines that start with WSP. */
        end = pos;
        while (end < len && is_wsp((uint8_t)hdr[end])) {
            while (end < len && hdr[end] != '\n')
                end++;
            if (end < len)
                end++;
        }
        while (vs < end && (is_wsp((uint8_t)hdr[vs]) || hdr[vs] == '\r' ||
                            hdr[vs] == '\n'))
            vs++;
        while (end > vs && (is_wsp((uint8_t)hdr[end - 1]) ||
                            hdr[end - 1] == '\r' || hdr[end - 1] == '\n'))
            end--;
        /* Copy, dropping the line breaks (every LF inside is a fold). */
        i = vs;
        while (i < end) {
            size_t j = i;
            while (j < end && hdr[j] != '\n' &&
                   !(hdr[j] == '\r' && j + 1 < end && hdr[j + 1] == '\n'))
                j++;
            wb_raw(&w, hdr + i, j - i);
            if (j < end && hdr[j] == '\r')
                j++;
            i = j + 1;
        }
        return wb_end(&w);
    }
    if (cap)
        out[0] = '\0';
    return SATCHEL_E_NOTFOUND;
}

/* ---- From rendering ---------------------------------------------------- */

/* Index just past the quoted string starting at s[i] == '"'. */
static size_t skip_quoted(const char *s, size_t n, size_t i)
{
    for (i++; i < n; i++) {
        if (s[i] == '\\')
            i++;
        else if (s[i] == '"')
            return i + 1;
    }
    return n;
}

/* Index just past the (nested) comment starting at s[i] == '('. */
static size_t skip_comment(const char *s, size_t n, size_t i)
{
    size_t depth = 0;
    for (; i < n; i++) {
        if (s[i] == '\\')
            i++;
        else if (s[i] == '(')
            depth++;
        else if (s[i] == ')' && --depth == 0)
            return i + 1;
    }
    return n;
}

/* Index of the first ch in s[i..n) outside quoted strings and comments,
 * or n. */
static size_t find_top(const char *s, size_t n, size_t i, char ch)
{
    while (i < n && s[i] != ch) {
        if (s[i] == '"')
            i = skip_quoted(s, n, i);
        else if (s[i] == '(')
            i = skip_comment(s, n, i);
        else
            i++;
    }
    return i;
}

/* Feeds s[a..b) to the decoder with quoted-pair backslashes removed. */
static void feed_unescaped(hdec *h, const char *s, size_t a, size_t b)
{
    size_t st = a;
    for (size_t i = a; i < b; i++) {
        if (s[i] == '\\' && i + 1 < b) {
            hd_feed(h, s + st, i - st);
            st = i + 1;
            i++; /* the escaped char stays in the next run */
        }
    }
    hd_feed(h, s + st, b - st);
}

/* Writes the phrase in s[a..b): words joined by single spaces, quotes and
 * comments removed, encoded-words decoded (inside quotes too). */
static void render_phrase(hdec *h, const char *s, size_t a, size_t b)
{
    bool first = true;
    size_t i = a;

    while (i < b) {
        uint8_t c = (uint8_t)s[i];
        size_t j;
        if (is_wsp(c) || c == '\r' || c == '\n') {
            i++;
        } else if (c == '(') {
            i = skip_comment(s, b, i);
        } else {
            if (!first)
                hd_feed(h, " ", 1);
            first = false;
            if (c == '"') {
                j = skip_quoted(s, b, i);
                feed_unescaped(h, s, i + 1,
                               (j > i + 1 && s[j - 1] == '"') ? j - 1 : j);
            } else {
                for (j = i; j < b && !is_wsp((uint8_t)s[j]) && s[j] != '"' &&
                            s[j] != '(' && s[j] != '\r' && s[j] != '\n';
                     j++)
                    ;
                hd_feed(h, s + i, j - i);
            }
            i = j;
        }
    }
}

/* Writes the addr-spec in s[a..b) without CFWS; a source route
 * ("@a,@b:") is dropped by starting after the last top-level ':'. */
static void render_addr(hdec *h, const char *s, size_t a, size_t b)
{
    size_t i;
    for (i = find_top(s, b, a, ':'); i < b; i = find_top(s, b, i + 1, ':'))
        a = i + 1;
    h->no_ew = true;
    for (i = a; i < b;) {
        uint8_t c = (uint8_t)s[i];
        size_t j;
        if (c == '(') {
            i = skip_comment(s, b, i);
        } else if (is_wsp(c) || c == '\r' || c == '\n') {
            i++;
        } else {
            j = c == '"' ? skip_quoted(s, b, i) : i + 1;
            hd_feed(h, s + i, j - i);
            i = j;
        }
    }
    hd_end(h);
    h->no_ew = false;
}

/* Strips spaces the name decoded to at either end (e.g. "=?x?q?_Bob?=");
 * they are ASCII so byte trimming keeps the UTF-8 valid. */
static void trim_name(wb *w, size_t from)
{
    size_t k = from;
    while (w->len > from && w->p[w->len - 1] == ' ')
        w->len--;
    while (k < w->len && w->p[k] == ' ')
        k++;
    if (k > from) {
        memmove(w->p + from, w->p + k, w->len - k);
        w->len -= k - from;
    }
}

/* Name from the first comment of an old-style "addr (Name)". */
static void render_comment_name(hdec *h, const char *s, size_t a, size_t b)
{
    for (size_t i = a; i < b;) {
        if (s[i] == '"') {
            i = skip_quoted(s, b, i);
        } else if (s[i] == '(') {
            size_t j = skip_comment(s, b, i);
            size_t e = (j > i + 1 && s[j - 1] == ')') ? j - 1 : j;
            size_t before = h->w->len;
            feed_unescaped(h, s, i + 1, e);
            hd_end(h);
            trim_name(h->w, before);
            if (h->w->len > before || h->w->trunc)
                return;
            i = j;
        } else {
            i++;
        }
    }
}

static bool has_content(const char *s, size_t a, size_t b)
{
    for (size_t i = a; i < b;) {
        if (s[i] == '(')
            i = skip_comment(s, b, i);
        else if (is_wsp((uint8_t)s[i]) || s[i] == '\r' || s[i] == '\n')
            i++;
        else
            return true;
    }
    return false;
}

/* Mailbox without angle brackets in s[a..b). */
static void render_bare(hdec *h, const char *s, size_t a, size_t b)
{
    size_t name_start;

    if (find_top(s, b, a, '@') == b) { /* no '@': "root" or a bare phrase */
        render_phrase(h, s, a, b);
        hd_end(h);
        trim_name(h->w, 0);
        return;
    }
    render_comment_name(h, s, a, b);
    name_start = h->w->len;
    if (name_start)
        wb_str(h->w, " <");
    render_addr(h, s, a, b);
    if (name_start)
        wb_str(h->w, ">");
}

int satchel_mime_format_from(const char *in, size_t len, char *out,
                             size_t cap)
{
    wb w;
    hdec h;
    size_t i = 0, start = 0, gstart = 0, gend = 0;
    bool group = false, done = false;

    if ((!in && len) || (!out && cap))
        return SATCHEL_E_INVAL;
    wb_init(&w, out, cap, true);
    hd_init(&h, &w, raw_charset(in, len));

    while (i <= len && !done) {
        char c = i < len ? in[i] : ',';
        if (c == '"') {
            i = skip_quoted(in, len, i);
        } else if (c == '(') {
            i = skip_comment(in, len, i);
        } else if (c == '<') {
            size_t a = i + 1, b = find_top(in, len, a, '>');
            render_phrase(&h, in, start, i);
            hd_end(&h);
            trim_name(&w, 0);
            if (has_content(in, a, b)) {
                bool named = w.len > 0;
                if (named)
                    wb_str(&w, " <");
                render_addr(&h, in, a, b);
                if (named)
                    wb_str(&w, ">");
            }
            done = true;
        } else if (c == ':' && !group) {
            group = true;
            gstart = start;
            gend = i;
            start = ++i;
        } else if (c == ',' || c == ';') {
            if (has_content(in, start, i)) {
                render_bare(&h, in, start, i);
                done = true;
            }
            start = ++i;
        } else {
            i++;
        }
    }
    if (!done && group) {
        render_phrase(&h, in, gstart, gend);
        hd_end(&h);
        trim_name(&w, 0);
    }
    if (w.len == 0 && !w.trunc) {
        /* Nothing recognisable: show the value as an unstructured one. */
        hd_init(&h, &w, raw_charset(in, len));
        hd_feed(&h, in, len);
        hd_end(&h);
        trim_name(&w, 0);
    }
    return wb_end(&w);
}

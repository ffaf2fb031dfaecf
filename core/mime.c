/* MIME / RFC 5322 helpers.  See include/satchel/mime.h for the contract.
 *
 * Everything here runs on hostile input with caller-owned buffers, so the
 * design is: one bounded writer (wb) that only ever appends whole UTF-8
 * characters, and decoders that are state machines fed one byte at a time,
 * so no lookahead past `len` and no input can make them loop. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "satchel/mime.h"

/* <limits.h> is off the list for core/; int is at least as wide as this. */
#define MIME_INT_MAX ((size_t)(~0u >> 1))

#define REPL 0xFFFDu

/* ---- Small ASCII helpers (locale-free on purpose) ---------------------- */

static uint8_t lower(uint8_t c)
{
    return (c >= 'A' && c <= 'Z') ? (uint8_t)(c + 32) : c;
}

static bool is_digit(uint8_t c) { return c >= '0' && c <= '9'; }
static bool is_alpha(uint8_t c) { return lower(c) >= 'a' && lower(c) <= 'z'; }
static bool is_wsp(uint8_t c) { return c == ' ' || c == '\t'; }

static int hexval(uint8_t c)
{
    if (is_digit(c))
        return c - '0';
    c = lower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

static bool ieq(const char *a, size_t alen, const char *b)
{
    size_t blen = strlen(b);
    if (alen != blen)
        return false;
    for (size_t i = 0; i < alen; i++)
        if (lower((uint8_t)a[i]) != lower((uint8_t)b[i]))
            return false;
    return true;
}

/* ---- Bounded UTF-8 writer ---------------------------------------------- */

/* Once something does not fit, nothing more is written: a later shorter
 * character must not appear after a dropped one. */
typedef struct {
    char *p;
    size_t cap; /* usable bytes, NUL excluded; 0 when the caller gave 0 */
    size_t len;
    bool trunc;
    bool nocap; /* the caller's cap was 0: not even a NUL fits */
    bool filter; /* drop control characters, TAB -> space (header output) */
} wb;

static void wb_init(wb *w, char *out, size_t cap, bool filter)
{
    w->p = out;
    w->nocap = cap == 0;
    w->cap = cap ? cap - 1 : 0;
    if (w->cap > MIME_INT_MAX) /* lengths are returned as int */
        w->cap = MIME_INT_MAX;
    w->len = 0;
    w->trunc = false;
    w->filter = filter;
}

static void wb_bytes(wb *w, const uint8_t *s, size_t n)
{
    if (w->trunc)
        return;
    if (n > w->cap - w->len) {
        w->trunc = true;
        return;
    }
    memcpy(w->p + w->len, s, n);
    w->len += n;
}

static void wb_cp(wb *w, uint32_t cp)
{
    uint8_t b[4];
    size_t n;

    if (w->filter) {
        if (cp == '\t')
            cp = ' ';
        else if (cp < 0x20 || (cp >= 0x7F && cp <= 0x9F))
            return;
    }
    if (cp < 0x80) {
        b[0] = (uint8_t)cp;
        n = 1;
    } else if (cp < 0x800) {
        b[0] = (uint8_t)(0xC0 | (cp >> 6));
        b[1] = (uint8_t)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        b[0] = (uint8_t)(0xE0 | (cp >> 12));
        b[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        b[2] = (uint8_t)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        b[0] = (uint8_t)(0xF0 | (cp >> 18));
        b[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
        b[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        b[3] = (uint8_t)(0x80 | (cp & 0x3F));
        n = 4;
    }
    wb_bytes(w, b, n);
}

static void wb_str(wb *w, const char *s)
{
    while (*s)
        wb_cp(w, (uint8_t)*s++);
}

/* NUL-terminates and maps the state to the public return convention. */
static int wb_end(wb *w)
{
    if (w->nocap)
        return SATCHEL_E_RANGE;
    w->p[w->len] = '\0';
    return w->trunc ? SATCHEL_E_RANGE : (int)w->len;
}

/* ---- UTF-8 decoding ---------------------------------------------------- */

/* Byte-at-a-time so it can span encoded-words; replacement follows the
 * Unicode "maximal subpart" rule so results match other decoders. */
typedef struct {
    uint32_t cp;
    uint8_t need; /* continuation bytes still expected */
    uint8_t lo, hi; /* allowed range of the next continuation byte */
} u8dec;

static void u8_reset(u8dec *d) { d->cp = 0; d->need = 0; d->lo = 0x80; d->hi = 0xBF; }

static void u8_feed(u8dec *d, uint8_t b, wb *w)
{
    if (d->need) {
        if (b >= d->lo && b <= d->hi) {
            d->cp = (d->cp << 6) | (uint32_t)(b & 0x3F);
            d->lo = 0x80;
            d->hi = 0xBF;
            if (--d->need == 0)
                wb_cp(w, d->cp);
            return;
        }
        d->need = 0;
        wb_cp(w, REPL); /* the bad byte may start a new sequence */
    }
    d->lo = 0x80;
    d->hi = 0xBF;
    if (b < 0x80) {
        wb_cp(w, b);
        return;
    }
    if (b >= 0xC2 && b <= 0xDF) {
        d->need = 1;
        d->cp = b & 0x1Fu;
    } else if (b >= 0xE0 && b <= 0xEF) {
        d->need = 2;
        d->cp = b & 0x0Fu;
        if (b == 0xE0)
            d->lo = 0xA0; /* overlong */
        else if (b == 0xED)
            d->hi = 0x9F; /* surrogates */
    } else if (b >= 0xF0 && b <= 0xF4) {
        d->need = 3;
        d->cp = b & 0x07u;
        if (b == 0xF0)
            d->lo = 0x90; /* overlong */
        else if (b == 0xF4)
            d->hi = 0x8F; /* above U+10FFFF */
    } else {
        wb_cp(w, REPL);
    }
}

static void u8_flush(u8dec *d, wb *w)
{
    if (d->need) {
        d->need = 0;
        wb_cp(w, REPL);
    }
}

/* Length of the valid UTF-8 sequence at s, or 0 if there is none. */
static size_t u8_valid_seq(const uint8_t *s, size_t n)
{
    uint8_t b = s[0];
    size_t need;
    uint8_t lo = 0x80, hi = 0xBF;

    if (b < 0x80)
        return 1;
    if (b >= 0xC2 && b <= 0xDF)
        need = 1;
    else if (b >= 0xE0 && b <= 0xEF) {
        need = 2;
        if (b == 0xE0)
            lo = 0xA0;
        else if (b == 0xED)
            hi = 0x9F;
    } else if (b >= 0xF0 && b <= 0xF4) {
        need = 3;
        if (b == 0xF0)
            lo = 0x90;
        else if (b == 0xF4)
            hi = 0x8F;
    } else
        return 0;
    if (n < need + 1)
        return 0;
    for (size_t i = 1; i <= need; i++) {
        if (s[i] < lo || s[i] > hi)
            return 0;
        lo = 0x80;
        hi = 0xBF;
    }
    return need + 1;
}

static bool u8_valid(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        size_t k = u8_valid_seq(s + i, n - i);
        if (!k)
            return false;
        i += k;
    }
    return true;
}

size_t satchel_mime_utf8_tail(const uint8_t *in, size_t len)
{
    size_t k = 0, total;
    uint8_t lead, lo = 0x80, hi = 0xBF;

    if (!in)
        return 0;
    /* A sequence is at most 4 bytes, so at most 3 can be waiting. */
    while (k < 3 && k < len && (in[len - 1 - k] & 0xC0) == 0x80)
        k++;
    if (k == len)
        return 0;
    lead = in[len - 1 - k];
    if (lead >= 0xC2 && lead <= 0xDF)
        total = 2;
    else if (lead >= 0xE0 && lead <= 0xEF)
        total = 3;
    else if (lead >= 0xF0 && lead <= 0xF4)
        total = 4;
    else
        return 0;
    if (k + 1 >= total)
        return 0; /* complete, or too long to be one sequence */
    if (lead == 0xE0)
        lo = 0xA0;
    else if (lead == 0xED)
        hi = 0x9F;
    else if (lead == 0xF0)
        lo = 0x90;
    else if (lead == 0xF4)
        hi = 0x8F;
    /* Holding back bytes no continuation can fix would only delay U+FFFD. */
    if (k >= 1 && (in[len - k] < lo || in[len - k] > hi))
        return 0;
    return k + 1;
}

/* ---- Charsets ---------------------------------------------------------- */

enum { CS_UNKNOWN = -1, CS_UTF8 = 0, CS_1252, CS_8859_15 };

/* 0x80-0x9F of Windows-1252; 0 marks the five undefined bytes. */
static const uint16_t cp1252_hi[32] = {
    0x20AC, 0, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,
    0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0, 0x017D, 0,
    0, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
    0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0, 0x017E, 0x0178,
};

static int charset_lookup(const char *name, size_t len)
{
    static const char *const utf8[] = {"utf-8", "utf8", "csutf8",
                                       "unicode-1-1-utf-8", "x-unicode20utf8"};
    /* WHATWG maps all of these to windows-1252. */
    static const char *const w1252[] = {
        "windows-1252", "cp1252", "x-cp1252", "cswindows1252", "ms-ansi",
        "iso-8859-1", "iso8859-1", "iso_8859-1", "iso_8859-1:1987", "iso88591",
        "8859-1", "latin1", "latin-1", "l1", "iso-ir-100", "ibm819", "cp819",
        "csisolatin1", "us-ascii", "ascii", "us", "iso646-us", "ansi_x3.4-1968",
        "ansi_x3.4-1986", "iso-ir-6", "iso_646.irv:1991", "csascii", "ibm367",
        "cp367"};
    static const char *const l9[] = {
        "iso-8859-15", "iso8859-15", "iso_8859-15", "iso885915", "latin-9",
        "latin9", "l9", "csisolatin9", "iso_8859-15:1998"};
    size_t i;

    if (!name)
        return CS_UNKNOWN;
    for (i = 0; i < sizeof utf8 / sizeof utf8[0]; i++)
        if (ieq(name, len, utf8[i]))
            return CS_UTF8;
    for (i = 0; i < sizeof w1252 / sizeof w1252[0]; i++)
        if (ieq(name, len, w1252[i]))
            return CS_1252;
    for (i = 0; i < sizeof l9 / sizeof l9[0]; i++)
        if (ieq(name, len, l9[i]))
            return CS_8859_15;
    return CS_UNKNOWN;
}

bool satchel_mime_charset_known(const char *name, size_t len)
{
    return charset_lookup(name, len) != CS_UNKNOWN;
}

static uint32_t single_byte(int cs, uint8_t b)
{
    if (b < 0x80)
        return b;
    if (b < 0xA0) {
        /* C1 controls are never meant in mail and are dangerous in
         * terminals (0x9B is CSI), so undefined ones become U+FFFD. */
        if (cs == CS_1252 && cp1252_hi[b - 0x80])
            return cp1252_hi[b - 0x80];
        return REPL;
    }
    if (cs == CS_8859_15) {
        switch (b) {
        case 0xA4: return 0x20AC;
        case 0xA6: return 0x0160;
        case 0xA8: return 0x0161;
        case 0xB4: return 0x017D;
        case 0xB8: return 0x017E;
        case 0xBC: return 0x0152;
        case 0xBD: return 0x0153;
        case 0xBE: return 0x0178;
        default: break;
        }
    }
    return b;
}

static void cs_byte(int cs, u8dec *d, uint8_t b, wb *w)
{
    if (cs == CS_UTF8)
        u8_feed(d, b, w);
    else
        wb_cp(w, single_byte(cs, b));
}

int satchel_mime_to_utf8(const char *charset, size_t charset_len,
                         const uint8_t *in, size_t len,
                         char *out, size_t cap, size_t *out_len)
{
    wb w;
    u8dec d;
    int cs, rc;

    if (out_len)
        *out_len = 0;
    if ((!in && len) || (!out && cap) || (!charset && charset_len))
        return SATCHEL_E_INVAL;
    cs = charset_lookup(charset, charset_len);
    if (cs == CS_UNKNOWN) {
        if (cap)
            out[0] = '\0';
        return SATCHEL_E_NOTSUP;
    }
    wb_init(&w, out, cap, false);
    u8_reset(&d);
    for (size_t i = 0; i < len && !w.trunc; i++)
        cs_byte(cs, &d, in[i], &w);
    u8_flush(&d, &w);
    rc = wb_end(&w);
    if (out_len)
        *out_len = w.len;
    return rc < 0 ? rc : 0;
}

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
    e->enc = lower((uint8_t)s[i + 1]);
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
    e->cs = charset_lookup(s + cs_start, i - cs_start);
    return true;
}

static int b64val(uint8_t c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (is_digit(c)) return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
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
                       hexval((uint8_t)t[i + 1]) >= 0 &&
                       hexval((uint8_t)t[i + 2]) >= 0) {
                c = (uint8_t)(hexval((uint8_t)t[i + 1]) * 16 +
                              hexval((uint8_t)t[i + 2]));
                i += 2;
            }
            cs_byte(e->cs, &h->ewd, c, w);
        }
    } else {
        uint32_t acc = 0;
        unsigned bits = 0;
        for (size_t i = 0; i < e->text_len && !w->trunc; i++) {
            int v = b64val((uint8_t)t[i]);
            if (t[i] == '=')
                break;
            if (v < 0)
                continue;
            acc = (acc << 6) | (uint32_t)v;
            bits += 6;
            if (bits >= 8) {
                bits -= 8;
                cs_byte(e->cs, &h->ewd, (uint8_t)(acc >> bits), w);
                acc &= (1u << bits) - 1u;
            }
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
        cs_byte(h->raw_cs, &h->raw, c, h->w);
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
        size_t k = u8_valid_seq((const uint8_t *)s + i, n - i);
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
        if (pos - ls <= nlen || !ieq(hdr + ls, nlen, name))
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

/* ---- Dates ------------------------------------------------------------- */

static int64_t days_from_civil(int64_t y, int64_t m, int64_t d)
{
    /* Howard Hinnant's algorithm: proleptic Gregorian, no tables. */
    int64_t era, yoe, doy, doe;
    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int64_t *m, int64_t *d)
{
    int64_t era, doe, yoe, doy, mp;
    z += 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = z - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = yoe + era * 400 + (*m <= 2);
}

static int days_in_month(int y, int m)
{
    static const uint8_t dm[12] = {31, 28, 31, 30, 31, 30,
                                   31, 31, 30, 31, 30, 31};
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return 29;
    return dm[m - 1];
}

static const char months[] = "janfebmaraprmayjunjulaugsepoctnovdec";
static const char *const month_full[12] = {
    "january", "february", "march", "april", "may", "june", "july",
    "august", "september", "october", "november", "december"};

/* 1..12 for a 3-letter or full English month name, else 0. */
static int month_of(const char *s, size_t n)
{
    if (n < 3)
        return 0;
    for (int m = 0; m < 12; m++) {
        if (lower((uint8_t)s[0]) == months[3 * m] &&
            lower((uint8_t)s[1]) == months[3 * m + 1] &&
            lower((uint8_t)s[2]) == months[3 * m + 2] &&
            (n == 3 || ieq(s, n, month_full[m])))
            return m + 1;
    }
    return 0;
}

static bool is_weekday(const char *s, size_t n)
{
    static const char *const d[7] = {"monday", "tuesday", "wednesday",
                                     "thursday", "friday", "saturday",
                                     "sunday"};
    for (int i = 0; i < 7; i++)
        if ((n == 3 && lower((uint8_t)s[0]) == d[i][0] &&
             lower((uint8_t)s[1]) == d[i][1] &&
             lower((uint8_t)s[2]) == d[i][2]) ||
            ieq(s, n, d[i]))
            return true;
    return false;
}

/* Cursor over a date string; CFWS (spaces, folds, nested comments) is
 * skipped between tokens. */
typedef struct {
    const char *s;
    size_t n, i;
    bool bad;
} dcur;

static void d_cfws(dcur *c)
{
    while (c->i < c->n) {
        uint8_t ch = (uint8_t)c->s[c->i];
        if (is_wsp(ch) || ch == '\r' || ch == '\n') {
            c->i++;
        } else if (ch == '(') {
            size_t depth = 0;
            while (c->i < c->n) {
                ch = (uint8_t)c->s[c->i++];
                if (ch == '\\' && c->i < c->n)
                    c->i++;
                else if (ch == '(')
                    depth++;
                else if (ch == ')' && --depth == 0)
                    break;
            }
            if (depth) {
                c->bad = true; /* unterminated comment */
                return;
            }
        } else {
            return;
        }
    }
}

/* Reads 1..maxd digits; -1 if none. */
static long d_num(dcur *c, size_t maxd, size_t *ndig)
{
    long v = 0;
    size_t k = 0;
    d_cfws(c);
    while (c->i < c->n && is_digit((uint8_t)c->s[c->i])) {
        if (++k > maxd)
            return -1;
        v = v * 10 + (c->s[c->i++] - '0');
    }
    if (ndig)
        *ndig = k;
    return k ? v : -1;
}

static size_t d_word(dcur *c, const char **w)
{
    size_t st;
    d_cfws(c);
    st = c->i;
    while (c->i < c->n && is_alpha((uint8_t)c->s[c->i]))
        c->i++;
    *w = c->s + st;
    return c->i - st;
}

static bool d_char(dcur *c, char ch)
{
    d_cfws(c);
    if (c->i < c->n && c->s[c->i] == ch) {
        c->i++;
        return true;
    }
    return false;
}

static bool d_at_end(dcur *c)
{
    d_cfws(c);
    return !c->bad && c->i >= c->n;
}

static int named_zone(const char *w, size_t n)
{
    static const struct { char name[4]; int16_t min; } z[] = {
        {"ut", 0}, {"gmt", 0}, {"utc", 0}, {"est", -300}, {"edt", -240},
        {"cst", -360}, {"cdt", -300}, {"mst", -420}, {"mdt", -360},
        {"pst", -480}, {"pdt", -420}};
    for (size_t i = 0; i < sizeof z / sizeof z[0]; i++)
        if (ieq(w, n, z[i].name))
            return z[i].min;
    return 0; /* RFC 5322 4.3: unknown zones mean -0000 */
}

static bool mk_epoch(long y, long mo, long d, long h, long mi, long se,
                     int tz, int64_t *epoch, int *tz_min)
{
    int64_t t;
    if (y < 0 || y > 9999 || mo < 1 || mo > 12 || d < 1 ||
        d > days_in_month((int)y, (int)mo) || h < 0 || h > 23 || mi < 0 ||
        mi > 59 || se < 0 || se > 60)
        return false;
    t = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se -
        (int64_t)tz * 60;
    if (epoch)
        *epoch = t;
    if (tz_min)
        *tz_min = tz;
    return true;
}

/* "+hhmm" / "-hhmm" at the cursor (sign already peeked). */
static bool d_numzone(dcur *c, int *tz)
{
    int sign = c->s[c->i] == '-' ? -1 : 1;
    long hh, mm;
    size_t k = 0;

    c->i++;
    if (c->n - c->i < 4)
        return false;
    for (k = 0; k < 4; k++)
        if (!is_digit((uint8_t)c->s[c->i + k]))
            return false;
    hh = (c->s[c->i] - '0') * 10 + (c->s[c->i + 1] - '0');
    mm = (c->s[c->i + 2] - '0') * 10 + (c->s[c->i + 3] - '0');
    c->i += 4;
    if (mm > 59 || (c->i < c->n && is_digit((uint8_t)c->s[c->i])))
        return false;
    *tz = sign * (int)(hh * 60 + mm);
    return true;
}

int satchel_mime_parse_date(const char *s, size_t len, int64_t *epoch,
                            int *tz_min)
{
    dcur c = {s, len, 0, false};
    const char *w;
    size_t wl, nd;
    long day, mon, year, hh, mi, se = 0;
    int tz = 0;

    if (!s)
        return SATCHEL_E_INVAL;
    wl = d_word(&c, &w);
    if (wl) {
        if (!is_weekday(w, wl))
            return SATCHEL_E_INVAL;
        (void)d_char(&c, ',');
    }
    day = d_num(&c, 2, NULL);
    (void)d_char(&c, '-');
    wl = d_word(&c, &w);
    mon = month_of(w, wl);
    (void)d_char(&c, '-');
    year = d_num(&c, 4, &nd);
    if (c.bad || day < 0 || !mon || year < 0)
        return SATCHEL_E_INVAL;
    if (nd == 2)
        year += year < 50 ? 2000 : 1900;
    else if (nd == 3)
        year += 1900;
    else if (nd != 4)
        return SATCHEL_E_INVAL;
    hh = d_num(&c, 2, NULL);
    if (hh < 0 || !d_char(&c, ':'))
        return SATCHEL_E_INVAL;
    mi = d_num(&c, 2, NULL);
    if (mi < 0)
        return SATCHEL_E_INVAL;
    if (d_char(&c, ':')) {
        se = d_num(&c, 2, NULL);
        if (se < 0)
            return SATCHEL_E_INVAL;
    }
    d_cfws(&c);
    if (c.bad)
        return SATCHEL_E_INVAL;
    if (c.i < c.n && (c.s[c.i] == '+' || c.s[c.i] == '-')) {
        if (!d_numzone(&c, &tz))
            return SATCHEL_E_INVAL;
        (void)d_word(&c, &w); /* "+0200 CEST" */
    } else {
        wl = d_word(&c, &w);
        if (wl)
            tz = named_zone(w, wl);
    }
    if (!d_at_end(&c))
        return SATCHEL_E_INVAL;
    return mk_epoch(year, mon, day, hh, mi, se, tz, epoch, tz_min)
               ? 0 : SATCHEL_E_INVAL;
}

/* Exactly nd digits at s[*i]. */
static long fixed_num(const char *s, size_t n, size_t *i, size_t nd)
{
    long v = 0;
    if (n - *i < nd)
        return -1;
    for (size_t k = 0; k < nd; k++) {
        if (!is_digit((uint8_t)s[*i + k]))
            return -1;
        v = v * 10 + (s[*i + k] - '0');
    }
    *i += nd;
    return v;
}

int satchel_mime_parse_internaldate(const char *s, size_t len,
                                    int64_t *epoch, int *tz_min)
{
    size_t i = 0;
    long day, mon, year, hh, mi, se;
    dcur c;
    int tz;

    if (!s)
        return SATCHEL_E_INVAL;
    if (len >= 2 && s[0] == '"' && s[len - 1] == '"') {
        s++;
        len -= 2;
    }
    if (len > 0 && s[0] == ' ')
        i = 1; /* date-day-fixed: SP DIGIT */
    if (i == 0 && len >= 2 && is_digit((uint8_t)s[1]))
        day = fixed_num(s, len, &i, 2);
    else
        day = fixed_num(s, len, &i, 1);
    if (day < 0 || len - i < 5 || s[i] != '-' || s[i + 4] != '-')
        return SATCHEL_E_INVAL;
    mon = month_of(s + i + 1, 3);
    i += 5;
    year = fixed_num(s, len, &i, 4);
    if (!mon || year < 0 || i >= len || s[i++] != ' ')
        return SATCHEL_E_INVAL;
    hh = fixed_num(s, len, &i, 2);
    if (hh < 0 || i >= len || s[i++] != ':')
        return SATCHEL_E_INVAL;
    mi = fixed_num(s, len, &i, 2);
    if (mi < 0 || i >= len || s[i++] != ':')
        return SATCHEL_E_INVAL;
    se = fixed_num(s, len, &i, 2);
    if (se < 0 || i >= len || s[i++] != ' ' || i >= len ||
        (s[i] != '+' && s[i] != '-'))
        return SATCHEL_E_INVAL;
    c.s = s;
    c.n = len;
    c.i = i;
    c.bad = false;
    if (!d_numzone(&c, &tz) || c.i != len)
        return SATCHEL_E_INVAL;
    return mk_epoch(year, mon, day, hh, mi, se, tz, epoch, tz_min)
               ? 0 : SATCHEL_E_INVAL;
}

static void put_num(char *p, int64_t v, int nd)
{
    while (nd-- > 0) {
        p[nd] = (char)('0' + v % 10);
        v /= 10;
    }
}

int satchel_mime_format_rfc3339(int64_t epoch, int tz_min, char *out,
                                size_t cap)
{
    /* Years 0000..9999 with a day of slack either side; checked before
     * adding the offset so hostile values cannot overflow. */
    const int64_t lo = -62167219200 - 86400, hi = 253402300799 + 86400;
    int64_t local, days, secs, y, m, d;
    int atz;

    if (out && cap)
        out[0] = '\0';
    if (!out || cap < 26 || tz_min < -5999 || tz_min > 5999 || epoch < lo ||
        epoch > hi)
        return SATCHEL_E_RANGE;
    local = epoch + (int64_t)tz_min * 60;
    days = local / 86400;
    secs = local % 86400;
    if (secs < 0) {
        secs += 86400;
        days--;
    }
    civil_from_days(days, &y, &m, &d);
    if (y < 0 || y > 9999)
        return SATCHEL_E_RANGE;
    put_num(out, y, 4);
    out[4] = '-';
    put_num(out + 5, m, 2);
    out[7] = '-';
    put_num(out + 8, d, 2);
    out[10] = 'T';
    put_num(out + 11, secs / 3600, 2);
    out[13] = ':';
    put_num(out + 14, secs / 60 % 60, 2);
    out[16] = ':';
    put_num(out + 17, secs % 60, 2);
    out[19] = tz_min < 0 ? '-' : '+';
    atz = tz_min < 0 ? -tz_min : tz_min;
    put_num(out + 20, atz / 60, 2);
    out[22] = ':';
    put_num(out + 23, atz % 60, 2);
    out[25] = '\0';
    return 25;
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
    for (i = a; i < b;) {
        if (s[i] == '"')
            i = skip_quoted(s, b, i);
        else if (s[i] == '(')
            i = skip_comment(s, b, i);
        else if (s[i++] == ':')
            a = i;
    }
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
    bool at = false;
    size_t name_start;

    for (size_t i = a; i < b;) {
        if (s[i] == '"')
            i = skip_quoted(s, b, i);
        else if (s[i] == '(')
            i = skip_comment(s, b, i);
        else if (s[i++] == '@')
            at = true;
    }
    if (!at) { /* "root" or a bare phrase */
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
            size_t a = i + 1, b = a;
            while (b < len && in[b] != '>') {
                if (in[b] == '"')
                    b = skip_quoted(in, len, b);
                else if (in[b] == '(')
                    b = skip_comment(in, len, b);
                else
                    b++;
            }
            if (b > len)
                b = len;
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

/* ---- Base64 ------------------------------------------------------------ */

void satchel_mime_b64_init(satchel_mime_b64 *st)
{
    if (st) {
        st->acc = 0;
        st->bits = 0;
    }
}

size_t satchel_mime_b64_decode(satchel_mime_b64 *st, const uint8_t *in,
                               size_t len, size_t *consumed, uint8_t *out,
                               size_t cap)
{
    size_t i = 0, o = 0;

    if (!st || (!in && len) || (!out && cap)) {
        if (consumed)
            *consumed = 0;
        return 0;
    }
    if (st->bits > 6) /* never set by us: an uninitialised struct */
        satchel_mime_b64_init(st);
    /* Stop before a character that would need room we do not have; one
     * character never yields more than one byte. */
    for (; i < len; i++) {
        int v = b64val(in[i]);
        if (in[i] == '=') {
            /* Padding ends the quantum; leftover bits are padding. */
            st->acc = 0;
            st->bits = 0;
            continue;
        }
        if (v < 0)
            continue;
        if (st->bits >= 2 && o >= cap)
            break;
        st->acc = ((st->acc << 6) | (uint32_t)v) & 0x3FFFu;
        st->bits = (uint8_t)(st->bits + 6);
        if (st->bits >= 8) {
            st->bits = (uint8_t)(st->bits - 8);
            out[o++] = (uint8_t)(st->acc >> st->bits);
            st->acc &= (1u << st->bits) - 1u;
        }
    }
    if (consumed)
        *consumed = i;
    return o;
}

size_t satchel_mime_b64_finish(satchel_mime_b64 *st, uint8_t *out,
                               size_t cap)
{
    (void)out;
    (void)cap;
    /* Fewer than 8 leftover bits can only be padding or a cut quantum. */
    satchel_mime_b64_init(st);
    return 0;
}

/* ---- Quoted-printable -------------------------------------------------- */

/* States name what buf holds: input bytes whose meaning depends on what
 * comes next.  A byte that settles them either consumes itself or marks
 * buf as literal output ("flush") and is looked at again afterwards, so a
 * single call never has to emit more than it has room for. */
enum {
    QP_TEXT,   /* buf empty */
    QP_WS,     /* WSP+ */
    QP_WS_CR,  /* WSP* CR */
    QP_EQ,     /* "=" */
    QP_EQ_HEX, /* "=" HEX */
    QP_EQ_WS,  /* "=" WSP+ */
    QP_EQ_CR   /* "=" WSP* CR */
};

void satchel_mime_qp_init(satchel_mime_qp *st)
{
    if (st)
        memset(st, 0, sizeof *st);
}

static void qp_push(satchel_mime_qp *st, uint8_t c, uint8_t state)
{
    if (st->n < sizeof st->buf) /* only a caller-corrupted state is full */
        st->buf[st->n++] = c;
    st->state = state;
}

static void qp_literal(satchel_mime_qp *st)
{
    st->flush = 1;
    st->head = 0;
}

static void qp_discard(satchel_mime_qp *st)
{
    st->n = 0;
    st->state = QP_TEXT;
}

/* Returns 1 if c was consumed.  Called only with room for one byte. */
static size_t qp_step(satchel_mime_qp *st, uint8_t c, uint8_t *out, size_t *o)
{
    bool ws = is_wsp(c);

    switch (st->state) {
    case QP_TEXT:
        if (c == '=')
            qp_push(st, c, QP_EQ);
        else if (ws)
            qp_push(st, c, QP_WS);
        else if (c == '\r')
            qp_push(st, c, QP_WS_CR);
        else
            out[(*o)++] = c;
        return 1;
    case QP_WS:
        if (ws && st->n < SATCHEL_MIME_QP_WS_MAX) {
            qp_push(st, c, QP_WS);
            return 1;
        }
        if (c == '\r') {
            qp_push(st, c, QP_WS_CR);
            return 1;
        }
        if (c == '\n')
            qp_discard(st); /* trailing whitespace */
        else
            qp_literal(st);
        return 0;
    case QP_WS_CR:
        if (c == '\n') {
            st->buf[0] = '\r'; /* drop the whitespace, keep the CR */
            st->n = 1;
        }
        qp_literal(st);
        return 0;
    case QP_EQ:
        if (hexval(c) >= 0) {
            qp_push(st, c, QP_EQ_HEX);
            return 1;
        }
        if (ws) {
            qp_push(st, c, QP_EQ_WS);
            return 1;
        }
        if (c == '\r') {
            qp_push(st, c, QP_EQ_CR);
            return 1;
        }
        if (c == '\n') {
            qp_discard(st); /* soft line break */
            return 1;
        }
        qp_literal(st);
        return 0;
    case QP_EQ_HEX:
        if (hexval(c) >= 0) {
            out[(*o)++] = (uint8_t)(hexval(st->buf[1]) * 16 + hexval(c));
            qp_discard(st);
            return 1;
        }
        qp_literal(st);
        return 0;
    case QP_EQ_WS:
        if (ws && st->n < SATCHEL_MIME_QP_WS_MAX + 1) {
            qp_push(st, c, QP_EQ_WS);
            return 1;
        }
        if (c == '\r') {
            qp_push(st, c, QP_EQ_CR);
            return 1;
        }
        if (c == '\n') {
            qp_discard(st); /* soft line break with trailing whitespace */
            return 1;
        }
        qp_literal(st);
        return 0;
    default: /* QP_EQ_CR */
        if (c == '\n') {
            qp_discard(st);
            return 1;
        }
        qp_literal(st);
        return 0;
    }
}

/* Drains decided output; true when nothing is left waiting. */
static bool qp_drain(satchel_mime_qp *st, uint8_t *out, size_t cap, size_t *o)
{
    if (!st->flush)
        return true;
    while (st->head < st->n && *o < cap)
        out[(*o)++] = st->buf[st->head++];
    if (st->head < st->n)
        return false;
    st->flush = 0;
    st->head = 0;
    qp_discard(st);
    return true;
}

size_t satchel_mime_qp_decode(satchel_mime_qp *st, const uint8_t *in,
                              size_t len, size_t *consumed, uint8_t *out,
                              size_t cap)
{
    size_t i = 0, o = 0;

    if (!st || (!in && len) || (!out && cap)) {
        if (consumed)
            *consumed = 0;
        return 0;
    }
    if (st->state > QP_EQ_CR || st->n > sizeof st->buf || st->head > st->n)
        satchel_mime_qp_init(st); /* corrupt state: never index past buf */
    for (;;) {
        if (!qp_drain(st, out, cap, &o))
            break;
        if (i >= len || o >= cap)
            break;
        i += qp_step(st, in[i], out, &o);
    }
    if (consumed)
        *consumed = i;
    return o;
}

size_t satchel_mime_qp_finish(satchel_mime_qp *st, uint8_t *out, size_t cap)
{
    size_t o = 0;

    if (!st || (!out && cap))
        return 0;
    if (st->state > QP_EQ_CR || st->n > sizeof st->buf || st->head > st->n) {
        satchel_mime_qp_init(st);
        return 0;
    }
    if (!st->flush) {
        /* End of input ends the line: trailing whitespace and a final
         * soft break go; an unfinished "=X" is literal. */
        switch (st->state) {
        case QP_WS_CR:
            st->buf[0] = '\r';
            st->n = 1;
            qp_literal(st);
            break;
        case QP_EQ_HEX:
            qp_literal(st);
            break;
        default:
            qp_discard(st);
            break;
        }
    }
    if (qp_drain(st, out, cap, &o))
        satchel_mime_qp_init(st);
    return o;
}

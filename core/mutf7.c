/* Modified UTF-7 (RFC 3501 5.1.3) <-> UTF-8.  One pass each way, no state
 * outside the call, output bounded by the caller's buffer. */
#include "satchel/mutf7.h"

#include <stdint.h>

static const char b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == ',')
        return 63;
    return -1;
}

size_t satchel_utf8_next(const char *str, size_t n, uint32_t *cp)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t len, i;
    uint32_t c;
    if (n == 0)
        return 0;
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    if (s[0] >= 0xc2 && s[0] <= 0xdf)
        len = 2, c = s[0] & 0x1fu;
    else if (s[0] >= 0xe0 && s[0] <= 0xef)
        len = 3, c = s[0] & 0x0fu;
    else if (s[0] >= 0xf0 && s[0] <= 0xf4)
        len = 4, c = s[0] & 0x07u;
    else
        return 0;
    if (len > n)
        return 0;
    for (i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        c = c << 6 | (s[i] & 0x3fu);
    }
    if ((len == 3 && (c < 0x800 || (c >= 0xd800 && c <= 0xdfff))) ||
        (len == 4 && (c < 0x10000 || c > 0x10ffff)))
        return 0;
    *cp = c;
    return len;
}

struct out {
    char *buf;
    size_t cap, len;
    int full;
    int window;         /* write only the bytes from skip on, no NUL */
    uint64_t skip, pos; /* window: its start; bytes generated so far */
};

/* With no buffer (validation only) nothing is written or counted as full. */
static void put(struct out *o, char c)
{
    if (o->window) {
        if (o->pos++ >= o->skip && o->len < o->cap)
            o->buf[o->len++] = c;
    } else if (!o->buf)
        o->len++;
    else if (o->len + 1 < o->cap)
        o->buf[o->len++] = c;
    else
        o->full = 1;
}

static int fail(struct out *o, size_t *out_len, satchel_mutf7_error *err,
                int rc, size_t at, const char *why)
{
    if (o->buf && o->cap)
        o->buf[0] = '\0';
    if (out_len)
        *out_len = 0;
    if (err) {
        err->at = at;
        err->why = why;
    }
    return rc;
}

static int done(struct out *o, size_t *out_len, satchel_mutf7_error *err,
                size_t at)
{
    if (!o->buf)
        return 0;
    if (o->full || o->cap == 0)
        return fail(o, out_len, err, SATCHEL_E_RANGE, at,
                    "the converted name does not fit the buffer");
    o->buf[o->len] = '\0';
    if (out_len)
        *out_len = o->len;
    return 0;
}

static int encode(const char *utf8, size_t len, struct out *o, size_t *out_len,
                  satchel_mutf7_error *err);

int satchel_mutf7_encode(const char *utf8, size_t len, char *out, size_t cap,
                         size_t *out_len, satchel_mutf7_error *err)
{
    struct out o = {out, cap, 0, 0, 0, 0, 0};
    char none;
    if (!out) { /* no room, as for cap 0 */
        o.buf = &none;
        o.cap = 0;
    }
    return encode(utf8, len, &o, out_len, err);
}

int satchel_mutf7_encode_window(const char *utf8, size_t len, uint64_t skip, char *out,
                                size_t cap, size_t *written, uint64_t *total)
{
    struct out o = {out, out ? cap : 0, 0, 0, 1, skip, 0};
    int rc = encode(utf8, len, &o, NULL, NULL);
    *written = rc < 0 ? 0 : o.len;
    *total = rc < 0 ? 0 : o.pos;
    return rc;
}

int satchel_mutf7_encode_step(const char *utf8, size_t len, satchel_mutf7_state *st,
                              char *out, satchel_mutf7_error *err)
{
    int m = 0;
    uint32_t cp;
    size_t k;
    if (st->ended)
        return 0;
    if (st->in >= len) { /* the end closes a shifted section */
        if (st->shifted) {
            if (st->nbits)
                out[m++] = b64[(st->bits << (6 - st->nbits)) & 0x3f];
            out[m++] = '-';
        }
        st->ended = 1;
        return m;
    }
    k = satchel_utf8_next(utf8 + st->in, len - st->in, &cp);
    if (k == 0 || cp == 0) {
        if (err) {
            err->at = st->in;
            err->why = k == 0 ? "the name is not valid UTF-8" : "a mailbox name cannot hold NUL";
        }
        return SATCHEL_E_INVAL;
    }
    if (cp >= 0x20 && cp <= 0x7e) {
        if (st->shifted) {
            if (st->nbits)
                out[m++] = b64[(st->bits << (6 - st->nbits)) & 0x3f];
            out[m++] = '-';
            st->shifted = 0;
            st->nbits = 0;
        }
        out[m++] = (char)cp;
        if (cp == '&')
            out[m++] = '-';
    } else {
        uint32_t units[2];
        int n = 1, u;
        if (cp >= 0x10000) {
            units[0] = 0xd800 | ((cp - 0x10000) >> 10);
            units[1] = 0xdc00 | ((cp - 0x10000) & 0x3ff);
            n = 2;
        } else {
            units[0] = cp;
        }
        if (!st->shifted) {
            out[m++] = '&';
            st->shifted = 1;
            st->bits = 0;
        }
        for (u = 0; u < n; u++) {
            st->bits = (st->bits << 16 | units[u]) & 0x3fffffu;
            st->nbits = (uint8_t)(st->nbits + 16);
            while (st->nbits >= 6) {
                st->nbits = (uint8_t)(st->nbits - 6);
                out[m++] = b64[(st->bits >> st->nbits) & 0x3f];
            }
        }
    }
    st->in += k;
    return m;
}

static int encode(const char *utf8, size_t len, struct out *o, size_t *out_len,
                  satchel_mutf7_error *err)
{
    satchel_mutf7_state st = {0, 0, 0, 0, 0};
    satchel_mutf7_error why = {0, ""};
    char b[SATCHEL_MUTF7_STEP_MAX];
    int m, i;
    if (!utf8 && len)
        return fail(o, out_len, err, SATCHEL_E_INVAL, 0, "NULL name");
    while ((m = satchel_mutf7_encode_step(utf8, len, &st, b, &why)) > 0)
        for (i = 0; i < m; i++)
            put(o, b[i]);
    if (m < 0)
        return fail(o, out_len, err, m, why.at, why.why);
    if (o->window)
        return 0;
    return done(o, out_len, err, len);
}

static void put_utf8(struct out *o, uint32_t cp)
{
    if (cp < 0x80) {
        put(o, (char)cp);
    } else if (cp < 0x800) {
        put(o, (char)(0xc0 | cp >> 6));
        put(o, (char)(0x80 | (cp & 0x3f)));
    } else if (cp < 0x10000) {
        put(o, (char)(0xe0 | cp >> 12));
        put(o, (char)(0x80 | (cp >> 6 & 0x3f)));
        put(o, (char)(0x80 | (cp & 0x3f)));
    } else {
        put(o, (char)(0xf0 | cp >> 18));
        put(o, (char)(0x80 | (cp >> 12 & 0x3f)));
        put(o, (char)(0x80 | (cp >> 6 & 0x3f)));
        put(o, (char)(0x80 | (cp & 0x3f)));
    }
}

static int decode(const char *mutf7, size_t len, char *out, size_t cap,
                  size_t *out_len, satchel_mutf7_error *err)
{
    const unsigned char *s = (const unsigned char *)mutf7;
    struct out o = {out, cap, 0, 0, 0, 0, 0};
    size_t i = 0, section_end = (size_t)-1;
    if (!mutf7 && len)
        return fail(&o, out_len, err, SATCHEL_E_INVAL, 0, "NULL name");
    while (i < len) {
        uint32_t bits = 0, high = 0;
        unsigned nbits = 0;
        size_t start;
        if (s[i] < 0x20 || s[i] > 0x7e)
            return fail(&o, out_len, err, SATCHEL_E_INVAL, i,
                        "a byte outside printable US-ASCII");
        if (s[i] != '&') {
            put(&o, (char)s[i++]);
            continue;
        }
        if (i + 1 < len && s[i + 1] == '-') {
            put(&o, '&');
            i += 2;
            continue;
        }
        if (i == section_end)
            return fail(&o, out_len, err, SATCHEL_E_INVAL, i,
                        "two shifted sections in a row (they must be one)");
        start = i++;
        for (;;) {
            int v;
            if (i == len)
                return fail(&o, out_len, err, SATCHEL_E_INVAL, start,
                            "a shifted section without its closing '-'");
            if (s[i] == '-')
                break;
            v = b64_value(s[i]);
            if (v < 0)
                return fail(&o, out_len, err, SATCHEL_E_INVAL, i,
                            "a character outside modified base64 in a "
                            "shifted section");
            bits = (bits << 6 | (uint32_t)v) & 0xffffffu;
            nbits += 6;
            if (nbits >= 16) {
                uint32_t u = (bits >> (nbits - 16)) & 0xffff;
                nbits -= 16;
                if (high) {
                    if (u < 0xdc00 || u > 0xdfff)
                        return fail(&o, out_len, err, SATCHEL_E_INVAL, i,
                                    "a UTF-16 high surrogate without its low "
                                    "surrogate");
                    put_utf8(&o, 0x10000 + ((high - 0xd800) << 10) +
                                     (u - 0xdc00));
                    high = 0;
                } else if (u >= 0xd800 && u <= 0xdbff) {
                    high = u;
                } else if (u >= 0xdc00 && u <= 0xdfff) {
                    return fail(&o, out_len, err, SATCHEL_E_INVAL, i,
                                "a UTF-16 low surrogate without its high "
                                "surrogate");
                } else if (u == 0) {
                    return fail(&o, out_len, err, SATCHEL_E_INVAL, i,
                                "a shifted section that encodes NUL");
                } else if (u >= 0x20 && u <= 0x7e) {
                    return fail(&o, out_len, err, SATCHEL_E_INVAL, i,
                                "a shifted section that encodes printable "
                                "US-ASCII (it must stand for itself)");
                } else {
                    put_utf8(&o, u);
                }
            }
            i++;
        }
        if (high)
            return fail(&o, out_len, err, SATCHEL_E_INVAL, i,
                        "a UTF-16 high surrogate at the end of a shifted "
                        "section");
        if (nbits >= 6 || (bits & ((1u << nbits) - 1)) != 0)
            return fail(&o, out_len, err, SATCHEL_E_INVAL, i,
                        "a shifted section with leftover or non-zero "
                        "padding bits");
        i++;
        section_end = i;
    }
    return done(&o, out_len, err, len);
}

int satchel_mutf7_decode(const char *mutf7, size_t len, char *out, size_t cap,
                         size_t *out_len, satchel_mutf7_error *err)
{
    char none;
    /* A NULL out means "no room", never "validate only". */
    if (!out) {
        out = &none;
        cap = 0;
    }
    return decode(mutf7, len, out, cap, out_len, err);
}

int satchel_mutf7_valid(const char *s, size_t len)
{
    return decode(s, len, NULL, 0, NULL, NULL) == 0;
}

int satchel_utf8_valid(const char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        uint32_t cp;
        size_t k = satchel_utf8_next(s + i, len - i, &cp);
        if (k == 0 || cp == 0)
            return 0;
        i += k;
    }
    return 1;
}

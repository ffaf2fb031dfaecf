/* Inside core/mime*.c: ASCII helpers, the bounded UTF-8 writer and the
 * UTF-8 decoder that every part of the MIME module shares.  Not a public
 * header.  Everything is static inline so each file takes what it uses. */
#ifndef SATCHEL_MIME_INT_H
#define SATCHEL_MIME_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "satchel/ascii.h"
#include "satchel/mime.h"
#include "satchel/mutf7.h"

/* <limits.h> is off the list for core/; int is at least as wide as this. */
#define MIME_INT_MAX ((size_t)(~0u >> 1))

#define REPL 0xFFFDu

/* ---- Small ASCII helpers (locale-free on purpose) ---------------------- */

/* Case rules and hex digits come from satchel/ascii.h, as everywhere in
 * the engine. */
static inline bool is_digit(uint8_t c) { return c >= '0' && c <= '9'; }
static inline bool is_alpha(uint8_t c)
{
    char l = satchel_ascii_lower((char)c);
    return l >= 'a' && l <= 'z';
}
static inline bool is_wsp(uint8_t c) { return c == ' ' || c == '\t'; }

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

static inline void wb_init(wb *w, char *out, size_t cap, bool filter)
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

static inline void wb_bytes(wb *w, const uint8_t *s, size_t n)
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

static inline void wb_cp(wb *w, uint32_t cp)
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

static inline void wb_str(wb *w, const char *s)
{
    while (*s)
        wb_cp(w, (uint8_t)*s++);
}

/* NUL-terminates and maps the state to the public return convention. */
static inline int wb_end(wb *w)
{
    if (w->nocap)
        return SATCHEL_E_RANGE;
    w->p[w->len] = '\0';
    return w->trunc ? SATCHEL_E_RANGE : (int)w->len;
}

/* ---- UTF-8 decoding ---------------------------------------------------- */

/* RFC 3629 4: how many continuation bytes follow the lead byte b (1..3),
 * and the range the first of them must be in (overlongs, surrogates and
 * code points above U+10FFFF are out of it; later ones are 0x80..0xBF).
 * 0 for ASCII and for bytes no sequence starts with. */
static inline uint8_t u8_lead(uint8_t b, uint8_t *lo, uint8_t *hi)
{
    *lo = 0x80;
    *hi = 0xBF;
    if (b >= 0xC2 && b <= 0xDF)
        return 1;
    if (b >= 0xE0 && b <= 0xEF) {
        if (b == 0xE0)
            *lo = 0xA0;
        else if (b == 0xED)
            *hi = 0x9F;
        return 2;
    }
    if (b >= 0xF0 && b <= 0xF4) {
        if (b == 0xF0)
            *lo = 0x90;
        else if (b == 0xF4)
            *hi = 0x8F;
        return 3;
    }
    return 0;
}

/* Byte-at-a-time so it can span encoded-words; replacement follows the
 * Unicode "maximal subpart" rule so results match other decoders. */
typedef struct {
    uint32_t cp;
    uint8_t need; /* continuation bytes still expected */
    uint8_t lo, hi; /* allowed range of the next continuation byte */
} u8dec;

static inline void u8_reset(u8dec *d) { d->cp = 0; d->need = 0; d->lo = 0x80; d->hi = 0xBF; }

static inline void u8_feed(u8dec *d, uint8_t b, wb *w)
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
    d->need = u8_lead(b, &d->lo, &d->hi);
    if (d->need)
        d->cp = b & (0x7Fu >> (d->need + 1)); /* the lead's payload bits */
    else
        wb_cp(w, REPL);
}

static inline void u8_flush(u8dec *d, wb *w)
{
    if (d->need) {
        d->need = 0;
        wb_cp(w, REPL);
    }
}

/* Whole input valid UTF-8 (NUL allowed: this judges a header's charset,
 * not a name). */
static inline bool u8_valid(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint32_t cp;
        size_t k = satchel_utf8_next((const char *)s + i, n - i, &cp);
        if (!k)
            return false;
        i += k;
    }
    return true;
}

/* ---- Charsets (mime_charset.c) ---------------------------------------- */

enum { CS_UNKNOWN = -1, CS_UTF8 = 0, CS_1252, CS_8859_15 };

/* The CS_* of a charset name (len bytes, any case), or CS_UNKNOWN. */
int mime_charset_lookup(const char *name, size_t len);
/* Feed one byte in charset cs to the UTF-8 decoder d, writing to w. */
void mime_cs_byte(int cs, u8dec *d, uint8_t b, wb *w);

#endif

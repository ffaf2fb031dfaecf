/* The console's output: a small line buffer written through the transport
 * as it fills (a long listing costs no memory), and the key-value emitter
 * that renders every field as JSON or as text. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "console_int.h"
#include "satchel/mutf7.h"

static void flush(satchel_console *con)
{
    if (con->line_len) {
        con->io.write(con->io.ctx, con->line, con->line_len);
        con->line_len = 0;
        con->kv_wrote = 1;
    }
}

static void put(satchel_console *con, const char *s, size_t n)
{
    while (n > 0) {
        size_t room = sizeof con->line - con->line_len, k;
        if (room == 0) {
            flush(con);
            continue;
        }
        k = n < room ? n : room;
        memcpy(con->line + con->line_len, s, k);
        con->line_len += k;
        s += k;
        n -= k;
    }
}

static void puts_(satchel_console *con, const char *s)
{
    put(con, s, strlen(s));
}

/* Length of the valid UTF-8 sequence at s (max n bytes), 0 if invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    uint32_t cp;
    return satchel_utf8_next((const char *)s, n, &cp);
}

/* JSON string content: escapes, and U+FFFD for bytes that are not UTF-8,
 * so the output is always valid JSON whatever a server sent. */
static void jstr_n(satchel_console *con, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    while (p < end) {
        size_t k;
        if (*p == '"' || *p == '\\') {
            put(con, "\\", 1);
            put(con, (const char *)p, 1);
            p++;
        } else if (*p < 0x20 || *p == 0x7f) {
            char esc[8];
            snprintf(esc, sizeof esc, "\\u%04x", *p);
            puts_(con, esc);
            p++;
        } else if ((k = utf8_len(p, (size_t)(end - p))) == 0) {
            puts_(con, "\xef\xbf\xbd");
            p++;
        } else if (k == 2 && p[0] == 0xc2 && p[1] < 0xa0) {
            /* C1 controls are legal JSON, but escaped they cannot reach a
             * terminal that shows the JSON. */
            char esc[8];
            snprintf(esc, sizeof esc, "\\u%04x", p[1]);
            puts_(con, esc);
            p += 2;
        } else {
            put(con, (const char *)p, k);
            p += k;
        }
    }
}

static void jstr(satchel_console *con, const char *s, size_t n)
{
    put(con, "\"", 1);
    jstr_n(con, s, n);
    put(con, "\"", 1);
}

/* Text: the bytes at s, at most `max` characters of them, with everything
 * that could move a terminal escaped.  keep_nl lets newline and tab
 * through (bodies).  Returns the characters shown; with `dry` nothing is
 * written (for measuring a field's width). */
static size_t text_escaped(satchel_console *con, const char *s, size_t n,
                           size_t max, int keep_nl, int dry)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    size_t shown = 0;
    while (p < end && shown < max) {
        size_t k = utf8_len(p, (size_t)(end - p));
        int ctl = k == 0 || *p < 0x20 || *p == 0x7f ||
                  (k == 2 && p[0] == 0xc2 && p[1] < 0xa0);
        if (ctl && keep_nl && (*p == '\n' || *p == '\t'))
            ctl = 0;
        if (ctl) {
            /* \xNN is four characters; a C1 control shows its code. */
            char esc[8];
            unsigned v = k == 2 ? p[1] : *p;
            if (shown + 4 > max)
                break;
            if (!dry) {
                snprintf(esc, sizeof esc, "\\x%02X", v);
                put(con, esc, 4);
            }
            shown += 4;
            p += k ? k : 1;
        } else {
            if (!dry)
                put(con, (const char *)p, k);
            shown++;
            p += k;
        }
    }
    return shown;
}

static void pad(satchel_console *con, size_t n)
{
    while (n--)
        put(con, " ", 1);
}

/* Render `fmt` with one value (see console_int.h). */
static void text_field(satchel_console *con, const char *fmt, const char *s,
                       size_t n)
{
    while (*fmt) {
        int left = 0;
        size_t width = 0, prec = (size_t)-1, shown;
        const char *lit = fmt;
        while (*fmt && *fmt != '%')
            fmt++;
        put(con, lit, (size_t)(fmt - lit));
        if (!*fmt)
            break;
        fmt++;
        if (*fmt == '%') {
            put(con, "%", 1);
            fmt++;
            continue;
        }
        if (*fmt == '-') {
            left = 1;
            fmt++;
        }
        while (*fmt >= '0' && *fmt <= '9')
            width = width * 10 + (size_t)(*fmt++ - '0');
        if (*fmt == '.') {
            prec = 0;
            fmt++;
            while (*fmt >= '0' && *fmt <= '9')
                prec = prec * 10 + (size_t)(*fmt++ - '0');
        }
        if (*fmt)
            fmt++; /* the conversion: s or u, both shown as given */
        shown = text_escaped(con, s, n, prec, 0, 1);
        if (!left && shown < width)
            pad(con, width - shown);
        text_escaped(con, s, n, prec, 0, 0);
        if (left && shown < width)
            pad(con, width - shown);
    }
}

/* ---- JSON structure ---- */

#define MORE(con) ((con)->kv_more & (1u << (con)->kv_depth))

static void key(satchel_console *con, const char *k)
{
    if (MORE(con))
        put(con, ",", 1);
    con->kv_more |= 1u << con->kv_depth;
    if (k) {
        jstr(con, k, strlen(k));
        put(con, ":", 1);
    }
}

static void open_(satchel_console *con, const char *k, const char *bracket)
{
    if (!con->json)
        return;
    key(con, k);
    puts_(con, bracket);
    if (con->kv_depth < 31)
        con->kv_depth++;
    con->kv_more &= ~(1u << con->kv_depth);
    if (bracket[0] == '[')
        con->kv_array |= 1u << con->kv_depth;
    else
        con->kv_array &= ~(1u << con->kv_depth);
}

static void close_(satchel_console *con, const char *bracket)
{
    if (!con->json)
        return;
    puts_(con, bracket);
    if (con->kv_depth > 0)
        con->kv_depth--;
}

void con_kv_begin(satchel_console *con)
{
    con->kv_depth = 0;
    con->kv_more = 0;
    con->kv_array = 0;
    con->kv_wrote = 0;
    if (con->json) {
        put(con, "{", 1);
        con->kv_depth = 1;
    }
}

int con_kv_end(satchel_console *con)
{
    /* Listings skip damaged records rather than stop: say how many. */
    uint64_t damaged = con->app && con->app->store
                           ? satchel_store_damaged(con->app->store) - con->damaged_mark
                           : 0;
    if (damaged) {
        while (con->json && con->kv_depth > 1)
            close_(con, con->kv_array & (1u << con->kv_depth) ? "]" : "}");
        con->damaged_mark += damaged;
        con_kv_u64(con, "damaged_skipped", damaged,
                   "warning: %u damaged records skipped (see store check)\n");
    }
    if (con->json) {
        /* Whatever a command left open is closed in order. */
        while (con->kv_depth > 0) {
            put(con, con->kv_array & (1u << con->kv_depth) ? "]" : "}", 1);
            con->kv_depth--;
        }
        put(con, "\n", 1);
    }
    flush(con);
    return 0;
}

void con_kv_obj(satchel_console *con, const char *k) { open_(con, k, "{"); }
void con_kv_obj_end(satchel_console *con) { close_(con, "}"); }
void con_kv_list(satchel_console *con, const char *k) { open_(con, k, "["); }
void con_kv_list_end(satchel_console *con) { close_(con, "]"); }

void con_kv_item(satchel_console *con)
{
    if (con->json) {
        if (MORE(con))
            put(con, ",", 1);
        con->kv_more |= 1u << con->kv_depth;
        put(con, "{", 1);
        if (con->kv_depth < 31)
            con->kv_depth++;
        con->kv_more &= ~(1u << con->kv_depth);
        con->kv_array &= ~(1u << con->kv_depth);
    }
}

void con_kv_item_end(satchel_console *con)
{
    if (con->json)
        close_(con, "}");
    else
        flush(con);
}

void con_flush(satchel_console *con)
{
    flush(con);
}

void con_kv_strn(satchel_console *con, const char *k, const char *s, size_t n,
                 const char *fmt)
{
    if (con->json) {
        if (k) {
            key(con, k);
            jstr(con, s, n);
        }
    } else if (fmt) {
        text_field(con, fmt, s, n);
    }
}

void con_kv_str(satchel_console *con, const char *k, const char *s,
                const char *fmt)
{
    con_kv_strn(con, k, s ? s : "", s ? strlen(s) : 0, fmt);
}

/* A number already in decimal: bare in JSON, through fmt in text. */
static void kv_num(satchel_console *con, const char *k, const char *num, int n,
                   const char *fmt)
{
    if (con->json) {
        if (k) {
            key(con, k);
            put(con, num, (size_t)n);
        }
    } else if (fmt) {
        text_field(con, fmt, num, (size_t)n);
    }
}

void con_kv_u64(satchel_console *con, const char *k, uint64_t v,
                const char *fmt)
{
    char num[24];
    kv_num(con, k, num, snprintf(num, sizeof num, "%llu", (unsigned long long)v), fmt);
}

void con_kv_i64(satchel_console *con, const char *k, int64_t v,
                const char *fmt)
{
    char num[24];
    kv_num(con, k, num, snprintf(num, sizeof num, "%lld", (long long)v), fmt);
}

void con_kv_bool(satchel_console *con, const char *k, int v, const char *fmt)
{
    if (con->json) {
        if (k) {
            key(con, k);
            puts_(con, v ? "true" : "false");
        }
    } else if (fmt) {
        text_field(con, fmt, v ? "yes" : "no", v ? 3 : 2);
    }
}

void con_kv_null(satchel_console *con, const char *k)
{
    if (con->json && k) {
        key(con, k);
        puts_(con, "null");
    }
}

void con_kv_flags(satchel_console *con, const char *k, uint32_t flags,
                  const char *kw, const char *fmt)
{
    size_t i;
    if (!con->json) {
        char f[6] = "-----";
        static const char letters[] = "SAFDd";
        if (!fmt)
            return;
        for (i = 0; i < 5; i++)
            if (flags & (1u << i))
                f[i] = letters[i];
        text_field(con, fmt, f, 5);
        return;
    }
    if (!k)
        return;
    key(con, k);
    put(con, "[", 1);
    {
        int first = 1;
        for (i = 0; i < SATCHEL_FLAG_COUNT; i++) {
            if (flags & (1u << i)) {
                const char *name = satchel_flag_name((unsigned)i);
                if (!first)
                    put(con, ",", 1);
                jstr(con, name, strlen(name));
                first = 0;
            }
        }
        while (kw && *kw) {
            size_t n = strcspn(kw, " ");
            if (n) {
                if (!first)
                    put(con, ",", 1);
                jstr(con, kw, n);
                first = 0;
            }
            kw += n;
            while (*kw == ' ')
                kw++;
        }
    }
    put(con, "]", 1);
}

void con_kv_stream_begin(satchel_console *con, const char *k)
{
    if (con->json) {
        key(con, k);
        put(con, "\"", 1);
    }
}

void con_kv_stream(satchel_console *con, const char *data, size_t n, int raw)
{
    if (con->json)
        jstr_n(con, data, n);
    else if (raw && !con->tty)
        put(con, data, n);
    else
        text_escaped(con, data, n, (size_t)-1, 1, 0);
}

void con_kv_stream_end(satchel_console *con)
{
    if (con->json)
        put(con, "\"", 1);
}

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void b64_group(satchel_console *con, const uint8_t *g, size_t n)
{
    char q[4];
    uint32_t v = (uint32_t)g[0] << 16 | (n > 1 ? (uint32_t)g[1] << 8 : 0) |
                 (n > 2 ? g[2] : 0);
    q[0] = b64_alphabet[v >> 18 & 63];
    q[1] = b64_alphabet[v >> 12 & 63];
    q[2] = n > 1 ? b64_alphabet[v >> 6 & 63] : '=';
    q[3] = n > 2 ? b64_alphabet[v & 63] : '=';
    put(con, q, 4);
}

void con_kv_b64_begin(satchel_console *con, const char *k)
{
    con->b64_n = 0;
    if (con->json) {
        key(con, k);
        put(con, "\"", 1);
    }
}

void con_kv_b64(satchel_console *con, const uint8_t *data, size_t n)
{
    if (!con->json)
        return;
    while (n > 0) {
        if (con->b64_n == 0 && n >= 3) {
            b64_group(con, data, 3);
            data += 3;
            n -= 3;
            continue;
        }
        con->b64_carry[con->b64_n++] = *data++;
        n--;
        if (con->b64_n == 3) {
            b64_group(con, con->b64_carry, 3);
            con->b64_n = 0;
        }
    }
}

void con_kv_b64_end(satchel_console *con)
{
    if (!con->json)
        return;
    if (con->b64_n)
        b64_group(con, con->b64_carry, con->b64_n);
    con->b64_n = 0;
    put(con, "\"", 1);
}

int con_error(satchel_console *con, int rc, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    con->line_len = 0;
    if (con->json && con->kv_wrote)
        put(con, "\n", 1); /* a JSON line already half out: end it */
    con->kv_wrote = 0;
    con_kv_begin(con);
    con_kv_bool(con, "ok", 0, NULL);
    con_kv_str(con, "error", buf, "error: %s\n");
    con_kv_i64(con, "code", rc, NULL);
    con_kv_end(con);
    return rc;
}

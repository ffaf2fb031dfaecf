/* Shared helpers for the libFuzzer harnesses and their plain replay builds.
 *
 * Header-only (static functions) so every harness is one translation unit
 * plus replay_main.c or libFuzzer's main.  A failed check prints what broke
 * and aborts, which libFuzzer reports as a crash with a reproducer and the
 * replay executable turns into a non-zero exit. */
#ifndef SATCHEL_FUZZ_COMMON_H
#define SATCHEL_FUZZ_COMMON_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "satchel/imap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#if defined(__GNUC__) || defined(__clang__)
#define FZ_UNUSED __attribute__((unused))
#define FZ_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define FZ_UNUSED
#define FZ_PRINTF(a, b)
#endif

static void fz_fail(const char *file, int line, const char *cond,
                    const char *fmt, ...) FZ_PRINTF(4, 5);
static FZ_UNUSED void fz_fail(const char *file, int line, const char *cond,
                              const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "FUZZ CHECK FAILED %s:%d: %s: ", file, line, cond);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
    fflush(stderr);
    abort();
}

/* FZ_CHECK(cond, fmt, ...): the format string is mandatory. */
#define FZ_CHECK(cond, ...)                                                    \
    do {                                                                       \
        if (!(cond))                                                           \
            fz_fail(__FILE__, __LINE__, #cond, __VA_ARGS__);                   \
    } while (0)

/* ---- growable byte buffer ---------------------------------------------- */

typedef struct fz_buf {
    char *p;
    size_t n, cap;
} fz_buf;

static FZ_UNUSED void fz_buf_put(fz_buf *b, const void *s, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        char *np;
        while (cap < b->n + n + 1)
            cap *= 2;
        np = realloc(b->p, cap);
        if (!np)
            abort();
        b->p = np;
        b->cap = cap;
    }
    if (n)
        memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static FZ_UNUSED void fz_buf_puts(fz_buf *b, const char *s)
{
    fz_buf_put(b, s, strlen(s));
}

static void fz_buf_printf(fz_buf *b, const char *fmt, ...) FZ_PRINTF(2, 3);
static FZ_UNUSED void fz_buf_printf(fz_buf *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    int n;
    va_start(ap, fmt);
    n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0)
        fz_buf_put(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

static FZ_UNUSED void fz_buf_reset(fz_buf *b)
{
    b->n = 0;
    if (b->p)
        b->p[0] = '\0';
}

static FZ_UNUSED void fz_buf_free(fz_buf *b)
{
    free(b->p);
    b->p = NULL;
    b->n = b->cap = 0;
}

/* ---- deterministic chunking -------------------------------------------- */

/* Chunk sizes from a seed byte: 0 means "everything at once"; otherwise a
 * xorshift stream gives sizes 1..max, where max grows with the seed so small
 * seeds split finely (down to one byte at a time for seed 1). */
typedef struct fz_chunker {
    uint32_t x;
    size_t max; /* 0: unlimited */
} fz_chunker;

static FZ_UNUSED void fz_chunker_init(fz_chunker *ch, uint8_t seed)
{
    ch->x = 0x9e3779b9u ^ (uint32_t)seed * 0x85ebca6bu;
    if (!ch->x)
        ch->x = 1;
    if (seed == 0)
        ch->max = 0;
    else if (seed < 64)
        ch->max = seed;
    else if (seed < 128)
        ch->max = (size_t)(seed - 63) * 16u;
    else
        ch->max = (size_t)(seed - 127) * 128u;
}

static FZ_UNUSED uint32_t fz_rand(fz_chunker *ch)
{
    uint32_t x = ch->x;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    ch->x = x;
    return x;
}

static FZ_UNUSED size_t fz_chunk(fz_chunker *ch, size_t left)
{
    size_t n;
    if (ch->max == 0)
        return left;
    n = 1 + fz_rand(ch) % ch->max;
    return n < left ? n : left;
}

/* ---- UTF-8 ------------------------------------------------------------- */

static FZ_UNUSED int fz_utf8_valid(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t b = s[i];
        size_t need, k;
        uint8_t lo = 0x80, hi = 0xBF;
        if (b < 0x80) {
            i++;
            continue;
        }
        if (b >= 0xC2 && b <= 0xDF)
            need = 1;
        else if (b >= 0xE0 && b <= 0xEF) {
            need = 2;
            if (b == 0xE0)
                lo = 0xA0;
            if (b == 0xED)
                hi = 0x9F;
        } else if (b >= 0xF0 && b <= 0xF4) {
            need = 3;
            if (b == 0xF0)
                lo = 0x90;
            if (b == 0xF4)
                hi = 0x8F;
        } else
            return 0;
        if (n - i < need + 1)
            return 0;
        for (k = 1; k <= need; k++) {
            if (s[i + k] < lo || s[i + k] > hi)
                return 0;
            lo = 0x80;
            hi = 0xBF;
        }
        i += need + 1;
    }
    return 1;
}

/* ---- IMAP response dumps and tree invariants --------------------------- */

static FZ_UNUSED void fz_check_args(const satchel_imap_arg *a, unsigned depth,
                                    unsigned max_depth)
{
    FZ_CHECK(depth <= max_depth + 1, "tree depth %u > %u", depth, max_depth);
    for (; a; a = a->next) {
        uint32_t n = 0;
        const satchel_imap_arg *k;
        FZ_CHECK(a->type >= SATCHEL_ARG_ATOM && a->type <= SATCHEL_ARG_TEXT,
                 "arg type %u", a->type);
        FZ_CHECK(a->str != NULL, "NULL str");
        switch (a->type) {
        case SATCHEL_ARG_LIST:
            for (k = a->child; k; k = k->next)
                n++;
            FZ_CHECK(n == a->len, "list len %u but %u children", a->len, n);
            fz_check_args(a->child, depth + 1, max_depth);
            break;
        case SATCHEL_ARG_NIL:
            /* str keeps the spelling ("nil", "NIL"): a LIST name. */
            FZ_CHECK(a->len == 0 && a->size == 0 && (a->str[0] | 0x20) == 'n' &&
                         (a->str[1] | 0x20) == 'i' && (a->str[2] | 0x20) == 'l' &&
                         a->str[3] == '\0',
                     "NIL with len %u", a->len);
            break;
        default:
            FZ_CHECK(a->str[a->len] == '\0', "str not NUL-terminated at len");
            FZ_CHECK(a->size >= a->len, "size %llu < len %u",
                     (unsigned long long)a->size, a->len);
            FZ_CHECK(!!(a->flags & SATCHEL_ARG_F_TRUNCATED) ==
                         (a->size > a->len),
                     "TRUNCATED flag %u but size %llu len %u", a->flags,
                     (unsigned long long)a->size, a->len);
            if (a->type == SATCHEL_ARG_ATOM)
                FZ_CHECK(a->len > 0 && memchr(a->str, 0, a->len) == NULL,
                         "empty atom or NUL in atom");
            if (a->type == SATCHEL_ARG_STRING &&
                !(a->flags & SATCHEL_ARG_F_LITERAL))
                FZ_CHECK(memchr(a->str, '\r', a->len) == NULL &&
                             memchr(a->str, '\n', a->len) == NULL,
                         "line break in a quoted string");
            break;
        }
    }
}

static FZ_UNUSED void fz_check_resp(const satchel_imap_resp *r,
                                    unsigned max_depth)
{
    FZ_CHECK(r->kind >= SATCHEL_RESP_UNTAGGED &&
                 r->kind <= SATCHEL_RESP_CONTINUE,
             "kind %u", r->kind);
    FZ_CHECK(r->status <= SATCHEL_STATUS_BYE, "status %u", r->status);
    FZ_CHECK(r->tag != NULL && r->text != NULL, "NULL tag or text");
    FZ_CHECK((r->kind == SATCHEL_RESP_TAGGED) == (r->tag[0] != '\0'),
             "tag '%s' for kind %u", r->tag, r->kind);
    if (r->kind == SATCHEL_RESP_TAGGED)
        FZ_CHECK(r->status == SATCHEL_STATUS_OK ||
                     r->status == SATCHEL_STATUS_NO ||
                     r->status == SATCHEL_STATUS_BAD,
                 "tagged status %u", r->status);
    FZ_CHECK(r->text[r->text_len] == '\0', "text not NUL-terminated");
    FZ_CHECK(strlen(r->text) <= r->text_len, "text_len");
    fz_check_args(r->args, 0, max_depth);
    fz_check_args(r->code, 0, max_depth);
    if (r->status != SATCHEL_STATUS_NONE && r->kind != SATCHEL_RESP_CONTINUE)
        FZ_CHECK(r->args && r->args->type == SATCHEL_ARG_ATOM,
                 "status response without its status atom");
}

static FZ_UNUSED void fz_dump_args(fz_buf *d, const satchel_imap_arg *a)
{
    for (; a; a = a->next) {
        switch (a->type) {
        case SATCHEL_ARG_ATOM:
            fz_buf_put(d, a->str, a->len);
            break;
        case SATCHEL_ARG_NIL:
            fz_buf_puts(d, "NIL");
            break;
        case SATCHEL_ARG_STRING:
            if (a->flags & SATCHEL_ARG_F_LITERAL)
                fz_buf_printf(d, "{%llu}", (unsigned long long)a->size);
            fz_buf_puts(d, "\"");
            fz_buf_put(d, a->str, a->len);
            fz_buf_puts(d, "\"");
            if (a->flags & SATCHEL_ARG_F_TRUNCATED)
                fz_buf_printf(d, "...%llu", (unsigned long long)a->size);
            break;
        case SATCHEL_ARG_LIST:
            fz_buf_puts(d, "(");
            fz_dump_args(d, a->child);
            fz_buf_puts(d, ")");
            break;
        case SATCHEL_ARG_TEXT:
            fz_buf_puts(d, "TEXT[");
            fz_buf_put(d, a->str, a->len);
            fz_buf_puts(d, "]");
            break;
        default:
            fz_buf_puts(d, "?");
            break;
        }
        if (a->next)
            fz_buf_puts(d, " ");
    }
}

static FZ_UNUSED void fz_dump_resp(fz_buf *d, const satchel_imap_resp *r)
{
    static const char *const st[] = {"-", "OK", "NO", "BAD", "PREAUTH", "BYE"};
    if (r->kind == SATCHEL_RESP_TAGGED)
        fz_buf_printf(d, "T:%s", r->tag);
    else if (r->kind == SATCHEL_RESP_UNTAGGED)
        fz_buf_puts(d, "U");
    else
        fz_buf_puts(d, "C");
    fz_buf_puts(d, "|");
    fz_buf_puts(d, r->status <= 5 ? st[r->status] : "?");
    fz_buf_puts(d, "|");
    fz_dump_args(d, r->args);
    if (r->code) {
        fz_buf_puts(d, "|code=");
        fz_dump_args(d, r->code);
    }
    if (r->status != SATCHEL_STATUS_NONE) {
        fz_buf_puts(d, "|text=");
        fz_buf_put(d, r->text, r->text_len);
    }
    if (r->truncated)
        fz_buf_puts(d, "|TRUNCATED");
    fz_buf_puts(d, "\n");
}

#endif

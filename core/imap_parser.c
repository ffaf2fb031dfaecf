/* Incremental IMAP response parser: one byte at a time through a state
 * machine, so the split of the input into chunks never matters. */
#include "satchel/imap.h"
#include "satchel/ascii.h"
#include "satchel/opt.h"

#include <string.h>

enum state {
    ST_LINE_START,
    ST_TAG,
    ST_AFTER_STAR,    /* expect SP after '*' */
    ST_CONT_START,    /* after '+', optional SP before text */
    ST_ARG_START,     /* between arguments */
    ST_ATOM,
    ST_QUOTED,
    ST_QUOTED_ESC,
    ST_LIT_SIZE,
    ST_LIT_CLOSE,     /* after '}', expect CR or LF */
    ST_LIT_LF,
    ST_LIT_DATA,
    ST_STATUS_SP,     /* after a status atom: SP, '[' or end of line */
    ST_CODE_END,      /* after the ']' of a resp-text-code */
    ST_TEXT,
    ST_CR,            /* CR seen, expect LF */
    ST_ERROR
};

struct frame {
    satchel_imap_arg *list; /* NULL: the root, or a list that did not fit */
    satchel_imap_arg *tail; /* last element added at this level */
    uint8_t is_code;        /* this level is a resp-text-code [ ... ] */
    uint8_t dropped;        /* list node did not fit in the arena */
};

struct satchel_imap_parser {
    const satchel_allocator *alloc;
    satchel_imap_literal_sink sink;
    void *sink_ctx;
    uint32_t max_line, arena_size, literal_inline, max_depth;
    uint64_t max_literal;

    enum state st;
    const char *err;
    satchel_imap_resp resp;
    uint32_t line_len;
    uint32_t depth;
    struct frame *stack;  /* max_depth + 2 entries: root and code level */
    uint8_t is_status;    /* current response is a status response */
    uint8_t nargs;        /* top-level args seen (saturating) */
    uint8_t atom_brackets;
    uint8_t fetch_resp;   /* "* n FETCH": '[' opens a section in an atom */
    uint8_t lit_nonsync;  /* '+' or '~' seen in a literal header */
    uint8_t code_seen;    /* a resp-text-code was read: '[' is now text */
    uint8_t limit;        /* the error was a size or depth limit */

    /* Token being accumulated at the top of the arena. */
    char *tok;
    uint32_t tok_len;   /* bytes stored */
    uint64_t tok_size;  /* bytes seen */
    int tok_dropped;

    uint64_t lit_size, lit_off;
    satchel_imap_arg *lit_item; /* atom before the literal, for the sink */

    uint32_t arena_used;
    unsigned char *arena;
    uint32_t skip_depth;   /* lists beyond max_depth being skipped */
    uint32_t item_start;   /* arena_used when the current depth-2 subtree began */
};

/* Bytes of the arena that a large nested subtree (e.g. a huge
 * BODYSTRUCTURE) may not take, so that the FETCH items after it (FLAGS, the
 * header literal) still fit.  Soft line overruns are delivered truncated;
 * only lines longer than this many times max_line are fatal. */
#define ARENA_RESERVE(p) ((p)->literal_inline + 1024u)
#define LINE_HARD_FACTOR 16u

static void fail(satchel_imap_parser *p, const char *why)
{
    p->st = ST_ERROR;
    p->err = why;
}

static void fail_limit(satchel_imap_parser *p, const char *why)
{
    fail(p, why);
    p->limit = 1;
}

static void begin_response(satchel_imap_parser *p)
{
    memset(&p->resp, 0, sizeof p->resp);
    p->resp.tag = "";
    p->resp.text = "";
    p->line_len = 0;
    p->depth = 0;
    p->is_status = 0;
    p->code_seen = 0;
    p->nargs = 0;
    p->fetch_resp = 0;
    p->arena_used = 0;
    p->stack[0].list = NULL;
    p->stack[0].tail = NULL;
    p->stack[0].is_code = 0;
    p->stack[0].dropped = 0;
    p->lit_item = NULL;
    p->skip_depth = 0;
    p->item_start = 0;
}

static size_t arena_limit(const satchel_imap_parser *p)
{
    if (p->depth >= 2 && p->arena_used - p->item_start > 1024u &&
        p->arena_size > 2u * ARENA_RESERVE(p))
        return p->arena_size - ARENA_RESERVE(p);
    return p->arena_size;
}

static void *arena_alloc(satchel_imap_parser *p, size_t size)
{
    size_t off = (p->arena_used + 7u) & ~(size_t)7u;
    size_t lim = arena_limit(p);
    if (off > lim || size > lim - off) {
        p->resp.truncated = 1;
        return NULL;
    }
    p->arena_used = (uint32_t)(off + size);
    return p->arena + off;
}

/* Tokens are accumulated in place at the top of the arena; finishing one
 * turns them into a NUL-terminated string and bumps the arena. */
static void tok_begin(satchel_imap_parser *p)
{
    p->tok = (char *)p->arena + p->arena_used;
    p->tok_len = 0;
    p->tok_size = 0;
    p->tok_dropped = 0;
}

static void tok_put(satchel_imap_parser *p, uint8_t c, uint32_t keep_max)
{
    p->tok_size++;
    /* Keep room for the terminating NUL. */
    if (p->tok_len < keep_max &&
        p->arena_used + p->tok_len + 1u < arena_limit(p)) {
        p->tok[p->tok_len++] = (char)c;
    } else {
        p->tok_dropped = 1;
    }
}

static void link_arg(satchel_imap_parser *p, satchel_imap_arg *a)
{
    struct frame *f = &p->stack[p->depth];
    if (f->dropped || p->skip_depth)
        return;
    if (f->tail)
        f->tail->next = a;
    else if (f->list)
        f->list->child = a;
    else if (f->is_code)
        p->resp.code = a;
    else
        p->resp.args = a;
    f->tail = a;
    if (f->list)
        f->list->len++;
}

static satchel_imap_arg *new_arg(satchel_imap_parser *p, uint8_t type)
{
    satchel_imap_arg *a = arena_alloc(p, sizeof *a);
    if (!a)
        return NULL;
    memset(a, 0, sizeof *a);
    a->type = type;
    a->str = "";
    return a;
}

/* Turn the accumulated token into an argument of the given type. */
static satchel_imap_arg *tok_finish(satchel_imap_parser *p, uint8_t type)
{
    char *s = p->tok;
    uint32_t n = p->tok_len;
    satchel_imap_arg *a;

    if (p->skip_depth)
        return NULL; /* inside a skipped (too deep) list */
    if (p->arena_used + n + 1u > arena_limit(p)) {
        p->resp.truncated = 1;
        return NULL;
    }
    s[n] = '\0';
    p->arena_used += n + 1u;
    if (type == SATCHEL_ARG_ATOM && !p->tok_dropped && satchel_ascii_ieq(s, n, "NIL"))
        type = SATCHEL_ARG_NIL;
    a = new_arg(p, type);
    if (!a) {
        p->resp.truncated = 1;
        return NULL;
    }
    a->str = s; /* NIL keeps its spelling: in a LIST it may be a name */
    a->len = type == SATCHEL_ARG_NIL ? 0 : n;
    a->size = type == SATCHEL_ARG_NIL ? 0 : p->tok_size;
    if (p->tok_dropped) {
        a->flags |= SATCHEL_ARG_F_TRUNCATED;
        if (type != SATCHEL_ARG_STRING && type != SATCHEL_ARG_TEXT)
            p->resp.truncated = 1;
    }
    link_arg(p, a);
    return a;
}

static const char *const status_words[] = {"", "OK", "NO", "BAD", "PREAUTH",
                                           "BYE"};

static uint8_t status_of(const satchel_imap_arg *a)
{
    uint8_t i;
    for (i = 1; i < 6; i++)
        if (satchel_imap_arg_is(a, status_words[i]))
            return i;
    return SATCHEL_STATUS_NONE;
}

/* An atom just finished: decide whether the response is a status response
 * (whose remainder is free text, not arguments). */
static void after_atom(satchel_imap_parser *p, satchel_imap_arg *a)
{
    /* Only the first top-level argument can be the status word (nargs
     * counts every top-level argument, strings and lists included). */
    if (p->depth != 0)
        return;
    /* Brackets open a section (BODY[HEADER.FIELDS (A B)]<0>, spaces
     * included) only in FETCH data; elsewhere '[' is an atom character
     * and ']' an astring one (RFC 9051 ATOM-CHAR, ASTRING-CHAR), as in a
     * mailbox name Dovecot sends unquoted: foo.[bar]. */
    if (p->nargs == 2 && p->resp.kind == SATCHEL_RESP_UNTAGGED && a &&
        satchel_imap_arg_is(a, "FETCH"))
        p->fetch_resp = 1;
    if (p->nargs != 1 || p->resp.kind == SATCHEL_RESP_CONTINUE)
        return;
    if (!a) {
        fail(p, "response starts with an oversized token");
        return;
    }
    p->resp.status = status_of(a);
    if (p->resp.kind == SATCHEL_RESP_TAGGED &&
        (p->resp.status == SATCHEL_STATUS_NONE ||
         p->resp.status == SATCHEL_STATUS_PREAUTH ||
         p->resp.status == SATCHEL_STATUS_BYE)) {
        fail(p, "tagged response without OK, NO or BAD");
        return;
    }
    if (p->resp.status != SATCHEL_STATUS_NONE)
        p->is_status = 1;
}

static int is_atom_char(uint8_t c)
{
    /* Everything printable except atom-specials; ']' and '[' are handled
     * by the caller because BODY[...] spans them. */
    if (c <= 0x20 || c == 0x7f)
        return 0;
    switch (c) {
    case '(': case ')': case '{': case '"': case '%':
        return 0;
    default:
        return 1;
    }
}

static int end_of_line(satchel_imap_parser *p)
{
    if (p->depth != 0 || p->skip_depth) {
        fail(p, "line ended inside a list");
        return 0;
    }
    if (p->resp.kind == SATCHEL_RESP_TAGGED &&
        p->resp.status == SATCHEL_STATUS_NONE) {
        fail(p, "tagged response without status");
        return 0;
    }
    p->st = ST_LINE_START;
    return 1;
}

static void text_begin(satchel_imap_parser *p)
{
    tok_begin(p);
    p->st = ST_TEXT;
}

static void text_finish(satchel_imap_parser *p)
{
    satchel_imap_arg *a;
    /* Text is never linked as an argument of a status response; it is a
     * field of its own. */
    if (p->resp.kind == SATCHEL_RESP_CONTINUE) {
        a = tok_finish(p, SATCHEL_ARG_TEXT);
        (void)a;
        return;
    }
    if (p->arena_used + p->tok_len + 1u > p->arena_size) {
        p->resp.truncated = 1;
        return;
    }
    p->tok[p->tok_len] = '\0';
    p->resp.text = p->tok;
    p->resp.text_len = p->tok_len;
    p->arena_used += p->tok_len + 1u;
}

static int push_list(satchel_imap_parser *p, int is_code)
{
    satchel_imap_arg *l = NULL;
    struct frame *f;
    if (p->skip_depth || p->depth >= p->max_depth) {
        /* Too deep to keep: lex the sublist (framing is intact) but keep
         * nothing of it; the response is delivered truncated. */
        if (p->skip_depth >= p->max_line) {
            fail_limit(p, "lists nested too deeply");
            return -1;
        }
        p->skip_depth++;
        p->resp.truncated = 1;
        return 0;
    }
    if (!is_code && !p->stack[p->depth].dropped) {
        l = new_arg(p, SATCHEL_ARG_LIST);
        if (l)
            link_arg(p, l);
    }
    p->depth++;
    if (p->depth == 2)
        p->item_start = p->arena_used;
    f = &p->stack[p->depth];
    f->list = l;
    f->tail = NULL;
    f->is_code = (uint8_t)is_code;
    f->dropped = (uint8_t)(!is_code && l == NULL);
    return 0;
}

/* The argument that precedes a literal names it for the sink. */
static const char *lit_item_name(satchel_imap_parser *p)
{
    satchel_imap_arg *t = p->stack[p->depth].tail;
    if (t && t->type == SATCHEL_ARG_ATOM)
        return t->str;
    return "";
}

static int lit_data(satchel_imap_parser *p, const uint8_t *d, size_t n)
{
    if (p->sink && n) {
        int rc = p->sink(p->sink_ctx, lit_item_name(p), p->lit_off,
                         p->lit_size, d, n);
        if (rc < 0) {
            fail(p, "literal sink refused data");
            return rc;
        }
    }
    {
        /* Keep a bounded prefix; the sink has seen everything. */
        size_t room = 0, keep;
        if (p->arena_used + p->tok_len + 1u < p->arena_size)
            room = p->arena_size - p->arena_used - p->tok_len - 1u;
        if (p->tok_len < p->literal_inline && room > p->literal_inline - p->tok_len)
            room = p->literal_inline - p->tok_len;
        else if (p->tok_len >= p->literal_inline)
            room = 0;
        keep = n < room ? n : room;
        memcpy(p->tok + p->tok_len, d, keep);
        p->tok_len += (uint32_t)keep;
        if (keep < n)
            p->tok_dropped = 1;
    }
    p->lit_off += n;
    return 0;
}

static void lit_done(satchel_imap_parser *p)
{
    satchel_imap_arg *a = tok_finish(p, SATCHEL_ARG_STRING);
    if (a) {
        a->flags |= SATCHEL_ARG_F_LITERAL;
        a->size = p->lit_size;
        if (a->len < p->lit_size)
            a->flags |= SATCHEL_ARG_F_TRUNCATED;
    }
    p->st = ST_ARG_START;
}

static int count_line(satchel_imap_parser *p)
{
    if (++p->line_len > p->max_line) {
        p->resp.truncated = 1; /* tokens are bounded by the arena anyway */
        if (p->line_len / LINE_HARD_FACTOR > p->max_line) {
            fail_limit(p, "response line too long");
            return -1;
        }
    }
    return 0;
}

int satchel_imap_parser_feed(satchel_imap_parser *p, const uint8_t *data,
                             size_t len, size_t *consumed,
                             const satchel_imap_resp **resp)
{
    size_t i = 0;
    *consumed = 0;
    *resp = NULL;
    if (p->st == ST_ERROR)
        return p->limit ? SATCHEL_E_PROTO_LIMIT : SATCHEL_E_PROTO;

    while (i < len) {
        uint8_t c;
        if (p->st == ST_LIT_DATA) {
            /* Bulk path: literal bytes are not line bytes. */
            uint64_t left = p->lit_size - p->lit_off;
            size_t n = len - i;
            int rc;
            if ((uint64_t)n > left)
                n = (size_t)left;
            rc = lit_data(p, data + i, n);
            if (rc < 0) {
                *consumed = i;
                return rc;
            }
            i += n;
            if (p->lit_off == p->lit_size)
                lit_done(p);
            continue;
        }
        c = data[i++];
        if (p->st == ST_LINE_START)
            begin_response(p);
        if (count_line(p) < 0)
            goto error;
        if (c == 0) {
            fail(p, "NUL byte outside a literal");
            goto error;
        }
        switch (p->st) {
        case ST_LINE_START:
            if (c == '*') {
                p->resp.kind = SATCHEL_RESP_UNTAGGED;
                p->st = ST_AFTER_STAR;
            } else if (c == '+') {
                p->resp.kind = SATCHEL_RESP_CONTINUE;
                p->st = ST_CONT_START;
            } else if (is_atom_char(c) && c != ']' && c != '[' && c != '\\') {
                p->resp.kind = SATCHEL_RESP_TAGGED;
                tok_begin(p);
                tok_put(p, c, 64);
                p->st = ST_TAG;
            } else {
                fail(p, "response does not start with a tag, '*' or '+'");
                goto error;
            }
            break;
        case ST_TAG:
            if (c == ' ') {
                if (p->tok_dropped) {
                    fail(p, "tag too long");
                    goto error;
                }
                p->tok[p->tok_len] = '\0';
                p->resp.tag = p->tok;
                p->arena_used += p->tok_len + 1u;
                p->st = ST_ARG_START;
            } else if (is_atom_char(c) && c != ']' && c != '[') {
                tok_put(p, c, 64);
            } else {
                fail(p, "malformed tag");
                goto error;
            }
            break;
        case ST_AFTER_STAR:
            if (c != ' ') {
                fail(p, "expected a space after '*'");
                goto error;
            }
            p->st = ST_ARG_START;
            break;
        case ST_CONT_START:
            if (c == '\r') {
                tok_begin(p);
                text_finish(p);
                p->st = ST_CR;
            } else if (c == '\n') {
                tok_begin(p);
                text_finish(p);
                if (end_of_line(p))
                    goto done;
                goto error;
            } else {
                text_begin(p);
                if (c != ' ')
                    tok_put(p, c, p->max_line);
            }
            break;
        case ST_STATUS_SP:
            if (c == ' ')
                break;
            if (c == '[') {
                if (p->code_seen) {
                    text_begin(p);
                    tok_put(p, c, p->max_line);
                    break;
                }
                if (push_list(p, 1) < 0)
                    goto error;
                p->code_seen = 1;
                p->st = ST_ARG_START;
                break;
            }
            if (c == '\r') {
                p->st = ST_CR;
                break;
            }
            if (c == '\n') {
                if (end_of_line(p))
                    goto done;
                goto error;
            }
            text_begin(p);
            tok_put(p, c, p->max_line);
            break;
        case ST_CODE_END:
            if (c == ' ') {
                p->st = ST_STATUS_SP;
            } else if (c == '\r') {
                p->st = ST_CR;
            } else if (c == '\n') {
                if (end_of_line(p))
                    goto done;
                goto error;
            } else {
                text_begin(p);
                tok_put(p, c, p->max_line);
            }
            break;
        case ST_TEXT:
            if (c == '\r') {
                text_finish(p);
                p->st = ST_CR;
            } else if (c == '\n') {
                text_finish(p);
                if (end_of_line(p))
                    goto done;
                goto error;
            } else {
                tok_put(p, c, p->max_line);
            }
            break;
        case ST_CR:
            if (c != '\n') {
                fail(p, "CR not followed by LF");
                goto error;
            }
            if (end_of_line(p))
                goto done;
            goto error;
        case ST_ARG_START:
            if (c == ' ')
                break;
            if (c == '\r') {
                p->st = ST_CR;
                if (p->depth != 0 || p->skip_depth) {
                    fail(p, "line ended inside a list");
                    goto error;
                }
                break;
            }
            if (c == '\n') {
                if (end_of_line(p))
                    goto done;
                goto error;
            }
            if (p->depth == 0 && p->nargs < 255 && c != ')' && c != ']')
                p->nargs++; /* a top-level argument starts */
            if (c == '(') {
                if (push_list(p, 0) < 0)
                    goto error;
                break;
            }
            if (c == ')') {
                if (p->skip_depth) {
                    p->skip_depth--;
                    break;
                }
                if (p->depth == 0 || p->stack[p->depth].is_code) {
                    fail(p, "unbalanced ')'");
                    goto error;
                }
                p->depth--;
                break;
            }
            if (c == ']' && p->depth > 0 && p->stack[p->depth].is_code) {
                p->depth--;
                p->st = ST_CODE_END;
                break;
            }
            if (c == '"') {
                tok_begin(p);
                p->st = ST_QUOTED;
                break;
            }
            if (c == '{' || c == '~') {
                p->lit_size = 0;
                p->lit_off = 0;
                p->lit_nonsync = 0;
                p->tok_size = 0; /* digit count */
                if (c == '~') {
                    /* literal8 (RFC 3516): "~{" */
                    p->lit_nonsync = 2;
                }
                p->st = ST_LIT_SIZE;
                break;
            }
            if (is_atom_char(c) || c == '[' || c == ']') {
                if (c == ']' && p->fetch_resp) {
                    fail(p, "unexpected ']'");
                    goto error;
                }
                tok_begin(p);
                p->atom_brackets = 0;
                if (c == '[' && p->fetch_resp)
                    p->atom_brackets = 1;
                tok_put(p, c, p->max_line);
                p->st = ST_ATOM;
                break;
            }
            fail(p, "unexpected character between arguments");
            goto error;
        case ST_ATOM: {
            int ends = 0;
            if (p->atom_brackets) {
                /* Inside BODY[...]: spaces and parens belong to the atom. */
                if (c == ']')
                    p->atom_brackets--;
                else if (c == '[')
                    p->atom_brackets = (uint8_t)(p->atom_brackets + 1u);
                else if (c == '\r' || c == '\n') {
                    fail(p, "line ended inside '[...]'");
                    goto error;
                }
                if (p->atom_brackets > 8) {
                    fail(p, "brackets nested too deeply");
                    goto error;
                }
                tok_put(p, c, p->max_line);
                break;
            }
            if (c == '[') {
                p->atom_brackets = p->fetch_resp;
                tok_put(p, c, p->max_line);
                break;
            }
            if (c == ']' && p->stack[p->depth].is_code)
                ends = 1;
            else if (c == ']' && p->fetch_resp) {
                fail(p, "unexpected ']' in atom");
                goto error;
            }
            if (!ends && (is_atom_char(c) || c == ']')) {
                tok_put(p, c, p->max_line);
                break;
            }
            {
                satchel_imap_arg *a = tok_finish(p, SATCHEL_ARG_ATOM);
                after_atom(p, a);
                if (p->st == ST_ERROR)
                    goto error;
            }
            p->st = ST_ARG_START;
            if (p->is_status && p->depth == 0) {
                /* The status word was just read: the rest is text. */
                if (c == ' ') {
                    p->st = ST_STATUS_SP;
                    break;
                }
            }
            /* Re-dispatch the terminator. */
            i--;
            p->line_len--;
            break;
        }
        case ST_QUOTED:
            if (c == '"') {
                satchel_imap_arg *a = tok_finish(p, SATCHEL_ARG_STRING);
                (void)a;
                p->st = ST_ARG_START;
            } else if (c == '\\') {
                p->st = ST_QUOTED_ESC;
            } else if (c == '\r' || c == '\n') {
                fail(p, "line ended inside a quoted string");
                goto error;
            } else {
                tok_put(p, c, p->literal_inline);
            }
            break;
        case ST_QUOTED_ESC:
            if (c == '\r' || c == '\n') {
                fail(p, "line ended inside a quoted string");
                goto error;
            }
            tok_put(p, c, p->literal_inline);
            p->st = ST_QUOTED;
            break;
        case ST_LIT_SIZE:
            if (p->lit_nonsync == 2) {
                if (c != '{') {
                    /* Not "~{": '~' was the first character of an atom
                     * (a mailbox name such as ~peter/mail). */
                    tok_begin(p);
                    tok_put(p, '~', p->max_line);
                    p->atom_brackets = 0;
                    p->st = ST_ATOM;
                    i--;
                    p->line_len--;
                    break;
                }
                p->lit_nonsync = 0;
                break;
            }
            if (c >= '0' && c <= '9') {
                uint64_t d = (uint64_t)(c - '0');
                if (p->lit_size > (UINT64_MAX - d) / 10u) {
                    fail_limit(p, "literal size overflows 64 bits");
                    goto limit;
                }
                p->lit_size = p->lit_size * 10u + d;
                p->tok_size++;
                if (p->lit_size > p->max_literal) {
                    fail_limit(p, "literal larger than the configured maximum");
                    goto limit;
                }
            } else if (c == '+' && p->tok_size > 0 && !p->lit_nonsync) {
                p->lit_nonsync = 1;
            } else if (c == '}' && p->tok_size > 0) {
                p->st = ST_LIT_CLOSE;
            } else {
                fail(p, "malformed literal size");
                goto error;
            }
            break;
        case ST_LIT_CLOSE:
            if (c == '\r') {
                p->st = ST_LIT_LF;
            } else if (c == '\n') {
                goto lit_start;
            } else {
                fail(p, "literal size not followed by CRLF");
                goto error;
            }
            break;
        case ST_LIT_LF:
            if (c != '\n') {
                fail(p, "literal size not followed by CRLF");
                goto error;
            }
        lit_start:
            tok_begin(p);
            p->lit_off = 0;
            if (p->lit_size == 0)
                lit_done(p);
            else
                p->st = ST_LIT_DATA;
            break;
        case ST_LIT_DATA:
        case ST_ERROR:
            goto error;
        }
    }
    *consumed = i;
    return 0;

done:
    *consumed = i;
    *resp = &p->resp;
    return 1;

limit:
    *consumed = i;
    return SATCHEL_E_PROTO_LIMIT;

error:
    *consumed = i;
    if (p->st != ST_ERROR)
        fail(p, "malformed response");
    return p->limit ? SATCHEL_E_PROTO_LIMIT : SATCHEL_E_PROTO;
}

int satchel_imap_parser_new(const satchel_allocator *alloc,
                            const satchel_imap_parser_config *cfg,
                            satchel_imap_parser **out)
{
    satchel_imap_parser *p;
    satchel_imap_parser_config c;
    size_t stack_bytes;

    *out = NULL;
    if (!alloc)
        alloc = satchel_allocator_default();
    memset(&c, 0, sizeof c);
    if (cfg)
        c = *cfg;
    if (!c.max_line)
        c.max_line = SATCHEL_OPT_MAX_LINE;
    if (!c.arena_size)
        c.arena_size = SATCHEL_OPT_RESP_ARENA;
    if (!c.literal_inline)
        c.literal_inline = SATCHEL_OPT_LITERAL_INLINE;
    if (!c.max_literal)
        c.max_literal = SATCHEL_OPT_MAX_LITERAL;
    if (!c.max_depth)
        c.max_depth = SATCHEL_OPT_MAX_DEPTH;
    if (c.arena_size < 256 || c.max_depth > 1024)
        return SATCHEL_E_INVAL;

    p = alloc->alloc(alloc->ctx, sizeof *p);
    if (!p)
        return SATCHEL_E_NOMEM;
    memset(p, 0, sizeof *p);
    p->alloc = alloc;
    p->max_line = c.max_line;
    p->arena_size = c.arena_size;
    p->literal_inline = c.literal_inline;
    p->max_literal = c.max_literal;
    p->max_depth = c.max_depth;
    stack_bytes = sizeof(struct frame) * (c.max_depth + 2u);
    p->stack = alloc->alloc(alloc->ctx, stack_bytes);
    p->arena = alloc->alloc(alloc->ctx, c.arena_size);
    if (!p->stack || !p->arena) {
        satchel_imap_parser_free(p);
        return SATCHEL_E_NOMEM;
    }
    memset(p->stack, 0, stack_bytes);
    satchel_imap_parser_reset(p);
    *out = p;
    return 0;
}

void satchel_imap_parser_free(satchel_imap_parser *p)
{
    const satchel_allocator *a;
    if (!p)
        return;
    a = p->alloc;
    if (p->stack)
        a->free(a->ctx, p->stack, sizeof(struct frame) * (p->max_depth + 2u));
    if (p->arena)
        a->free(a->ctx, p->arena, p->arena_size);
    a->free(a->ctx, p, sizeof *p);
}

void satchel_imap_parser_reset(satchel_imap_parser *p)
{
    p->st = ST_LINE_START;
    p->err = NULL;
    p->limit = 0;
    begin_response(p);
}

void satchel_imap_parser_set_sink(satchel_imap_parser *p,
                                  satchel_imap_literal_sink sink, void *ctx)
{
    p->sink = sink;
    p->sink_ctx = ctx;
}

const char *satchel_imap_parser_error(const satchel_imap_parser *p)
{
    return p->err ? p->err : "no error";
}

int satchel_imap_arg_is(const satchel_imap_arg *arg, const char *word)
{
    return arg && arg->type == SATCHEL_ARG_ATOM && satchel_ascii_ieq(arg->str, arg->len, word);
}

int satchel_imap_arg_u64(const satchel_imap_arg *arg, uint64_t max,
                         uint64_t *out)
{
    uint64_t v = 0;
    uint32_t i;
    if (!arg || arg->type != SATCHEL_ARG_ATOM || arg->len == 0 ||
        arg->len > 20)
        return SATCHEL_E_PROTO;
    for (i = 0; i < arg->len; i++) {
        uint64_t d;
        char c = arg->str[i];
        if (c < '0' || c > '9')
            return SATCHEL_E_PROTO;
        d = (uint64_t)(c - '0');
        if (v > (UINT64_MAX - d) / 10u)
            return SATCHEL_E_RANGE;
        v = v * 10u + d;
    }
    if (v > max)
        return SATCHEL_E_RANGE;
    *out = v;
    return 0;
}

int satchel_imap_arg_u32(const satchel_imap_arg *arg, uint32_t *out)
{
    uint64_t v;
    int rc = satchel_imap_arg_u64(arg, UINT32_MAX, &v);
    if (rc == 0)
        *out = (uint32_t)v;
    return rc;
}

int satchel_imap_arg_string(const satchel_imap_arg *arg, const char **s,
                            uint32_t *len)
{
    if (!arg)
        return 0;
    switch (arg->type) {
    case SATCHEL_ARG_ATOM:
    case SATCHEL_ARG_STRING:
        *s = arg->str;
        *len = arg->len;
        return 1;
    case SATCHEL_ARG_NIL:
        *s = "";
        *len = 0;
        return 1;
    default:
        return 0;
    }
}

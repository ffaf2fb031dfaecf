/* Incremental, bounded IMAP response parser (RFC 9051 / RFC 3501 syntax).
 *
 * The parser keeps all state in its struct and consumes bytes as they come:
 * any split of the input into chunks yields the same responses.  Each
 * response is parsed into an argument tree that lives in a fixed per-parser
 * arena; long literals are streamed to a sink in chunks and only a bounded
 * prefix is kept.  Line length, literal size and nesting depth are capped;
 * anything malformed is reported as SATCHEL_E_PROTO or SATCHEL_E_PROTO_LIMIT,
 * after which the parser refuses further input until reset (IMAP has no way
 * to resynchronise reliably once framing is lost).
 */
#ifndef SATCHEL_IMAP_H
#define SATCHEL_IMAP_H

#include <stddef.h>
#include <stdint.h>

#include "satchel/alloc.h"
#include "satchel/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum satchel_imap_arg_type {
    SATCHEL_ARG_ATOM = 1, /* atom, number, flag, sequence set, BODY[..]<n> */
    SATCHEL_ARG_STRING,   /* quoted string or literal */
    SATCHEL_ARG_NIL,
    SATCHEL_ARG_LIST,     /* parenthesized list; child is the first element */
    SATCHEL_ARG_TEXT      /* free text after a status response */
} satchel_imap_arg_type;

#define SATCHEL_ARG_F_LITERAL 0x01u   /* STRING came from a literal */
#define SATCHEL_ARG_F_TRUNCATED 0x02u /* only a prefix of the value is kept */

typedef struct satchel_imap_arg {
    struct satchel_imap_arg *next;  /* next sibling, NULL at the end */
    struct satchel_imap_arg *child; /* LIST: first element or NULL */
    const char *str;                /* ATOM/STRING/TEXT bytes, NUL-terminated;
                                       STRING may hold NULs: use len; NIL:
                                       the atom as spelled ("nil"), len 0 */
    uint64_t size;                  /* STRING: full size (literal size);
                                       others: same as len */
    uint32_t len;                   /* bytes kept in str; LIST: elements */
    uint8_t type;                   /* satchel_imap_arg_type */
    uint8_t flags;                  /* SATCHEL_ARG_F_* */
} satchel_imap_arg;

typedef enum satchel_imap_resp_kind {
    SATCHEL_RESP_UNTAGGED = 1, /* "* ..." */
    SATCHEL_RESP_TAGGED,       /* "tag OK|NO|BAD ..." */
    SATCHEL_RESP_CONTINUE      /* "+ ..." */
} satchel_imap_resp_kind;

typedef enum satchel_imap_status {
    SATCHEL_STATUS_NONE = 0, /* not a status response (e.g. * 3 EXISTS) */
    SATCHEL_STATUS_OK,
    SATCHEL_STATUS_NO,
    SATCHEL_STATUS_BAD,
    SATCHEL_STATUS_PREAUTH,
    SATCHEL_STATUS_BYE
} satchel_imap_status;

/* One parsed response.  Every pointer in it (and in its argument tree) stays
 * valid until the next call of satchel_imap_parser_feed or _reset or _free. */
typedef struct satchel_imap_resp {
    uint8_t kind;            /* satchel_imap_resp_kind */
    uint8_t status;          /* satchel_imap_status */
    uint8_t truncated;       /* the arena overflowed: the tree is incomplete */
    const char *tag;         /* TAGGED: the tag; otherwise "" */
    satchel_imap_arg *args;  /* untagged/tagged: arguments after "*" or the
                                tag (the status atom included); CONTINUE:
                                one TEXT arg */
    satchel_imap_arg *code;  /* status responses: resp-text-code arguments,
                                e.g. UIDVALIDITY, 42; NULL if none */
    const char *text;        /* status responses: human-readable text, or "" */
    uint32_t text_len;
} satchel_imap_resp;

/* Literal sink: called with every chunk of every literal, in order.  item is
 * the atom that preceded the literal in its list (e.g. "BODY[1]<0>"), or ""
 * when there is none; offset is the chunk's position within the literal and
 * total the literal's size.  Pointers are valid during the call only.
 * Return 0 to go on, or a negative satchel_err to abort parsing with it. */
typedef int (*satchel_imap_literal_sink)(void *ctx, const char *item,
                                         uint64_t offset, uint64_t total,
                                         const uint8_t *data, size_t len);

typedef struct satchel_imap_parser_config {
    uint32_t max_line;       /* 0: SATCHEL_OPT_MAX_LINE */
    uint32_t arena_size;     /* 0: SATCHEL_OPT_RESP_ARENA */
    uint32_t literal_inline; /* 0: SATCHEL_OPT_LITERAL_INLINE */
    uint64_t max_literal;    /* 0: SATCHEL_OPT_MAX_LITERAL */
    uint32_t max_depth;      /* 0: SATCHEL_OPT_MAX_DEPTH */
} satchel_imap_parser_config;

typedef struct satchel_imap_parser satchel_imap_parser;

/* Create a parser.  alloc and cfg may be NULL (defaults).  The allocator must
 * outlive the parser.  Returns 0 or SATCHEL_E_NOMEM. */
int satchel_imap_parser_new(const satchel_allocator *alloc,
                            const satchel_imap_parser_config *cfg,
                            satchel_imap_parser **out);
void satchel_imap_parser_free(satchel_imap_parser *p);

/* Forget any partial response and any error (e.g. after STARTTLS). */
void satchel_imap_parser_reset(satchel_imap_parser *p);

void satchel_imap_parser_set_sink(satchel_imap_parser *p,
                                  satchel_imap_literal_sink sink, void *ctx);

/* Consume bytes from data[0..len).  *consumed tells how many were used.
 * Returns 1 when a complete response was parsed (*resp set; the rest of the
 * input is left for the next call), 0 when all input was consumed without
 * completing one (need more data), or a negative satchel_err. */
int satchel_imap_parser_feed(satchel_imap_parser *p, const uint8_t *data,
                             size_t len, size_t *consumed,
                             const satchel_imap_resp **resp);

/* After an error: a static description of what went wrong. */
const char *satchel_imap_parser_error(const satchel_imap_parser *p);

/* --- Helpers over the argument tree. --- */

/* True if arg is an ATOM equal to word, ignoring ASCII case. */
int satchel_imap_arg_is(const satchel_imap_arg *arg, const char *word);
/* Parse an ATOM of decimal digits.  Returns 0, SATCHEL_E_PROTO (not a
 * number) or SATCHEL_E_RANGE (more than max). */
int satchel_imap_arg_u64(const satchel_imap_arg *arg, uint64_t max,
                         uint64_t *out);
int satchel_imap_arg_u32(const satchel_imap_arg *arg, uint32_t *out);
/* True for ATOM, STRING and NIL (NIL gives "", 0). */
int satchel_imap_arg_string(const satchel_imap_arg *arg, const char **s,
                            uint32_t *len);

#ifdef __cplusplus
}
#endif
#endif

/* Message parts from a stored BODYSTRUCTURE, and streaming decoding of a
 * part for display (transfer encoding, then charset to UTF-8). */
#ifndef SATCHEL_BODY_H
#define SATCHEL_BODY_H

#include <stddef.h>
#include <stdint.h>

#include "satchel/alloc.h"
#include "satchel/mime.h"
#include "satchel/store.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct satchel_part {
    char section[SATCHEL_SECTION_MAX]; /* IMAP section: "1", "2.1" */
    char type[32];                      /* lower case: "text" */
    char subtype[48];                   /* lower case: "plain" */
    char charset[40];                   /* lower case, "" if none */
    char encoding[24];                  /* lower case: "base64", "7bit" */
    char name[128];                     /* file name, UTF-8, "" if none */
    uint64_t size;                      /* encoded size in bytes */
    uint8_t attachment;                 /* Content-Disposition: attachment */
} satchel_part;

/* Leaf parts of bodystructure (IMAP syntax, as stored), in section order.
 * message/rfc822 parts are leaves.  *n gets the count (at most max).
 * Returns 0, SATCHEL_E_PROTO for a malformed structure or multipart
 * nesting deeper than SATCHEL_OPT_BODY_DEPTH, or SATCHEL_E_NOMEM.  The
 * walk's stack use is bounded (SATCHEL_OPT_BODY_STACK, opt.h). */
int satchel_body_parts(const satchel_allocator *alloc, const char *bs,
                       size_t len, satchel_part *parts, size_t max, size_t *n);

/* The same for a structure stored cut (SATCHEL_MSG_F_BS_TRUNCATED) when cut
 * is set: the parts up to the first body that is not whole, all with the
 * server's section numbers; 0 parts is not an error then. */
int satchel_body_parts_prefix(const satchel_allocator *alloc, const char *bs,
                              size_t len, int cut, satchel_part *parts, size_t max,
                              size_t *n);

/* The part to show as the message text: the first text/plain that is not
 * an attachment, else the first such text/html, else the first text part.
 * Returns its index, or -1. */
int satchel_body_pick_text(const satchel_part *parts, size_t n);

/* Streaming display decoder.  Output goes to emit in pieces; any split of
 * the input gives the same output. */
typedef int (*satchel_body_emit)(void *ctx, const char *utf8, size_t len);

typedef struct satchel_body_decoder {
    int enc; /* 0 identity, 1 base64, 2 quoted-printable */
    satchel_mime_b64 b64;
    satchel_mime_qp qp;
    char charset[40];
    int known;      /* charset convertible; else bytes pass with U+FFFD */
    int bytes;      /* transfer decoding only: emit gets the bytes as they are */
    uint8_t carry[4];
    size_t ncarry;  /* incomplete UTF-8 sequence held between chunks */
    uint8_t tmp[1024];
    char out[4096 + 16];
} satchel_body_decoder;

/* Transfer decoding only (base64, quoted-printable, or identity), for a
 * part that is not text: emit gets the part's bytes, which are not UTF-8
 * and may hold NULs; nothing is converted or dropped. */
void satchel_body_decoder_init_bytes(satchel_body_decoder *d, const char *encoding);

/* Returns 1 if the charset is converted, 0 if it is shown raw. */
int satchel_body_decoder_init(satchel_body_decoder *d, const char *encoding,
                              const char *charset);
/* Decode len bytes; finish flushes what is held back at the end.  Both
 * return 0, the first negative value emit returned (decoding stops there),
 * or SATCHEL_E_INTERNAL if the decoder made no progress (a bug).  The text
 * passed to emit is valid during the call only. */
int satchel_body_decoder_feed(satchel_body_decoder *d, const uint8_t *in,
                              size_t len, satchel_body_emit emit, void *ctx);
int satchel_body_decoder_finish(satchel_body_decoder *d, satchel_body_emit emit,
                                void *ctx);

#ifdef __cplusplus
}
#endif
#endif

/* Mailbox names: modified UTF-7 (RFC 3501 section 5.1.3) to and from UTF-8.
 *
 * Satchel keeps folder names in UTF-8 (console, store, events).  On the wire
 * they are modified UTF-7 unless the session enabled UTF8=ACCEPT (RFC 6855,
 * RFC 9051), in which case UTF-8 goes out as is.
 *
 * Modified UTF-7: printable US-ASCII (0x20..0x7E) stands for itself, except
 * '&' which is written "&-"; every other character is UTF-16 in base64 with
 * ',' for '/', no padding, between '&' and '-'.
 *
 * Nothing here allocates or keeps state.  Inputs are a pointer and a length
 * (no NUL needed, never read past len; NULL allowed when len is 0).  Outputs
 * go to out[cap], always NUL-terminated when cap > 0; *out_len (may be NULL)
 * gets the bytes written, not counting the NUL.  On any error out is "" and
 * *out_len is 0: a name is never half converted.
 */
#ifndef SATCHEL_MUTF7_H
#define SATCHEL_MUTF7_H

#include <stddef.h>
#include <stdint.h>

#include "satchel/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Where and why a name was refused: `at` is the offset of the first bad
 * byte in the input, `why` a static English phrase naming the rule. */
typedef struct satchel_mutf7_error {
    size_t at;
    const char *why;
} satchel_mutf7_error;

/* Worst-case encoded size of a UTF-8 name of n bytes, without the NUL: a
 * lone control character becomes 5 bytes ("&AAE-"), and no input grows
 * more per byte. */
#define SATCHEL_MUTF7_ENCODED_MAX(n) ((n) * 5u)

/* Encode a UTF-8 name as modified UTF-7.
 * Returns 0; SATCHEL_E_INVAL when `utf8` is not valid UTF-8 (overlong forms,
 * surrogates, code points above U+10FFFF, a cut sequence) or holds a NUL
 * (*err, if not NULL, says where and why);
 * SATCHEL_E_RANGE when the result does not fit in cap bytes with its NUL. */
int satchel_mutf7_encode(const char *utf8, size_t len, char *out, size_t cap,
                         size_t *out_len, satchel_mutf7_error *err);

/* The modified UTF-7 form of a UTF-8 name, a window at a time, for a
 * caller that streams it without room for all of it: writes the bytes of
 * the form from offset skip on, at most cap of them and no NUL, to out;
 * *written gets how many, *total the length of the whole form.  Returns
 * 0, or SATCHEL_E_INVAL as satchel_mutf7_encode (then both are 0). */
int satchel_mutf7_encode_window(const char *utf8, size_t len, uint64_t skip, char *out,
                                size_t cap, size_t *written, uint64_t *total);

/* Where an encoding stands between two steps: zero it to start.  A caller
 * that streams a long name keeps one of these across calls, so resuming
 * costs nothing (re-encoding from the start would make a name's cost
 * grow with the square of its length when its output drains slowly). */
typedef struct satchel_mutf7_state {
    size_t in;        /* bytes of the UTF-8 name consumed */
    uint32_t bits;    /* pending base64 bits, the low nbits of them */
    uint8_t nbits;
    uint8_t shifted;  /* inside an "&...-" section */
    uint8_t ended;
} satchel_mutf7_state;

/* Most bytes one step writes (a surrogate pair opening a section). */
#define SATCHEL_MUTF7_STEP_MAX 8u

/* One step of the modified UTF-7 encoding: writes the next code point's
 * bytes (or, at the end, those closing a shifted section) to out, which
 * has room for SATCHEL_MUTF7_STEP_MAX.  Returns how many (> 0), 0 when the
 * form is complete, SATCHEL_E_INVAL as satchel_mutf7_encode (*err, if not
 * NULL, says where and why; st is then unchanged). */
int satchel_mutf7_encode_step(const char *utf8, size_t len, satchel_mutf7_state *st,
                              char *out, satchel_mutf7_error *err);

/* Decode a modified UTF-7 name to UTF-8.  The output is never longer than
 * the input, so cap = len + 1 always fits.
 * Returns 0; SATCHEL_E_INVAL for anything RFC 3501 does not allow: a byte
 * outside 0x20..0x7E, a '&' section that is not closed by '-', a base64
 * character outside the modified alphabet, non-zero or excess padding bits,
 * a shifted section that encodes printable US-ASCII or U+0000, a lone or
 * reversed UTF-16 surrogate, or two shifted sections in a row (which must
 * be one).  *err (may be NULL) says where and why.  SATCHEL_E_RANGE when
 * the result does not fit. */
int satchel_mutf7_decode(const char *mutf7, size_t len, char *out, size_t cap,
                         size_t *out_len, satchel_mutf7_error *err);

/* True when the len bytes at s are valid modified UTF-7 (decode would
 * succeed). */
int satchel_mutf7_valid(const char *s, size_t len);

/* The valid, shortest-form UTF-8 sequence at s (at most n bytes): its
 * length, 1 to 4, with the code point in *cp; or 0 when s starts with
 * anything else (a stray byte, an overlong form, a surrogate, a code point
 * above U+10FFFF, a cut sequence, or n == 0). */
size_t satchel_utf8_next(const char *s, size_t n, uint32_t *cp);

/* True when the len bytes at s are valid UTF-8 without NUL (encode would
 * succeed given room). */
int satchel_utf8_valid(const char *s, size_t len);

#ifdef __cplusplus
}
#endif
#endif

/* MIME and RFC 5322 helpers: charsets, header decoding, dates, addresses,
 * and incremental base64 / quoted-printable body decoders.
 *
 * Nothing here allocates or keeps global state.  Every input is a pointer
 * plus a length and is never read past that length (no NUL needed); a NULL
 * pointer is allowed when its length is 0.  Every output goes to a buffer
 * the caller owns, of capacity `cap` bytes including the terminating NUL.
 *
 * String outputs are always NUL-terminated when cap > 0, and are always
 * valid UTF-8 (except satchel_mime_header_get, which returns raw bytes):
 * when the result does not fit, it is cut at the last whole character that
 * fits and SATCHEL_E_RANGE is returned.  A cap of 0 always gives
 * SATCHEL_E_RANGE, since not even the NUL fits.  Lengths returned never
 * count the NUL.
 *
 * The input is assumed hostile: undecodable bytes become U+FFFD, malformed
 * syntax is passed through or rejected, and no input makes these functions
 * crash, loop or write out of bounds.
 */
#ifndef SATCHEL_MIME_H
#define SATCHEL_MIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "satchel/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Charsets ---------------------------------------------------------- */

/* True when `name` (len bytes, case-insensitive, no quotes or spaces) is a
 * charset this module converts: UTF-8, US-ASCII, ISO-8859-1, ISO-8859-15,
 * Windows-1252 and their common IANA aliases (utf8, ascii, latin1, l1,
 * iso_8859-1, iso8859-1, cp1252, latin9, ...).
 *
 * Following the WHATWG Encoding Standard (what mail readers actually do),
 * US-ASCII and ISO-8859-1 are decoded as Windows-1252, so a mislabelled
 * 0x80 still shows as the euro sign.  Bytes a charset leaves undefined
 * (e.g. 0x81 in Windows-1252, 0x80-0x9F in ISO-8859-15) become U+FFFD
 * rather than C1 control characters. */
bool satchel_mime_charset_known(const char *name, size_t len);

/* Convert len bytes of `in`, in charset `charset` (charset_len bytes), to
 * UTF-8 in out[cap].  Invalid UTF-8 is replaced by U+FFFD per maximal
 * subpart (Unicode ch. 3).  out_len (may be NULL) receives the bytes
 * written, excluding the NUL.
 * Returns 0; SATCHEL_E_NOTSUP for an unknown charset (out is set to "" and
 * *out_len to 0: show the raw bytes with a marker instead);
 * SATCHEL_E_RANGE if the result was cut to fit; SATCHEL_E_INVAL for a NULL
 * pointer with a nonzero length.
 * This is one-shot: a UTF-8 sequence split between two calls becomes
 * U+FFFD.  For streamed bodies hold back satchel_mime_utf8_tail() bytes. */
int satchel_mime_to_utf8(const char *charset, size_t charset_len,
                         const uint8_t *in, size_t len,
                         char *out, size_t cap, size_t *out_len);

/* How many bytes at the end of in[0..len) are the start of a UTF-8
 * sequence that the next chunk could complete (0..3).  A streaming caller
 * converts in[0..len - tail) now and prepends the tail to the next chunk. */
size_t satchel_mime_utf8_tail(const uint8_t *in, size_t len);

/* ---- Header fields ----------------------------------------------------- */

/* Decode an unstructured header field value (no field name) to UTF-8:
 * unfolds (every CR and LF is dropped), decodes RFC 2047 encoded-words
 * (B and Q, any supported charset, RFC 2231 "*lang" suffix allowed, also
 * when glued to surrounding text), drops whitespace between adjacent
 * encoded-words (RFC 2047 6.2; a UTF-8 character split across adjacent
 * words of the same charset is rejoined), and takes raw 8-bit bytes as
 * UTF-8 when the whole value is valid UTF-8, else as Windows-1252.
 * Encoded-words in an unknown charset, or malformed, are kept verbatim.
 * Control characters (C0, DEL, C1) are removed; TAB becomes a space.
 * Returns the length written, SATCHEL_E_RANGE if cut to fit, or
 * SATCHEL_E_INVAL for bad pointers. */
int satchel_mime_decode_header(const char *in, size_t len,
                               char *out, size_t cap);

/* Find the first field called `name` (NUL-terminated, case-insensitive,
 * without the colon) in a raw header block of len bytes.  Lines end in
 * CRLF or LF; the search stops at the first empty line; the block may be
 * cut anywhere.  Copies the raw value, unfolded (line breaks before WSP
 * removed), with leading and trailing whitespace trimmed and no decoding,
 * to out[cap]; a cut never splits a valid UTF-8 sequence.
 * Returns the length written, SATCHEL_E_NOTFOUND (out = ""),
 * SATCHEL_E_RANGE if cut to fit, or SATCHEL_E_INVAL for bad arguments. */
int satchel_mime_header_get(const char *hdr, size_t len, const char *name,
                            char *out, size_t cap);

/* Render the first mailbox of an RFC 5322 address list (a From value) for
 * display, decoded to UTF-8: "Display Name <local@domain>", or
 * "local@domain" when there is no name.  Handles quoted names (encoded
 * words inside quotes are decoded too, as mailers emit them), comments
 * (an old-style "addr (Name)" comment supplies the name), groups (the
 * first member is used; an empty group gives its name), source routes and
 * CFWS inside the address.  A value with no address renders its phrase;
 * a value with nothing usable is shown decoded as a whole.
 * Returns the length written, SATCHEL_E_RANGE if cut to fit, or
 * SATCHEL_E_INVAL for bad pointers. */
int satchel_mime_format_from(const char *in, size_t len,
                             char *out, size_t cap);

/* ---- Dates ------------------------------------------------------------- */

/* Parse an RFC 5322 date-time, accepting the obsolete forms seen in mail:
 * no weekday, 2-digit (50-99 -> 19xx, else 20xx) and 3-digit years,
 * named zones (UT, GMT, UTC, EST..PDT; military and other unknown
 * alphabetic zones count as +0000 per RFC 5322 4.3), no zone at all
 * (+0000), no seconds, comments and folding anywhere, '-' between the date
 * parts, and one trailing word after a numeric zone ("+0200 CEST").
 * On success stores seconds since 1970-01-01T00:00:00Z in *epoch and the
 * zone offset east of UTC in minutes in *tz_min (either may be NULL).
 * Returns 0, or SATCHEL_E_INVAL (outputs untouched). */
int satchel_mime_parse_date(const char *s, size_t len,
                            int64_t *epoch, int *tz_min);

/* Parse an IMAP date-time "17-Jul-1996 02:44:25 -0700" (day may be " 7" or
 * "7"; surrounding double quotes are allowed).  Outputs as above.
 * Returns 0 or SATCHEL_E_INVAL. */
int satchel_mime_parse_internaldate(const char *s, size_t len,
                                    int64_t *epoch, int *tz_min);

/* Format epoch (UTC) as RFC 3339 wall time in the zone tz_min minutes east
 * of UTC: "1996-07-17T02:44:25-07:00".  Needs cap >= 26.
 * Returns 25, or SATCHEL_E_RANGE (cap too small, year outside 0000-9999,
 * or |tz_min| > 99:59; out = "" when cap > 0). */
int satchel_mime_format_rfc3339(int64_t epoch, int tz_min,
                                char *out, size_t cap);

/* ---- Incremental transfer decoders -------------------------------------- */

/* Both decoders take the body in chunks of any size; any split of the
 * input gives the same output.  A decode call appends to out[0..cap) (no
 * NUL; this is binary data), returns the bytes written and sets *consumed
 * to the input bytes used, which is less than len only when the output is
 * full: call again with the rest of the input.  After the last chunk call
 * _finish repeatedly until it returns 0 (it writes whatever is still
 * pending and then resets the state for a new body).  cap must be >= 1 to
 * make progress.  Never an error: invalid base64 characters are skipped
 * (a '=' ends a quantum, so concatenated base64 still decodes); invalid QP
 * escapes are passed through literally. */

typedef struct satchel_mime_b64 {
    uint32_t acc;   /* bits not yet output, low `bits` bits valid */
    uint8_t bits;
} satchel_mime_b64;

void satchel_mime_b64_init(satchel_mime_b64 *st);
size_t satchel_mime_b64_decode(satchel_mime_b64 *st, const uint8_t *in,
                               size_t len, size_t *consumed,
                               uint8_t *out, size_t cap);
size_t satchel_mime_b64_finish(satchel_mime_b64 *st, uint8_t *out,
                               size_t cap);

/* Whitespace is held back until we know whether a line break follows
 * (trailing whitespace is dropped, RFC 2045 6.7); runs longer than
 * SATCHEL_MIME_QP_WS_MAX are let through rather than buffered unboundedly. */
#define SATCHEL_MIME_QP_WS_MAX 76

typedef struct satchel_mime_qp {
    uint8_t state;
    uint8_t flush;  /* buf[head..n) is decided output waiting for room */
    uint8_t n;
    uint8_t head;
    uint8_t buf[SATCHEL_MIME_QP_WS_MAX + 2]; /* '=', whitespace, CR */
} satchel_mime_qp;

void satchel_mime_qp_init(satchel_mime_qp *st);
size_t satchel_mime_qp_decode(satchel_mime_qp *st, const uint8_t *in,
                              size_t len, size_t *consumed,
                              uint8_t *out, size_t cap);
size_t satchel_mime_qp_finish(satchel_mime_qp *st, uint8_t *out,
                              size_t cap);

#ifdef __cplusplus
}
#endif
#endif

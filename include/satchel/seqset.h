/* IMAP sequence sets ("1:3,7,9:*") as found in VANISHED, COPYUID and
 * ESEARCH, read one range at a time so a huge set costs no memory. */
#ifndef SATCHEL_SEQSET_H
#define SATCHEL_SEQSET_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct satchel_seqset_iter {
    const char *s;
    size_t len, pos;
    uint32_t star; /* value of '*' */
} satchel_seqset_iter;

void satchel_seqset_init(satchel_seqset_iter *it, const char *s, size_t len,
                         uint32_t star);
/* Next range, normalised so *lo <= *hi.  Returns 1 with a range, 0 at the
 * end, or SATCHEL_E_PROTO for a malformed set (empty element, trailing
 * comma, zero, or a number above 2^32-1). */
int satchel_seqset_next(satchel_seqset_iter *it, uint32_t *lo, uint32_t *hi);
/* Two sets paired element by element in order, as COPYUID's source and
 * destination UIDs are (RFC 4315): the element of dst at the position of
 * the first occurrence of uid in src.  Arithmetic on ranges: the cost is
 * in the number of ranges, never in how many UIDs they span.  Returns 1
 * with *out, 0 when uid is not in src or dst is shorter, or
 * SATCHEL_E_PROTO for a malformed set. */
int satchel_seqset_pair(const char *src, size_t slen, const char *dst, size_t dlen,
                        uint32_t uid, uint32_t *out);

#ifdef __cplusplus
}
#endif
#endif

/* Message records, version 5: compact.
 *
 * Numbers are LEB128 varints (signed ones zigzag-coded; the Date: header
 * as its distance from INTERNALDATE), strings carry a varint length, and
 * the BODYSTRUCTURE's common runs ("text" "plain", ("charset" "us-ascii"),
 * NIL NIL "7bit", the four NILs of extension data, ...) are one byte each
 * after a NUL, which a stored string never holds.  On the shared corpus a
 * record is about 180 bytes instead of 283.
 *
 * Every record has exactly one encoding: varints are minimal, and a
 * BODYSTRUCTURE is checked to be what the greedy coder writes for its
 * text, so decoding and encoding again gives the same bytes. */
#include "store_internal.h"

#include <string.h>

/* Tokens for the stored BODYSTRUCTURE; the coder takes the longest that
 * matches, the first of equals. */
#define BS_TOKENS \
    X("(\"text\" \"plain\" ") \
    X("(\"text\" \"html\" ") \
    X("(\"charset\" \"us-ascii\") ") \
    X("(\"charset\" \"iso-8859-1\") ") \
    X("(\"charset\" \"iso-8859-15\") ") \
    X("(\"charset\" \"utf-8\") ") \
    X("(\"charset\" \"windows-1252\") ") \
    X("(\"charset\" \"US-ASCII\") ") \
    X("(\"charset\" \"ISO-8859-1\") ") \
    X("(\"charset\" \"UTF-8\") ") \
    X("(\"charset\" ") \
    X("NIL NIL \"7bit\" ") \
    X("NIL NIL \"8bit\" ") \
    X("NIL NIL \"quoted-printable\" ") \
    X("NIL NIL \"base64\" ") \
    X("NIL NIL \"7BIT\" ") \
    X("NIL NIL \"8BIT\" ") \
    X("NIL NIL \"QUOTED-PRINTABLE\" ") \
    X("NIL NIL \"BASE64\" ") \
    X(" NIL NIL NIL NIL)") \
    X(" NIL NIL NIL)") \
    X(" NIL NIL)") \
    X(" NIL)") \
    X("\"multipart\" ") \
    X("\"alternative\" ") \
    X("\"mixed\" ") \
    X("\"related\" ") \
    X("\"signed\" ") \
    X("\"report\" ") \
    X("(\"boundary\" \"") \
    X("\"application\" ") \
    X("\"octet-stream\" ") \
    X("\"pgp-signature\" ") \
    X("\"image\" ") \
    X("\"message\" ") \
    X("\"rfc822\" ") \
    X("(\"name\" \"") \
    X("(\"filename\" \"") \
    X("(\"attachment\" ") \
    X("(\"inline\" ") \
    X("(\"format\" \"flowed\") ") \
    X("\"text\" ") \
    X("\"plain\" ") \
    X("\"html\" ") \
    X("\"7bit\" ") \
    X("\"8bit\" ") \
    X("\"base64\" ") \
    X("\"quoted-printable\" ") \
    X("\"us-ascii\"") \
    X("\"iso-8859-1\"") \
    X("\"utf-8\"") \
    X("\"charset\" ") \
    X("NIL NIL ") \
    X("NIL ") \
    X("NIL)")

#define X(t) t,
static const char *const bs_tok[] = {BS_TOKENS};
#undef X
#define X(t) (uint8_t)(sizeof t - 1),
static const uint8_t bs_len[] = {BS_TOKENS};
#undef X
#define BS_NTOK (sizeof bs_tok / sizeof bs_tok[0])

/* b NULL: only count (*pos grows by what would be written). */
static int put_var(uint8_t *b, size_t cap, size_t *pos, uint64_t v)
{
    do {
        if (b) {
            if (*pos >= cap)
                return SATCHEL_E_RANGE;
            b[*pos] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        }
        (*pos)++;
        v >>= 7;
    } while (v);
    return 0;
}

static int get_var(const uint8_t *b, size_t len, size_t *pos, uint64_t *v)
{
    uint64_t r = 0;
    unsigned sh = 0;
    uint8_t c;
    do {
        if (*pos >= len || sh > 63)
            return SATCHEL_E_STORE;
        c = b[(*pos)++];
        if (sh == 63 && (c & 0xfe))
            return SATCHEL_E_STORE; /* more than 64 bits */
        r |= (uint64_t)(c & 0x7f) << sh;
        sh += 7;
    } while (c & 0x80);
    if (c == 0 && sh > 7)
        return SATCHEL_E_STORE; /* not minimal */
    *v = r;
    return 0;
}

static uint64_t zz(uint64_t u)
{
    return (u << 1) ^ (0 - (u >> 63));
}

static uint64_t unzz(uint64_t z)
{
    return (z >> 1) ^ (0 - (z & 1));
}

static int put_s(uint8_t *b, size_t cap, size_t *pos, const char *s, size_t max)
{
    size_t n = strlen(s);
    int rc;
    if (n >= max)
        n = max - 1;
    if ((rc = put_var(b, cap, pos, n)) < 0)
        return rc;
    if (b) {
        if (n > cap - *pos)
            return SATCHEL_E_RANGE;
        memcpy(b + *pos, s, n);
    }
    *pos += n;
    return 0;
}

static int get_s(const uint8_t *b, size_t len, size_t *pos, char *out, size_t max)
{
    uint64_t n;
    if (get_var(b, len, pos, &n) < 0 || n >= max || n > len - *pos ||
        memchr(b + *pos, 0, (size_t)n))
        return SATCHEL_E_STORE;
    memcpy(out, b + *pos, (size_t)n);
    out[n] = '\0';
    *pos += (size_t)n;
    return 0;
}

/* The greedy coding of s (the longest token at each point, else the byte):
 * written to out when out is not NULL, compared with cmp[0..clen) when cmp
 * is not NULL.  Returns the coded length, or -1 (no room, or a mismatch). */
static long bs_code(const char *s, uint8_t *out, size_t cap, const uint8_t *cmp,
                    size_t clen)
{
    size_t i = 0, o = 0;
    while (s[i]) {
        size_t best = 0, bl = 0, t;
        uint8_t c[2];
        size_t cn;
        /* Every token begins with one of these: any other byte is itself
         * (most of a structure: values, sizes, boundaries). */
        if (s[i] == '(' || s[i] == '"' || s[i] == ' ' || s[i] == 'N') {
            for (t = 0; t < BS_NTOK; t++) {
                size_t l = bs_len[t];
                if (l > bl && bs_tok[t][0] == s[i] && bs_tok[t][1] == s[i + 1] &&
                    strncmp(s + i, bs_tok[t], l) == 0) {
                    best = t;
                    bl = l;
                }
            }
        }
        if (bl) {
            c[0] = 0;
            c[1] = (uint8_t)best;
            cn = 2;
            i += bl;
        } else {
            c[0] = (uint8_t)s[i++];
            cn = 1;
        }
        if (out && o + cn > cap)
            return -1;
        if (cmp && (o + cn > clen || memcmp(cmp + o, c, cn) != 0))
            return -1;
        if (out)
            memcpy(out + o, c, cn);
        o += cn;
    }
    if (cmp && o != clen)
        return -1;
    return (long)o;
}

int store_msg_encode_v5(const satchel_msg *m, uint8_t *b, size_t cap)
{
    size_t pos = 0;
    long n;
    int rc;
    if (b) {
        if (cap < 1)
            return SATCHEL_E_RANGE;
        b[0] = 5;
    }
    pos++;
    if ((rc = put_var(b, cap, &pos, m->flags)) < 0 ||
        (rc = put_var(b, cap, &pos, m->size)) < 0 ||
        (rc = put_var(b, cap, &pos, m->mflags)) < 0 ||
        (rc = put_var(b, cap, &pos, zz((uint64_t)m->internaldate))) < 0 ||
        (rc = put_var(b, cap, &pos,
                      zz((uint64_t)m->date - (uint64_t)m->internaldate))) < 0 ||
        (rc = put_var(b, cap, &pos, zz((uint64_t)(int64_t)m->internaldate_tz))) < 0 ||
        (rc = put_var(b, cap, &pos, zz((uint64_t)(int64_t)m->date_tz))) < 0 ||
        (rc = put_var(b, cap, &pos, m->modseq)) < 0 ||
        (rc = put_s(b, cap, &pos, m->keywords, sizeof m->keywords)) < 0 ||
        (rc = put_s(b, cap, &pos, m->from, sizeof m->from)) < 0 ||
        (rc = put_s(b, cap, &pos, m->subject, sizeof m->subject)) < 0 ||
        (rc = put_s(b, cap, &pos, m->message_id, sizeof m->message_id)) < 0)
        return rc;
    n = bs_code(m->bodystructure, NULL, 0, NULL, 0);
    if ((rc = put_var(b, cap, &pos, (uint64_t)n)) < 0)
        return rc;
    if (b && ((size_t)n > cap - pos ||
              bs_code(m->bodystructure, b + pos, cap - pos, NULL, 0) != n))
        return SATCHEL_E_RANGE;
    pos += (size_t)n;
    if ((rc = put_s(b, cap, &pos, m->preview, sizeof m->preview)) < 0)
        return rc;
    if (!b)
        return (int)(pos + REC_CRC);
    if (pos + REC_CRC > cap)
        return SATCHEL_E_RANGE;
    {
        uint8_t k[4];
        be32(k, m->uid);
        return (int)store_seal(b, pos, k, sizeof k);
    }
}

int store_msg_decode_v5(const uint8_t *b, size_t len, uint32_t uid, satchel_msg *m)
{
    size_t pos = 1, o = 0, end;
    uint64_t v[8], clen;
    unsigned i;
    uint8_t k[4];
    be32(k, uid);
    if (len < 1 || b[0] != 5 || store_unseal(b, &len, k, sizeof k) < 0)
        return SATCHEL_E_STORE;
    for (i = 0; i < 8; i++)
        if (get_var(b, len, &pos, &v[i]) < 0)
            return SATCHEL_E_STORE;
    /* RFC822.SIZE is a number64 (RFC 9051): up to 2^63-1. */
    if (v[0] > UINT32_MAX || v[1] > INT64_MAX || v[2] > UINT32_MAX)
        return SATCHEL_E_STORE;
    m->uid = uid;
    m->flags = (uint32_t)v[0];
    m->size = v[1];
    m->mflags = (uint32_t)v[2];
    m->internaldate = (int64_t)unzz(v[3]);
    m->date = (int64_t)((uint64_t)m->internaldate + unzz(v[4]));
    if ((int64_t)unzz(v[5]) < -1440 || (int64_t)unzz(v[5]) > 1440 ||
        (int64_t)unzz(v[6]) < -1440 || (int64_t)unzz(v[6]) > 1440)
        return SATCHEL_E_STORE;
    m->internaldate_tz = (int16_t)(int64_t)unzz(v[5]);
    m->date_tz = (int16_t)(int64_t)unzz(v[6]);
    m->modseq = v[7];
    if (get_s(b, len, &pos, m->keywords, sizeof m->keywords) < 0 ||
        get_s(b, len, &pos, m->from, sizeof m->from) < 0 ||
        get_s(b, len, &pos, m->subject, sizeof m->subject) < 0 ||
        get_s(b, len, &pos, m->message_id, sizeof m->message_id) < 0 ||
        get_var(b, len, &pos, &clen) < 0 || clen > len - pos)
        return SATCHEL_E_STORE;
    end = pos + (size_t)clen;
    for (i = (unsigned)pos; i < end; i++) {
        const char *t;
        size_t tl;
        if (b[i] == 0) {
            if (i + 1 >= end || b[i + 1] >= BS_NTOK)
                return SATCHEL_E_STORE;
            t = bs_tok[b[i + 1]];
            tl = bs_len[b[++i]];
        } else {
            t = (const char *)b + i;
            tl = 1;
        }
        if (o + tl >= sizeof m->bodystructure)
            return SATCHEL_E_STORE;
        memcpy(m->bodystructure + o, t, tl);
        o += tl;
    }
    m->bodystructure[o] = '\0';
    if (bs_code(m->bodystructure, NULL, 0, b + pos, (size_t)clen) < 0)
        return SATCHEL_E_STORE; /* not how it would have been written */
    pos = end;
    if (get_s(b, len, &pos, m->preview, sizeof m->preview) < 0 || pos != len)
        return SATCHEL_E_STORE;
    return 0;
}

/* A record's flags and mflags without decoding (and checking) all of it,
 * for counts: any version; 0 for what a damaged record does not hold. */
uint32_t store_msg_peek(const void *p, size_t len, int which_mflags)
{
    const uint8_t *b = p;
    if (len >= 1 && b[0] == MSG_REC_COMPACT) {
        size_t pos = 1;
        uint64_t v[3];
        unsigned i;
        for (i = 0; i < 3; i++)
            if (get_var(b, len, &pos, &v[i]) < 0)
                return 0;
        return (uint32_t)(which_mflags ? v[2] : v[0]);
    }
    if (len < (which_mflags ? 13u : 5u))
        return 0;
    return rd32(b + (which_mflags ? 9 : 1));
}

/* fuzz_store_record: the store's message record codec.
 *
 * 1. satchel_store_msg_decode on the raw input.  A record that decodes must
 *    re-encode to exactly the same bytes (the format is canonical) and
 *    decode again to the same message (a record of an older version is
 *    rewritten in the current one, and that must decode the same).
 * 2. The input also describes a message (fixed fields from the first bytes,
 *    the strings from the rest, split at NULs and cut to their
 *    fields).  Encoding it must give a record that decodes back to the same
 *    message, and encoding into any smaller buffer must fail cleanly with
 *    SATCHEL_E_RANGE without writing past the buffer. */
#include "fuzz_common.h"

#include "satchel/store.h"

#define REC_MAX 8192

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static uint64_t rd64(const uint8_t *p)
{
    return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

static satchel_msg m1, m2, m3;
static uint8_t rec[REC_MAX + 16], rec2[REC_MAX + 16];

static void take_str(char *dst, size_t cap, const uint8_t **p, size_t *left)
{
    const uint8_t *z = memchr(*p, 0, *left);
    size_t n = z ? (size_t)(z - *p) : *left;
    size_t k = n < cap - 1 ? n : cap - 1;
    memcpy(dst, *p, k);
    dst[k] = '\0';
    *p += n + (z ? 1 : 0);
    *left -= n + (z ? 1 : 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int rc, len, len2;
    uint32_t uid = size >= 4 ? rd32(data) : 7;

    if (size > REC_MAX * 2)
        return 0;

    /* 1. Decode arbitrary bytes. */
    rc = satchel_store_msg_decode(data, size, uid, &m1);
    FZ_CHECK(rc == 0 || rc == SATCHEL_E_STORE, "decode rc %d", rc);
    if (rc == 0) {
        FZ_CHECK(m1.uid == uid, "uid not taken from the key");
        FZ_CHECK(m1.internaldate_tz >= -1440 && m1.internaldate_tz <= 1440 &&
                     m1.date_tz >= -1440 && m1.date_tz <= 1440,
                 "decoded zone out of range");
        FZ_CHECK(memchr(m1.keywords, 0, sizeof m1.keywords) &&
                     memchr(m1.from, 0, sizeof m1.from) &&
                     memchr(m1.subject, 0, sizeof m1.subject) &&
                     memchr(m1.message_id, 0, sizeof m1.message_id) &&
                     memchr(m1.bodystructure, 0, sizeof m1.bodystructure) &&
                     memchr(m1.preview, 0, sizeof m1.preview),
                 "decoded string not terminated");
        len = satchel_store_msg_encode(&m1, rec, REC_MAX);
        FZ_CHECK(len > 0, "re-encode rc %d", len);
        /* Records of the current version are canonical; older versions
         * are read and rewritten in the current one. */
        if (rec[0] == data[0])
            FZ_CHECK((size_t)len == size && memcmp(rec, data, size) == 0,
                     "decode+encode is not the identity (%d vs %zu bytes)", len,
                     size);
        rc = satchel_store_msg_decode(rec, (size_t)len, uid, &m2);
        FZ_CHECK(rc == 0 && memcmp(&m1, &m2, sizeof m1) == 0,
                 "second decode differs");
    }

    /* 2. Encode a message built from the input. */
    memset(&m1, 0, sizeof m1);
    if (size >= 44) {
        const uint8_t *p = data + 44;
        size_t left = size - 44;
        m1.uid = rd32(data) | 1u;
        m1.flags = rd32(data + 4);
        m1.size = rd32(data + 8);
        m1.mflags = rd32(data + 12);
        m1.internaldate = (int64_t)rd64(data + 16);
        m1.date = (int64_t)rd64(data + 24);
        m1.internaldate_tz = (int16_t)((int16_t)(data[32] | data[33] << 8) % 1441);
        m1.date_tz = (int16_t)((int16_t)(data[34] | data[35] << 8) % 1441);
        m1.modseq = rd64(data + 36);
        take_str(m1.keywords, sizeof m1.keywords, &p, &left);
        take_str(m1.from, sizeof m1.from, &p, &left);
        take_str(m1.subject, sizeof m1.subject, &p, &left);
        take_str(m1.message_id, sizeof m1.message_id, &p, &left);
        take_str(m1.bodystructure, sizeof m1.bodystructure, &p, &left);
        take_str(m1.preview, sizeof m1.preview, &p, &left);
    } else {
        m1.uid = 1;
    }
    len = satchel_store_msg_encode(&m1, rec, REC_MAX);
    FZ_CHECK(len > 0 && len <= REC_MAX, "encode rc %d", len);
    rc = satchel_store_msg_decode(rec, (size_t)len, m1.uid, &m3);
    FZ_CHECK(rc == 0, "a record the store wrote does not decode (rc %d)", rc);
    FZ_CHECK(memcmp(&m1, &m3, sizeof m1) == 0, "encode+decode changed the message");
    /* Any shorter buffer: SATCHEL_E_RANGE, nothing written past it. */
    {
        size_t cap = size ? data[size - 1] % ((size_t)len) : 0;
        memset(rec2, 0xA5, sizeof rec2);
        len2 = satchel_store_msg_encode(&m1, rec2, cap);
        FZ_CHECK(len2 == SATCHEL_E_RANGE, "encode into %zu of %d bytes: rc %d",
                 cap, len, len2);
        FZ_CHECK(rec2[cap] == 0xA5, "encode wrote past its buffer");
    }
    /* Every truncation of a valid record is damaged, never a crash. */
    if (len > 1) {
        size_t cut = size ? data[0] % (size_t)len : 0;
        rc = satchel_store_msg_decode(rec, cut, m1.uid, &m2);
        FZ_CHECK(rc == SATCHEL_E_STORE, "truncated record decoded (cut %zu)", cut);
    }
    return 0;
}

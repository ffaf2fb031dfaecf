/* Messages: records keyed by folder id and UID (big-endian), so newest
 * first is a backward cursor walk and a folder is one contiguous range. */
#include "store_internal.h"

#include <string.h>

static uint32_t crc_more(uint32_t c, const uint8_t *p, size_t n);

uint32_t store_crc32c(const uint8_t *p, size_t n)
{
    return crc_more(0xFFFFFFFFu, p, n) ^ 0xFFFFFFFFu;
}

static uint32_t crc_more(uint32_t c, const uint8_t *p, size_t n)
{
    /* Nibble-wise: 64 bytes of table instead of 1 KB, fast enough for
     * records of a few hundred bytes. */
    static const uint32_t t[16] = {
        0x00000000, 0x105EC76F, 0x20BD8EDE, 0x30E349B1, 0x417B1DBC, 0x5125DAD3,
        0x61C69362, 0x7198540D, 0x82F63B78, 0x92A8FC17, 0xA24BB5A6, 0xB21572C9,
        0xC38D26C4, 0xD3D3E1AB, 0xE330A81A, 0xF36E6F75};
    size_t i;
    for (i = 0; i < n; i++) {
        c ^= p[i];
        c = (c >> 4) ^ t[c & 15];
        c = (c >> 4) ^ t[c & 15];
    }
    return c;
}

static uint32_t crc_kv(const void *k, size_t klen, const uint8_t *b, size_t len)
{
    return crc_more(crc_more(0xFFFFFFFFu, k, klen), b, len) ^ 0xFFFFFFFFu;
}

size_t store_seal(uint8_t *b, size_t len, const void *k, size_t klen)
{
    le32(b + len, crc_kv(k, klen, b, len));
    return len + REC_CRC;
}

int store_unseal(const uint8_t *b, size_t *len, const void *k, size_t klen)
{
    if (*len < REC_CRC + 1 ||
        rd32(b + *len - REC_CRC) != crc_kv(k, klen, b, *len - REC_CRC))
        return SATCHEL_E_STORE;
    *len -= REC_CRC;
    return 0;
}

int store_put_str(uint8_t *buf, size_t cap, size_t *pos, const char *s,
                  size_t max)
{
    size_t n = strlen(s);
    if (n >= max)
        n = max - 1;
    if (*pos + 2 + n > cap)
        return SATCHEL_E_RANGE;
    buf[*pos] = (uint8_t)n;
    buf[*pos + 1] = (uint8_t)(n >> 8);
    memcpy(buf + *pos + 2, s, n);
    *pos += 2 + n;
    return 0;
}

int store_get_str(const uint8_t *buf, size_t len, size_t *pos, char *out,
                  size_t max)
{
    size_t n;
    if (*pos + 2 > len)
        return SATCHEL_E_STORE;
    n = (size_t)buf[*pos] | (size_t)buf[*pos + 1] << 8;
    if (n >= max || *pos + 2 + n > len || memchr(buf + *pos + 2, 0, n))
        return SATCHEL_E_STORE;
    memcpy(out, buf + *pos + 2, n);
    out[n] = '\0';
    *pos += 2 + n;
    return 0;
}

int satchel_store_msg_encode(const satchel_msg *m, uint8_t *b, size_t cap)
{
    return store_msg_encode_v5(m, b, cap);
}

/* Versions 1 to 4 had fixed-width numbers and 2-byte string lengths;
 * MSG_REC_COMPACT (core/store_msgrec.c) is written now. */
int satchel_store_msg_decode(const uint8_t *b, size_t len, uint32_t uid,
                             satchel_msg *m)
{
    size_t pos = MSG_REC_FIXED;
    int rc;
    memset(m, 0, sizeof *m);
    if (len >= 1 && b[0] == MSG_REC_COMPACT)
        return store_msg_decode_v5(b, len, uid, m);
    if (len < MSG_REC_FIXED || b[0] < 1 || b[0] > MSG_REC_VERSION)
        return SATCHEL_E_STORE;
    if (b[0] >= 3) {
        uint8_t k[4];
        be32(k, uid);
        if (store_unseal(b, &len, k, b[0] == MSG_REC_VERSION ? sizeof k : 0) < 0)
            return SATCHEL_E_STORE;
    }
    if (len < MSG_REC_FIXED)
        return SATCHEL_E_STORE;
    m->uid = uid;
    m->flags = rd32(b + 1);
    m->size = rd32(b + 5);
    m->mflags = rd32(b + 9);
    m->internaldate = (int64_t)rd64(b + 13);
    m->date = (int64_t)rd64(b + 21);
    m->internaldate_tz = (int16_t)(uint16_t)(b[29] | b[30] << 8);
    m->date_tz = (int16_t)(uint16_t)(b[31] | b[32] << 8);
    m->modseq = rd64(b + 33);
    if ((rc = store_get_str(b, len, &pos, m->keywords, sizeof m->keywords)) < 0 ||
        (rc = store_get_str(b, len, &pos, m->from, sizeof m->from)) < 0 ||
        (rc = store_get_str(b, len, &pos, m->subject, sizeof m->subject)) < 0 ||
        (rc = store_get_str(b, len, &pos, m->message_id, sizeof m->message_id)) < 0 ||
        (rc = store_get_str(b, len, &pos, m->bodystructure,
                      sizeof m->bodystructure)) < 0)
        return rc;
    if (b[0] >= 2 &&
        (rc = store_get_str(b, len, &pos, m->preview, sizeof m->preview)) < 0)
        return rc;
    if (pos != len || m->internaldate_tz < -1440 || m->internaldate_tz > 1440 ||
        m->date_tz < -1440 || m->date_tz > 1440)
        return SATCHEL_E_STORE;
    return 0;
}

static int del_range(satchel_store_txn *t, satchel_folder *f, uint32_t lo,
                     uint32_t hi, uint32_t *deleted)
{
    return store_del_range(t, f, lo, hi, deleted, 0);
}

int satchel_store_msg_del_server_range(satchel_store_txn *t, satchel_folder *f,
                                       uint32_t lo, uint32_t hi, uint32_t *deleted)
{
    return store_del_range(t, f, lo, hi, deleted, 1);
}

int store_del_range(satchel_store_txn *t, satchel_folder *f, uint32_t lo,
                    uint32_t hi, uint32_t *deleted, int keep_pending)
{
    MDB_cursor *cur;
    uint8_t kb[8];
    MDB_val k = {8, kb}, v;
    int rc;
    *deleted = 0;
    if (lo > hi)
        return 0;
    store_msg_key(kb, f->id, lo);
    if ((rc = mdb_cursor_open(t->txn, t->s->msgs, &cur)))
        return store_err(rc);
    rc = store_cget(cur, &k, &v, MDB_SET_RANGE);
    while (rc == 0) {
        const uint8_t *kp = k.mv_data;
        uint32_t uid;
        if (k.mv_size != 8 || rd_be32(kp) != f->id)
            break;
        uid = rd_be32(kp + 4);
        if (uid > hi)
            break;
        if (keep_pending && v.mv_size >= 13 &&
            (store_msg_peek(v.mv_data, v.mv_size, 1) & SATCHEL_MSG_F_PENDING)) {
            if (uid == hi)
                break;
            rc = store_cget(cur, &k, &v, MDB_NEXT);
            continue;
        }
        if (v.mv_size >= 5 && f->count > 0) {
            f->count--;
            if (!(store_msg_peek(v.mv_data, v.mv_size, 0) & SATCHEL_FLAG_SEEN) &&
                f->unseen > 0)
                f->unseen--;
        }
        if ((rc = mdb_cursor_del(cur, 0)))
            break;
        (*deleted)++;
        {
            /* A message gone takes its cached bodies and pin with it. */
            uint32_t nb;
            uint8_t pk[8];
            MDB_val pkey = {8, pk};
            int brc = satchel_store_body_evict(t, f->id, uid, NULL, &nb);
            if (brc < 0) {
                rc = brc == SATCHEL_E_STORE_FULL ? MDB_MAP_FULL : MDB_PANIC;
                break;
            }
            store_msg_key(pk, f->id, uid);
            brc = mdb_del(t->txn, t->s->pins, &pkey, NULL);
            if (brc && brc != MDB_NOTFOUND) {
                rc = brc;
                break;
            }
        }
        if (uid == hi)
            break;
        /* Re-seek rather than rely on cursor position after a delete. */
        store_msg_key(kb, f->id, uid + 1);
        k.mv_size = 8;
        k.mv_data = kb;
        rc = store_cget(cur, &k, &v, MDB_SET_RANGE);
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : store_err(rc);
}

/* ---- messages ---- */

int satchel_store_msg_put(satchel_store_txn *t, satchel_folder *f,
                          const satchel_msg *m, int *is_new)
{
    uint8_t kb[8];
    MDB_val k = {8, kb}, v, old;
    int len, rc, fresh;
    if (m->uid == 0)
        return SATCHEL_E_INVAL;
    /* Measured first, then encoded straight into the page LMDB reserves:
     * no record-sized buffer is held for it. */
    len = satchel_store_msg_encode(m, NULL, 0);
    if (len < 0)
        return len;
    if (len > (int)MSG_REC_MAX)
        return SATCHEL_E_RANGE;
    store_msg_key(kb, f->id, m->uid);
    rc = store_get(t->txn, t->s->msgs, &k, &old);
    fresh = rc == MDB_NOTFOUND;
    if (rc && !fresh)
        return store_err(rc);
    if (!fresh && old.mv_size >= 5 &&
        !(store_msg_peek(old.mv_data, old.mv_size, 0) & SATCHEL_FLAG_SEEN) &&
        f->unseen > 0)
        f->unseen--;
    v.mv_size = (size_t)len;
    v.mv_data = NULL;
    if ((rc = mdb_put(t->txn, t->s->msgs, &k, &v, MDB_RESERVE)))
        return store_err(rc);
    if (satchel_store_msg_encode(m, v.mv_data, (size_t)len) != len)
        return SATCHEL_E_STORE; /* cannot happen: the same record twice */
    if (fresh)
        f->count++;
    if (!(m->flags & SATCHEL_FLAG_SEEN))
        f->unseen++;
    if (is_new)
        *is_new = fresh;
    return 0;
}

int satchel_store_msg_get(satchel_store *s, satchel_store_txn *t,
                          uint32_t folder_id, uint32_t uid, satchel_msg *out)
{
    MDB_txn *txn;
    uint8_t kb[8];
    MDB_val k = {8, kb}, v;
    int rc;
    store_msg_key(kb, folder_id, uid);
    if ((rc = store_rtxn(s, t, &txn)) < 0)
        return rc;
    rc = store_err(store_get(txn, s->msgs, &k, &v));
    if (rc == 0)
        rc = satchel_store_msg_decode(v.mv_data, v.mv_size, uid, out);
    store_rtxn_end(t, txn);
    return rc;
}

int satchel_store_msg_mflags(satchel_store *s, satchel_store_txn *t, uint32_t folder_id,
                             uint32_t uid, uint32_t *mflags)
{
    int rc = satchel_store_msg_get(s, t, folder_id, uid, &s->scratch);
    if (rc == 0)
        *mflags = s->scratch.mflags;
    return rc;
}

int satchel_store_msg_set_flags(satchel_store_txn *t, satchel_folder *f,
                                uint32_t uid, uint32_t flags,
                                const char *keywords, uint64_t modseq)
{
    satchel_msg *m = &t->s->scratch;
    int rc = satchel_store_msg_get(t->s, t, f->id, uid, m);
    if (rc == 0) {
        if (m->flags == flags && strcmp(m->keywords, keywords) == 0) {
            if (modseq > m->modseq) {
                m->modseq = modseq;
                rc = satchel_store_msg_put(t, f, m, NULL);
            }
        } else {
            m->flags = flags;
            strncpy(m->keywords, keywords, sizeof m->keywords - 1);
            m->keywords[sizeof m->keywords - 1] = '\0';
            if (modseq > m->modseq)
                m->modseq = modseq;
            rc = satchel_store_msg_put(t, f, m, NULL);
            if (rc == 0)
                rc = 1;
        }
    }
    return rc;
}

int satchel_store_msg_del(satchel_store_txn *t, satchel_folder *f,
                          uint32_t uid)
{
    uint32_t n;
    int rc = del_range(t, f, uid, uid, &n);
    return rc < 0 ? rc : (int)n;
}

int satchel_store_msg_del_range(satchel_store_txn *t, satchel_folder *f,
                                uint32_t lo, uint32_t hi, uint32_t *deleted)
{
    return del_range(t, f, lo, hi, deleted);
}

/* One walk over a folder's messages from uid up, counting all of them,
 * the server's ones (their UID span) and those moved here offline. */
struct scan {
    uint32_t all, server, lo, hi, pending;
};

static int scan_from(satchel_store *s, satchel_store_txn *t, uint32_t folder_id,
                     uint32_t uid, struct scan *out)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    uint8_t kb[8];
    MDB_val k = {8, kb}, v;
    int rc;
    memset(out, 0, sizeof *out);
    store_msg_key(kb, folder_id, uid);
    if ((rc = store_rtxn(s, t, &txn)) < 0)
        return rc;
    if ((rc = mdb_cursor_open(txn, s->msgs, &cur))) {
        store_rtxn_end(t, txn);
        return store_err(rc);
    }
    rc = store_cget(cur, &k, &v, MDB_SET_RANGE);
    while (rc == 0 && k.mv_size == 8 && rd_be32(k.mv_data) == folder_id) {
        uint32_t u = rd_be32((const uint8_t *)k.mv_data + 4);
        out->all++;
        if (v.mv_size >= 13 &&
            (store_msg_peek(v.mv_data, v.mv_size, 1) & SATCHEL_MSG_F_PENDING)) {
            out->pending++;
        } else {
            if (!out->server)
                out->lo = u;
            out->hi = u;
            out->server++;
        }
        rc = store_cget(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    store_rtxn_end(t, txn);
    return rc == 0 || rc == MDB_NOTFOUND ? 0 : store_err(rc);
}

int satchel_store_msg_count_from(satchel_store *s, satchel_store_txn *t,
                                 uint32_t folder_id, uint32_t uid,
                                 uint32_t *count)
{
    struct scan sc;
    int rc = scan_from(s, t, folder_id, uid, &sc);
    *count = sc.all;
    return rc;
}

int satchel_store_msg_span_from(satchel_store *s, satchel_store_txn *t,
                                uint32_t folder_id, uint32_t uid,
                                uint32_t *count, uint32_t *lo, uint32_t *hi)
{
    struct scan sc;
    int rc = scan_from(s, t, folder_id, uid, &sc);
    *count = sc.server;
    *lo = sc.lo;
    *hi = sc.hi;
    return rc;
}

int satchel_store_msg_count_pending(satchel_store *s, satchel_store_txn *t,
                                    uint32_t folder_id, uint32_t *count)
{
    struct scan sc;
    /* Placeholders are allocated from SATCHEL_PLACEHOLDER_UID up, so only
     * that range needs looking at. */
    int rc = scan_from(s, t, folder_id, SATCHEL_PLACEHOLDER_UID, &sc);
    *count = sc.pending;
    return rc;
}

int satchel_store_msg_list(satchel_store *s, uint32_t folder_id,
                           uint32_t offset, uint32_t count,
                           satchel_store_msg_cb cb, void *ctx)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    uint8_t kb[8];
    MDB_val k = {8, kb}, v;
    satchel_msg *m = &s->scratch;
    int rc, ret = 0;

    if ((rc = store_rtxn(s, NULL, &txn)) < 0)
        return rc;
    if ((rc = mdb_cursor_open(txn, s->msgs, &cur))) {
        ret = store_err(rc);
        goto out;
    }
    /* Position on the folder's highest UID: one past the range, then back. */
    if (folder_id == UINT32_MAX) {
        rc = store_cget(cur, &k, &v, MDB_LAST);
    } else {
        store_msg_key(kb, folder_id + 1, 0);
        rc = store_cget(cur, &k, &v, MDB_SET_RANGE);
        rc = store_cget(cur, &k, &v, rc == 0 ? MDB_PREV : MDB_LAST);
    }
    while (rc == 0 && count > 0 && k.mv_size == 8 &&
           rd_be32(k.mv_data) == folder_id) {
        if (offset > 0) {
            offset--;
        } else {
            if (satchel_store_msg_decode(v.mv_data, v.mv_size,
                                         rd_be32((uint8_t *)k.mv_data + 4), m) < 0) {
                /* Counted and skipped: one bad record must not stop the
                 * listing. */
                s->damaged++;
                rc = store_cstep(cur, &k, &v, MDB_PREV, &s->damaged);
                continue;
            }
            ret = cb(ctx, m);
            if (ret != 0)
                break;
            count--;
        }
        rc = store_cstep(cur, &k, &v, MDB_PREV, &s->damaged);
    }
    if (ret == 0 && rc != 0 && rc != MDB_NOTFOUND)
        ret = store_err(rc);
    mdb_cursor_close(cur);
out:
    store_rtxn_end(NULL, txn);
    return ret;
}


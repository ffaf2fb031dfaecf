/* The body cache.
 * bodies   bkey | offset (BE64) -> chunk bytes
 * bodymeta bkey -> stored u64, expected u64, atime u64, complete u8
 * lru      atime (BE64) -> bkey        (oldest first)
 * pins     fid | uid -> ""
 * where bkey = fid (BE32) | uid (BE32) | section | NUL. */
#include "store_internal.h"

#include <string.h>

#define BKEY_MAX (8 + SATCHEL_SECTION_MAX + 1)

/* Returns the key length, or 0 for a section we do not accept. */
static size_t bkey(uint8_t *k, uint32_t fid, uint32_t uid, const char *section)
{
    size_t n = strlen(section), i;
    if (n == 0 || n >= SATCHEL_SECTION_MAX)
        return 0;
    for (i = 0; i < n; i++) {
        char c = section[i];
        if (!((c >= '0' && c <= '9') || c == '.' || (c >= 'A' && c <= 'Z')))
            return 0;
    }
    store_msg_key(k, fid, uid);
    memcpy(k + 8, section, n + 1);
    return 8 + n + 1;
}

static void bodymeta_encode(const satchel_body_info *bi, uint8_t *b, const uint8_t *k,
                            size_t klen)
{
    b[0] = BODYMETA_VERSION;
    le64(b + 1, bi->stored);
    le64(b + 9, bi->expected);
    le64(b + 17, bi->atime);
    b[25] = bi->complete;
    store_seal(b, BODYMETA_LEN, k, klen);
}

int store_bodymeta_decode(const MDB_val *k, const MDB_val *vp, satchel_body_info *bi)
{
    MDB_val v = *vp;
    const uint8_t *b = v.mv_data;
    size_t len = v.mv_size;
    if (len == BODYMETA_LEN + REC_CRC && b[0] >= 2 && b[0] <= BODYMETA_VERSION &&
        store_unseal(b, &len, k->mv_data, b[0] == BODYMETA_VERSION ? k->mv_size : 0) < 0)
        return SATCHEL_E_STORE;
    if (len != BODYMETA_LEN || b[0] < 1 || b[0] > BODYMETA_VERSION ||
        (b[0] >= 2) != (v.mv_size == len + REC_CRC) || b[25] > 1)
        return SATCHEL_E_STORE;
    bi->stored = rd64(b + 1);
    bi->expected = rd64(b + 9);
    bi->atime = rd64(b + 17);
    bi->complete = b[25];
    return 0;
}

static int bodymeta_get(MDB_txn *txn, satchel_store *s, const uint8_t *k,
                        size_t klen, satchel_body_info *bi)
{
    MDB_val key = {klen, (void *)k}, v;
    int rc = store_get(txn, s->bodymeta, &key, &v);
    if (rc)
        return store_err(rc);
    return store_bodymeta_decode(&key, &v, bi);
}

static int bodymeta_put(MDB_txn *txn, satchel_store *s, const uint8_t *k,
                        size_t klen, const satchel_body_info *bi)
{
    uint8_t b[BODYMETA_LEN + REC_CRC];
    MDB_val key = {klen, (void *)k}, v = {sizeof b, b};
    bodymeta_encode(bi, b, k, klen);
    return store_err(mdb_put(txn, s->bodymeta, &key, &v, 0));
}

/* Move a body to the recent end of the LRU order. */
static int lru_set(MDB_txn *txn, satchel_store *s, const uint8_t *k,
                   size_t klen, satchel_body_info *bi)
{
    uint8_t ak[8];
    MDB_val key = {8, ak}, v = {klen, (void *)k};
    int rc;
    if (bi->atime) {
        be64(ak, bi->atime);
        rc = mdb_del(txn, s->lru, &key, NULL);
        if (rc && rc != MDB_NOTFOUND)
            return store_err(rc);
    }
    bi->atime = store_meta_get64(txn, s->meta, "clock") + 1;
    if ((rc = store_meta_put64(txn, s->meta, "clock", bi->atime)) < 0)
        return rc;
    be64(ak, bi->atime);
    return store_err(mdb_put(txn, s->lru, &key, &v, 0));
}

/* Delete one body given its key: chunks, meta and LRU entry. */
static int body_drop(MDB_txn *txn, satchel_store *s, const uint8_t *k,
                     size_t klen)
{
    satchel_body_info bi;
    MDB_cursor *cur;
    uint8_t ck[BKEY_MAX + 8];
    MDB_val key, v;
    int rc = bodymeta_get(txn, s, k, klen, &bi);
    if (rc == SATCHEL_E_STORE) {
        memset(&bi, 0, sizeof bi); /* damaged meta: drop what is there */
    } else if (rc < 0) {
        return rc;
    }
    memcpy(ck, k, klen);
    memset(ck + klen, 0, 8);
    if ((rc = mdb_cursor_open(txn, s->bodies, &cur)))
        return store_err(rc);
    key.mv_size = klen + 8;
    key.mv_data = ck;
    rc = store_cget(cur, &key, &v, MDB_SET_RANGE);
    while (rc == 0 && key.mv_size == klen + 8 &&
           memcmp(key.mv_data, k, klen) == 0) {
        if ((rc = mdb_cursor_del(cur, 0)))
            break;
        key.mv_size = klen + 8;
        key.mv_data = ck;
        rc = store_cget(cur, &key, &v, MDB_SET_RANGE);
    }
    mdb_cursor_close(cur);
    if (rc && rc != MDB_NOTFOUND)
        return store_err(rc);
    if (bi.atime) {
        uint8_t ak[8];
        MDB_val akey = {8, ak};
        be64(ak, bi.atime);
        rc = mdb_del(txn, s->lru, &akey, NULL);
        if (rc && rc != MDB_NOTFOUND)
            return store_err(rc);
    }
    key.mv_size = klen;
    key.mv_data = (void *)k;
    rc = mdb_del(txn, s->bodymeta, &key, NULL);
    if (rc && rc != MDB_NOTFOUND)
        return store_err(rc);
    return store_meta_add64(txn, s->meta, "cache_bytes", -(int64_t)bi.stored);
}

/* Bodies may take 3/8 of the map.  Their copy-on-write while they are
 * written or evicted can take as much again before LMDB reuses the old
 * pages, and the last quarter is left to headers, the queue and LMDB's
 * free-page records, so the cache alone can never fill the store. */
uint64_t store_default_budget(const satchel_store *s)
{
    return s->map_size / 8 * 3;
}

void satchel_store_set_cache_budget(satchel_store *s, uint64_t bytes)
{
    uint64_t most = store_default_budget(s);
    s->budget = bytes == 0 || bytes > most ? most : bytes;
}

int satchel_store_body_info(satchel_store *s, satchel_store_txn *t,
                            uint32_t fid, uint32_t uid, const char *section,
                            satchel_body_info *out)
{
    uint8_t k[BKEY_MAX];
    size_t klen = bkey(k, fid, uid, section);
    MDB_txn *txn;
    int rc;
    memset(out, 0, sizeof *out);
    if (!klen)
        return SATCHEL_E_INVAL;
    if ((rc = store_rtxn(s, t, &txn)) < 0)
        return rc;
    rc = bodymeta_get(txn, s, k, klen, out);
    store_rtxn_end(t, txn);
    return rc;
}

static int is_pinned_txn(MDB_txn *txn, satchel_store *s, uint32_t fid,
                         uint32_t uid)
{
    uint8_t pk[8];
    MDB_val key = {8, pk}, v;
    store_msg_key(pk, fid, uid);
    return store_get(txn, s->pins, &key, &v) == 0;
}

/* Evict LRU bodies (never pinned ones, never the protected key) until
 * cache_bytes + need <= budget, or, when want_free is set, until that many
 * bytes were freed. */
static int evict_lru(satchel_store_txn *t, uint64_t need, uint64_t want_free,
                     const uint8_t *protect, size_t plen)
{
    satchel_store *s = t->s;
    MDB_cursor *cur;
    MDB_val key, v;
    uint8_t ak[8] = {0};
    uint64_t freed = 0;
    int rc;

    for (;;) {
        uint64_t bytes = store_meta_get64(t->txn, s->meta, "cache_bytes");
        uint8_t victim[BKEY_MAX];
        size_t vlen;
        satchel_body_info bi;
        if (want_free ? freed >= want_free
                      : (s->budget == 0 || bytes + need <= s->budget))
            return 0;
        if ((rc = mdb_cursor_open(t->txn, s->lru, &cur)))
            return store_err(rc);
        key.mv_size = 8;
        key.mv_data = ak;
        rc = store_cget(cur, &key, &v, MDB_SET_RANGE);
        /* Skip pinned and protected bodies. */
        while (rc == 0) {
            const uint8_t *vk = v.mv_data;
            if (v.mv_size >= 9 && v.mv_size <= BKEY_MAX &&
                !(protect && v.mv_size == plen && memcmp(vk, protect, plen) == 0) &&
                !is_pinned_txn(t->txn, s, rd_be32(vk), rd_be32(vk + 4)))
                break;
            rc = store_cget(cur, &key, &v, MDB_NEXT);
        }
        if (rc) {
            mdb_cursor_close(cur);
            /* Nothing left to evict. */
            return rc == MDB_NOTFOUND ? SATCHEL_E_STORE_FULL : store_err(rc);
        }
        memcpy(ak, key.mv_data, 8);
        vlen = v.mv_size;
        memcpy(victim, v.mv_data, vlen);
        mdb_cursor_close(cur);
        if (bodymeta_get(t->txn, s, victim, vlen, &bi) < 0)
            bi.stored = 0;
        if ((rc = body_drop(t->txn, s, victim, vlen)) < 0) {
            if (rc == SATCHEL_E_NOTFOUND) {
                /* Stale LRU entry without meta: remove it. */
                MDB_val akey = {8, ak};
                mdb_del(t->txn, s->lru, &akey, NULL);
                continue;
            }
            return rc;
        }
        freed += bi.stored;
        if ((rc = store_meta_add64(t->txn, s->meta, "evictions", 1)) < 0)
            return rc;
    }
}

int satchel_store_cache_free(satchel_store_txn *t, uint64_t bytes, uint32_t fid,
                            uint32_t uid, const char *section)
{
    uint8_t k[BKEY_MAX];
    size_t klen = section ? bkey(k, fid, uid, section) : 0;
    if (section && !klen)
        return SATCHEL_E_INVAL;
    return bytes ? evict_lru(t, 0, bytes, klen ? k : NULL, klen) : 0;
}

int satchel_store_make_room(satchel_store *s)
{
    satchel_store_txn *t;
    uint64_t want = s->map_size / 16, before;
    int rc;
    if (want < 256u * 1024u)
        want = 256u * 1024u;
    if ((rc = satchel_store_begin_reserve(s, &t)) < 0)
        return rc;
    before = store_meta_get64(t->txn, s->meta, "cache_bytes");
    rc = evict_lru(t, 0, want, NULL, 0);
    if (rc < 0 && rc != SATCHEL_E_STORE_FULL) {
        satchel_store_abort(t);
        return rc;
    }
    if (store_meta_get64(t->txn, s->meta, "cache_bytes") >= before) {
        satchel_store_abort(t);
        return SATCHEL_E_STORE_FULL; /* nothing to evict */
    }
    if ((rc = satchel_store_commit(t)) < 0)
        return rc;
    /* LMDB hands out pages a commit freed only from the second commit
     * after it (the one between may still be read): make that one now, so
     * the caller's retry finds the room. */
    if ((rc = satchel_store_begin_reserve(s, &t)) < 0)
        return rc;
    if ((rc = store_meta_add64(t->txn, s->meta, "room_made", 1)) < 0) {
        satchel_store_abort(t);
        return rc;
    }
    return satchel_store_commit(t);
}

int satchel_store_cache_make_room(satchel_store_txn *t, uint64_t need)
{
    if (t->s->budget && need > t->s->budget)
        return SATCHEL_E_RANGE;
    if (t->s->budget == 0)
        return need ? evict_lru(t, 0, need, NULL, 0) : 0;
    return evict_lru(t, need, 0, NULL, 0);
}

int satchel_store_body_write(satchel_store_txn *t, uint32_t fid, uint32_t uid,
                             const char *section, uint64_t offset,
                             const uint8_t *data, size_t len,
                             uint64_t expected)
{
    satchel_store *s = t->s;
    uint8_t k[BKEY_MAX], ck[BKEY_MAX + 8];
    size_t klen = bkey(k, fid, uid, section);
    satchel_body_info bi;
    MDB_val key, v;
    int rc;

    if (!klen)
        return SATCHEL_E_INVAL;
    rc = bodymeta_get(t->txn, s, k, klen, &bi);
    if (rc == SATCHEL_E_NOTFOUND) {
        memset(&bi, 0, sizeof bi);
        bi.expected = expected;
        if ((rc = lru_set(t->txn, s, k, klen, &bi)) < 0)
            return rc;
    } else if (rc < 0) {
        return rc;
    }
    if (offset != bi.stored || bi.complete)
        return SATCHEL_E_INVAL;
    if (len == 0)
        return bodymeta_put(t->txn, s, k, klen, &bi);
    if (s->budget && len > s->budget)
        return SATCHEL_E_RANGE;
    if (s->budget &&
        store_meta_get64(t->txn, s->meta, "cache_bytes") + len > s->budget &&
        (rc = evict_lru(t, len, 0, k, klen)) < 0)
        return rc;
    memcpy(ck, k, klen);
    be64(ck + klen, offset);
    key.mv_size = klen + 8;
    key.mv_data = ck;
    v.mv_size = len;
    v.mv_data = (void *)data;
    if ((rc = mdb_put(t->txn, s->bodies, &key, &v, 0)))
        return store_err(rc);
    bi.stored += len;
    if ((rc = bodymeta_put(t->txn, s, k, klen, &bi)) < 0)
        return rc;
    return store_meta_add64(t->txn, s->meta, "cache_bytes", (int64_t)len);
}

int satchel_store_body_complete(satchel_store_txn *t, uint32_t fid,
                                uint32_t uid, const char *section)
{
    uint8_t k[BKEY_MAX];
    size_t klen = bkey(k, fid, uid, section);
    satchel_body_info bi;
    int rc;
    if (!klen)
        return SATCHEL_E_INVAL;
    rc = bodymeta_get(t->txn, t->s, k, klen, &bi);
    if (rc == SATCHEL_E_NOTFOUND) {
        /* An empty part: nothing was written, but it is complete. */
        memset(&bi, 0, sizeof bi);
        if ((rc = lru_set(t->txn, t->s, k, klen, &bi)) < 0)
            return rc;
    } else if (rc < 0) {
        return rc;
    }
    bi.complete = 1;
    return bodymeta_put(t->txn, t->s, k, klen, &bi);
}

int satchel_store_body_touch(satchel_store_txn *t, uint32_t fid, uint32_t uid,
                             const char *section, int hit)
{
    uint8_t k[BKEY_MAX];
    size_t klen = bkey(k, fid, uid, section);
    satchel_body_info bi;
    int rc;
    if (!klen)
        return SATCHEL_E_INVAL;
    if ((rc = store_meta_add64(t->txn, t->s->meta, hit ? "hits" : "misses", 1)) < 0)
        return rc;
    rc = bodymeta_get(t->txn, t->s, k, klen, &bi);
    if (rc < 0)
        return rc == SATCHEL_E_NOTFOUND ? 0 : rc;
    if ((rc = lru_set(t->txn, t->s, k, klen, &bi)) < 0)
        return rc;
    return bodymeta_put(t->txn, t->s, k, klen, &bi);
}

int satchel_store_body_read(satchel_store *s, uint32_t fid, uint32_t uid,
                            const char *section, satchel_store_chunk_cb cb,
                            void *ctx)
{
    uint8_t k[BKEY_MAX], ck[BKEY_MAX + 8];
    size_t klen = bkey(k, fid, uid, section);
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_val key, v;
    uint64_t expect_off = 0;
    int rc, ret = 0;
    if (!klen)
        return SATCHEL_E_INVAL;
    if ((rc = store_rtxn(s, NULL, &txn)) < 0)
        return rc;
    if ((rc = mdb_cursor_open(txn, s->bodies, &cur))) {
        store_rtxn_end(NULL, txn);
        return store_err(rc);
    }
    memcpy(ck, k, klen);
    memset(ck + klen, 0, 8);
    key.mv_size = klen + 8;
    key.mv_data = ck;
    rc = store_cget(cur, &key, &v, MDB_SET_RANGE);
    while (rc == 0 && key.mv_size == klen + 8 &&
           memcmp(key.mv_data, k, klen) == 0) {
        /* Chunks must tile the body exactly: anything else is damage. */
        if (rd_be64((const uint8_t *)key.mv_data + klen) != expect_off) {
            ret = SATCHEL_E_STORE;
            break;
        }
        expect_off += v.mv_size;
        ret = cb(ctx, v.mv_data, v.mv_size);
        if (ret)
            break;
        rc = store_cget(cur, &key, &v, MDB_NEXT);
    }
    if (ret == 0 && rc && rc != MDB_NOTFOUND)
        ret = store_err(rc);
    mdb_cursor_close(cur);
    store_rtxn_end(NULL, txn);
    return ret;
}

int satchel_store_body_evict(satchel_store_txn *t, uint32_t fid, uint32_t uid,
                             const char *section, uint32_t *n)
{
    satchel_store *s = t->s;
    uint8_t pre[8], k[BKEY_MAX];
    size_t plen, klen;
    MDB_cursor *cur;
    MDB_val key, v;
    int rc;
    *n = 0;
    if (section) {
        klen = bkey(k, fid, uid, section);
        if (!klen)
            return SATCHEL_E_INVAL;
        rc = body_drop(t->txn, s, k, klen);
        if (rc == SATCHEL_E_NOTFOUND)
            return 0;
        if (rc == 0)
            *n = 1;
        return rc;
    }
    /* Prefix: everything (fid 0), a folder (uid 0), or one message. */
    be32(pre, fid);
    be32(pre + 4, uid);
    plen = fid == 0 ? 0 : uid == 0 ? 4 : 8;
    for (;;) {
        if ((rc = mdb_cursor_open(t->txn, s->bodymeta, &cur)))
            return store_err(rc);
        key.mv_size = plen;
        key.mv_data = pre;
        rc = plen ? store_cget(cur, &key, &v, MDB_SET_RANGE)
                  : store_cget(cur, &key, &v, MDB_FIRST);
        if (rc || key.mv_size > BKEY_MAX || memcmp(key.mv_data, pre, plen) != 0) {
            mdb_cursor_close(cur);
            return rc == 0 || rc == MDB_NOTFOUND ? 0 : store_err(rc);
        }
        klen = key.mv_size;
        memcpy(k, key.mv_data, klen);
        mdb_cursor_close(cur);
        if ((rc = body_drop(t->txn, s, k, klen)) < 0)
            return rc;
        (*n)++;
    }
}

int satchel_store_pin(satchel_store_txn *t, uint32_t fid, uint32_t uid, int on)
{
    uint8_t pk[8];
    MDB_val key = {8, pk}, v = {0, (void *)""};
    int rc;
    store_msg_key(pk, fid, uid);
    if (on)
        return store_err(mdb_put(t->txn, t->s->pins, &key, &v, 0));
    rc = mdb_del(t->txn, t->s->pins, &key, NULL);
    return rc == MDB_NOTFOUND ? 0 : store_err(rc);
}

int satchel_store_is_pinned(satchel_store *s, satchel_store_txn *t,
                            uint32_t fid, uint32_t uid)
{
    MDB_txn *txn;
    int rc;
    if ((rc = store_rtxn(s, t, &txn)) < 0)
        return rc;
    rc = is_pinned_txn(txn, s, fid, uid);
    store_rtxn_end(t, txn);
    return rc;
}

int satchel_store_cache_stats(satchel_store *s, satchel_cache_stats *out)
{
    MDB_txn *txn;
    MDB_stat st;
    int rc;
    memset(out, 0, sizeof *out);
    if ((rc = store_rtxn(s, NULL, &txn)) < 0)
        return rc;
    out->bytes = store_meta_get64(txn, s->meta, "cache_bytes");
    out->hits = store_meta_get64(txn, s->meta, "hits");
    out->misses = store_meta_get64(txn, s->meta, "misses");
    out->evictions = store_meta_get64(txn, s->meta, "evictions");
    out->budget = s->budget;
    if (mdb_stat(txn, s->bodymeta, &st) == 0)
        out->entries = st.ms_entries;
    if (mdb_stat(txn, s->pins, &st) == 0)
        out->pinned = st.ms_entries;
    store_rtxn_end(NULL, txn);
    return 0;
}


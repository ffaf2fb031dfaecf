/* LMDB-backed store.  Layout (named databases):
 *   meta     "version" -> u32, "next_fid" -> u32
 *   folders  name -> folder record
 *   msgs     folder id (BE32) | uid (BE32) -> message record
 * Big-endian keys make LMDB's byte order the UID order, so "newest first"
 * is a backwards cursor walk and a folder is one contiguous key range. */
#include "satchel/store.h"

#include <lmdb.h>
#include <string.h>

#define STORE_VERSION 1u
#define MSG_REC_VERSION 2u /* 1: before previews; still read */
#define BODYMETA_LEN 26u
#define FOLDER_REC_LEN 36u
#define MSG_REC_FIXED 41u

#define MSG_REC_MAX                                                          \
    (MSG_REC_FIXED + 6 * 2 + 128 + 4 * SATCHEL_OPT_MAX_FIELD +               \
     SATCHEL_OPT_MAX_BODYSTRUCTURE)

/* A store is used from one thread; the scratch buffers below keep large
 * records off the stack, which is small on devices. */
struct satchel_store {
    const satchel_allocator *alloc;
    MDB_env *env;
    MDB_dbi meta, folders, msgs;
    MDB_dbi bodies, bodymeta, lru, pins;
    MDB_dbi queue, qidx;
    uint64_t budget;
    int txn_active;
    uint8_t rec[MSG_REC_MAX];
    satchel_msg scratch;
};

struct satchel_store_txn {
    satchel_store *s;
    MDB_txn *txn;
};

static int map_err(int rc)
{
    if (rc == 0)
        return 0;
    if (rc == MDB_NOTFOUND)
        return SATCHEL_E_NOTFOUND;
    if (rc == MDB_MAP_FULL || rc == MDB_TXN_FULL)
        return SATCHEL_E_STORE_FULL;
    return SATCHEL_E_STORE;
}

static void be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t rd_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           p[3];
}

static void le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static void le64(uint8_t *p, uint64_t v)
{
    le32(p, (uint32_t)v);
    le32(p + 4, (uint32_t)(v >> 32));
}

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static uint64_t rd64(const uint8_t *p)
{
    return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

const char *satchel_role_name(int role)
{
    static const char *const names[] = {"",        "inbox", "sent",
                                        "drafts",  "trash", "archive",
                                        "junk",    "all",   "flagged"};
    if (role < 0 || role > SATCHEL_ROLE_FLAGGED)
        return "";
    return names[role];
}

/* ---- records ---- */

static void folder_encode(const satchel_folder *f, uint8_t *b)
{
    b[0] = STORE_VERSION;
    le32(b + 1, f->id);
    le32(b + 5, f->uidvalidity);
    le32(b + 9, f->uidnext);
    le64(b + 13, f->highestmodseq);
    le32(b + 21, f->count);
    le32(b + 25, f->unseen);
    le32(b + 29, f->list_gen);
    b[33] = f->role;
    b[34] = f->flags;
    b[35] = (uint8_t)f->delim;
}

static int folder_decode(const MDB_val *k, const MDB_val *v, satchel_folder *f)
{
    const uint8_t *b = v->mv_data;
    memset(f, 0, sizeof *f);
    if (v->mv_size != FOLDER_REC_LEN || b[0] != STORE_VERSION ||
        k->mv_size == 0 || k->mv_size > SATCHEL_OPT_MAX_FOLDER_NAME ||
        memchr(k->mv_data, 0, k->mv_size) != NULL || b[33] > SATCHEL_ROLE_FLAGGED)
        return SATCHEL_E_STORE;
    memcpy(f->name, k->mv_data, k->mv_size);
    f->id = rd32(b + 1);
    f->uidvalidity = rd32(b + 5);
    f->uidnext = rd32(b + 9);
    f->highestmodseq = rd64(b + 13);
    f->count = rd32(b + 21);
    f->unseen = rd32(b + 25);
    f->list_gen = rd32(b + 29);
    f->role = b[33];
    f->flags = b[34];
    f->delim = (char)b[35];
    if (f->id == 0 || f->unseen > f->count)
        return SATCHEL_E_STORE;
    return 0;
}

static int put_str(uint8_t *buf, size_t cap, size_t *pos, const char *s,
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

static int get_str(const uint8_t *buf, size_t len, size_t *pos, char *out,
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
    size_t pos = MSG_REC_FIXED;
    int rc;
    if (cap < MSG_REC_FIXED)
        return SATCHEL_E_RANGE;
    b[0] = MSG_REC_VERSION;
    le32(b + 1, m->flags);
    le32(b + 5, m->size);
    le32(b + 9, m->mflags);
    le64(b + 13, (uint64_t)m->internaldate);
    le64(b + 21, (uint64_t)m->date);
    b[29] = (uint8_t)(uint16_t)m->internaldate_tz;
    b[30] = (uint8_t)((uint16_t)m->internaldate_tz >> 8);
    b[31] = (uint8_t)(uint16_t)m->date_tz;
    b[32] = (uint8_t)((uint16_t)m->date_tz >> 8);
    le64(b + 33, m->modseq);
    if ((rc = put_str(b, cap, &pos, m->keywords, sizeof m->keywords)) < 0 ||
        (rc = put_str(b, cap, &pos, m->from, sizeof m->from)) < 0 ||
        (rc = put_str(b, cap, &pos, m->subject, sizeof m->subject)) < 0 ||
        (rc = put_str(b, cap, &pos, m->message_id, sizeof m->message_id)) < 0 ||
        (rc = put_str(b, cap, &pos, m->bodystructure,
                      sizeof m->bodystructure)) < 0 ||
        (rc = put_str(b, cap, &pos, m->preview, sizeof m->preview)) < 0)
        return rc;
    return (int)pos;
}

int satchel_store_msg_decode(const uint8_t *b, size_t len, uint32_t uid,
                             satchel_msg *m)
{
    size_t pos = MSG_REC_FIXED;
    int rc;
    memset(m, 0, sizeof *m);
    if (len < MSG_REC_FIXED || (b[0] != 1 && b[0] != MSG_REC_VERSION))
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
    if ((rc = get_str(b, len, &pos, m->keywords, sizeof m->keywords)) < 0 ||
        (rc = get_str(b, len, &pos, m->from, sizeof m->from)) < 0 ||
        (rc = get_str(b, len, &pos, m->subject, sizeof m->subject)) < 0 ||
        (rc = get_str(b, len, &pos, m->message_id, sizeof m->message_id)) < 0 ||
        (rc = get_str(b, len, &pos, m->bodystructure,
                      sizeof m->bodystructure)) < 0)
        return rc;
    if (b[0] == MSG_REC_VERSION &&
        (rc = get_str(b, len, &pos, m->preview, sizeof m->preview)) < 0)
        return rc;
    if (pos != len || m->internaldate_tz < -1440 || m->internaldate_tz > 1440 ||
        m->date_tz < -1440 || m->date_tz > 1440)
        return SATCHEL_E_STORE;
    return 0;
}

/* ---- environment ---- */

static int meta_get32(MDB_txn *txn, MDB_dbi dbi, const char *key, uint32_t *v)
{
    MDB_val k = {strlen(key), (void *)key}, d;
    int rc = mdb_get(txn, dbi, &k, &d);
    if (rc)
        return map_err(rc);
    if (d.mv_size != 4)
        return SATCHEL_E_STORE;
    *v = rd32(d.mv_data);
    return 0;
}

static int meta_put32(MDB_txn *txn, MDB_dbi dbi, const char *key, uint32_t v)
{
    uint8_t b[4];
    MDB_val k = {strlen(key), (void *)key}, d = {4, b};
    le32(b, v);
    return map_err(mdb_put(txn, dbi, &k, &d, 0));
}

int satchel_store_open(const satchel_allocator *alloc, const char *path,
                       uint64_t map_size, satchel_store **out)
{
    satchel_store *s;
    MDB_txn *txn = NULL;
    uint32_t ver;
    int rc;

    *out = NULL;
    if (!alloc)
        alloc = satchel_allocator_default();
    s = alloc->alloc(alloc->ctx, sizeof *s);
    if (!s)
        return SATCHEL_E_NOMEM;
    memset(s, 0, sizeof *s);
    s->alloc = alloc;
    if (!map_size)
        map_size = SATCHEL_OPT_STORE_MAP_SIZE;
    if (mdb_env_create(&s->env) || mdb_env_set_maxdbs(s->env, 10) ||
        mdb_env_set_mapsize(s->env, (size_t)map_size) ||
        mdb_env_open(s->env, path, MDB_NOTLS, 0600)) {
        rc = SATCHEL_E_STORE;
        goto fail;
    }
    if (mdb_txn_begin(s->env, NULL, 0, &txn) ||
        mdb_dbi_open(txn, "meta", MDB_CREATE, &s->meta) ||
        mdb_dbi_open(txn, "folders", MDB_CREATE, &s->folders) ||
        mdb_dbi_open(txn, "msgs", MDB_CREATE, &s->msgs) ||
        mdb_dbi_open(txn, "bodies", MDB_CREATE, &s->bodies) ||
        mdb_dbi_open(txn, "bodymeta", MDB_CREATE, &s->bodymeta) ||
        mdb_dbi_open(txn, "lru", MDB_CREATE, &s->lru) ||
        mdb_dbi_open(txn, "pins", MDB_CREATE, &s->pins) ||
        mdb_dbi_open(txn, "queue", MDB_CREATE, &s->queue) ||
        mdb_dbi_open(txn, "qidx", MDB_CREATE, &s->qidx)) {
        rc = SATCHEL_E_STORE;
        goto fail;
    }
    rc = meta_get32(txn, s->meta, "version", &ver);
    if (rc == SATCHEL_E_NOTFOUND) {
        if ((rc = meta_put32(txn, s->meta, "version", STORE_VERSION)) < 0 ||
            (rc = meta_put32(txn, s->meta, "next_fid", 1)) < 0)
            goto fail;
    } else if (rc < 0 || ver != STORE_VERSION) {
        rc = SATCHEL_E_STORE;
        goto fail;
    }
    rc = mdb_txn_commit(txn);
    txn = NULL;
    if (rc) {
        rc = map_err(rc);
        goto fail;
    }
    *out = s;
    return 0;
fail:
    if (txn)
        mdb_txn_abort(txn);
    if (s->env)
        mdb_env_close(s->env);
    alloc->free(alloc->ctx, s, sizeof *s);
    return rc;
}

void satchel_store_close(satchel_store *s)
{
    if (!s)
        return;
    mdb_env_close(s->env);
    s->alloc->free(s->alloc->ctx, s, sizeof *s);
}

int satchel_store_begin(satchel_store *s, satchel_store_txn **out)
{
    satchel_store_txn *t;
    int rc;
    *out = NULL;
    if (s->txn_active)
        return SATCHEL_E_BUSY;
    t = s->alloc->alloc(s->alloc->ctx, sizeof *t);
    if (!t)
        return SATCHEL_E_NOMEM;
    t->s = s;
    rc = mdb_txn_begin(s->env, NULL, 0, &t->txn);
    if (rc) {
        s->alloc->free(s->alloc->ctx, t, sizeof *t);
        return map_err(rc);
    }
    s->txn_active = 1;
    *out = t;
    return 0;
}

static void txn_release(satchel_store_txn *t)
{
    satchel_store *s = t->s;
    s->txn_active = 0;
    s->alloc->free(s->alloc->ctx, t, sizeof *t);
}

int satchel_store_commit(satchel_store_txn *t)
{
    int rc = mdb_txn_commit(t->txn);
    txn_release(t);
    return map_err(rc);
}

void satchel_store_abort(satchel_store_txn *t)
{
    if (!t)
        return;
    mdb_txn_abort(t->txn);
    txn_release(t);
}

/* Read helpers run inside the caller's write transaction when given one,
 * else in a short read-only transaction of their own. */
static int rtxn(satchel_store *s, satchel_store_txn *t, MDB_txn **txn)
{
    if (t) {
        *txn = t->txn;
        return 0;
    }
    return map_err(mdb_txn_begin(s->env, NULL, MDB_RDONLY, txn));
}

static void rtxn_end(satchel_store_txn *t, MDB_txn *txn)
{
    if (!t)
        mdb_txn_abort(txn);
}

/* ---- folders ---- */

int satchel_store_folder_get(satchel_store *s, satchel_store_txn *t,
                             const char *name, satchel_folder *out)
{
    MDB_txn *txn;
    MDB_val k = {strlen(name), (void *)name}, v;
    int rc;
    if (k.mv_size == 0 || k.mv_size > SATCHEL_OPT_MAX_FOLDER_NAME)
        return SATCHEL_E_NOTFOUND;
    if ((rc = rtxn(s, t, &txn)) < 0)
        return rc;
    rc = map_err(mdb_get(txn, s->folders, &k, &v));
    if (rc == 0)
        rc = folder_decode(&k, &v, out);
    rtxn_end(t, txn);
    return rc;
}

int satchel_store_folder_put(satchel_store_txn *t, satchel_folder *f)
{
    satchel_store *s = t->s;
    uint8_t b[FOLDER_REC_LEN];
    MDB_val k, v = {sizeof b, b};
    int rc;
    size_t n = strlen(f->name);
    if (n == 0 || n > SATCHEL_OPT_MAX_FOLDER_NAME)
        return SATCHEL_E_INVAL;
    if (f->id == 0) {
        uint32_t next;
        if ((rc = meta_get32(t->txn, s->meta, "next_fid", &next)) < 0)
            return rc;
        if (next == 0 || next == UINT32_MAX)
            return SATCHEL_E_STORE;
        f->id = next;
        if ((rc = meta_put32(t->txn, s->meta, "next_fid", next + 1)) < 0)
            return rc;
    }
    folder_encode(f, b);
    k.mv_size = n;
    k.mv_data = f->name;
    return map_err(mdb_put(t->txn, s->folders, &k, &v, 0));
}

static void msg_key(uint8_t *k, uint32_t fid, uint32_t uid)
{
    be32(k, fid);
    be32(k + 4, uid);
}

/* Delete stored messages of folder fid with lo <= uid <= hi. */
static int del_range_x(satchel_store_txn *t, satchel_folder *f, uint32_t lo,
                       uint32_t hi, uint32_t *deleted, int keep_pending);

static int del_range(satchel_store_txn *t, satchel_folder *f, uint32_t lo,
                     uint32_t hi, uint32_t *deleted)
{
    return del_range_x(t, f, lo, hi, deleted, 0);
}

int satchel_store_msg_del_server_range(satchel_store_txn *t, satchel_folder *f,
                                       uint32_t lo, uint32_t hi, uint32_t *deleted)
{
    return del_range_x(t, f, lo, hi, deleted, 1);
}

static int del_range_x(satchel_store_txn *t, satchel_folder *f, uint32_t lo,
                       uint32_t hi, uint32_t *deleted, int keep_pending)
{
    MDB_cursor *cur;
    uint8_t kb[8];
    MDB_val k = {8, kb}, v;
    int rc;
    *deleted = 0;
    if (lo > hi)
        return 0;
    msg_key(kb, f->id, lo);
    if ((rc = mdb_cursor_open(t->txn, t->s->msgs, &cur)))
        return map_err(rc);
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    while (rc == 0) {
        const uint8_t *kp = k.mv_data;
        uint32_t uid;
        if (k.mv_size != 8 || rd_be32(kp) != f->id)
            break;
        uid = rd_be32(kp + 4);
        if (uid > hi)
            break;
        if (keep_pending && v.mv_size >= 13 &&
            (rd32((const uint8_t *)v.mv_data + 9) & SATCHEL_MSG_F_PENDING)) {
            if (uid == hi)
                break;
            rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
            continue;
        }
        if (v.mv_size >= 5 && f->count > 0) {
            f->count--;
            if (!(rd32((const uint8_t *)v.mv_data + 1) & SATCHEL_FLAG_SEEN) &&
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
            msg_key(pk, f->id, uid);
            brc = mdb_del(t->txn, t->s->pins, &pkey, NULL);
            if (brc && brc != MDB_NOTFOUND) {
                rc = brc;
                break;
            }
        }
        if (uid == hi)
            break;
        /* Re-seek rather than rely on cursor position after a delete. */
        msg_key(kb, f->id, uid + 1);
        k.mv_size = 8;
        k.mv_data = kb;
        rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : map_err(rc);
}

int satchel_store_folder_clear(satchel_store_txn *t, satchel_folder *f)
{
    uint32_t n;
    int rc = del_range(t, f, 0, UINT32_MAX, &n);
    if (rc == 0) {
        f->count = 0;
        f->unseen = 0;
    }
    return rc;
}

int satchel_store_folder_delete(satchel_store_txn *t, const char *name)
{
    satchel_folder f;
    MDB_val k = {strlen(name), (void *)name};
    int rc = satchel_store_folder_get(t->s, t, name, &f);
    if (rc < 0)
        return rc;
    if ((rc = satchel_store_folder_clear(t, &f)) < 0)
        return rc;
    return map_err(mdb_del(t->txn, t->s->folders, &k, NULL));
}

int satchel_store_folder_next(satchel_store *s, satchel_store_txn *t,
                              const char *after, satchel_folder *out)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_val k, v;
    int rc;
    size_t alen = after ? strlen(after) : 0;
    if ((rc = rtxn(s, t, &txn)) < 0)
        return rc;
    rc = mdb_cursor_open(txn, s->folders, &cur);
    if (rc) {
        rtxn_end(t, txn);
        return map_err(rc);
    }
    if (alen == 0) {
        rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    } else {
        k.mv_size = alen;
        k.mv_data = (void *)after;
        rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
        if (rc == 0 && k.mv_size == alen && memcmp(k.mv_data, after, alen) == 0)
            rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    if (rc == 0)
        rc = folder_decode(&k, &v, out);
    else
        rc = map_err(rc);
    mdb_cursor_close(cur);
    rtxn_end(t, txn);
    return rc;
}

/* ---- messages ---- */

int satchel_store_msg_put(satchel_store_txn *t, satchel_folder *f,
                          const satchel_msg *m, int *is_new)
{
    uint8_t kb[8];
    uint8_t *rec = t->s->rec;
    MDB_val k = {8, kb}, v, old;
    int len, rc, fresh;
    if (m->uid == 0)
        return SATCHEL_E_INVAL;
    len = satchel_store_msg_encode(m, rec, MSG_REC_MAX);
    if (len < 0)
        return len;
    msg_key(kb, f->id, m->uid);
    rc = mdb_get(t->txn, t->s->msgs, &k, &old);
    fresh = rc == MDB_NOTFOUND;
    if (rc && !fresh)
        return map_err(rc);
    if (!fresh && old.mv_size >= 5 &&
        !(rd32((const uint8_t *)old.mv_data + 1) & SATCHEL_FLAG_SEEN) &&
        f->unseen > 0)
        f->unseen--;
    v.mv_size = (size_t)len;
    v.mv_data = rec;
    if ((rc = mdb_put(t->txn, t->s->msgs, &k, &v, 0)))
        return map_err(rc);
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
    msg_key(kb, folder_id, uid);
    if ((rc = rtxn(s, t, &txn)) < 0)
        return rc;
    rc = map_err(mdb_get(txn, s->msgs, &k, &v));
    if (rc == 0)
        rc = satchel_store_msg_decode(v.mv_data, v.mv_size, uid, out);
    rtxn_end(t, txn);
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
    msg_key(kb, folder_id, uid);
    if ((rc = rtxn(s, t, &txn)) < 0)
        return rc;
    if ((rc = mdb_cursor_open(txn, s->msgs, &cur))) {
        rtxn_end(t, txn);
        return map_err(rc);
    }
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    while (rc == 0 && k.mv_size == 8 && rd_be32(k.mv_data) == folder_id) {
        uint32_t u = rd_be32((const uint8_t *)k.mv_data + 4);
        out->all++;
        if (v.mv_size >= 13 &&
            (rd32((const uint8_t *)v.mv_data + 9) & SATCHEL_MSG_F_PENDING)) {
            out->pending++;
        } else {
            if (!out->server)
                out->lo = u;
            out->hi = u;
            out->server++;
        }
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    rtxn_end(t, txn);
    return rc == 0 || rc == MDB_NOTFOUND ? 0 : map_err(rc);
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

    if ((rc = rtxn(s, NULL, &txn)) < 0)
        return rc;
    if ((rc = mdb_cursor_open(txn, s->msgs, &cur))) {
        ret = map_err(rc);
        goto out;
    }
    /* Position on the folder's highest UID: one past the range, then back. */
    if (folder_id == UINT32_MAX) {
        rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
    } else {
        msg_key(kb, folder_id + 1, 0);
        rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
        rc = mdb_cursor_get(cur, &k, &v, rc == 0 ? MDB_PREV : MDB_LAST);
    }
    while (rc == 0 && count > 0 && k.mv_size == 8 &&
           rd_be32(k.mv_data) == folder_id) {
        if (offset > 0) {
            offset--;
        } else {
            ret = satchel_store_msg_decode(v.mv_data, v.mv_size,
                                           rd_be32((uint8_t *)k.mv_data + 4), m);
            if (ret < 0)
                break;
            ret = cb(ctx, m);
            if (ret != 0)
                break;
            count--;
        }
        rc = mdb_cursor_get(cur, &k, &v, MDB_PREV);
    }
    if (ret == 0 && rc != 0 && rc != MDB_NOTFOUND)
        ret = map_err(rc);
    mdb_cursor_close(cur);
out:
    rtxn_end(NULL, txn);
    return ret;
}

int satchel_store_stats_get(satchel_store *s, satchel_store_stats *out)
{
    MDB_envinfo info;
    MDB_stat st;
    MDB_txn *txn;
    int rc;
    memset(out, 0, sizeof *out);
    if (mdb_env_info(s->env, &info) || mdb_env_stat(s->env, &st))
        return SATCHEL_E_STORE;
    out->bytes = (uint64_t)(info.me_last_pgno + 1) * st.ms_psize;
    out->map_size = info.me_mapsize;
    if ((rc = rtxn(s, NULL, &txn)) < 0)
        return rc;
    if (mdb_stat(txn, s->folders, &st) == 0)
        out->folders = (uint32_t)st.ms_entries;
    if (mdb_stat(txn, s->msgs, &st) == 0)
        out->messages = st.ms_entries;
    rtxn_end(NULL, txn);
    return 0;
}

/* ---- body cache ----
 * bodies   bkey | offset (BE64) -> chunk bytes
 * bodymeta bkey -> stored u64, expected u64, atime u64, complete u8
 * lru      atime (BE64) -> bkey        (oldest first)
 * pins     fid | uid -> ""
 * where bkey = fid (BE32) | uid (BE32) | section | NUL. */

#define BKEY_MAX (8 + SATCHEL_SECTION_MAX + 1)

static void meta_key(const char *name, MDB_val *k)
{
    k->mv_size = strlen(name);
    k->mv_data = (void *)name;
}

static uint64_t meta_get64(MDB_txn *txn, MDB_dbi dbi, const char *name)
{
    MDB_val k, v;
    meta_key(name, &k);
    if (mdb_get(txn, dbi, &k, &v) != 0 || v.mv_size != 8)
        return 0;
    return rd64(v.mv_data);
}

static int meta_put64(MDB_txn *txn, MDB_dbi dbi, const char *name, uint64_t x)
{
    uint8_t b[8];
    MDB_val k, v = {8, b};
    meta_key(name, &k);
    le64(b, x);
    return map_err(mdb_put(txn, dbi, &k, &v, 0));
}

static int meta_add64(MDB_txn *txn, MDB_dbi dbi, const char *name, int64_t d)
{
    uint64_t x = meta_get64(txn, dbi, name);
    if (d < 0 && (uint64_t)(-d) > x)
        x = 0;
    else
        x = (uint64_t)((int64_t)x + d);
    return meta_put64(txn, dbi, name, x);
}

static void be64(uint8_t *p, uint64_t v)
{
    be32(p, (uint32_t)(v >> 32));
    be32(p + 4, (uint32_t)v);
}

static uint64_t rd_be64(const uint8_t *p)
{
    return (uint64_t)rd_be32(p) << 32 | rd_be32(p + 4);
}

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
    msg_key(k, fid, uid);
    memcpy(k + 8, section, n + 1);
    return 8 + n + 1;
}

static void bodymeta_encode(const satchel_body_info *bi, uint8_t *b)
{
    b[0] = STORE_VERSION;
    le64(b + 1, bi->stored);
    le64(b + 9, bi->expected);
    le64(b + 17, bi->atime);
    b[25] = bi->complete;
}

static int bodymeta_get(MDB_txn *txn, satchel_store *s, const uint8_t *k,
                        size_t klen, satchel_body_info *bi)
{
    MDB_val key = {klen, (void *)k}, v;
    const uint8_t *b;
    int rc = mdb_get(txn, s->bodymeta, &key, &v);
    if (rc)
        return map_err(rc);
    b = v.mv_data;
    if (v.mv_size != BODYMETA_LEN || b[0] != STORE_VERSION || b[25] > 1)
        return SATCHEL_E_STORE;
    bi->stored = rd64(b + 1);
    bi->expected = rd64(b + 9);
    bi->atime = rd64(b + 17);
    bi->complete = b[25];
    return 0;
}

static int bodymeta_put(MDB_txn *txn, satchel_store *s, const uint8_t *k,
                        size_t klen, const satchel_body_info *bi)
{
    uint8_t b[BODYMETA_LEN];
    MDB_val key = {klen, (void *)k}, v = {sizeof b, b};
    bodymeta_encode(bi, b);
    return map_err(mdb_put(txn, s->bodymeta, &key, &v, 0));
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
            return map_err(rc);
    }
    bi->atime = meta_get64(txn, s->meta, "clock") + 1;
    if ((rc = meta_put64(txn, s->meta, "clock", bi->atime)) < 0)
        return rc;
    be64(ak, bi->atime);
    return map_err(mdb_put(txn, s->lru, &key, &v, 0));
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
        return map_err(rc);
    key.mv_size = klen + 8;
    key.mv_data = ck;
    rc = mdb_cursor_get(cur, &key, &v, MDB_SET_RANGE);
    while (rc == 0 && key.mv_size == klen + 8 &&
           memcmp(key.mv_data, k, klen) == 0) {
        if ((rc = mdb_cursor_del(cur, 0)))
            break;
        key.mv_size = klen + 8;
        key.mv_data = ck;
        rc = mdb_cursor_get(cur, &key, &v, MDB_SET_RANGE);
    }
    mdb_cursor_close(cur);
    if (rc && rc != MDB_NOTFOUND)
        return map_err(rc);
    if (bi.atime) {
        uint8_t ak[8];
        MDB_val akey = {8, ak};
        be64(ak, bi.atime);
        rc = mdb_del(txn, s->lru, &akey, NULL);
        if (rc && rc != MDB_NOTFOUND)
            return map_err(rc);
    }
    key.mv_size = klen;
    key.mv_data = (void *)k;
    rc = mdb_del(txn, s->bodymeta, &key, NULL);
    if (rc && rc != MDB_NOTFOUND)
        return map_err(rc);
    return meta_add64(txn, s->meta, "cache_bytes", -(int64_t)bi.stored);
}

void satchel_store_set_cache_budget(satchel_store *s, uint64_t bytes)
{
    s->budget = bytes;
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
    if ((rc = rtxn(s, t, &txn)) < 0)
        return rc;
    rc = bodymeta_get(txn, s, k, klen, out);
    rtxn_end(t, txn);
    return rc;
}

static int is_pinned_txn(MDB_txn *txn, satchel_store *s, uint32_t fid,
                         uint32_t uid)
{
    uint8_t pk[8];
    MDB_val key = {8, pk}, v;
    msg_key(pk, fid, uid);
    return mdb_get(txn, s->pins, &key, &v) == 0;
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
        uint64_t bytes = meta_get64(t->txn, s->meta, "cache_bytes");
        uint8_t victim[BKEY_MAX];
        size_t vlen;
        satchel_body_info bi;
        if (want_free ? freed >= want_free
                      : (s->budget == 0 || bytes + need <= s->budget))
            return 0;
        if ((rc = mdb_cursor_open(t->txn, s->lru, &cur)))
            return map_err(rc);
        key.mv_size = 8;
        key.mv_data = ak;
        rc = mdb_cursor_get(cur, &key, &v, MDB_SET_RANGE);
        /* Skip pinned and protected bodies. */
        while (rc == 0) {
            const uint8_t *vk = v.mv_data;
            if (v.mv_size >= 9 && v.mv_size <= BKEY_MAX &&
                !(protect && v.mv_size == plen && memcmp(vk, protect, plen) == 0) &&
                !is_pinned_txn(t->txn, s, rd_be32(vk), rd_be32(vk + 4)))
                break;
            rc = mdb_cursor_get(cur, &key, &v, MDB_NEXT);
        }
        if (rc) {
            mdb_cursor_close(cur);
            /* Nothing left to evict. */
            return rc == MDB_NOTFOUND ? SATCHEL_E_STORE_FULL : map_err(rc);
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
        if ((rc = meta_add64(t->txn, s->meta, "evictions", 1)) < 0)
            return rc;
    }
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
        meta_get64(t->txn, s->meta, "cache_bytes") + len > s->budget &&
        (rc = evict_lru(t, len, 0, k, klen)) < 0)
        return rc;
    memcpy(ck, k, klen);
    be64(ck + klen, offset);
    key.mv_size = klen + 8;
    key.mv_data = ck;
    v.mv_size = len;
    v.mv_data = (void *)data;
    if ((rc = mdb_put(t->txn, s->bodies, &key, &v, 0)))
        return map_err(rc);
    bi.stored += len;
    if ((rc = bodymeta_put(t->txn, s, k, klen, &bi)) < 0)
        return rc;
    return meta_add64(t->txn, s->meta, "cache_bytes", (int64_t)len);
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
    if ((rc = meta_add64(t->txn, t->s->meta, hit ? "hits" : "misses", 1)) < 0)
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
    if ((rc = rtxn(s, NULL, &txn)) < 0)
        return rc;
    if ((rc = mdb_cursor_open(txn, s->bodies, &cur))) {
        rtxn_end(NULL, txn);
        return map_err(rc);
    }
    memcpy(ck, k, klen);
    memset(ck + klen, 0, 8);
    key.mv_size = klen + 8;
    key.mv_data = ck;
    rc = mdb_cursor_get(cur, &key, &v, MDB_SET_RANGE);
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
        rc = mdb_cursor_get(cur, &key, &v, MDB_NEXT);
    }
    if (ret == 0 && rc && rc != MDB_NOTFOUND)
        ret = map_err(rc);
    mdb_cursor_close(cur);
    rtxn_end(NULL, txn);
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
            return map_err(rc);
        key.mv_size = plen;
        key.mv_data = pre;
        rc = plen ? mdb_cursor_get(cur, &key, &v, MDB_SET_RANGE)
                  : mdb_cursor_get(cur, &key, &v, MDB_FIRST);
        if (rc || key.mv_size > BKEY_MAX || memcmp(key.mv_data, pre, plen) != 0) {
            mdb_cursor_close(cur);
            return rc == 0 || rc == MDB_NOTFOUND ? 0 : map_err(rc);
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
    msg_key(pk, fid, uid);
    if (on)
        return map_err(mdb_put(t->txn, t->s->pins, &key, &v, 0));
    rc = mdb_del(t->txn, t->s->pins, &key, NULL);
    return rc == MDB_NOTFOUND ? 0 : map_err(rc);
}

int satchel_store_is_pinned(satchel_store *s, satchel_store_txn *t,
                            uint32_t fid, uint32_t uid)
{
    MDB_txn *txn;
    int rc;
    if ((rc = rtxn(s, t, &txn)) < 0)
        return rc;
    rc = is_pinned_txn(txn, s, fid, uid);
    rtxn_end(t, txn);
    return rc;
}

int satchel_store_cache_stats(satchel_store *s, satchel_cache_stats *out)
{
    MDB_txn *txn;
    MDB_stat st;
    int rc;
    memset(out, 0, sizeof *out);
    if ((rc = rtxn(s, NULL, &txn)) < 0)
        return rc;
    out->bytes = meta_get64(txn, s->meta, "cache_bytes");
    out->hits = meta_get64(txn, s->meta, "hits");
    out->misses = meta_get64(txn, s->meta, "misses");
    out->evictions = meta_get64(txn, s->meta, "evictions");
    out->budget = s->budget;
    if (mdb_stat(txn, s->bodymeta, &st) == 0)
        out->entries = st.ms_entries;
    if (mdb_stat(txn, s->pins, &st) == 0)
        out->pinned = st.ms_entries;
    rtxn_end(NULL, txn);
    return 0;
}

/* ---- offline change queue ----
 * queue  id (BE64) -> op record
 * qidx   fid | uid -> id of the latest op that touched the message */

#define OP_REC_MAX (64 + 2 * (SATCHEL_OPT_MAX_FOLDER_NAME + 2) + 2 * 66 + \
                    SATCHEL_OPT_MAX_FIELD + 2 + 162)

static int op_encode(const satchel_op *op, uint8_t *b, size_t cap)
{
    size_t pos = 44;
    int rc;
    if (cap < pos)
        return SATCHEL_E_RANGE;
    b[0] = STORE_VERSION;
    b[1] = op->type;
    b[2] = op->state;
    b[3] = op->phase;
    le32(b + 4, op->uid);
    le32(b + 8, op->dest_uid);
    le32(b + 12, op->uidvalidity);
    le32(b + 16, op->add);
    le32(b + 20, op->del);
    le32(b + 24, op->base);
    le32(b + 28, op->attempts);
    le64(b + 32, op->created);
    b[40] = op->on_placeholder;
    b[41] = b[42] = b[43] = 0;
    if ((rc = put_str(b, cap, &pos, op->folder, sizeof op->folder)) < 0 ||
        (rc = put_str(b, cap, &pos, op->dest, sizeof op->dest)) < 0 ||
        (rc = put_str(b, cap, &pos, op->kw_add, sizeof op->kw_add)) < 0 ||
        (rc = put_str(b, cap, &pos, op->kw_del, sizeof op->kw_del)) < 0 ||
        (rc = put_str(b, cap, &pos, op->message_id, sizeof op->message_id)) < 0 ||
        (rc = put_str(b, cap, &pos, op->reason, sizeof op->reason)) < 0)
        return rc;
    return (int)pos;
}

static int op_decode(const uint8_t *b, size_t len, uint64_t id, satchel_op *op)
{
    size_t pos = 44;
    int rc;
    memset(op, 0, sizeof *op);
    if (len < pos || b[0] != STORE_VERSION || b[1] < SATCHEL_OP_FLAG ||
        b[1] > SATCHEL_OP_MKDIR || b[2] > SATCHEL_OP_FAILED)
        return SATCHEL_E_STORE;
    op->id = id;
    op->type = b[1];
    op->state = b[2];
    op->phase = b[3];
    op->uid = rd32(b + 4);
    op->dest_uid = rd32(b + 8);
    op->uidvalidity = rd32(b + 12);
    op->add = rd32(b + 16);
    op->del = rd32(b + 20);
    op->base = rd32(b + 24);
    op->attempts = rd32(b + 28);
    op->created = rd64(b + 32);
    op->on_placeholder = b[40] ? 1 : 0;
    if ((rc = get_str(b, len, &pos, op->folder, sizeof op->folder)) < 0 ||
        (rc = get_str(b, len, &pos, op->dest, sizeof op->dest)) < 0 ||
        (rc = get_str(b, len, &pos, op->kw_add, sizeof op->kw_add)) < 0 ||
        (rc = get_str(b, len, &pos, op->kw_del, sizeof op->kw_del)) < 0 ||
        (rc = get_str(b, len, &pos, op->message_id, sizeof op->message_id)) < 0 ||
        (rc = get_str(b, len, &pos, op->reason, sizeof op->reason)) < 0)
        return rc;
    return pos == len ? 0 : SATCHEL_E_STORE;
}

int satchel_store_op_put(satchel_store_txn *t, const satchel_op *op)
{
    uint8_t k[8], b[OP_REC_MAX];
    MDB_val key = {8, k}, v;
    int len = op_encode(op, b, sizeof b);
    if (len < 0)
        return len;
    be64(k, op->id);
    v.mv_size = (size_t)len;
    v.mv_data = b;
    return map_err(mdb_put(t->txn, t->s->queue, &key, &v, 0));
}

int satchel_store_op_index(satchel_store_txn *t, uint32_t fid, uint32_t uid,
                           uint64_t id)
{
    uint8_t k[8], b[8];
    MDB_val key = {8, k}, v = {8, b};
    int rc;
    msg_key(k, fid, uid);
    if (id == 0) {
        rc = mdb_del(t->txn, t->s->qidx, &key, NULL);
        return rc == MDB_NOTFOUND ? 0 : map_err(rc);
    }
    le64(b, id);
    return map_err(mdb_put(t->txn, t->s->qidx, &key, &v, 0));
}

int satchel_store_op_add(satchel_store_txn *t, satchel_op *op)
{
    uint64_t id = meta_get64(t->txn, t->s->meta, "next_op") + 1;
    int rc;
    if ((rc = meta_put64(t->txn, t->s->meta, "next_op", id)) < 0)
        return rc;
    op->id = id;
    op->created = id;
    return satchel_store_op_put(t, op);
}

int satchel_store_op_del(satchel_store_txn *t, uint64_t id)
{
    uint8_t k[8];
    MDB_val key = {8, k};
    int rc;
    be64(k, id);
    rc = mdb_del(t->txn, t->s->queue, &key, NULL);
    return rc == MDB_NOTFOUND ? 0 : map_err(rc);
}

int satchel_store_op_get(satchel_store *s, satchel_store_txn *t, uint64_t id,
                         satchel_op *out)
{
    uint8_t k[8];
    MDB_val key = {8, k}, v;
    MDB_txn *txn;
    int rc;
    be64(k, id);
    if ((rc = rtxn(s, t, &txn)) < 0)
        return rc;
    rc = map_err(mdb_get(txn, s->queue, &key, &v));
    if (rc == 0)
        rc = op_decode(v.mv_data, v.mv_size, id, out);
    rtxn_end(t, txn);
    return rc;
}

int satchel_store_op_next(satchel_store *s, satchel_store_txn *t, uint64_t after,
                          satchel_op *out)
{
    uint8_t k[8];
    MDB_val key = {8, k}, v;
    MDB_txn *txn;
    MDB_cursor *cur;
    int rc;
    if (after == UINT64_MAX)
        return SATCHEL_E_NOTFOUND;
    be64(k, after + 1);
    if ((rc = rtxn(s, t, &txn)) < 0)
        return rc;
    if ((rc = mdb_cursor_open(txn, s->queue, &cur))) {
        rtxn_end(t, txn);
        return map_err(rc);
    }
    rc = mdb_cursor_get(cur, &key, &v, MDB_SET_RANGE);
    if (rc == 0 && key.mv_size == 8)
        rc = op_decode(v.mv_data, v.mv_size, rd_be64(key.mv_data), out);
    else
        rc = rc == 0 ? SATCHEL_E_STORE : map_err(rc);
    mdb_cursor_close(cur);
    rtxn_end(t, txn);
    return rc;
}

int satchel_store_op_latest(satchel_store *s, satchel_store_txn *t,
                            uint32_t fid, uint32_t uid, uint64_t *id)
{
    uint8_t k[8];
    MDB_val key = {8, k}, v;
    MDB_txn *txn;
    int rc;
    msg_key(k, fid, uid);
    if ((rc = rtxn(s, t, &txn)) < 0)
        return rc;
    rc = map_err(mdb_get(txn, s->qidx, &key, &v));
    if (rc == 0)
        *id = v.mv_size == 8 ? rd64(v.mv_data) : 0;
    rtxn_end(t, txn);
    return rc;
}

int satchel_store_placeholder(satchel_store_txn *t, uint32_t *uid)
{
    uint64_t n = meta_get64(t->txn, t->s->meta, "placeholder") + 1;
    if (n >= 0x0FFFFFFFu)
        n = 1; /* after 268M offline moves, wrap: old ones are long gone */
    *uid = SATCHEL_PLACEHOLDER_UID + (uint32_t)n;
    return meta_put64(t->txn, t->s->meta, "placeholder", n);
}

int satchel_store_queue_counts(satchel_store *s, uint64_t *pending,
                               uint64_t *failed)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_val key, v;
    int rc;
    *pending = *failed = 0;
    if ((rc = rtxn(s, NULL, &txn)) < 0)
        return rc;
    if ((rc = mdb_cursor_open(txn, s->queue, &cur)) == 0) {
        rc = mdb_cursor_get(cur, &key, &v, MDB_FIRST);
        while (rc == 0) {
            const uint8_t *b = v.mv_data;
            if (v.mv_size > 2 && b[2] == SATCHEL_OP_FAILED)
                (*failed)++;
            else
                (*pending)++;
            rc = mdb_cursor_get(cur, &key, &v, MDB_NEXT);
        }
        mdb_cursor_close(cur);
    }
    rtxn_end(NULL, txn);
    return rc == MDB_NOTFOUND || rc == 0 ? 0 : map_err(rc);
}

static void synced_key(char *k, uint32_t fid)
{
    static const char hex[] = "0123456789abcdef";
    int i;
    memcpy(k, "synced:", 7);
    for (i = 0; i < 8; i++)
        k[7 + i] = hex[(fid >> (28 - 4 * i)) & 15];
    k[15] = '\0';
}

int satchel_store_synced_mark(satchel_store_txn *t, uint32_t fid)
{
    char k[16];
    synced_key(k, fid);
    return meta_put64(t->txn, t->s->meta, k, meta_get64(t->txn, t->s->meta, "next_op"));
}

uint64_t satchel_store_synced_clock(satchel_store *s, satchel_store_txn *t,
                                    uint32_t fid)
{
    char k[16];
    MDB_txn *txn;
    uint64_t v;
    synced_key(k, fid);
    if (rtxn(s, t, &txn) < 0)
        return 0;
    v = meta_get64(txn, s->meta, k);
    rtxn_end(t, txn);
    return v;
}

/* Blobs live in the meta database under "blob:" names. */
static int blob_key(char *k, size_t cap, const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n + 6 > cap)
        return SATCHEL_E_INVAL;
    memcpy(k, "blob:", 5);
    memcpy(k + 5, name, n + 1);
    return 0;
}

int satchel_store_blob_get(satchel_store *s, const char *name, uint8_t *buf,
                           size_t cap, size_t *len)
{
    char k[64];
    MDB_val key, v;
    MDB_txn *txn;
    int rc;
    *len = 0;
    if ((rc = blob_key(k, sizeof k, name)) < 0)
        return rc;
    meta_key(k, &key);
    if ((rc = rtxn(s, NULL, &txn)) < 0)
        return rc;
    rc = map_err(mdb_get(txn, s->meta, &key, &v));
    if (rc == 0) {
        if (v.mv_size > cap)
            rc = SATCHEL_E_RANGE;
        else {
            memcpy(buf, v.mv_data, v.mv_size);
            *len = v.mv_size;
        }
    }
    rtxn_end(NULL, txn);
    return rc;
}

int satchel_store_blob_put(satchel_store_txn *t, const char *name,
                           const uint8_t *data, size_t len)
{
    char k[64];
    MDB_val key, v = {len, (void *)data};
    int rc;
    if ((rc = blob_key(k, sizeof k, name)) < 0)
        return rc;
    meta_key(k, &key);
    if (len == 0) {
        rc = mdb_del(t->txn, t->s->meta, &key, NULL);
        return rc == MDB_NOTFOUND ? 0 : map_err(rc);
    }
    return map_err(mdb_put(t->txn, t->s->meta, &key, &v, 0));
}

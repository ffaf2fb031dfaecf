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
#define FOLDER_REC_LEN 36u
#define MSG_REC_FIXED 41u

#define MSG_REC_MAX                                                          \
    (MSG_REC_FIXED + 5 * 2 + 128 + 3 * SATCHEL_OPT_MAX_FIELD +               \
     SATCHEL_OPT_MAX_BODYSTRUCTURE)

/* A store is used from one thread; the scratch buffers below keep large
 * records off the stack, which is small on devices. */
struct satchel_store {
    const satchel_allocator *alloc;
    MDB_env *env;
    MDB_dbi meta, folders, msgs;
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
    b[0] = STORE_VERSION;
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
                      sizeof m->bodystructure)) < 0)
        return rc;
    return (int)pos;
}

int satchel_store_msg_decode(const uint8_t *b, size_t len, uint32_t uid,
                             satchel_msg *m)
{
    size_t pos = MSG_REC_FIXED;
    int rc;
    memset(m, 0, sizeof *m);
    if (len < MSG_REC_FIXED || b[0] != STORE_VERSION)
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
    if (mdb_env_create(&s->env) || mdb_env_set_maxdbs(s->env, 4) ||
        mdb_env_set_mapsize(s->env, (size_t)map_size) ||
        mdb_env_open(s->env, path, MDB_NOTLS, 0600)) {
        rc = SATCHEL_E_STORE;
        goto fail;
    }
    if (mdb_txn_begin(s->env, NULL, 0, &txn) ||
        mdb_dbi_open(txn, "meta", MDB_CREATE, &s->meta) ||
        mdb_dbi_open(txn, "folders", MDB_CREATE, &s->folders) ||
        mdb_dbi_open(txn, "msgs", MDB_CREATE, &s->msgs)) {
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
static int del_range(satchel_store_txn *t, satchel_folder *f, uint32_t lo,
                     uint32_t hi, uint32_t *deleted)
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
        if (v.mv_size >= 5 && f->count > 0) {
            f->count--;
            if (!(rd32((const uint8_t *)v.mv_data + 1) & SATCHEL_FLAG_SEEN) &&
                f->unseen > 0)
                f->unseen--;
        }
        if ((rc = mdb_cursor_del(cur, 0)))
            break;
        (*deleted)++;
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

int satchel_store_msg_count_from(satchel_store *s, satchel_store_txn *t,
                                 uint32_t folder_id, uint32_t uid,
                                 uint32_t *count)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    uint8_t kb[8];
    MDB_val k = {8, kb}, v;
    int rc;
    *count = 0;
    msg_key(kb, folder_id, uid);
    if ((rc = rtxn(s, t, &txn)) < 0)
        return rc;
    if ((rc = mdb_cursor_open(txn, s->msgs, &cur))) {
        rtxn_end(t, txn);
        return map_err(rc);
    }
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    while (rc == 0 && k.mv_size == 8 && rd_be32(k.mv_data) == folder_id) {
        (*count)++;
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    rtxn_end(t, txn);
    return rc == 0 || rc == MDB_NOTFOUND ? 0 : map_err(rc);
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

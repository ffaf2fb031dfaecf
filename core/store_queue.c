/* The offline change queue.
 * queue  id (BE64) -> op record
 * qidx   fid | uid -> id of the latest op that touched the message */
#include "store_internal.h"

#include <string.h>

#define OP_REC_MAX (64 + 2 * (SATCHEL_OPT_MAX_FOLDER_NAME + 2) + 2 * 66 + \
                    SATCHEL_OPT_MAX_FIELD + 2 + 162 + REC_CRC)

static int op_encode(const satchel_op *op, uint8_t *b, size_t cap)
{
    size_t pos = 44;
    int rc;
    if (cap < pos)
        return SATCHEL_E_RANGE;
    b[0] = OP_REC_VERSION;
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
    b[41] = op->inflight;
    b[42] = b[43] = 0;
    if ((rc = store_put_str(b, cap, &pos, op->folder, sizeof op->folder)) < 0 ||
        (rc = store_put_str(b, cap, &pos, op->dest, sizeof op->dest)) < 0 ||
        (rc = store_put_str(b, cap, &pos, op->kw_add, sizeof op->kw_add)) < 0 ||
        (rc = store_put_str(b, cap, &pos, op->kw_del, sizeof op->kw_del)) < 0 ||
        (rc = store_put_str(b, cap, &pos, op->message_id, sizeof op->message_id)) < 0 ||
        (rc = store_put_str(b, cap, &pos, op->reason, sizeof op->reason)) < 0)
        return rc;
    if (pos + REC_CRC > cap)
        return SATCHEL_E_RANGE;
    {
        uint8_t k[8];
        be64(k, op->id);
        return (int)store_seal(b, pos, k, sizeof k);
    }
}

int store_op_decode(const uint8_t *b, size_t len, uint64_t id, satchel_op *op)
{
    size_t pos = 44;
    int rc;
    memset(op, 0, sizeof *op);
    if (len > pos && b[0] >= 2 && b[0] <= OP_REC_VERSION) {
        uint8_t k[8];
        be64(k, id);
        if (store_unseal(b, &len, k, b[0] == OP_REC_VERSION ? sizeof k : 0) < 0)
            return SATCHEL_E_STORE;
    }
    if (len < pos || b[0] < 1 || b[0] > OP_REC_VERSION || b[1] < SATCHEL_OP_FLAG ||
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
    op->inflight = b[41] ? 1 : 0;
    if ((rc = store_get_str(b, len, &pos, op->folder, sizeof op->folder)) < 0 ||
        (rc = store_get_str(b, len, &pos, op->dest, sizeof op->dest)) < 0 ||
        (rc = store_get_str(b, len, &pos, op->kw_add, sizeof op->kw_add)) < 0 ||
        (rc = store_get_str(b, len, &pos, op->kw_del, sizeof op->kw_del)) < 0 ||
        (rc = store_get_str(b, len, &pos, op->message_id, sizeof op->message_id)) < 0 ||
        (rc = store_get_str(b, len, &pos, op->reason, sizeof op->reason)) < 0)
        return rc;
    return pos == len ? 0 : SATCHEL_E_STORE;
}

satchel_op *satchel_store_op_scratch(satchel_store *s)
{
    return &s->ops_op;
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
    return store_err(mdb_put(t->txn, t->s->queue, &key, &v, 0));
}

int satchel_store_op_index(satchel_store_txn *t, uint32_t fid, uint32_t uid,
                           uint64_t id)
{
    uint8_t k[8], b[8];
    MDB_val key = {8, k}, v = {8, b};
    int rc;
    store_msg_key(k, fid, uid);
    if (id == 0) {
        rc = mdb_del(t->txn, t->s->qidx, &key, NULL);
        return rc == MDB_NOTFOUND ? 0 : store_err(rc);
    }
    le64(b, id);
    return store_err(mdb_put(t->txn, t->s->qidx, &key, &v, 0));
}

int satchel_store_op_add(satchel_store_txn *t, satchel_op *op)
{
    uint64_t id = store_meta_get64(t->txn, t->s->meta, "next_op") + 1;
    int rc;
    if ((rc = store_meta_put64(t->txn, t->s->meta, "next_op", id)) < 0)
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
    return rc == MDB_NOTFOUND ? 0 : store_err(rc);
}

int satchel_store_op_get(satchel_store *s, satchel_store_txn *t, uint64_t id,
                         satchel_op *out)
{
    uint8_t k[8];
    MDB_val key = {8, k}, v;
    MDB_txn *txn;
    int rc;
    be64(k, id);
    if ((rc = store_rtxn(s, t, &txn)) < 0)
        return rc;
    rc = store_err(store_get(txn, s->queue, &key, &v));
    if (rc == 0)
        rc = store_op_decode(v.mv_data, v.mv_size, id, out);
    store_rtxn_end(t, txn);
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
    if ((rc = store_rtxn(s, t, &txn)) < 0)
        return rc;
    if ((rc = mdb_cursor_open(txn, s->queue, &cur))) {
        store_rtxn_end(t, txn);
        return store_err(rc);
    }
    rc = store_cget(cur, &key, &v, MDB_SET_RANGE);
    /* Damaged entries are counted and skipped (store check names them):
     * the rest of the queue still replays. */
    while (rc == 0 && (key.mv_size != 8 ||
                       store_op_decode(v.mv_data, v.mv_size, rd_be64(key.mv_data), out) < 0)) {
        s->damaged++;
        rc = store_cstep(cur, &key, &v, MDB_NEXT, &s->damaged);
    }
    rc = store_err(rc);
    mdb_cursor_close(cur);
    store_rtxn_end(t, txn);
    return rc;
}

int satchel_store_op_latest(satchel_store *s, satchel_store_txn *t,
                            uint32_t fid, uint32_t uid, uint64_t *id)
{
    uint8_t k[8];
    MDB_val key = {8, k}, v;
    MDB_txn *txn;
    int rc;
    store_msg_key(k, fid, uid);
    if ((rc = store_rtxn(s, t, &txn)) < 0)
        return rc;
    rc = store_err(store_get(txn, s->qidx, &key, &v));
    if (rc == 0)
        *id = v.mv_size == 8 ? rd64(v.mv_data) : 0;
    store_rtxn_end(t, txn);
    return rc;
}

int satchel_store_placeholder(satchel_store_txn *t, uint32_t *uid)
{
    uint64_t n = store_meta_get64(t->txn, t->s->meta, "placeholder") + 1;
    if (n >= 0x0FFFFFFFu)
        n = 1; /* after 268M offline moves, wrap: old ones are long gone */
    *uid = SATCHEL_PLACEHOLDER_UID + (uint32_t)n;
    return store_meta_put64(t->txn, t->s->meta, "placeholder", n);
}

int satchel_store_queue_counts(satchel_store *s, uint64_t *pending,
                               uint64_t *failed)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_val key, v;
    int rc;
    *pending = *failed = 0;
    if ((rc = store_rtxn(s, NULL, &txn)) < 0)
        return rc;
    if ((rc = mdb_cursor_open(txn, s->queue, &cur)) == 0) {
        rc = store_cget(cur, &key, &v, MDB_FIRST);
        while (rc == 0) {
            const uint8_t *b = v.mv_data;
            if (v.mv_size > 2 && b[2] == SATCHEL_OP_FAILED)
                (*failed)++;
            else
                (*pending)++;
            rc = store_cget(cur, &key, &v, MDB_NEXT);
        }
        mdb_cursor_close(cur);
    }
    store_rtxn_end(NULL, txn);
    return rc == MDB_NOTFOUND || rc == 0 ? 0 : store_err(rc);
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
    return store_meta_put64(t->txn, t->s->meta, k, store_meta_get64(t->txn, t->s->meta, "next_op"));
}

uint64_t satchel_store_synced_clock(satchel_store *s, satchel_store_txn *t,
                                    uint32_t fid)
{
    char k[16];
    MDB_txn *txn;
    uint64_t v;
    synced_key(k, fid);
    if (store_rtxn(s, t, &txn) < 0)
        return 0;
    v = store_meta_get64(txn, s->meta, k);
    store_rtxn_end(t, txn);
    return v;
}


int satchel_store_sync_lock(satchel_store *s, uint32_t *holder)
{
    satchel_store_txn *t;
    uint32_t me, owner = 0;
    int rc;
    *holder = 0;
    if (!s->fs || !s->fs->pid || (me = s->fs->pid(s->fs->ctx)) == 0)
        return 0;
    if ((rc = satchel_store_begin(s, &t)) < 0)
        return rc;
    rc = store_meta_get32(t->txn, s->meta, "sync_owner", &owner);
    if (rc < 0 && rc != SATCHEL_E_NOTFOUND) {
        satchel_store_abort(t);
        return rc;
    }
    if (rc == 0 && owner && owner != me &&
        (!s->fs->alive || s->fs->alive(s->fs->ctx, owner))) {
        satchel_store_abort(t);
        *holder = owner;
        return SATCHEL_E_BUSY;
    }
    if ((rc = store_meta_put32(t->txn, s->meta, "sync_owner", me)) < 0) {
        satchel_store_abort(t);
        return rc;
    }
    if ((rc = satchel_store_commit(t)) == 0)
        s->sync_locked = 1;
    return rc;
}

void satchel_store_sync_unlock(satchel_store *s)
{
    satchel_store_txn *t;
    uint32_t owner = 0;
    MDB_val k;
    if (!s->sync_locked || satchel_store_begin(s, &t) < 0)
        return;
    if (store_meta_get32(t->txn, s->meta, "sync_owner", &owner) == 0 &&
        owner == s->fs->pid(s->fs->ctx)) {
        store_meta_key("sync_owner", &k);
        mdb_del(t->txn, s->meta, &k, NULL);
    }
    if (satchel_store_commit(t) == 0)
        s->sync_locked = 0;
}

/* The store's environment: opening and closing, write transactions, the
 * read helpers every module uses, the meta database and its named blobs. */
#include "store_internal.h"

#include <string.h>

int store_err(int rc)
{
    if (rc == 0)
        return 0;
    if (rc == MDB_NOTFOUND)
        return SATCHEL_E_NOTFOUND;
    if (rc == MDB_MAP_FULL || rc == MDB_TXN_FULL)
        return SATCHEL_E_STORE_FULL;
    return SATCHEL_E_STORE;
}

int store_meta_get32(MDB_txn *txn, MDB_dbi dbi, const char *key, uint32_t *v)
{
    MDB_val k = {strlen(key), (void *)key}, d;
    int rc = mdb_get(txn, dbi, &k, &d);
    if (rc)
        return store_err(rc);
    if (d.mv_size != 4)
        return SATCHEL_E_STORE;
    *v = rd32(d.mv_data);
    return 0;
}

int store_meta_put32(MDB_txn *txn, MDB_dbi dbi, const char *key, uint32_t v)
{
    uint8_t b[4];
    MDB_val k = {strlen(key), (void *)key}, d = {4, b};
    le32(b, v);
    return store_err(mdb_put(txn, dbi, &k, &d, 0));
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
    rc = store_meta_get32(txn, s->meta, "version", &ver);
    if (rc == SATCHEL_E_NOTFOUND) {
        if ((rc = store_meta_put32(txn, s->meta, "version", STORE_VERSION)) < 0 ||
            (rc = store_meta_put32(txn, s->meta, "next_fid", 1)) < 0)
            goto fail;
    } else if (rc < 0 || ver != STORE_VERSION) {
        rc = SATCHEL_E_STORE;
        goto fail;
    }
    rc = mdb_txn_commit(txn);
    txn = NULL;
    if (rc) {
        rc = store_err(rc);
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
        return store_err(rc);
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
    return store_err(rc);
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
int store_rtxn(satchel_store *s, satchel_store_txn *t, MDB_txn **txn)
{
    if (t) {
        *txn = t->txn;
        return 0;
    }
    return store_err(mdb_txn_begin(s->env, NULL, MDB_RDONLY, txn));
}

void store_rtxn_end(satchel_store_txn *t, MDB_txn *txn)
{
    if (!t)
        mdb_txn_abort(txn);
}

void store_meta_key(const char *name, MDB_val *k)
{
    k->mv_size = strlen(name);
    k->mv_data = (void *)name;
}

uint64_t store_meta_get64(MDB_txn *txn, MDB_dbi dbi, const char *name)
{
    MDB_val k, v;
    store_meta_key(name, &k);
    if (mdb_get(txn, dbi, &k, &v) != 0 || v.mv_size != 8)
        return 0;
    return rd64(v.mv_data);
}

int store_meta_put64(MDB_txn *txn, MDB_dbi dbi, const char *name, uint64_t x)
{
    uint8_t b[8];
    MDB_val k, v = {8, b};
    store_meta_key(name, &k);
    le64(b, x);
    return store_err(mdb_put(txn, dbi, &k, &v, 0));
}

int store_meta_add64(MDB_txn *txn, MDB_dbi dbi, const char *name, int64_t d)
{
    uint64_t x = store_meta_get64(txn, dbi, name);
    if (d < 0 && (uint64_t)(-d) > x)
        x = 0;
    else
        x = (uint64_t)((int64_t)x + d);
    return store_meta_put64(txn, dbi, name, x);
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
    if ((rc = store_rtxn(s, NULL, &txn)) < 0)
        return rc;
    if (mdb_stat(txn, s->folders, &st) == 0)
        out->folders = (uint32_t)st.ms_entries;
    if (mdb_stat(txn, s->msgs, &st) == 0)
        out->messages = st.ms_entries;
    store_rtxn_end(NULL, txn);
    return 0;
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
    store_meta_key(k, &key);
    if ((rc = store_rtxn(s, NULL, &txn)) < 0)
        return rc;
    rc = store_err(mdb_get(txn, s->meta, &key, &v));
    if (rc == 0) {
        if (v.mv_size > cap)
            rc = SATCHEL_E_RANGE;
        else {
            memcpy(buf, v.mv_data, v.mv_size);
            *len = v.mv_size;
        }
    }
    store_rtxn_end(NULL, txn);
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
    store_meta_key(k, &key);
    if (len == 0) {
        rc = mdb_del(t->txn, t->s->meta, &key, NULL);
        return rc == MDB_NOTFOUND ? 0 : store_err(rc);
    }
    return store_err(mdb_put(t->txn, t->s->meta, &key, &v, 0));
}

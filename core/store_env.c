/* The store's environment: opening and closing, write transactions, the
 * read helpers every module uses, the meta database and its named blobs. */
#include "store_internal.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>

/* The one place LMDB results and OS error numbers become Satchel errors. */
int store_err(int rc)
{
    switch (rc) {
    case 0: return 0;
    case MDB_NOTFOUND: return SATCHEL_E_NOTFOUND;
    case MDB_MAP_FULL:
    case MDB_TXN_FULL: return SATCHEL_E_STORE_FULL;
    case STORE_BAD_NODE:
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_INVALID:
    case MDB_BAD_TXN: return SATCHEL_E_DAMAGED;
    case ENOSPC:
#ifdef EDQUOT
    case EDQUOT:
#endif
        return SATCHEL_E_DISK_FULL;
    case EACCES:
    case EPERM: return SATCHEL_E_PERM;
    case EROFS: return SATCHEL_E_READONLY;
    case ENOTDIR: return SATCHEL_E_NOTDIR;
    case ENOMEM: return SATCHEL_E_NOMEM;
    default: return SATCHEL_E_STORE;
    }
}

/* Open walked every page (store_check_trees), so what LMDB returns lies in
 * the file; this catches what damage after that could still do.  LMDB does
 * not tell where its map is (me_mapaddr is set only with MDB_FIXEDMAP), so
 * the bound is on size: no value of ours is larger than a body chunk. */
static int in_file(MDB_txn *txn, const MDB_val *x)
{
    (void)txn;
    return (x->mv_data != NULL || x->mv_size == 0) && x->mv_size <= STORE_VALUE_MAX;
}

int store_get(MDB_txn *txn, MDB_dbi dbi, MDB_val *k, MDB_val *v)
{
    int rc = mdb_get(txn, dbi, k, v);
    if (rc == 0 && !in_file(txn, v))
        return STORE_BAD_NODE;
    return rc;
}

int store_cget(MDB_cursor *cur, MDB_val *k, MDB_val *v, MDB_cursor_op op)
{
    int rc = mdb_cursor_get(cur, k, v, op);
    if (rc == 0 && (!in_file(mdb_cursor_txn(cur), k) ||
                    !in_file(mdb_cursor_txn(cur), v)))
        return STORE_BAD_NODE;
    return rc;
}

int store_cstep(MDB_cursor *cur, MDB_val *k, MDB_val *v, MDB_cursor_op op,
                uint64_t *skipped)
{
    int rc = store_cget(cur, k, v, op);
    while (rc == STORE_BAD_NODE) {
        (*skipped)++;
        rc = store_cget(cur, k, v, op);
    }
    return rc;
}

int store_err_write(satchel_store *s, int rc)
{
    uint64_t avail = 0;
    if (rc == EIO && s->fs && s->fs->space &&
        s->fs->space(s->fs->ctx, s->path, &avail) == 0 && avail < (1u << 20))
        return SATCHEL_E_DISK_FULL;
    return store_err(rc);
}

int store_meta_get32(MDB_txn *txn, MDB_dbi dbi, const char *key, uint32_t *v)
{
    MDB_val k = {strlen(key), (void *)key}, d;
    int rc = store_get(txn, dbi, &k, &d);
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

/* Open the named databases.  In a store that has its meta database, the
 * ones every store has had from the start must be there: creating an
 * empty queue in place of one a damaged page hides would lose it.  *missing
 * names the first that is not. */
static int open_dbis(satchel_store *s, MDB_txn *txn, const char **missing)
{
    static const struct {
        const char *name;
        size_t off;
        int required;
    } dbs[] = {
        {"meta", offsetof(satchel_store, meta), 0},
        {"folders", offsetof(satchel_store, folders), 1},
        /* Not in version 1 stores; rebuilt from the folders when empty. */
        {"fnames", offsetof(satchel_store, fnames), 0},
        {"msgs", offsetof(satchel_store, msgs), 1},
        {"bodies", offsetof(satchel_store, bodies), 0},
        {"bodymeta", offsetof(satchel_store, bodymeta), 0},
        {"lru", offsetof(satchel_store, lru), 0},
        {"pins", offsetof(satchel_store, pins), 0},
        {"queue", offsetof(satchel_store, queue), 1},
        {"qidx", offsetof(satchel_store, qidx), 0},
    };
    size_t i;
    int existing = 0;
    *missing = NULL;
    for (i = 0; i < sizeof dbs / sizeof dbs[0]; i++) {
        MDB_dbi *dbi = (MDB_dbi *)((char *)s + dbs[i].off);
        int rc = mdb_dbi_open(txn, dbs[i].name, 0, dbi);
        if (rc == 0) {
            existing |= i == 0;
            continue;
        }
        if (rc != MDB_NOTFOUND)
            return rc;
        if (existing && dbs[i].required) {
            *missing = dbs[i].name;
            return MDB_NOTFOUND;
        }
        if ((rc = mdb_dbi_open(txn, dbs[i].name, MDB_CREATE, dbi)) != 0)
            return rc;
    }
    return 0;
}

static int open_fail(const satchel_store_config *cfg, const char *path,
                     const char *file, int rc, const char *what)
{
    if (cfg->err && cfg->err_cap) {
        cfg->err[0] = '\0';
        store_txt(cfg->err, cfg->err_cap, path);
        if (file) {
            store_txt(cfg->err, cfg->err_cap, "/");
            store_txt(cfg->err, cfg->err_cap, file);
        }
        store_txt(cfg->err, cfg->err_cap, ": ");
        store_txt(cfg->err, cfg->err_cap, what ? what : satchel_strerror(rc));
    }
    return rc;
}

int satchel_store_open_config(const satchel_store_config *cfg,
                              const char *path, satchel_store **out)
{
    const satchel_allocator *alloc = cfg->alloc;
    uint64_t map_size = cfg->map_size;
    satchel_store *s;
    MDB_txn *txn = NULL;
    MDB_envinfo info;
    const char *missing = NULL;
    uint32_t ver;
    int rc;

    *out = NULL;
    if (cfg->err && cfg->err_cap)
        cfg->err[0] = '\0';
    if (!path || !*path)
        return open_fail(cfg, "store", NULL, SATCHEL_E_INVAL,
                         "no directory given (an empty path)");
    if (strlen(path) > SATCHEL_OPT_STORE_PATH_MAX)
        return open_fail(cfg, "store", NULL, SATCHEL_E_INVAL, "path too long");
    if (!alloc)
        alloc = satchel_allocator_default();
    s = alloc->alloc(alloc->ctx, sizeof *s);
    if (!s)
        return SATCHEL_E_NOMEM;
    memset(s, 0, sizeof *s);
    s->alloc = alloc;
    s->fs = cfg->fs;
    if (!map_size)
        map_size = SATCHEL_OPT_STORE_MAP_SIZE;
    s->map_size = map_size;
    memcpy(s->path, path, strlen(path) + 1);
    rc = store_check_files(cfg->fs, path, cfg->err, cfg->err_cap, s->notice,
                           sizeof s->notice);
    if (rc < 0)
        goto fail_quiet;
    if ((rc = store_check_trees(cfg->fs, alloc, path, s->notice,
                                sizeof s->notice)) < 0) {
        rc = open_fail(cfg, path, NULL, rc, s->notice[0] ? s->notice : NULL);
        goto fail_quiet;
    }
    if (cfg->fs && cfg->fs->allocate && cfg->fs->stat) {
        /* LMDB's lock file is a sparse file written through a memory map:
         * on a full disk the first write faults.  Give it blocks first, at
         * the size LMDB will use (or has used). */
        char lock[SATCHEL_OPT_STORE_PATH_MAX + 16];
        uint64_t lsize = 0;
        int is_dir = 0;
        memcpy(lock, path, strlen(path));
        memcpy(lock + strlen(path), "/lock.mdb", 10);
        if (cfg->fs->stat(cfg->fs->ctx, lock, &lsize, &is_dir) != 0 || lsize == 0)
            lsize = STORE_LOCK_FILE_SIZE;
        if ((rc = cfg->fs->allocate(cfg->fs->ctx, lock, lsize)) != 0) {
            rc = open_fail(cfg, path, "lock.mdb", store_err(rc), NULL);
            goto fail_quiet;
        }
    }
    if ((rc = mdb_env_create(&s->env)) || (rc = mdb_env_set_maxdbs(s->env, 12)) ||
        (rc = mdb_env_set_mapsize(s->env, (size_t)map_size)) ||
        (rc = mdb_env_open(s->env, path, MDB_NOTLS, 0600))) {
        rc = open_fail(cfg, path, NULL, store_err_write(s, rc),
                       rc == MDB_INVALID ? "data.mdb is not an LMDB file or is damaged"
                       : rc == ENOENT ? "no such directory" : NULL);
        goto fail_quiet;
    }
    if ((rc = mdb_txn_begin(s->env, NULL, 0, &txn)) == 0 &&
        (rc = open_dbis(s, txn, &missing)) == MDB_NOTFOUND && missing) {
        s->notice[0] = '\0';
        store_txt(s->notice, sizeof s->notice, "damaged: its '");
        store_txt(s->notice, sizeof s->notice, missing);
        store_txt(s->notice, sizeof s->notice, "' database is gone (a damaged page); "
                                               "salvage what is readable");
        rc = open_fail(cfg, path, "data.mdb", SATCHEL_E_DAMAGED, s->notice);
        goto fail_quiet;
    }
    if (rc) {
        rc = open_fail(cfg, path, "data.mdb", store_err(rc),
                       rc == MDB_CORRUPTED || rc == MDB_PAGE_NOTFOUND
                           ? "damaged (LMDB cannot read its database table)"
                           : NULL);
        goto fail_quiet;
    }
    rc = store_meta_get32(txn, s->meta, "version", &ver);
    if (rc == SATCHEL_E_NOTFOUND) {
        /* Only a file that never committed anything is a new store. */
        if (mdb_env_info(s->env, &info) == 0 && info.me_last_txnid != 0) {
            rc = open_fail(cfg, path, "data.mdb", SATCHEL_E_DAMAGED,
                           "has content but no Satchel version record "
                           "(damaged, or not a Satchel store); refusing to "
                           "start a new store over it");
            goto fail_quiet;
        }
        if ((rc = store_meta_put32(txn, s->meta, "version", STORE_VERSION)) < 0 ||
            (rc = store_meta_put32(txn, s->meta, "next_fid", 1)) < 0) {
            rc = open_fail(cfg, path, "data.mdb", rc, NULL);
            goto fail_quiet;
        }
    } else if (rc < 0 || ver == 0 || ver > STORE_VERSION) {
        rc = open_fail(cfg, path, "data.mdb", rc < 0 ? rc : SATCHEL_E_STORE,
                       rc < 0 ? "damaged version record"
                              : "a store of a version this Satchel does not know");
        goto fail_quiet;
    } else if (ver == 1) {
        /* Folders keyed by name (names up to 200 bytes): rekeyed by id in
         * this transaction, which commits whole or not at all.  Messages,
         * bodies, pins and the queue are keyed by id or hold names in
         * fields that did not change; message records of every version are
         * read as they are. */
        if ((rc = store_migrate_v1(s, txn)) < 0 ||
            (rc = store_meta_put32(txn, s->meta, "version", STORE_VERSION)) < 0) {
            rc = open_fail(cfg, path, "data.mdb", rc,
                           "cannot migrate this version 1 store to version 2 "
                           "(folders keyed by id); it is left as it was");
            goto fail_quiet;
        }
        if (s->notice[0])
            store_txt(s->notice, sizeof s->notice, "; ");
        store_txt(s->notice, sizeof s->notice,
                  "store migrated from version 1 (folders now keyed by id)");
    } else {
        MDB_stat fst, nst;
        /* An index lost to damage would make every folder look new. */
        if (mdb_stat(txn, s->folders, &fst) == 0 && mdb_stat(txn, s->fnames, &nst) == 0 &&
            fst.ms_entries > 0 && nst.ms_entries == 0) {
            if ((rc = store_fnames_rebuild(s, txn)) < 0) {
                rc = open_fail(cfg, path, "data.mdb", rc, NULL);
                goto fail_quiet;
            }
            if (s->notice[0])
                store_txt(s->notice, sizeof s->notice, "; ");
            store_txt(s->notice, sizeof s->notice, "the folder name index was rebuilt");
        }
    }
    rc = mdb_txn_commit(txn);
    txn = NULL;
    if (rc) {
        rc = open_fail(cfg, path, "data.mdb", store_err_write(s, rc), NULL);
        goto fail_quiet;
    }
    s->budget = store_default_budget(s);
    *out = s;
    return 0;
fail_quiet:
    if (txn)
        mdb_txn_abort(txn);
    if (s->env)
        mdb_env_close(s->env);
    alloc->free(alloc->ctx, s, sizeof *s);
    return rc;
}

int satchel_store_open(const satchel_allocator *alloc, const char *path,
                       uint64_t map_size, satchel_store **out)
{
    satchel_store_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.alloc = alloc;
    cfg.map_size = map_size;
    return satchel_store_open_config(&cfg, path, out);
}

uint64_t satchel_store_damaged(const satchel_store *s)
{
    return s->damaged;
}

const char *satchel_store_notice(const satchel_store *s)
{
    return s->notice;
}

void satchel_store_close(satchel_store *s)
{
    if (!s)
        return;
    mdb_env_close(s->env);
    s->alloc->free(s->alloc->ctx, s, sizeof *s);
}

/* Room beyond the map size that only transactions freeing space may use:
 * a full map must never stop the eviction that would empty it. */
static uint64_t reserve_of(const satchel_store *s)
{
    uint64_t r = s->map_size / 32;
    return r < 128u * 1024u ? 128u * 1024u : r;
}

static int begin(satchel_store *s, satchel_store_txn **out, int reserve)
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
    t->reserve = 0;
    /* LMDB takes a new map size only while this process has no
     * transaction open, which is the case here. */
    if (reserve && mdb_env_set_mapsize(s->env, (size_t)(s->map_size + reserve_of(s))) == 0)
        t->reserve = 1;
    rc = mdb_txn_begin(s->env, NULL, 0, &t->txn);
    if (rc) {
        if (t->reserve)
            mdb_env_set_mapsize(s->env, (size_t)s->map_size);
        s->alloc->free(s->alloc->ctx, t, sizeof *t);
        return store_err(rc);
    }
    s->txn_active = 1;
    *out = t;
    return 0;
}

int satchel_store_begin(satchel_store *s, satchel_store_txn **out)
{
    return begin(s, out, 0);
}

int satchel_store_begin_reserve(satchel_store *s, satchel_store_txn **out)
{
    return begin(s, out, 1);
}

static void txn_release(satchel_store_txn *t)
{
    satchel_store *s = t->s;
    s->txn_active = 0;
    /* Back to the configured size (LMDB keeps at least what is in use). */
    if (t->reserve)
        mdb_env_set_mapsize(s->env, (size_t)s->map_size);
    s->alloc->free(s->alloc->ctx, t, sizeof *t);
}

int satchel_store_commit(satchel_store_txn *t)
{
    satchel_store *s = t->s;
    int rc = mdb_txn_commit(t->txn);
    txn_release(t);
    return store_err_write(s, rc);
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
    if (store_get(txn, dbi, &k, &v) != 0 || v.mv_size != 8)
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
    rc = store_err(store_get(txn, s->meta, &key, &v));
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

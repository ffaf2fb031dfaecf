/* Salvage from a store that does not open: its file is read page by page
 * through the port's hooks, never mapped by LMDB, so damage anywhere only
 * costs the records it touches.  Every record that passes its checks goes
 * into a new store: the queue first (what lives only on this device), then
 * the meta values, folders, messages (counts rebuilt) and pins.  Cached
 * bodies are left behind: the cache fetches them again. */
#include "store_internal.h"

#include <string.h>

#define BATCH 256u

struct fsv {
    satchel_store *d;
    satchel_store_txn *t;
    satchel_store_problem_cb cb;
    void *cbctx;
    satchel_store_report *r;
    uint32_t batch;
    uint64_t max_op;
    uint32_t max_fid;
    satchel_folder f; /* the folder messages are going into */
    satchel_folder nf; /* a folder record being copied */
    int have_f;
    satchel_msg m;
    satchel_op op;
    char line[200];
};

static int fsv_flush(struct fsv *v, int force)
{
    int rc;
    if (!force && ++v->batch < BATCH)
        return 0;
    v->batch = 0;
    if (v->have_f && (rc = satchel_store_folder_put(v->t, &v->f)) < 0)
        return rc;
    rc = satchel_store_commit(v->t);
    v->t = NULL;
    if (rc < 0)
        return rc;
    return satchel_store_begin(v->d, &v->t);
}

static void fsv_problem(void *ctx, uint64_t page, const char *why)
{
    struct fsv *v = ctx;
    v->r->problems++;
    v->line[0] = '\0';
    store_txt(v->line, sizeof v->line, "page ");
    store_txt_num(v->line, sizeof v->line, page);
    store_txt(v->line, sizeof v->line, ": ");
    store_txt(v->line, sizeof v->line, why);
    store_txt(v->line, sizeof v->line, "; what it held is left behind");
    if (v->cb)
        v->cb(v->cbctx, v->line);
}

static void damaged(struct fsv *v, const char *what, uint64_t n)
{
    v->r->damaged++;
    v->r->problems++;
    v->line[0] = '\0';
    store_txt(v->line, sizeof v->line, what);
    store_txt_num(v->line, sizeof v->line, n);
    store_txt(v->line, sizeof v->line, " is damaged: left behind");
    if (v->cb)
        v->cb(v->cbctx, v->line);
}

static int put_raw(struct fsv *v, MDB_dbi dbi, const uint8_t *k, size_t kl,
                   const uint8_t *val, size_t vl)
{
    MDB_val kk = {kl, (void *)k}, vv = {vl, (void *)val};
    int rc = store_err(mdb_put(v->t->txn, dbi, &kk, &vv, 0));
    if (rc == 0) {
        v->r->copied++;
        rc = fsv_flush(v, 0);
    }
    return rc;
}

static int leaf_queue(void *ctx, const uint8_t *k, size_t kl, const uint8_t *val, size_t vl)
{
    struct fsv *v = ctx;
    int rc;
    v->r->records++;
    if (kl != 8 || store_op_decode(val, vl, rd_be64(k), &v->op) < 0) {
        damaged(v, "queue entry ", kl == 8 ? rd_be64(k) : 0);
        return 0;
    }
    if (v->op.id > v->max_op)
        v->max_op = v->op.id;
    if ((rc = satchel_store_op_put(v->t, &v->op)) < 0)
        return rc;
    v->r->copied++;
    return fsv_flush(v, 0);
}

/* The queue's database record was lost: every leaf record of the file that
 * is a queue entry by its CRC (which covers the id) comes back as a failed
 * entry, for the user to retry or drop.  Free pages hold stale copies of
 * entries the server already has, so none is replayed blindly. */
static int leaf_queue_scan(void *ctx, const uint8_t *k, size_t kl, const uint8_t *val,
                           size_t vl)
{
    struct fsv *v = ctx;
    int rc;
    if (kl != 8 || vl < 1 || val[0] < 2 ||
        store_op_decode(val, vl, rd_be64(k), &v->op) < 0)
        return 0;
    v->op.state = SATCHEL_OP_FAILED;
    v->op.inflight = 0;
    {
        static const char why[] = "recovered by salvage from a damaged store: retry it "
                                  "if it is still wanted";
        memcpy(v->op.reason, why, sizeof why);
    }
    if (v->op.id > v->max_op)
        v->max_op = v->op.id;
    if ((rc = satchel_store_op_put(v->t, &v->op)) < 0)
        return rc;
    v->r->copied++;
    return fsv_flush(v, 0);
}

static int leaf_qidx(void *ctx, const uint8_t *k, size_t kl, const uint8_t *val, size_t vl)
{
    struct fsv *v = ctx;
    uint8_t idk[8];
    MDB_val qk = {8, idk}, qv;
    if (kl != 8 || vl != 8)
        return 0;
    be64(idk, rd64(val));
    if (mdb_get(v->t->txn, v->d->queue, &qk, &qv) != 0)
        return 0; /* its entry did not come across */
    return put_raw(v, v->d->qidx, k, kl, val, vl);
}

static int leaf_meta(void *ctx, const uint8_t *k, size_t kl, const uint8_t *val, size_t vl)
{
    struct fsv *v = ctx;
    if ((kl == 7 && memcmp(k, "version", 7) == 0) ||
        (kl == 11 && memcmp(k, "cache_bytes", 11) == 0) ||
        (kl == 10 && memcmp(k, "sync_owner", 10) == 0))
        return 0;
    return put_raw(v, v->d->meta, k, kl, val, vl);
}

static int leaf_folder(void *ctx, const uint8_t *k, size_t kl, const uint8_t *val, size_t vl)
{
    struct fsv *v = ctx;
    MDB_val kk = {kl, (void *)k}, vv = {vl, (void *)val};
    satchel_folder *f = &v->nf;
    int rc;
    v->r->records++;
    /* Both layouts: a version 1 file keys folders by name. */
    if (store_folder_decode(&kk, &vv, f) < 0) {
        damaged(v, "a folder record of length ", vl);
        return 0;
    }
    f->count = f->unseen = 0; /* rebuilt from the messages that come across */
    if (f->id > v->max_fid)
        v->max_fid = f->id;
    if ((rc = satchel_store_folder_put(v->t, f)) == SATCHEL_E_INVAL) {
        damaged(v, "a folder record repeating another's name, id ", f->id);
        return 0;
    }
    if (rc < 0)
        return rc;
    v->r->copied++;
    return fsv_flush(v, 0);
}

/* The folder with id in the new store. */
static int find_folder(struct fsv *v, uint32_t id)
{
    return satchel_store_folder_get_id(v->d, v->t, id, &v->f) == 0;
}

static int leaf_msg(void *ctx, const uint8_t *k, size_t kl, const uint8_t *val, size_t vl)
{
    struct fsv *v = ctx;
    uint32_t id, uid;
    int rc;
    v->r->records++;
    if (kl != 8) {
        damaged(v, "a message key of length ", kl);
        return 0;
    }
    id = rd_be32(k);
    uid = rd_be32(k + 4);
    if (!v->have_f || v->f.id != id) {
        if (v->have_f && (rc = satchel_store_folder_put(v->t, &v->f)) < 0)
            return rc;
        v->have_f = find_folder(v, id);
    }
    if (!v->have_f) {
        damaged(v, "a message whose folder record was lost, UID ", uid);
        return 0;
    }
    if (satchel_store_msg_decode(val, vl, uid, &v->m) < 0) {
        damaged(v, "message record UID ", uid);
        return 0;
    }
    if ((rc = satchel_store_msg_put(v->t, &v->f, &v->m, NULL)) < 0)
        return rc;
    v->r->copied++;
    return fsv_flush(v, 0);
}

static int leaf_pin(void *ctx, const uint8_t *k, size_t kl, const uint8_t *val, size_t vl)
{
    struct fsv *v = ctx;
    return put_raw(v, v->d->pins, k, kl, val, vl);
}

int satchel_store_salvage_file(const satchel_store_config *cfg, const char *src,
                               const char *dir, satchel_store_problem_cb cb,
                               void *ctx, satchel_store_report *out)
{
    static const struct {
        const char *db;
        store_leaf_fn fn;
    } passes[] = {{"queue", leaf_queue}, {"qidx", leaf_qidx}, {"meta", leaf_meta},
                  {"folders", leaf_folder}, {"msgs", leaf_msg}, {"pins", leaf_pin}};
    const satchel_allocator *alloc = cfg->alloc ? cfg->alloc : satchel_allocator_default();
    satchel_store_config dcfg = *cfg;
    struct fsv *v;
    char err[256];
    size_t i;
    uint32_t next_fid = 0;
    int rc;
    memset(out, 0, sizeof *out);
    if (!cfg->fs || !cfg->fs->read)
        return SATCHEL_E_INVAL;
    if ((rc = store_prepare_dir(cfg->fs, dir, err, sizeof err)) < 0) {
        if (cb)
            cb(ctx, err);
        return rc;
    }
    v = alloc->alloc(alloc->ctx, sizeof *v);
    if (!v)
        return SATCHEL_E_NOMEM;
    memset(v, 0, sizeof *v);
    v->cb = cb;
    v->cbctx = ctx;
    v->r = out;
    dcfg.err = err;
    dcfg.err_cap = sizeof err;
    if ((rc = satchel_store_open_config(&dcfg, dir, &v->d)) < 0) {
        if (cb)
            cb(ctx, err);
        alloc->free(alloc->ctx, v, sizeof *v);
        return rc;
    }
    rc = satchel_store_begin(v->d, &v->t);
    for (i = 0; rc == 0 && i < sizeof passes / sizeof passes[0]; i++) {
        rc = store_walk_file(cfg->fs, alloc, src, passes[i].db, passes[i].fn,
                             fsv_problem, v, 0);
        if (rc == 1 && i == 0) {
            if (cb)
                cb(ctx, "the queue's database record is gone: queue entries found "
                        "anywhere in the file come back as failed entries (queue "
                        "retry ID to send one)");
            rc = store_walk_file(cfg->fs, alloc, src, "queue", leaf_queue_scan, fsv_problem,
                                 v, 1) == 1 ? 0 : SATCHEL_E_INTERNAL;
        } else if (rc == 1) {
            rc = 0; /* a database that is gone; its records stay behind */
        }
        if (rc == 0 && v->have_f)
            rc = satchel_store_folder_put(v->t, &v->f);
        v->have_f = 0;
        if (rc == 0 && i == 2 && store_meta_get64(v->t->txn, v->d->meta, "next_op") < v->max_op)
            rc = store_meta_put64(v->t->txn, v->d->meta, "next_op", v->max_op);
        if (rc == 0 && i == 3 &&
            (store_meta_get32(v->t->txn, v->d->meta, "next_fid", &next_fid) < 0 ||
             next_fid <= v->max_fid))
            rc = store_meta_put32(v->t->txn, v->d->meta, "next_fid", v->max_fid + 1);
        if (rc == 0)
            rc = fsv_flush(v, 1);
    }
    if (v->t) {
        if (rc == 0)
            rc = satchel_store_commit(v->t);
        else
            satchel_store_abort(v->t);
    }
    satchel_store_close(v->d);
    alloc->free(alloc->ctx, v, sizeof *v);
    return rc;
}

/* Checking a store, salvaging what is readable, and taking backups.
 *
 * check and salvage walk every database with cursors in one read-only
 * snapshot.  A record that fails its checks is reported and passed over;
 * a tree LMDB cannot walk (a damaged page) is reported and the walk goes
 * on with the next database, so one fault never hides the rest. */
#include "store_internal.h"

#include <errno.h>
#include <string.h>

#define FREE_DBI 0
#define SALVAGE_BATCH 256u

struct ck {
    satchel_store *s;
    satchel_store_problem_cb cb;
    void *ctx;
    satchel_store_report *r;
    uint64_t reported; /* damaged records reported one by one */
    char line[256];
};

static void line_start(struct ck *c, const char *what)
{
    c->line[0] = '\0';
    store_txt(c->line, sizeof c->line, what);
}

static void line_num(struct ck *c, const char *what, uint64_t n)
{
    store_txt(c->line, sizeof c->line, what);
    store_txt_num(c->line, sizeof c->line, n);
}

static void line_str(struct ck *c, const char *what, const void *str, size_t n)
{
    char b[sizeof c->line];
    size_t i;
    if (n > sizeof b - 1)
        n = sizeof b - 1;
    for (i = 0; i < n; i++) {
        uint8_t ch = ((const uint8_t *)str)[i];
        b[i] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
    }
    b[n] = '\0';
    store_txt(c->line, sizeof c->line, what);
    store_txt(c->line, sizeof c->line, b);
}

static void report(struct ck *c, int damaged_record)
{
    c->r->problems++;
    if (damaged_record) {
        c->r->damaged++;
        c->reported++;
    }
    if (c->cb)
        c->cb(c->ctx, c->line);
}

static void tree_fault(struct ck *c, const char *db, int rc)
{
    line_start(c, "LMDB tree '");
    store_txt(c->line, sizeof c->line, db);
    store_txt(c->line, sizeof c->line, "' cannot be walked: ");
    store_txt(c->line, sizeof c->line, mdb_strerror(rc));
    report(c, 0);
}

/* Folder id's record; 0 when found. */
static int folder_by_id(MDB_txn *txn, satchel_store *s, uint32_t id,
                        satchel_folder *out)
{
    uint8_t kb[4];
    MDB_val k = {4, kb}, v;
    int rc;
    be32(kb, id);
    if ((rc = store_get(txn, s->folders, &k, &v)) != 0)
        return store_err(rc);
    return store_folder_decode(&k, &v, out);
}

static void line_folder_key(struct ck *c, const char *what, const MDB_val *k)
{
    line_start(c, "");
    if (k->mv_size == 4) {
        line_num(c, what, rd_be32(k->mv_data));
    } else {
        store_txt(c->line, sizeof c->line, what);
        line_str(c, "'", k->mv_data, k->mv_size);
        store_txt(c->line, sizeof c->line, "'");
    }
}

/* Every index entry leads to the record of a folder with that name, and
 * every folder has its entry. */
static void check_fnames(struct ck *c, MDB_txn *txn)
{
    satchel_store *s = c->s;
    MDB_cursor *cur;
    MDB_val k, v;
    satchel_folder *f = &s->fscratch;
    uint64_t entries = 0;
    MDB_stat st;
    int rc;
    if ((rc = mdb_cursor_open(txn, s->fnames, &cur))) {
        tree_fault(c, "fnames", rc);
        return;
    }
    rc = store_cget(cur, &k, &v, MDB_FIRST);
    while (rc == 0) {
        uint8_t kb[FNAME_KEY_MAX];
        size_t part, kl;
        entries++;
        if (v.mv_size != 4 || folder_by_id(txn, s, rd_be32(v.mv_data), f) < 0 ||
            (kl = store_fname_key(f->name, strlen(f->name), f->id, kb, &part)) != k.mv_size ||
            memcmp(kb, k.mv_data, kl) != 0) {
            line_start(c, "");
            line_str(c, "folder name index entry '", k.mv_data,
                     k.mv_size < 60 ? k.mv_size : 60);
            store_txt(c->line, sizeof c->line, "' leads to no folder of that name");
            report(c, 1);
        }
        rc = store_cstep(cur, &k, &v, MDB_NEXT, &c->r->damaged);
    }
    if (rc != MDB_NOTFOUND)
        tree_fault(c, "fnames", rc);
    mdb_cursor_close(cur);
    if (mdb_stat(txn, s->folders, &st) == 0 && st.ms_entries != entries) {
        line_start(c, "");
        line_num(c, "the folder name index holds ", entries);
        line_num(c, " entries for ", (uint64_t)st.ms_entries);
        store_txt(c->line, sizeof c->line, " folder records");
        report(c, 0);
    }
}

static void check_folders(struct ck *c, MDB_txn *txn, uint32_t next_fid)
{
    satchel_store *s = c->s;
    MDB_cursor *cur, *mc;
    MDB_val k, v, mk, mv;
    satchel_folder f;
    uint8_t kb[8];
    int rc;
    if ((rc = mdb_cursor_open(txn, s->folders, &cur))) {
        tree_fault(c, "folders", rc);
        return;
    }
    rc = store_cget(cur, &k, &v, MDB_FIRST);
    while (rc == 0) {
        uint32_t count = 0, unseen = 0;
        c->r->records++;
        if (k.mv_size != 4 || store_folder_decode(&k, &v, &f) < 0) {
            line_folder_key(c, "folder record ", &k);
            store_txt(c->line, sizeof c->line, " is damaged");
            report(c, 1);
            rc = store_cstep(cur, &k, &v, MDB_NEXT, &c->r->damaged);
            continue;
        }
        if (f.id >= next_fid) {
            line_start(c, "");
            line_str(c, "folder '", f.name, strlen(f.name));
            line_num(c, "' has id ", f.id);
            line_num(c, " but the next id to give is ", next_fid);
            report(c, 0);
        }
        if (mdb_cursor_open(txn, s->msgs, &mc) == 0) {
            store_msg_key(kb, f.id, 0);
            mk.mv_size = 8;
            mk.mv_data = kb;
            rc = store_cget(mc, &mk, &mv, MDB_SET_RANGE);
            while (rc == 0 && mk.mv_size == 8 && rd_be32(mk.mv_data) == f.id) {
                if (mv.mv_size >= 5) {
                    count++;
                    if (!(store_msg_peek(mv.mv_data, mv.mv_size, 0) & SATCHEL_FLAG_SEEN))
                        unseen++;
                }
                rc = store_cstep(mc, &mk, &mv, MDB_NEXT, &c->r->damaged);
            }
            mdb_cursor_close(mc);
            if (rc != 0 && rc != MDB_NOTFOUND)
                tree_fault(c, "msgs", rc);
            else if (count != f.count || unseen != f.unseen) {
                line_start(c, "");
                line_str(c, "folder '", f.name, strlen(f.name));
                line_num(c, "' counts ", f.count);
                line_num(c, " messages (", f.unseen);
                line_num(c, " unseen) but holds ", count);
                line_num(c, " (", unseen);
                store_txt(c->line, sizeof c->line, " unseen)");
                report(c, 0);
            }
        }
        rc = store_cstep(cur, &k, &v, MDB_NEXT, &c->r->damaged);
    }
    if (rc != MDB_NOTFOUND)
        tree_fault(c, "folders", rc);
    mdb_cursor_close(cur);
}

static void check_msgs(struct ck *c, MDB_txn *txn)
{
    satchel_store *s = c->s;
    MDB_cursor *cur;
    MDB_val k, v;
    satchel_folder f;
    uint32_t fid = 0;
    int have = 0, rc;
    if ((rc = mdb_cursor_open(txn, s->msgs, &cur))) {
        tree_fault(c, "msgs", rc);
        return;
    }
    rc = store_cget(cur, &k, &v, MDB_FIRST);
    while (rc == 0) {
        uint32_t id = k.mv_size == 8 ? rd_be32(k.mv_data) : 0;
        uint32_t uid = k.mv_size == 8 ? rd_be32((const uint8_t *)k.mv_data + 4) : 0;
        c->r->records++;
        if (id != fid || !fid) {
            fid = id;
            have = id && folder_by_id(txn, s, id, &f) == 0;
            if (!have) {
                line_start(c, "");
                line_num(c, "messages of folder id ", id);
                store_txt(c->line, sizeof c->line, " belong to no folder");
                report(c, 0);
            }
        }
        if (k.mv_size != 8 ||
            satchel_store_msg_decode(v.mv_data, v.mv_size, uid, &s->scratch) < 0) {
            line_start(c, "");
            if (have)
                line_str(c, "message record in '", f.name, strlen(f.name));
            else
                line_num(c, "message record in folder id ", id);
            line_num(c, "' UID ", uid);
            store_txt(c->line, sizeof c->line, " is damaged");
            report(c, 1);
        }
        rc = store_cstep(cur, &k, &v, MDB_NEXT, &c->r->damaged);
    }
    if (rc != MDB_NOTFOUND)
        tree_fault(c, "msgs", rc);
    mdb_cursor_close(cur);
}

static void check_queue(struct ck *c, MDB_txn *txn)
{
    satchel_store *s = c->s;
    MDB_cursor *cur;
    MDB_val k, v;
    satchel_op op;
    int rc;
    if ((rc = mdb_cursor_open(txn, s->queue, &cur))) {
        tree_fault(c, "queue", rc);
        return;
    }
    rc = store_cget(cur, &k, &v, MDB_FIRST);
    while (rc == 0) {
        c->r->records++;
        if (k.mv_size != 8 ||
            store_op_decode(v.mv_data, v.mv_size, rd_be64(k.mv_data), &op) < 0) {
            line_start(c, "");
            line_num(c, "queue entry ", k.mv_size == 8 ? rd_be64(k.mv_data) : 0);
            store_txt(c->line, sizeof c->line, " is damaged: that offline change "
                                               "cannot be replayed");
            report(c, 1);
        }
        rc = store_cstep(cur, &k, &v, MDB_NEXT, &c->r->damaged);
    }
    if (rc != MDB_NOTFOUND)
        tree_fault(c, "queue", rc);
    mdb_cursor_close(cur);
}

static void check_bodies(struct ck *c, MDB_txn *txn)
{
    satchel_store *s = c->s;
    MDB_cursor *cur, *bc;
    MDB_val k, v, bk, bv;
    satchel_body_info bi;
    uint8_t ck[64];
    uint64_t total = 0;
    int rc;
    if ((rc = mdb_cursor_open(txn, s->bodymeta, &cur))) {
        tree_fault(c, "bodymeta", rc);
        return;
    }
    rc = store_cget(cur, &k, &v, MDB_FIRST);
    while (rc == 0) {
        uint64_t off = 0;
        int brc;
        c->r->records++;
        if (k.mv_size < 10 || k.mv_size + 8 > sizeof ck ||
            store_bodymeta_decode(&k, &v, &bi) < 0) {
            line_start(c, "");
            line_num(c, "cached body record of folder id ",
                     k.mv_size >= 8 ? rd_be32(k.mv_data) : 0);
            line_num(c, " UID ", k.mv_size >= 8 ? rd_be32((const uint8_t *)k.mv_data + 4) : 0);
            store_txt(c->line, sizeof c->line, " is damaged");
            report(c, 1);
            rc = store_cstep(cur, &k, &v, MDB_NEXT, &c->r->damaged);
            continue;
        }
        memcpy(ck, k.mv_data, k.mv_size);
        memset(ck + k.mv_size, 0, 8);
        if (mdb_cursor_open(txn, s->bodies, &bc) == 0) {
            bk.mv_size = k.mv_size + 8;
            bk.mv_data = ck;
            brc = store_cget(bc, &bk, &bv, MDB_SET_RANGE);
            while (brc == 0 && bk.mv_size == k.mv_size + 8 &&
                   memcmp(bk.mv_data, k.mv_data, k.mv_size) == 0) {
                if (rd_be64((const uint8_t *)bk.mv_data + k.mv_size) != off)
                    break;
                off += bv.mv_size;
                brc = store_cstep(bc, &bk, &bv, MDB_NEXT, &c->r->damaged);
            }
            mdb_cursor_close(bc);
            if (brc != 0 && brc != MDB_NOTFOUND)
                tree_fault(c, "bodies", brc);
            else if (off != bi.stored) {
                line_start(c, "");
                line_num(c, "cached body of folder id ", rd_be32(k.mv_data));
                line_num(c, " UID ", rd_be32((const uint8_t *)k.mv_data + 4));
                line_num(c, ": its record says ", bi.stored);
                line_num(c, " bytes, its chunks hold ", off);
                report(c, 0);
            }
        }
        total += bi.stored;
        rc = store_cstep(cur, &k, &v, MDB_NEXT, &c->r->damaged);
    }
    if (rc != MDB_NOTFOUND)
        tree_fault(c, "bodymeta", rc);
    mdb_cursor_close(cur);
    if (total != store_meta_get64(txn, s->meta, "cache_bytes")) {
        line_start(c, "");
        line_num(c, "the cache counts ", store_meta_get64(txn, s->meta, "cache_bytes"));
        line_num(c, " bytes but its bodies hold ", total);
        report(c, 0);
    }
}

/* Walk the trees Satchel does not decode record by record, and LMDB's free
 * list, whose page numbers must lie inside the file. */
static void check_lmdb(struct ck *c, MDB_txn *txn)
{
    satchel_store *s = c->s;
    const struct {
        const char *name;
        MDB_dbi dbi;
    } trees[] = {{"meta", s->meta}, {"bodies", s->bodies}, {"lru", s->lru},
                 {"pins", s->pins}, {"qidx", s->qidx}};
    MDB_envinfo info;
    MDB_cursor *cur;
    MDB_val k, v;
    size_t i;
    int rc, dead = 0;
    mdb_env_info(s->env, &info);
    for (i = 0; i < sizeof trees / sizeof trees[0]; i++) {
        if ((rc = mdb_cursor_open(txn, trees[i].dbi, &cur))) {
            tree_fault(c, trees[i].name, rc);
            continue;
        }
        rc = store_cget(cur, &k, &v, MDB_FIRST);
        while (rc == 0)
            rc = store_cstep(cur, &k, &v, MDB_NEXT, &c->r->damaged);
        if (rc != MDB_NOTFOUND)
            tree_fault(c, trees[i].name, rc);
        mdb_cursor_close(cur);
    }
    if ((rc = mdb_cursor_open(txn, FREE_DBI, &cur))) {
        tree_fault(c, "free list", rc);
        return;
    }
    rc = store_cget(cur, &k, &v, MDB_FIRST);
    while (rc == 0) {
        const uint8_t *p = v.mv_data;
        size_t n = 0, j;
        if (v.mv_size >= sizeof n)
            memcpy(&n, p, sizeof n);
        if (v.mv_size < sizeof n || (v.mv_size / sizeof n) - 1 < n) {
            line_start(c, "LMDB's free list has a damaged entry");
            report(c, 0);
        } else {
            for (j = 1; j <= n; j++) {
                size_t pg;
                memcpy(&pg, p + j * sizeof pg, sizeof pg);
                if (pg < 2 || pg > info.me_last_pgno) {
                    line_start(c, "");
                    line_num(c, "LMDB's free list names page ", (uint64_t)pg);
                    line_num(c, ", outside the file's ", (uint64_t)info.me_last_pgno + 1);
                    store_txt(c->line, sizeof c->line, " pages");
                    report(c, 0);
                    break;
                }
            }
        }
        rc = store_cstep(cur, &k, &v, MDB_NEXT, &c->r->damaged);
    }
    if (rc != MDB_NOTFOUND)
        tree_fault(c, "free list", rc);
    mdb_cursor_close(cur);
    mdb_reader_check(s->env, &dead);
}

int satchel_store_check(satchel_store *s, satchel_store_problem_cb cb,
                        void *ctx, satchel_store_report *out)
{
    struct ck c;
    MDB_txn *txn;
    uint32_t ver = 0, next_fid = 0;
    int rc;
    memset(out, 0, sizeof *out);
    memset(&c, 0, sizeof c);
    c.s = s;
    c.cb = cb;
    c.ctx = ctx;
    c.r = out;
    if ((rc = store_rtxn(s, NULL, &txn)) < 0)
        return rc;
    if (store_meta_get32(txn, s->meta, "version", &ver) < 0 || ver != STORE_VERSION) {
        line_start(&c, "the version record is missing or damaged");
        report(&c, 1);
    }
    if (store_meta_get32(txn, s->meta, "next_fid", &next_fid) < 0) {
        line_start(&c, "the next folder id record is missing or damaged");
        report(&c, 1);
        next_fid = UINT32_MAX;
    }
    check_queue(&c, txn);
    check_folders(&c, txn, next_fid);
    check_fnames(&c, txn);
    check_msgs(&c, txn);
    check_bodies(&c, txn);
    check_lmdb(&c, txn);
    store_rtxn_end(NULL, txn);
    if (out->damaged > c.reported) {
        line_start(&c, "");
        line_num(&c, "", out->damaged - c.reported);
        store_txt(c.line, sizeof c.line, " records point outside the file (a damaged "
                                         "page) and were stepped over");
        out->problems++;
        if (cb)
            cb(ctx, c.line);
    }
    return out->problems ? SATCHEL_E_DAMAGED : 0;
}

/* ---- salvage ---- */

struct sv {
    struct ck c;
    satchel_store *d;
    satchel_store_txn *t;
    uint32_t batch;
};

static int sv_flush(struct sv *v, int force)
{
    int rc;
    if (!force && ++v->batch < SALVAGE_BATCH)
        return 0;
    v->batch = 0;
    rc = satchel_store_commit(v->t);
    v->t = NULL;
    if (rc < 0)
        return rc;
    return satchel_store_begin(v->d, &v->t);
}

static int sv_raw(struct sv *v, MDB_dbi dbi, const MDB_val *k, const MDB_val *val)
{
    MDB_val kk = *k, vv = *val;
    int rc = store_err(mdb_put(v->t->txn, dbi, &kk, &vv, 0));
    if (rc == 0) {
        v->c.r->copied++;
        rc = sv_flush(v, 0);
    }
    return rc;
}

static int sv_queue(struct sv *v, MDB_txn *txn, uint64_t *max_id)
{
    satchel_store *s = v->c.s;
    MDB_cursor *cur;
    MDB_val k, val;
    satchel_op op;
    int rc, wrc = 0;
    if ((rc = mdb_cursor_open(txn, s->queue, &cur))) {
        tree_fault(&v->c, "queue", rc);
        return 0;
    }
    rc = store_cget(cur, &k, &val, MDB_FIRST);
    while (rc == 0 && wrc == 0) {
        v->c.r->records++;
        if (k.mv_size == 8 &&
            store_op_decode(val.mv_data, val.mv_size, rd_be64(k.mv_data), &op) == 0) {
            if (op.id > *max_id)
                *max_id = op.id;
            if ((wrc = satchel_store_op_put(v->t, &op)) == 0) {
                v->c.r->copied++;
                wrc = sv_flush(v, 0);
            }
        } else {
            line_start(&v->c, "");
            line_num(&v->c, "queue entry ", k.mv_size == 8 ? rd_be64(k.mv_data) : 0);
            store_txt(v->c.line, sizeof v->c.line, " is damaged: left behind");
            report(&v->c, 1);
        }
        rc = store_cstep(cur, &k, &val, MDB_NEXT, &v->c.r->damaged);
    }
    if (wrc == 0 && rc != MDB_NOTFOUND)
        tree_fault(&v->c, "queue", rc);
    mdb_cursor_close(cur);
    if (wrc < 0)
        return wrc;
    /* The per-message index, for the entries that came across. */
    if ((rc = mdb_cursor_open(txn, s->qidx, &cur)))
        return 0;
    rc = store_cget(cur, &k, &val, MDB_FIRST);
    while (rc == 0 && wrc == 0) {
        MDB_val qk, qv;
        uint8_t idk[8];
        if (k.mv_size == 8 && val.mv_size == 8) {
            be64(idk, rd64(val.mv_data));
            qk.mv_size = 8;
            qk.mv_data = idk;
            if (store_get(v->t->txn, v->d->queue, &qk, &qv) == 0)
                wrc = sv_raw(v, v->d->qidx, &k, &val);
        }
        rc = store_cstep(cur, &k, &val, MDB_NEXT, &v->c.r->damaged);
    }
    mdb_cursor_close(cur);
    return wrc;
}

static int sv_meta(struct sv *v, MDB_txn *txn, uint64_t max_id)
{
    satchel_store *s = v->c.s;
    MDB_cursor *cur;
    MDB_val k, val;
    int rc, wrc = 0;
    if ((rc = mdb_cursor_open(txn, s->meta, &cur))) {
        tree_fault(&v->c, "meta", rc);
        return 0;
    }
    rc = store_cget(cur, &k, &val, MDB_FIRST);
    while (rc == 0 && wrc == 0) {
        /* The version is the new store's own; the cache's byte count is
         * rebuilt as bodies come across. */
        if (!(k.mv_size == 7 && memcmp(k.mv_data, "version", 7) == 0) &&
            !(k.mv_size == 11 && memcmp(k.mv_data, "cache_bytes", 11) == 0))
            wrc = sv_raw(v, v->d->meta, &k, &val);
        rc = store_cstep(cur, &k, &val, MDB_NEXT, &v->c.r->damaged);
    }
    if (wrc == 0 && rc != MDB_NOTFOUND)
        tree_fault(&v->c, "meta", rc);
    mdb_cursor_close(cur);
    if (wrc == 0 && store_meta_get64(v->t->txn, v->d->meta, "next_op") < max_id)
        wrc = store_meta_put64(v->t->txn, v->d->meta, "next_op", max_id);
    return wrc;
}

static int sv_folders(struct sv *v, MDB_txn *txn)
{
    satchel_store *s = v->c.s;
    MDB_cursor *cur;
    MDB_val k, val;
    satchel_folder f;
    uint32_t next_fid = 0, max_fid = 0;
    int rc, wrc = 0;
    if ((rc = mdb_cursor_open(txn, s->folders, &cur))) {
        tree_fault(&v->c, "folders", rc);
        return 0;
    }
    rc = store_cget(cur, &k, &val, MDB_FIRST);
    while (rc == 0 && wrc == 0) {
        v->c.r->records++;
        if (k.mv_size == 4 && store_folder_decode(&k, &val, &f) == 0) {
            /* Counts are rebuilt from the messages that come across. */
            f.count = f.unseen = 0;
            if (f.id > max_fid)
                max_fid = f.id;
            if ((wrc = satchel_store_folder_put(v->t, &f)) == 0) {
                v->c.r->copied++;
                wrc = sv_flush(v, 0);
            } else if (wrc == SATCHEL_E_INVAL) {
                wrc = 0;
                line_start(&v->c, "");
                line_num(&v->c, "folder record ", f.id);
                line_str(&v->c, " repeats the name '", f.name, strlen(f.name));
                store_txt(v->c.line, sizeof v->c.line, "': left behind with its messages");
                report(&v->c, 1);
            }
        } else {
            line_folder_key(&v->c, "folder record ", &k);
            store_txt(v->c.line, sizeof v->c.line, " is damaged: left behind with its messages");
            report(&v->c, 1);
        }
        rc = store_cstep(cur, &k, &val, MDB_NEXT, &v->c.r->damaged);
    }
    if (wrc == 0 && rc != MDB_NOTFOUND)
        tree_fault(&v->c, "folders", rc);
    mdb_cursor_close(cur);
    if (wrc == 0 && (store_meta_get32(v->t->txn, v->d->meta, "next_fid", &next_fid) < 0 ||
                     next_fid <= max_fid))
        wrc = store_meta_put32(v->t->txn, v->d->meta, "next_fid", max_fid + 1);
    return wrc;
}

static int sv_msgs(struct sv *v, MDB_txn *txn)
{
    satchel_store *s = v->c.s;
    MDB_cursor *cur;
    MDB_val k, val;
    satchel_folder f;
    uint32_t fid = 0;
    int have = 0, rc, wrc = 0;
    if ((rc = mdb_cursor_open(txn, s->msgs, &cur))) {
        tree_fault(&v->c, "msgs", rc);
        return 0;
    }
    rc = store_cget(cur, &k, &val, MDB_FIRST);
    while (rc == 0 && wrc == 0) {
        uint32_t id = k.mv_size == 8 ? rd_be32(k.mv_data) : 0;
        uint32_t uid = k.mv_size == 8 ? rd_be32((const uint8_t *)k.mv_data + 4) : 0;
        v->c.r->records++;
        if (id != fid || !id) {
            if (have && (wrc = satchel_store_folder_put(v->t, &f)) < 0)
                break;
            fid = id;
            have = id && folder_by_id(v->t->txn, v->d, id, &f) == 0;
        }
        if (!have) {
            /* Its folder record was damaged: nowhere to put it. */
        } else if (k.mv_size == 8 &&
                   satchel_store_msg_decode(val.mv_data, val.mv_size, uid, &s->scratch) == 0) {
            if ((wrc = satchel_store_msg_put(v->t, &f, &s->scratch, NULL)) == 0) {
                v->c.r->copied++;
                if (v->batch + 1 >= SALVAGE_BATCH)
                    wrc = satchel_store_folder_put(v->t, &f);
                if (wrc == 0)
                    wrc = sv_flush(v, 0);
            }
        } else {
            line_start(&v->c, "");
            line_str(&v->c, "message record in '", f.name, strlen(f.name));
            line_num(&v->c, "' UID ", uid);
            store_txt(v->c.line, sizeof v->c.line, " is damaged: left behind");
            report(&v->c, 1);
        }
        rc = store_cstep(cur, &k, &val, MDB_NEXT, &v->c.r->damaged);
    }
    if (wrc == 0 && have)
        wrc = satchel_store_folder_put(v->t, &f);
    if (wrc == 0 && rc != MDB_NOTFOUND)
        tree_fault(&v->c, "msgs", rc);
    mdb_cursor_close(cur);
    return wrc;
}

static int sv_bodies(struct sv *v, MDB_txn *txn)
{
    satchel_store *s = v->c.s;
    MDB_cursor *cur, *bc;
    MDB_val k, val, bk, bv;
    satchel_body_info bi;
    uint8_t ck[64];
    char section[SATCHEL_SECTION_MAX + 1];
    int rc, wrc = 0;
    if ((rc = mdb_cursor_open(txn, s->pins, &cur)) == 0) {
        rc = store_cget(cur, &k, &val, MDB_FIRST);
        while (rc == 0 && wrc == 0) {
            wrc = sv_raw(v, v->d->pins, &k, &val);
            rc = store_cstep(cur, &k, &val, MDB_NEXT, &v->c.r->damaged);
        }
        mdb_cursor_close(cur);
    }
    if (wrc < 0 || (rc = mdb_cursor_open(txn, s->bodymeta, &cur)))
        return wrc;
    rc = store_cget(cur, &k, &val, MDB_FIRST);
    while (rc == 0 && wrc == 0) {
        uint32_t fid, uid;
        uint64_t off = 0;
        int brc, ok = 1;
        size_t sl;
        v->c.r->records++;
        if (k.mv_size < 10 || k.mv_size + 8 > sizeof ck ||
            ((const uint8_t *)k.mv_data)[k.mv_size - 1] != 0 ||
            store_bodymeta_decode(&k, &val, &bi) < 0 || !bi.complete) {
            rc = store_cstep(cur, &k, &val, MDB_NEXT, &v->c.r->damaged);
            continue; /* partial or damaged: the cache fetches it again */
        }
        fid = rd_be32(k.mv_data);
        uid = rd_be32((const uint8_t *)k.mv_data + 4);
        sl = k.mv_size - 9;
        memcpy(section, (const uint8_t *)k.mv_data + 8, sl);
        section[sl] = '\0';
        memcpy(ck, k.mv_data, k.mv_size);
        memset(ck + k.mv_size, 0, 8);
        if ((wrc = sv_flush(v, 1)) < 0)
            break;
        if (mdb_cursor_open(txn, s->bodies, &bc) == 0) {
            bk.mv_size = k.mv_size + 8;
            bk.mv_data = ck;
            brc = store_cget(bc, &bk, &bv, MDB_SET_RANGE);
            while (brc == 0 && ok && bk.mv_size == k.mv_size + 8 &&
                   memcmp(bk.mv_data, k.mv_data, k.mv_size) == 0) {
                if (rd_be64((const uint8_t *)bk.mv_data + k.mv_size) != off ||
                    satchel_store_body_write(v->t, fid, uid, section, off, bv.mv_data,
                                             bv.mv_size, bi.expected) < 0)
                    ok = 0;
                off += bv.mv_size;
                brc = store_cstep(bc, &bk, &bv, MDB_NEXT, &v->c.r->damaged);
            }
            mdb_cursor_close(bc);
            if (ok && off == bi.stored &&
                satchel_store_body_complete(v->t, fid, uid, section) == 0) {
                v->c.r->copied++;
                wrc = sv_flush(v, 1);
            } else {
                /* Leave no half body behind. */
                satchel_store_abort(v->t);
                v->t = NULL;
                wrc = satchel_store_begin(v->d, &v->t);
            }
        }
        rc = store_cstep(cur, &k, &val, MDB_NEXT, &v->c.r->damaged);
    }
    mdb_cursor_close(cur);
    return wrc;
}

int satchel_store_salvage(satchel_store *s, const char *dir,
                          satchel_store_problem_cb cb, void *ctx,
                          satchel_store_report *out)
{
    satchel_store_config cfg;
    struct sv v;
    MDB_txn *txn;
    uint64_t max_id = 0;
    int rc;
    memset(out, 0, sizeof *out);
    memset(&v, 0, sizeof v);
    v.c.s = s;
    v.c.cb = cb;
    v.c.ctx = ctx;
    v.c.r = out;
    if ((rc = store_prepare_dir(s->fs, dir, v.c.line, sizeof v.c.line)) < 0) {
        if (cb)
            cb(ctx, v.c.line);
        return rc;
    }
    memset(&cfg, 0, sizeof cfg);
    cfg.alloc = s->alloc;
    cfg.map_size = s->map_size;
    cfg.fs = s->fs;
    cfg.err = v.c.line;
    cfg.err_cap = sizeof v.c.line;
    if ((rc = satchel_store_open_config(&cfg, dir, &v.d)) < 0) {
        if (cb)
            cb(ctx, v.c.line);
        return rc;
    }
    if ((rc = store_rtxn(s, NULL, &txn)) < 0) {
        satchel_store_close(v.d);
        return rc;
    }
    if ((rc = satchel_store_begin(v.d, &v.t)) == 0 &&
        (rc = sv_queue(&v, txn, &max_id)) == 0 &&
        (rc = sv_meta(&v, txn, max_id)) == 0 && (rc = sv_flush(&v, 1)) == 0 &&
        (rc = sv_folders(&v, txn)) == 0 && (rc = sv_msgs(&v, txn)) == 0 &&
        (rc = sv_flush(&v, 1)) == 0)
        rc = sv_bodies(&v, txn);
    store_rtxn_end(NULL, txn);
    if (v.t) {
        if (rc == 0)
            rc = satchel_store_commit(v.t);
        else
            satchel_store_abort(v.t);
    }
    satchel_store_close(v.d);
    return rc;
}

/* ---- backup ---- */

int store_prepare_dir(const satchel_store_fs *fs, const char *dir, char *err, size_t cap)
{
    char path[SATCHEL_OPT_STORE_PATH_MAX + 16];
    uint64_t size = 0;
    int is_dir = 0, rc;
    size_t n = dir ? strlen(dir) : 0;
    err[0] = '\0';
    if (n == 0 || n > SATCHEL_OPT_STORE_PATH_MAX) {
        store_txt(err, cap, n ? "directory path too long" : "no directory given");
        return SATCHEL_E_INVAL;
    }
    if (fs && fs->mkdir && (rc = fs->mkdir(fs->ctx, dir)) != 0 &&
        rc != EEXIST) {
        store_txt(err, cap, dir);
        store_txt(err, cap, ": ");
        store_txt(err, cap, satchel_strerror(store_err(rc)));
        return store_err(rc);
    }
    memcpy(path, dir, n);
    memcpy(path + n, "/data.mdb", 10);
    if (fs && fs->stat && fs->stat(fs->ctx, path, &size, &is_dir) == 0) {
        store_txt(err, cap, path);
        store_txt(err, cap, ": already exists; give a new directory");
        return SATCHEL_E_BUSY;
    }
    return 0;
}

int satchel_store_backup(satchel_store *s, const char *dir, char *err,
                         size_t err_cap)
{
    char buf[256];
    int rc;
    if (!err || !err_cap) {
        err = buf;
        err_cap = sizeof buf;
    }
    if ((rc = store_prepare_dir(s->fs, dir, err, err_cap)) < 0)
        return rc;
    rc = mdb_env_copy2(s->env, dir, MDB_CP_COMPACT);
    if (rc) {
        store_txt(err, err_cap, dir);
        store_txt(err, err_cap, ": ");
        store_txt(err, err_cap, rc == EEXIST ? "already holds a data.mdb"
                                             : satchel_strerror(store_err(rc)));
        return rc == EEXIST ? SATCHEL_E_BUSY : store_err(rc);
    }
    return 0;
}

/* Folders: records keyed by a folder id that never changes, carrying the
 * name, the sync state and exact message and unseen counts, and an index
 * from name to id that works for a name of any length (LMDB keys are at
 * most 511 bytes; see store_fname_key).  Messages, cached bodies, pins and
 * the queue's index are keyed by the id, so no other tree holds a name. */
#include "store_internal.h"

#include <string.h>

const char *satchel_role_name(int role)
{
    static const char *const names[] = {"",        "inbox", "sent",
                                        "drafts",  "trash", "archive",
                                        "junk",    "all",   "flagged"};
    if (role < 0 || role > SATCHEL_ROLE_FLAGGED)
        return "";
    return names[role];
}

/* FNV-1a, 64 bits: spreads names that share a long prefix; collisions are
 * told apart by the id in the key and the name in the record. */
static uint64_t fname_hash(const char *name, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    size_t i;
    for (i = 0; i < n; i++) {
        h ^= (uint8_t)name[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

size_t store_fname_key(const char *name, size_t n, uint32_t id, uint8_t *k,
                       size_t *part)
{
    if (n <= FNAME_KEY_DIRECT) {
        memcpy(k, name, n);
        *part = n;
        return n;
    }
    memcpy(k, name, FNAME_KEY_DIRECT);
    k[FNAME_KEY_DIRECT] = 0;
    be64(k + FNAME_KEY_DIRECT + 1, fname_hash(name, n));
    be32(k + FNAME_KEY_PART, id);
    *part = FNAME_KEY_PART;
    return FNAME_KEY_MAX;
}

static size_t folder_encode(const satchel_folder *f, uint8_t *b)
{
    size_t n = strlen(f->name);
    uint8_t k[4];
    b[0] = FOLDER_REC_VERSION;
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
    memcpy(b + FOLDER_REC_LEN, f->name, n);
    be32(k, f->id);
    return store_seal(b, FOLDER_REC_LEN + n, k, sizeof k);
}

static void folder_fixed(const uint8_t *b, satchel_folder *f)
{
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
}

int store_folder_decode(const MDB_val *k, const MDB_val *v, satchel_folder *f)
{
    const uint8_t *b = v->mv_data;
    size_t len = v->mv_size;
    memset(f, 0, sizeof *f);
    if (len >= 1 && b[0] == FOLDER_REC_VERSION) {
        size_t n;
        if (k->mv_size != 4 || len < FOLDER_REC_LEN + 1 + REC_CRC ||
            store_unseal(b, &len, k->mv_data, 4) < 0)
            return SATCHEL_E_STORE;
        n = len - FOLDER_REC_LEN;
        if (n > SATCHEL_OPT_MAX_FOLDER_NAME ||
            memchr(b + FOLDER_REC_LEN, 0, n) != NULL || b[33] > SATCHEL_ROLE_FLAGGED)
            return SATCHEL_E_STORE;
        folder_fixed(b, f);
        memcpy(f->name, b + FOLDER_REC_LEN, n);
        f->name[n] = '\0';
        if (f->id == 0 || f->id != rd_be32(k->mv_data) || f->unseen > f->count)
            return SATCHEL_E_STORE;
        return 0;
    }
    /* Versions 1-3: the name was the key (version 1 stores). */
    if (len == FOLDER_REC_LEN + REC_CRC && b[0] >= 2 && b[0] <= 3 &&
        store_unseal(b, &len, k->mv_data, b[0] == 3 ? k->mv_size : 0) < 0)
        return SATCHEL_E_STORE;
    if (len != FOLDER_REC_LEN || b[0] < 1 || b[0] > 3 ||
        (b[0] >= 2) != (v->mv_size == len + REC_CRC) ||
        k->mv_size == 0 || k->mv_size > SATCHEL_OPT_MAX_FOLDER_NAME ||
        memchr(k->mv_data, 0, k->mv_size) != NULL || b[33] > SATCHEL_ROLE_FLAGGED)
        return SATCHEL_E_STORE;
    memcpy(f->name, k->mv_data, k->mv_size);
    folder_fixed(b, f);
    if (f->id == 0 || f->unseen > f->count)
        return SATCHEL_E_STORE;
    return 0;
}

static int get_by_id(satchel_store *s, MDB_txn *txn, uint32_t id,
                     satchel_folder *out)
{
    uint8_t kb[4];
    MDB_val k = {4, kb}, v;
    int rc;
    be32(kb, id);
    rc = store_err(store_get(txn, s->folders, &k, &v));
    if (rc == 0)
        rc = store_folder_decode(&k, &v, out);
    return rc;
}

/* The candidates of a name share the key's first part; each is checked
 * against the full name in its record, in s's scratch folder. */
int store_fname_find(satchel_store *s, MDB_txn *txn, const char *name,
                     uint32_t *id)
{
    uint8_t kb[FNAME_KEY_MAX];
    size_t n = strlen(name), part;
    MDB_cursor *cur;
    MDB_val k, v;
    int rc;
    if (n == 0 || n > SATCHEL_OPT_MAX_FOLDER_NAME)
        return SATCHEL_E_NOTFOUND;
    k.mv_size = store_fname_key(name, n, 0, kb, &part);
    if (k.mv_size == part) {
        k.mv_data = kb;
        if ((rc = store_err(store_get(txn, s->fnames, &k, &v))) < 0)
            return rc;
        if (v.mv_size != 4)
            return SATCHEL_E_STORE;
        /* An entry damaged into naming no folder, or another one, does not
         * name this folder: the next put of the name replaces it. */
        rc = get_by_id(s, txn, rd_be32(v.mv_data), &s->fscratch);
        if (rc == SATCHEL_E_NOTFOUND || (rc == 0 && strcmp(s->fscratch.name, name) != 0))
            return SATCHEL_E_NOTFOUND;
        if (rc < 0)
            return rc;
        *id = rd_be32(v.mv_data);
        return 0;
    }
    if ((rc = mdb_cursor_open(txn, s->fnames, &cur)) != 0)
        return store_err(rc);
    k.mv_size = part;
    k.mv_data = kb;
    rc = store_cget(cur, &k, &v, MDB_SET_RANGE);
    while (rc == 0 && k.mv_size == FNAME_KEY_MAX && memcmp(k.mv_data, kb, part) == 0) {
        if (v.mv_size == 4 && get_by_id(s, txn, rd_be32(v.mv_data), &s->fscratch) == 0 &&
            strcmp(s->fscratch.name, name) == 0) {
            *id = rd_be32(v.mv_data);
            mdb_cursor_close(cur);
            return 0;
        }
        rc = store_cstep(cur, &k, &v, MDB_NEXT, &s->damaged);
    }
    mdb_cursor_close(cur);
    return rc == 0 || rc == MDB_NOTFOUND ? SATCHEL_E_NOTFOUND : store_err(rc);
}

static int fname_put(satchel_store *s, MDB_txn *txn, const char *name, uint32_t id)
{
    uint8_t kb[FNAME_KEY_MAX], vb[4];
    size_t part;
    MDB_val k, v = {4, vb};
    k.mv_size = store_fname_key(name, strlen(name), id, kb, &part);
    k.mv_data = kb;
    be32(vb, id);
    return store_err(mdb_put(txn, s->fnames, &k, &v, 0));
}

static int fname_del(satchel_store *s, MDB_txn *txn, const char *name, uint32_t id)
{
    uint8_t kb[FNAME_KEY_MAX];
    size_t part;
    MDB_val k, v;
    int rc;
    k.mv_size = store_fname_key(name, strlen(name), id, kb, &part);
    k.mv_data = kb;
    /* Only the entry that names this folder (a damaged index may hold
     * another id under the key). */
    if (store_get(txn, s->fnames, &k, &v) != 0 || v.mv_size != 4 ||
        rd_be32(v.mv_data) != id)
        return 0;
    rc = mdb_del(txn, s->fnames, &k, NULL);
    return rc == MDB_NOTFOUND ? 0 : store_err(rc);
}

/* ---- folders ---- */

int satchel_store_folder_get(satchel_store *s, satchel_store_txn *t,
                             const char *name, satchel_folder *out)
{
    MDB_txn *txn;
    uint32_t id = 0;
    int rc;
    size_t n = strlen(name);
    if (n == 0 || n > SATCHEL_OPT_MAX_FOLDER_NAME)
        return SATCHEL_E_NOTFOUND;
    if ((rc = store_rtxn(s, t, &txn)) < 0)
        return rc;
    rc = store_fname_find(s, txn, name, &id);
    if (rc == 0)
        rc = get_by_id(s, txn, id, out);
    /* An index entry whose record is gone or names another folder. */
    if (rc == 0 && strcmp(out->name, name) != 0)
        rc = SATCHEL_E_STORE;
    store_rtxn_end(t, txn);
    return rc;
}

int satchel_store_folder_flags(satchel_store *s, satchel_store_txn *t,
                               const char *name, uint8_t *flags)
{
    MDB_txn *txn;
    uint32_t id = 0;
    int rc;
    size_t n = strlen(name);
    if (n == 0 || n > SATCHEL_OPT_MAX_FOLDER_NAME)
        return SATCHEL_E_NOTFOUND;
    if ((rc = store_rtxn(s, t, &txn)) < 0)
        return rc;
    /* A found name leaves its record, checked against the name, in the
     * store's scratch folder: no caller needs a folder of its own. */
    rc = store_fname_find(s, txn, name, &id);
    if (rc == 0)
        *flags = s->fscratch.flags;
    store_rtxn_end(t, txn);
    return rc;
}

int satchel_store_folder_id(satchel_store *s, satchel_store_txn *t, const char *name,
                            uint32_t *id)
{
    MDB_txn *txn;
    int rc;
    if ((rc = store_rtxn(s, t, &txn)) < 0)
        return rc;
    rc = store_fname_find(s, txn, name, id);
    store_rtxn_end(t, txn);
    return rc;
}

int satchel_store_folder_get_id(satchel_store *s, satchel_store_txn *t,
                                uint32_t id, satchel_folder *out)
{
    MDB_txn *txn;
    int rc;
    if (id == 0)
        return SATCHEL_E_NOTFOUND;
    if ((rc = store_rtxn(s, t, &txn)) < 0)
        return rc;
    rc = get_by_id(s, txn, id, out);
    store_rtxn_end(t, txn);
    return rc;
}

int satchel_store_folder_put(satchel_store_txn *t, satchel_folder *f)
{
    satchel_store *s = t->s;
    uint8_t b[FOLDER_REC_LEN + SATCHEL_OPT_MAX_FOLDER_NAME + REC_CRC], kb[4];
    MDB_val k = {4, kb}, v;
    uint32_t other = 0;
    int rc, renamed = 1;
    size_t n = strlen(f->name);
    if (n == 0 || n > SATCHEL_OPT_MAX_FOLDER_NAME)
        return SATCHEL_E_INVAL;
    rc = store_fname_find(s, t->txn, f->name, &other);
    if (rc < 0 && rc != SATCHEL_E_NOTFOUND)
        return rc;
    if (rc == 0 && other != f->id)
        return SATCHEL_E_INVAL; /* another folder has that name */
    if (f->id == 0) {
        uint32_t next;
        if ((rc = store_meta_get32(t->txn, s->meta, "next_fid", &next)) < 0)
            return rc;
        if (next == 0 || next == UINT32_MAX)
            return SATCHEL_E_STORE;
        f->id = next;
        if ((rc = store_meta_put32(t->txn, s->meta, "next_fid", next + 1)) < 0)
            return rc;
    } else if (other == f->id) {
        renamed = 0;
    } else if (get_by_id(s, t->txn, f->id, &s->fscratch) == 0 &&
               (rc = fname_del(s, t->txn, s->fscratch.name, f->id)) < 0) {
        return rc; /* the record's old name leaves the index */
    }
    be32(kb, f->id);
    v.mv_size = folder_encode(f, b);
    v.mv_data = b;
    if ((rc = store_err(mdb_put(t->txn, s->folders, &k, &v, 0))) < 0)
        return rc;
    return renamed ? fname_put(s, t->txn, f->name, f->id) : 0;
}

int satchel_store_folder_clear(satchel_store_txn *t, satchel_folder *f)
{
    uint32_t n;
    int rc = store_del_range(t, f, 0, UINT32_MAX, &n, 0);
    if (rc == 0) {
        f->count = 0;
        f->unseen = 0;
    }
    return rc;
}

int satchel_store_folder_delete(satchel_store_txn *t, const char *name)
{
    /* fscratch: the lookup below is done with it before it is filled. */
    satchel_folder *f = &t->s->fscratch;
    uint8_t kb[4];
    MDB_val k = {4, kb};
    int rc = satchel_store_folder_get(t->s, t, name, f);
    if (rc < 0)
        return rc;
    if ((rc = satchel_store_folder_clear(t, f)) < 0 ||
        (rc = fname_del(t->s, t->txn, f->name, f->id)) < 0)
        return rc;
    be32(kb, f->id);
    return store_err(mdb_del(t->txn, t->s->folders, &k, NULL));
}

/* The index entry k leads to folder f, and f's name has that key: an entry
 * damaged into pointing at another folder is passed over, so a listing
 * never meets one folder twice (and never loops). */
static int entry_is(const MDB_val *k, const satchel_folder *f)
{
    uint8_t kb[FNAME_KEY_MAX];
    size_t part, n = store_fname_key(f->name, strlen(f->name), f->id, kb, &part);
    return n == k->mv_size && memcmp(kb, k->mv_data, n) == 0;
}

/* Position cur on the first index entry after name's (or where it was,
 * when it is gone). */
static int seek_after(satchel_store *s, MDB_txn *txn, MDB_cursor *cur,
                      const char *after, MDB_val *k, MDB_val *v)
{
    uint8_t kb[FNAME_KEY_MAX];
    size_t n = strlen(after), part;
    int rc;
    k->mv_size = store_fname_key(after, n, 0, kb, &part);
    k->mv_size = part;
    k->mv_data = kb;
    rc = store_cget(cur, k, v, MDB_SET_RANGE);
    if (part <= FNAME_KEY_DIRECT) {
        if (rc == 0 && k->mv_size == part && memcmp(k->mv_data, kb, part) == 0)
            rc = store_cget(cur, k, v, MDB_NEXT);
        return rc;
    }
    /* A long name: step past its own entry among those sharing the part
     * (a hash collision); when it is gone, go on from the first of them. */
    while (rc == 0 && k->mv_size == FNAME_KEY_MAX && memcmp(k->mv_data, kb, part) == 0) {
        if (v->mv_size == 4 && get_by_id(s, txn, rd_be32(v->mv_data), &s->fscratch) == 0 &&
            strcmp(s->fscratch.name, after) == 0)
            return store_cget(cur, k, v, MDB_NEXT);
        rc = store_cstep(cur, k, v, MDB_NEXT, &s->damaged);
    }
    k->mv_size = part;
    k->mv_data = kb;
    return store_cget(cur, k, v, MDB_SET_RANGE);
}

int satchel_store_folder_next(satchel_store *s, satchel_store_txn *t,
                              const char *after, satchel_folder *out)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_val k, v;
    int rc;
    if ((rc = store_rtxn(s, t, &txn)) < 0)
        return rc;
    rc = mdb_cursor_open(txn, s->fnames, &cur);
    if (rc) {
        store_rtxn_end(t, txn);
        return store_err(rc);
    }
    if (!after || !*after)
        rc = store_cget(cur, &k, &v, MDB_FIRST);
    else
        rc = seek_after(s, txn, cur, after, &k, &v);
    /* A damaged record (or an index entry without its record) is counted
     * and skipped: one bad folder must not hide the others. */
    while (rc == 0 && (v.mv_size != 4 || get_by_id(s, txn, rd_be32(v.mv_data), out) < 0 ||
                       !entry_is(&k, out))) {
        s->damaged++;
        rc = store_cstep(cur, &k, &v, MDB_NEXT, &s->damaged);
    }
    rc = store_err(rc);
    mdb_cursor_close(cur);
    store_rtxn_end(t, txn);
    return rc;
}

int satchel_store_folder_next_id(satchel_store *s, satchel_store_txn *t, uint32_t after,
                                 satchel_folder *out)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    uint8_t kb[4];
    MDB_val k = {4, kb}, v;
    uint32_t id;
    int rc;
    if (after == UINT32_MAX)
        return SATCHEL_E_NOTFOUND;
    if ((rc = store_rtxn(s, t, &txn)) < 0)
        return rc;
    if ((rc = mdb_cursor_open(txn, s->folders, &cur)) != 0) {
        store_rtxn_end(t, txn);
        return store_err(rc);
    }
    be32(kb, after + 1);
    rc = store_cget(cur, &k, &v, MDB_SET_RANGE);
    /* Keys of another length are damaged version-1 records left under
     * their names (store check names them); a damaged record is counted
     * and skipped, as folder_next does.  So is a record its name does not
     * lead to (its index entry lost or damaged): the folder is stored
     * again under a new id when it is next listed, and the stray must not
     * stand for it (a sweep deletes by name). */
    while (rc == 0 && (k.mv_size != 4 || store_folder_decode(&k, &v, out) < 0 ||
                       store_fname_find(s, txn, out->name, &id) < 0 || id != out->id)) {
        if (k.mv_size == 4)
            s->damaged++;
        rc = store_cstep(cur, &k, &v, MDB_NEXT, &s->damaged);
    }
    rc = store_err(rc);
    mdb_cursor_close(cur);
    store_rtxn_end(t, txn);
    return rc;
}

int store_fnames_rebuild(satchel_store *s, MDB_txn *txn)
{
    MDB_cursor *cur;
    MDB_val k, v;
    uint64_t skipped = 0;
    int rc, wrc = 0;
    if ((rc = mdb_drop(txn, s->fnames, 0)) != 0 ||
        (rc = mdb_cursor_open(txn, s->folders, &cur)) != 0)
        return store_err(rc);
    rc = store_cget(cur, &k, &v, MDB_FIRST);
    while (rc == 0 && wrc == 0) {
        /* A damaged record stays out of the index; store check names it. */
        if (k.mv_size == 4 && store_folder_decode(&k, &v, &s->fscratch) == 0)
            wrc = fname_put(s, txn, s->fscratch.name, s->fscratch.id);
        rc = store_cstep(cur, &k, &v, MDB_NEXT, &skipped);
    }
    mdb_cursor_close(cur);
    if (wrc < 0)
        return wrc;
    return rc == MDB_NOTFOUND ? 0 : store_err(rc);
}

int store_migrate_v1(satchel_store *s, MDB_txn *txn)
{
    MDB_dbi tmp;
    MDB_cursor *cur;
    MDB_val k, v;
    uint8_t b[FOLDER_REC_LEN + SATCHEL_OPT_MAX_FOLDER_NAME + REC_CRC], kb[4];
    uint64_t skipped = 0;
    int rc;
    /* Records go through a temporary tree (puts into the tree being walked
     * would move the cursor), all in the caller's transaction: a crash
     * leaves the version 1 store as it was. */
    if ((rc = mdb_dbi_open(txn, "migrate", MDB_CREATE, &tmp)) != 0 ||
        (rc = mdb_drop(txn, tmp, 0)) != 0 ||
        (rc = mdb_cursor_open(txn, s->folders, &cur)) != 0)
        return store_err(rc);
    rc = store_cget(cur, &k, &v, MDB_FIRST);
    while (rc == 0) {
        satchel_folder *f = &s->fscratch;
        MDB_val nk = k, nv = v;
        if (store_folder_decode(&k, &v, f) == 0) {
            be32(kb, f->id);
            nk.mv_size = 4;
            nk.mv_data = kb;
            nv.mv_size = folder_encode(f, b);
            nv.mv_data = b;
            if ((rc = mdb_put(txn, tmp, &nk, &nv, MDB_NOOVERWRITE)) != 0)
                break;
        } else if ((rc = mdb_put(txn, tmp, &nk, &nv, MDB_NOOVERWRITE)) != 0) {
            /* A damaged record stays, under its name: store check names it
             * and salvage leaves it behind, as before. */
            break;
        }
        rc = store_cstep(cur, &k, &v, MDB_NEXT, &skipped);
    }
    mdb_cursor_close(cur);
    if (rc == MDB_KEYEXIST)
        return SATCHEL_E_DAMAGED; /* two folders with one id */
    if (rc != MDB_NOTFOUND)
        return store_err(rc);
    if ((rc = mdb_drop(txn, s->folders, 0)) != 0 ||
        (rc = mdb_cursor_open(txn, tmp, &cur)) != 0)
        return store_err(rc);
    rc = store_cget(cur, &k, &v, MDB_FIRST);
    while (rc == 0) {
        MDB_val nk = k, nv = v;
        if ((rc = mdb_put(txn, s->folders, &nk, &nv, 0)) != 0)
            break;
        rc = store_cget(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    if (rc != MDB_NOTFOUND)
        return store_err(rc);
    if ((rc = mdb_drop(txn, tmp, 1)) != 0)
        return store_err(rc);
    return store_fnames_rebuild(s, txn);
}

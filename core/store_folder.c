/* Folders: records keyed by name, carrying the sync state and exact
 * message and unseen counts. */
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

static void folder_encode(const satchel_folder *f, uint8_t *b)
{
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
    store_seal(b, FOLDER_REC_LEN, f->name, strlen(f->name));
}

int store_folder_decode(const MDB_val *k, const MDB_val *v, satchel_folder *f)
{
    const uint8_t *b = v->mv_data;
    size_t len = v->mv_size;
    memset(f, 0, sizeof *f);
    if (len == FOLDER_REC_LEN + REC_CRC && b[0] >= 2 && b[0] <= FOLDER_REC_VERSION &&
        store_unseal(b, &len, k->mv_data, b[0] == FOLDER_REC_VERSION ? k->mv_size : 0) < 0)
        return SATCHEL_E_STORE;
    if (len != FOLDER_REC_LEN || b[0] < 1 || b[0] > FOLDER_REC_VERSION ||
        (b[0] >= 2) != (v->mv_size == len + REC_CRC) ||
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

/* ---- folders ---- */

int satchel_store_folder_get(satchel_store *s, satchel_store_txn *t,
                             const char *name, satchel_folder *out)
{
    MDB_txn *txn;
    MDB_val k = {strlen(name), (void *)name}, v;
    int rc;
    if (k.mv_size == 0 || k.mv_size > SATCHEL_OPT_MAX_FOLDER_NAME)
        return SATCHEL_E_NOTFOUND;
    if ((rc = store_rtxn(s, t, &txn)) < 0)
        return rc;
    rc = store_err(store_get(txn, s->folders, &k, &v));
    if (rc == 0)
        rc = store_folder_decode(&k, &v, out);
    store_rtxn_end(t, txn);
    return rc;
}

int satchel_store_folder_put(satchel_store_txn *t, satchel_folder *f)
{
    satchel_store *s = t->s;
    uint8_t b[FOLDER_REC_LEN + REC_CRC];
    MDB_val k, v = {sizeof b, b};
    int rc;
    size_t n = strlen(f->name);
    if (n == 0 || n > SATCHEL_OPT_MAX_FOLDER_NAME)
        return SATCHEL_E_INVAL;
    if (f->id == 0) {
        uint32_t next;
        if ((rc = store_meta_get32(t->txn, s->meta, "next_fid", &next)) < 0)
            return rc;
        if (next == 0 || next == UINT32_MAX)
            return SATCHEL_E_STORE;
        f->id = next;
        if ((rc = store_meta_put32(t->txn, s->meta, "next_fid", next + 1)) < 0)
            return rc;
    }
    folder_encode(f, b);
    k.mv_size = n;
    k.mv_data = f->name;
    return store_err(mdb_put(t->txn, s->folders, &k, &v, 0));
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
    satchel_folder f;
    MDB_val k = {strlen(name), (void *)name};
    int rc = satchel_store_folder_get(t->s, t, name, &f);
    if (rc < 0)
        return rc;
    if ((rc = satchel_store_folder_clear(t, &f)) < 0)
        return rc;
    return store_err(mdb_del(t->txn, t->s->folders, &k, NULL));
}

int satchel_store_folder_next(satchel_store *s, satchel_store_txn *t,
                              const char *after, satchel_folder *out)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_val k, v;
    int rc;
    size_t alen = after ? strlen(after) : 0;
    if ((rc = store_rtxn(s, t, &txn)) < 0)
        return rc;
    rc = mdb_cursor_open(txn, s->folders, &cur);
    if (rc) {
        store_rtxn_end(t, txn);
        return store_err(rc);
    }
    if (alen == 0) {
        rc = store_cget(cur, &k, &v, MDB_FIRST);
    } else {
        k.mv_size = alen;
        k.mv_data = (void *)after;
        rc = store_cget(cur, &k, &v, MDB_SET_RANGE);
        if (rc == 0 && k.mv_size == alen && memcmp(k.mv_data, after, alen) == 0)
            rc = store_cget(cur, &k, &v, MDB_NEXT);
    }
    /* A damaged record is counted and skipped: one bad folder must not
     * hide the others. */
    while (rc == 0 && store_folder_decode(&k, &v, out) < 0) {
        s->damaged++;
        rc = store_cstep(cur, &k, &v, MDB_NEXT, &s->damaged);
    }
    rc = store_err(rc);
    mdb_cursor_close(cur);
    store_rtxn_end(t, txn);
    return rc;
}


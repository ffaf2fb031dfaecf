#include "satchel/ops.h"
#include "satchel/ascii.h"
#include "store_internal.h"

#include <string.h>

/* Keyword sets are space-separated words in a bounded string. */
static int kw_has(const char *set, const char *w)
{
    size_t n = strlen(w);
    const char *p = set;
    while (*p) {
        size_t k = strcspn(p, " ");
        if (k == n && strncmp(p, w, n) == 0)
            return 1;
        p += k;
        while (*p == ' ')
            p++;
    }
    return 0;
}

static int kw_add(char *set, size_t cap, const char *w)
{
    size_t n = strlen(set), k = strlen(w);
    if (!k || kw_has(set, w))
        return 0;
    if (n + k + 2 > cap)
        return SATCHEL_E_RANGE;
    if (n)
        set[n++] = ' ';
    memcpy(set + n, w, k + 1);
    return 0;
}

static void kw_del(char *set, const char *w)
{
    size_t n = strlen(w);
    char *p = set;
    while (*p) {
        size_t k = strcspn(p, " ");
        if (k == n && strncmp(p, w, n) == 0) {
            char *q = p + k;
            while (*q == ' ')
                q++;
            memmove(p, q, strlen(q) + 1);
            if (p > set && *p == '\0' && p[-1] == ' ')
                p[-1] = '\0';
            continue;
        }
        p += k;
        while (*p == ' ')
            p++;
    }
}

/* Apply every word of src to set (add or delete). */
static int kw_apply(char *set, size_t cap, const char *src, int add)
{
    char w[64];
    while (*src) {
        size_t k = strcspn(src, " ");
        if (k && k < sizeof w) {
            memcpy(w, src, k);
            w[k] = '\0';
            if (add) {
                int rc = kw_add(set, cap, w);
                if (rc < 0)
                    return rc;
            } else {
                kw_del(set, w);
            }
        }
        src += k;
        while (*src == ' ')
            src++;
    }
    return 0;
}

int satchel_ops_parse_flag(const char *arg, uint32_t *add, uint32_t *del,
                           char *kwa, size_t kwa_cap, char *kwd, size_t kwd_cap)
{
    const char *name = arg + 1;
    size_t i, n;
    if ((arg[0] != '+' && arg[0] != '-') || !*name)
        return SATCHEL_E_INVAL;
    {
        uint32_t bit = satchel_flag_bit(name, strlen(name));
        if (bit) {
            if (arg[0] == '+') {
                *add |= bit;
                *del &= ~bit;
            } else {
                *del |= bit;
                *add &= ~bit;
            }
            return 0;
        }
    }
    /* A keyword: an atom without specials; \Recent and other system names
     * cannot be set by clients. */
    n = strlen(name);
    if (name[0] == '\\' || n >= 63)
        return SATCHEL_E_INVAL;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c <= 0x20 || c >= 0x7f || strchr("(){%*\"\\]", c))
            return SATCHEL_E_INVAL;
    }
    if (arg[0] == '+') {
        kw_del(kwd, name);
        return kw_add(kwa, kwa_cap, name);
    }
    kw_del(kwa, name);
    return kw_add(kwd, kwd_cap, name);
}

static int finish(satchel_store_txn *t, int rc)
{
    if (rc < 0) {
        satchel_store_abort(t);
        return rc;
    }
    return satchel_store_commit(t);
}

static int flag_once(satchel_store *s, const char *folder, uint32_t uid,
                     uint32_t add, uint32_t del, const char *kwa, const char *kwd)
{
    satchel_store_txn *t;
    satchel_folder f;
    satchel_op *op = &s->ops_op;
    satchel_msg *m = &s->ops_msg;
    uint64_t latest = 0;
    uint32_t newflags;
    char kw[sizeof m->keywords];
    int rc, merged = 0;

    if ((rc = satchel_store_begin(s, &t)) < 0)
        return rc;
    if ((rc = satchel_store_folder_get(s, t, folder, &f)) < 0 ||
        (rc = satchel_store_msg_get(s, t, f.id, uid, m)) < 0)
        return finish(t, rc);
    newflags = (m->flags | add) & ~del;
    memcpy(kw, m->keywords, sizeof kw);
    if ((rc = kw_apply(kw, sizeof kw, kwa, 1)) < 0 ||
        (rc = kw_apply(kw, sizeof kw, kwd, 0)) < 0)
        return finish(t, rc);
    if (satchel_store_op_latest(s, t, f.id, uid, &latest) == 0 &&
        satchel_store_op_get(s, t, latest, op) == 0 && op->type == SATCHEL_OP_FLAG &&
        op->state == SATCHEL_OP_PENDING && !op->inflight && op->uid == uid &&
        strcmp(op->folder, folder) == 0) {
        merged = 1; /* fold into the pending change, against the same base */
    } else {
        memset(op, 0, sizeof *op);
        op->type = SATCHEL_OP_FLAG;
        op->uid = uid;
        op->on_placeholder = (m->mflags & SATCHEL_MSG_F_PENDING) != 0;
        op->uidvalidity = f.uidvalidity;
        op->base = m->flags;
        memcpy(op->folder, folder, strlen(folder) + 1);
    }
    /* Keywords: a word added then removed (or the reverse) cancels; one
     * already in the wanted state adds nothing. */
    {
        char w[64];
        const char *p;
        int adding;
        for (adding = 1; adding >= 0; adding--) {
            for (p = adding ? kwa : kwd; *p;) {
                size_t k = strcspn(p, " ");
                if (k && k < sizeof w) {
                    memcpy(w, p, k);
                    w[k] = '\0';
                    if (kw_has(adding ? op->kw_del : op->kw_add, w))
                        kw_del(adding ? op->kw_del : op->kw_add, w);
                    else if (kw_has(m->keywords, w) != adding &&
                             (rc = kw_add(adding ? op->kw_add : op->kw_del,
                                          sizeof op->kw_add, w)) < 0)
                        return finish(t, rc);
                }
                p += k;
                while (*p == ' ')
                    p++;
            }
        }
    }
    op->add = newflags & ~op->base;
    op->del = op->base & ~newflags;
    rc = satchel_store_msg_set_flags(t, &f, uid, newflags, kw, m->modseq);
    if (rc < 0)
        return finish(t, rc);
    if ((rc = satchel_store_folder_put(t, &f)) < 0)
        return finish(t, rc);
    if (!op->add && !op->del && !op->kw_add[0] && !op->kw_del[0]) {
        /* Cancelled out: nothing left to tell the server. */
        if (merged) {
            if ((rc = satchel_store_op_del(t, op->id)) < 0 ||
                (rc = satchel_store_op_index(t, f.id, uid, 0)) < 0)
                return finish(t, rc);
        }
        return finish(t, 0);
    }
    if (merged)
        rc = satchel_store_op_put(t, op);
    else if ((rc = satchel_store_op_add(t, op)) == 0)
        rc = satchel_store_op_index(t, f.id, uid, op->id);
    return finish(t, rc);
}

/* Move the record of (src, uid) to (dst, new_uid) in the store. */
static int relocate(satchel_store_txn *t, satchel_folder *src, uint32_t uid,
                    satchel_folder *dst, uint32_t new_uid, satchel_msg *m, int pending)
{
    int rc;
    uint32_t n;
    m->uid = new_uid;
    if (pending)
        m->mflags |= SATCHEL_MSG_F_PENDING;
    else
        m->mflags &= ~(uint32_t)SATCHEL_MSG_F_PENDING;
    if ((rc = satchel_store_msg_put(t, dst, m, NULL)) < 0)
        return rc;
    if (src->id == dst->id) {
        if (uid != new_uid && (rc = satchel_store_msg_del(t, src, uid)) < 0)
            return rc;
        return satchel_store_folder_put(t, src);
    }
    if ((rc = satchel_store_msg_del(t, src, uid)) < 0)
        return rc;
    (void)n;
    if ((rc = satchel_store_folder_put(t, src)) < 0)
        return rc;
    return satchel_store_folder_put(t, dst);
}

/* A placeholder UID free in folder d (server UIDs may reach that range). */
static int free_placeholder(satchel_store *s, satchel_store_txn *t,
                            const satchel_folder *d, uint32_t *p)
{
    int rc, tries;
    for (tries = 0; tries < 64; tries++) {
        uint32_t at, above;
        if ((rc = satchel_store_placeholder(t, p)) < 0)
            return rc;
        /* Free when no stored UID equals it: the counts from it and from
         * the next one agree. */
        if ((rc = satchel_store_msg_count_from(s, t, d->id, *p, &at)) < 0 ||
            (rc = satchel_store_msg_count_from(s, t, d->id, *p + 1, &above)) < 0)
            return rc;
        if (at == above)
            return 0;
    }
    return SATCHEL_E_STORE_FULL;
}

/* Pending changes queued against a placeholder follow the message when an
 * offline move is retargeted (they would otherwise name a UID that no
 * longer exists anywhere).  drop: the message is gone; forget them. */
static int follow(satchel_store *s, satchel_store_txn *t, const char *from,
                  uint32_t from_uid, const char *to, uint32_t to_uid, uint64_t skip,
                  int drop, uint8_t to_placeholder)
{
    /* The store's one op scratch: every caller reloads its own op from the
     * queue after this (or no longer needs it), so a second 8 KB copy for
     * the walk would only be held, never used, at the same time. */
    satchel_op *o = &s->ops_op;
    uint64_t at = 0;
    int rc;
    while (satchel_store_op_next(s, t, at, o) == 0) {
        at = o->id;
        if (o->id == skip || o->state != SATCHEL_OP_PENDING || o->uid != from_uid ||
            !o->on_placeholder || strcmp(o->folder, from) != 0)
            continue;
        if (drop) {
            rc = satchel_store_op_del(t, o->id);
        } else {
            memcpy(o->folder, to, strlen(to) + 1);
            o->uid = to_uid;
            o->on_placeholder = to_placeholder;
            rc = satchel_store_op_put(t, o);
        }
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int move_once(satchel_store *s, const char *folder, uint32_t uid,
                     const char *dest, uint32_t *new_uid)
{
    satchel_store_txn *t;
    satchel_folder f, d;
    satchel_op *op = &s->ops_op;
    satchel_msg *m = &s->ops_msg;
    uint64_t latest = 0;
    uint32_t p;
    int rc;

    if (strcmp(folder, dest) == 0)
        return SATCHEL_E_INVAL;
    if ((rc = satchel_store_begin(s, &t)) < 0)
        return rc;
    if ((rc = satchel_store_folder_get(s, t, folder, &f)) < 0 ||
        (rc = satchel_store_folder_get(s, t, dest, &d)) < 0 ||
        (rc = satchel_store_msg_get(s, t, f.id, uid, m)) < 0)
        return finish(t, rc);
    if (d.flags & SATCHEL_FOLDER_NOSELECT)
        return finish(t, SATCHEL_E_INVAL);
    if ((m->mflags & SATCHEL_MSG_F_PENDING) &&
        satchel_store_op_latest(s, t, f.id, uid, &latest) == 0 &&
        satchel_store_op_get(s, t, latest, op) == 0 && op->type == SATCHEL_OP_MOVE &&
        op->state == SATCHEL_OP_PENDING && !op->inflight && op->phase == 0 &&
        op->dest_uid == uid) {
        /* Moved again before the first move reached the server. */
        if ((rc = satchel_store_op_index(t, f.id, uid, 0)) < 0)
            return finish(t, rc);
        if (strcmp(op->folder, dest) == 0) {
            /* Back where it came from: the move cancels out.  Where it came
             * from may itself be a placeholder of an earlier offline move
             * (Trash, moved on, moved back): it stays one, or the changes
             * queued for it would name a UID the server never gave. */
            uint64_t mid = op->id;
            uint32_t orig = op->uid;
            uint8_t ph = op->on_placeholder;
            if ((rc = relocate(t, &f, uid, &d, orig, m, ph)) < 0 ||
                (rc = satchel_store_op_del(t, mid)) < 0 ||
                (rc = follow(s, t, folder, uid, dest, orig, mid, 0, ph)) < 0)
                return finish(t, rc);
            *new_uid = orig;
            return finish(t, 0);
        }
        if ((rc = free_placeholder(s, t, &d, &p)) < 0 ||
            (rc = relocate(t, &f, uid, &d, p, m, 1)) < 0 ||
            (rc = follow(s, t, folder, uid, dest, p, op->id, 0, 1)) < 0)
            return finish(t, rc);
        /* follow() walked the queue in the same scratch: reload the move. */
        if ((rc = satchel_store_op_get(s, t, latest, op)) < 0)
            return finish(t, rc);
        memcpy(op->dest, dest, strlen(dest) + 1);
        op->dest_uid = p;
        if ((rc = satchel_store_op_put(t, op)) < 0 ||
            (rc = satchel_store_op_index(t, d.id, p, op->id)) < 0)
            return finish(t, rc);
        *new_uid = p;
        return finish(t, 0);
    }
    memset(op, 0, sizeof *op);
    op->type = SATCHEL_OP_MOVE;
    op->uid = uid;
    op->on_placeholder = (m->mflags & SATCHEL_MSG_F_PENDING) != 0;
    op->uidvalidity = f.uidvalidity;
    memcpy(op->folder, folder, strlen(folder) + 1);
    memcpy(op->dest, dest, strlen(dest) + 1);
    memcpy(op->message_id, m->message_id, sizeof op->message_id);
    if ((rc = free_placeholder(s, t, &d, &p)) < 0)
        return finish(t, rc);
    op->dest_uid = p;
    {
        uint32_t n;
        /* The cache follows neither: bodies are dropped with the old key. */
        if ((rc = satchel_store_body_evict(t, f.id, uid, NULL, &n)) < 0)
            return finish(t, rc);
    }
    if ((rc = relocate(t, &f, uid, &d, p, m, 1)) < 0 ||
        (rc = satchel_store_op_add(t, op)) < 0 ||
        (rc = satchel_store_op_index(t, d.id, p, op->id)) < 0)
        return finish(t, rc);
    *new_uid = p;
    return finish(t, 0);
}

/* A full store: queued changes come before cached bodies, so make room in
 * the cache and try once more. */
int satchel_ops_flag(satchel_store *s, const char *folder, uint32_t uid,
                     uint32_t add, uint32_t del, const char *kwa, const char *kwd)
{
    int rc = flag_once(s, folder, uid, add, del, kwa, kwd);
    if (rc == SATCHEL_E_STORE_FULL && satchel_store_make_room(s) == 0)
        rc = flag_once(s, folder, uid, add, del, kwa, kwd);
    return rc;
}

int satchel_ops_move(satchel_store *s, const char *folder, uint32_t uid,
                     const char *dest, uint32_t *new_uid)
{
    int rc = move_once(s, folder, uid, dest, new_uid);
    if (rc == SATCHEL_E_STORE_FULL && satchel_store_make_room(s) == 0)
        rc = move_once(s, folder, uid, dest, new_uid);
    return rc;
}

static int find_trash(satchel_store *s, satchel_store_txn *t, satchel_folder *out)
{
    char after[SATCHEL_OPT_MAX_FOLDER_NAME + 1] = "";
    while (satchel_store_folder_next(s, t, after, out) == 0) {
        if (out->role == SATCHEL_ROLE_TRASH && !(out->flags & SATCHEL_FOLDER_NOSELECT))
            return 0;
        memcpy(after, out->name, sizeof after);
    }
    return SATCHEL_E_NOTFOUND;
}

int satchel_ops_delete(satchel_store *s, const char *folder, uint32_t uid,
                       int *trashed, uint32_t *new_uid)
{
    satchel_store_txn *t;
    satchel_folder f, trash;
    satchel_op *op = &s->ops_op;
    satchel_msg *m = &s->ops_msg;
    uint64_t latest = 0;
    int rc, have_trash;

    *trashed = 0;
    *new_uid = 0;
    if ((rc = satchel_store_begin(s, &t)) < 0)
        return rc;
    if ((rc = satchel_store_folder_get(s, t, folder, &f)) < 0 ||
        (rc = satchel_store_msg_get(s, t, f.id, uid, m)) < 0)
        return finish(t, rc);
    have_trash = find_trash(s, t, &trash) == 0;
    if (have_trash && trash.id != f.id) {
        satchel_store_abort(t);
        *trashed = 1;
        return satchel_ops_move(s, folder, uid, trash.name, new_uid);
    }
    memset(op, 0, sizeof *op);
    if ((m->mflags & SATCHEL_MSG_F_PENDING) &&
        satchel_store_op_latest(s, t, f.id, uid, &latest) == 0 &&
        satchel_store_op_get(s, t, latest, op) == 0 && op->type == SATCHEL_OP_MOVE &&
        op->state == SATCHEL_OP_PENDING && !op->inflight && op->phase == 0 &&
        op->dest_uid == uid) {
        /* Moved here offline and now deleted: expunge at the origin, and
         * changes queued for it here have nothing left to change. */
        if ((rc = follow(s, t, folder, uid, "", 0, op->id, 1, 0)) < 0 ||
            (rc = satchel_store_op_get(s, t, latest, op)) < 0)
            return finish(t, rc);
        op->type = SATCHEL_OP_EXPUNGE;
        op->dest[0] = '\0';
        op->dest_uid = 0;
        if ((rc = satchel_store_op_put(t, op)) < 0 ||
            (rc = satchel_store_op_index(t, f.id, uid, 0)) < 0)
            return finish(t, rc);
    } else {
        op->type = SATCHEL_OP_EXPUNGE;
        op->uid = uid;
        op->on_placeholder = (m->mflags & SATCHEL_MSG_F_PENDING) != 0;
        op->uidvalidity = f.uidvalidity;
        memcpy(op->folder, folder, strlen(folder) + 1);
        memcpy(op->message_id, m->message_id, sizeof op->message_id);
        if ((rc = satchel_store_op_add(t, op)) < 0 ||
            (rc = satchel_store_op_index(t, f.id, uid, 0)) < 0)
            return finish(t, rc);
    }
    if ((rc = satchel_store_msg_del(t, &f, uid)) < 0 ||
        (rc = satchel_store_folder_put(t, &f)) < 0)
        return finish(t, rc);
    return finish(t, 0);
}

static int mkdir_once(satchel_store *s, const char *name)
{
    satchel_store_txn *t;
    satchel_folder f;
    satchel_op *op = &s->ops_op;
    size_t n = strlen(name), i;
    int rc;
    if (n == 0 || n > SATCHEL_OPT_MAX_FOLDER_NAME)
        return SATCHEL_E_INVAL;
    for (i = 0; i < n; i++)
        if ((unsigned char)name[i] < 0x20 || name[i] == '*' || name[i] == '%')
            return SATCHEL_E_INVAL;
    if ((rc = satchel_store_begin(s, &t)) < 0)
        return rc;
    rc = satchel_store_folder_get(s, t, name, &f);
    if (rc == 0)
        return finish(t, SATCHEL_E_BUSY); /* exists */
    if (rc != SATCHEL_E_NOTFOUND)
        return finish(t, rc);
    memset(&f, 0, sizeof f);
    memcpy(f.name, name, n + 1);
    f.list_gen = UINT32_MAX; /* survives LIST sweeps until created */
    memset(op, 0, sizeof *op);
    op->type = SATCHEL_OP_MKDIR;
    memcpy(op->dest, name, n + 1);
    if ((rc = satchel_store_folder_put(t, &f)) < 0 ||
        (rc = satchel_store_op_add(t, op)) < 0)
        return finish(t, rc);
    return finish(t, 0);
}

int satchel_ops_mkdir(satchel_store *s, const char *name)
{
    int rc = mkdir_once(s, name);
    if (rc == SATCHEL_E_STORE_FULL && satchel_store_make_room(s) == 0)
        rc = mkdir_once(s, name);
    return rc;
}

/* A transaction *t with queued change id read into s->ops_op; on an error
 * there is no transaction left. */
static int begin_op(satchel_store *s, uint64_t id, satchel_store_txn **t)
{
    int rc;
    if ((rc = satchel_store_begin(s, t)) < 0)
        return rc;
    if ((rc = satchel_store_op_get(s, *t, id, &s->ops_op)) < 0)
        return finish(*t, rc);
    return 0;
}

int satchel_ops_retry(satchel_store *s, uint64_t id)
{
    satchel_store_txn *t;
    satchel_op *op = &s->ops_op;
    int rc;
    if ((rc = begin_op(s, id, &t)) < 0)
        return rc;
    if (op->state != SATCHEL_OP_FAILED)
        return finish(t, SATCHEL_E_INVAL);
    op->state = SATCHEL_OP_PENDING;
    op->reason[0] = '\0';
    op->phase = 0;
    op->inflight = 0;
    return finish(t, satchel_store_op_put(t, op));
}

int satchel_ops_drop(satchel_store *s, uint64_t id)
{
    satchel_store_txn *t;
    int rc;
    if ((rc = begin_op(s, id, &t)) < 0)
        return rc;
    return finish(t, satchel_store_op_del(t, id));
}

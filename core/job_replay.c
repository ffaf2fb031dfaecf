#include "client_internal.h"

#include <string.h>

/* ---------- offline queue replay ----------
 *
 * Queued changes replay before a sync, folder by folder in batches: one
 * SELECT (skipped when the folder is already selected), then one pipelined
 * flight with a UID FETCH that tells which messages still exist, the flag
 * changes grouped into as few UID STOREs as there are distinct changes,
 * and moves grouped by destination (UID MOVE, or UID COPY + STORE \Deleted
 * + UID EXPUNGE).  Each change leaves the queue in the transaction that
 * records the server's answer; one that fails goes to the failed list with
 * the reason, its local effect is rolled back to the server's truth, and
 * the rest replay regardless. */

void replay_reason(satchel_client *c, const char *what, const char *text, size_t len)
{
    size_t n = 0, i;
    while (*what && n + 1 < sizeof c->rp.reason)
        c->rp.reason[n++] = *what++;
    if (text && len && n + 3 < sizeof c->rp.reason) {
        c->rp.reason[n++] = ':';
        c->rp.reason[n++] = ' ';
        for (i = 0; i < len && n + 1 < sizeof c->rp.reason; i++)
            c->rp.reason[n++] = (unsigned char)text[i] < 0x20 ? ' ' : text[i];
    }
    c->rp.reason[n] = '\0';
}


/* Sorted UIDs of the batch ops matching a predicate. */
static uint32_t batch_uids(satchel_client *c, int type, int group, uint32_t *out)
{
    uint32_t i, j, n = 0;
    for (i = 0; i < c->rp.n; i++) {
        const struct rop *r = &c->rp.ops[i];
        if ((type && r->type != type) || (group >= 0 && r->group != group))
            continue;
        for (j = n; j > 0 && out[j - 1] > r->uid; j--)
            out[j] = out[j - 1];
        out[j] = r->uid;
        n++;
    }
    /* dedupe */
    for (i = 0, j = 0; i < n; i++)
        if (j == 0 || out[j - 1] != out[i])
            out[j++] = out[i];
    return j;
}

static int replay_send_more(satchel_client *c);
static int replay_send_delete(satchel_client *c, uint32_t group, const uint32_t *uids,
                              uint32_t n);
static int replay_send_expunge(satchel_client *c, uint32_t group);

static int start_sync_after_replay(satchel_client *c)
{
    c->rp.selected = 0;
    c->job = J_QUEUED;
    return cl_job_advance(c);
}

static int rollback(satchel_client *c, satchel_op *op, const struct rop *r)
{
    satchel_folder f, d;
    satchel_msg *m = &c->msg;
    uint32_t n;
    int rc = 0;
    /* Only an answered existence check (or a search of the destination)
     * proves a message gone; otherwise it is treated as still there. */
    int there = !r || r->exists || !c->rp.check_ok;
    if (satchel_store_folder_get(c->store, c->txn, op->folder, &f) < 0)
        memset(&f, 0, sizeof f);
    switch (op->type) {
    case SATCHEL_OP_FLAG:
        if (!f.id)
            return 0;
        if (r && r->exists)
            rc = satchel_store_msg_set_flags(c->txn, &f, op->uid, r->sflags, "", 0);
        else if (!r || c->rp.check_ok)
            rc = satchel_store_msg_del(c->txn, &f, op->uid);
        else
            return 0; /* the next sync reads its flags; never delete on a guess */
        if (rc >= 0)
            rc = satchel_store_folder_put(c->txn, &f);
        return rc < 0 && rc != SATCHEL_E_NOTFOUND ? rc : 0;
    case SATCHEL_OP_MOVE:
        if (satchel_store_folder_get(c->store, c->txn, op->dest, &d) == 0 &&
            satchel_store_msg_get(c->store, c->txn, d.id, op->dest_uid, m) == 0) {
            if ((rc = satchel_store_msg_del(c->txn, &d, op->dest_uid)) < 0 ||
                (rc = satchel_store_folder_put(c->txn, &d)) < 0)
                return rc;
            satchel_store_op_index(c->txn, d.id, op->dest_uid, 0);
            if (f.id && there) {
                m->uid = op->uid;
                m->mflags &= ~(uint32_t)SATCHEL_MSG_F_PENDING;
                if ((rc = satchel_store_msg_put(c->txn, &f, m, NULL)) < 0 ||
                    (rc = satchel_store_folder_put(c->txn, &f)) < 0)
                    return rc;
            }
            return 0;
        }
        /* No copy kept: have the next sync fetch the message again. */
        if (f.id && there && f.uidnext > op->uid) {
            f.uidnext = op->uid;
            return satchel_store_folder_put(c->txn, &f);
        }
        return 0;
    case SATCHEL_OP_EXPUNGE:
        if (f.id && there && f.uidnext > op->uid) {
            f.uidnext = op->uid;
            return satchel_store_folder_put(c->txn, &f);
        }
        return 0;
    case SATCHEL_OP_MKDIR:
        rc = satchel_store_folder_delete(c->txn, op->dest);
        (void)n;
        return rc == SATCHEL_E_NOTFOUND ? 0 : rc;
    }
    return 0;
}

int replay_op_fail(satchel_client *c, satchel_op *op, const struct rop *r, const char *reason)
{
    int rc;
    op->state = SATCHEL_OP_FAILED;
    op->attempts++;
    {
        size_t n = strlen(reason);
        if (n >= sizeof op->reason)
            n = sizeof op->reason - 1;
        memcpy(op->reason, reason, n);
        op->reason[n] = '\0';
    }
    if ((rc = rollback(c, op, r)) < 0)
        return rc;
    c->rp.failed++;
    return satchel_store_op_put(c->txn, op);
}

/* Ops that still name a placeholder of a completed move now name the real
 * UID (or, without COPYUID, cannot be placed and fail). */
static int retarget(satchel_client *c, const char *dest, uint32_t from, uint32_t to)
{
    uint64_t at = 0;
    satchel_op *op = c->op;
    int rc;
    while (satchel_store_op_next(c->store, c->txn, at, op) == 0) {
        at = op->id;
        if (op->state != SATCHEL_OP_PENDING || op->uid != from ||
            !op->on_placeholder || strcmp(op->folder, dest) != 0)
            continue;
        if (to) {
            op->uid = to;
            op->on_placeholder = 0;
            rc = satchel_store_op_put(c->txn, op);
        } else {
            rc = replay_op_fail(c, op, NULL, "moved message has no known UID yet "
                                      "(server lacks UIDPLUS); retry after a sync");
        }
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* A move the server has done: the placeholder in the destination becomes
 * the message under its new UID (to; 0 when unknown, and the next sync
 * fetches it), the entry leaves the queue, and changes queued for the
 * placeholder follow.  Inside the open transaction.  Returns 0 or the
 * error after cl_fail. */
static int finish_move(satchel_client *c, satchel_op *op, uint32_t to)
{
    /* retarget() reuses the scratch op: copy what it needs. */
    char dest[SATCHEL_OPT_MAX_FOLDER_NAME + 1];
    uint32_t from = op->dest_uid;
    uint64_t id = op->id;
    satchel_folder d;
    int rc;
    memcpy(dest, op->dest, sizeof dest);
    if (satchel_store_folder_get(c->store, c->txn, dest, &d) == 0) {
        satchel_msg *m = &c->msg;
        if (satchel_store_msg_get(c->store, c->txn, d.id, from, m) == 0) {
            satchel_store_msg_del(c->txn, &d, from);
            if (to) {
                m->uid = to;
                m->mflags &= ~(uint32_t)SATCHEL_MSG_F_PENDING;
                if ((rc = satchel_store_msg_put(c->txn, &d, m, NULL)) < 0)
                    return cl_fail(c, rc, "cannot store moved message");
            }
            satchel_store_folder_put(c->txn, &d);
        }
        satchel_store_op_index(c->txn, d.id, from, 0);
    }
    if ((rc = satchel_store_op_del(c->txn, id)) < 0 || (rc = retarget(c, dest, from, to)) < 0)
        return cl_fail(c, rc, "cannot update queue");
    c->rp.done++;
    return 0;
}

/* A server with neither MOVE nor UIDPLUS: the move was a COPY and a
 * \Deleted mark, and the original stays in the source until some client
 * expunges it (Satchel never sends a plain EXPUNGE: it would also remove
 * what others marked).  Every device must show what the server has, so the
 * original comes back into the source, marked \Deleted, as any other
 * device sees it; the expunge that removes it reaches every store alike. */
static int keep_deleted_original(satchel_client *c, const satchel_op *op)
{
    satchel_folder f, d;
    satchel_msg *m = &c->msg;
    int rc;
    if (satchel_store_folder_get(c->store, c->txn, op->folder, &f) < 0 ||
        satchel_store_folder_get(c->store, c->txn, op->dest, &d) < 0 ||
        satchel_store_msg_get(c->store, c->txn, d.id, op->dest_uid, m) < 0)
        return 0; /* nothing kept to put back: the sync brings it */
    m->uid = op->uid;
    m->flags |= SATCHEL_FLAG_DELETED;
    m->mflags &= ~(uint32_t)SATCHEL_MSG_F_PENDING;
    if ((rc = satchel_store_msg_put(c->txn, &f, m, NULL)) < 0)
        return rc;
    return satchel_store_folder_put(c->txn, &f);
}

static int replay_finish_batch(satchel_client *c)
{
    uint32_t i;
    int rc;
    if ((rc = cl_txn(c)) < 0)
        return rc;
    for (i = 0; i < c->rp.n; i++) {
        struct rop *r = &c->rp.ops[i];
        satchel_op *op = c->op;
        if (satchel_store_op_get(c->store, c->txn, r->id, op) < 0)
            continue;
        if (!r->failed && !c->rp.check_ok) {
            /* No answered existence check (the batch ended at its SELECT):
             * a UID not seen proves nothing.  The change stays queued for
             * the next batch, which checks. */
            continue;
        }
        if (r->failed) {
            rc = replay_op_fail(c, op, r, c->rp.reason[0] ? c->rp.reason : "server refused");
        } else if (!r->exists && op->type == SATCHEL_OP_FLAG) {
            rc = replay_op_fail(c, op, r, "message no longer on the server");
        } else if (!r->exists && op->type == SATCHEL_OP_MOVE && op->phase != 2 &&
                   r->phase0 == 0) {
            /* Never sent before and not in the source now: another client
             * expunged or moved it.  (op->phase says "sent" already: it was
             * marked before this batch went out.) */
            rc = replay_op_fail(c, op, r, "message no longer on the server");
        } else if (!r->exists && op->type == SATCHEL_OP_MOVE && op->phase != 2) {
            /* Sent before an interruption and gone from the source: done
             * then, or expunged by someone else.  Only the destination can
             * tell. */
            if (!op->message_id[0]) {
                rc = replay_op_fail(c, op, r, "message gone from the source after an interrupted "
                                       "move and has no Message-ID to find it by");
            } else {
                op->phase = 3;
                rc = satchel_store_op_put(c->txn, op);
            }
        } else {
            if (op->type == SATCHEL_OP_MOVE && r->exists && !r->expunged &&
                !(c->conn.caps & (SATCHEL_CAP_MOVE | SATCHEL_CAP_UIDPLUS)) &&
                (rc = keep_deleted_original(c, op)) < 0)
                return cl_fail(c, rc, "cannot keep the moved message's original");
            if (op->type == SATCHEL_OP_MOVE && !r->mapped && op->message_id[0] &&
                !(c->conn.caps & SATCHEL_CAP_UIDPLUS) && r->exists) {
                /* Moved, but the server named no new UID: find it by
                 * Message-ID before anything queued for it replays. */
                op->phase = 3;
                rc = satchel_store_op_put(c->txn, op);
                if (rc < 0)
                    return cl_fail(c, rc, "cannot update queue");
                continue;
            }
            if (op->type == SATCHEL_OP_MOVE) {
                /* Done, or (retry with the message gone) done earlier. */
                if ((rc = finish_move(c, op, r->mapped)) < 0)
                    return rc;
                continue;
            }
            {
                satchel_folder f;
                uint64_t latest;
                memset(&f, 0, sizeof f);
                if (satchel_store_folder_get(c->store, c->txn, op->folder, &f) == 0 &&
                    satchel_store_op_latest(c->store, c->txn, f.id, op->uid, &latest) == 0 &&
                    latest == op->id)
                    satchel_store_op_index(c->txn, f.id, op->uid, 0);
                if (op->type == SATCHEL_OP_EXPUNGE && r->exists && f.id && !r->expunged &&
                    !(c->conn.caps & SATCHEL_CAP_UIDPLUS) && f.uidnext > op->uid) {
                    /* Only marked \Deleted, not expunged (see
                     * keep_deleted_original): the original is the server's
                     * until someone expunges it.  No copy of it is kept here,
                     * so the next sync fetches it again, from its UID up. */
                    f.uidnext = op->uid;
                    if ((rc = satchel_store_folder_put(c->txn, &f)) < 0)
                        return cl_fail(c, rc, "cannot update folder");
                }
            }
            rc = satchel_store_op_del(c->txn, op->id);
            c->rp.done++;
        }
        if (rc < 0)
            return cl_fail(c, rc, "cannot update queue");
    }
    if ((rc = cl_commit(c, 0)) < 0)
        return rc;
    c->rp.n = 0;
    c->rp.reason[0] = '\0';
    return replay_next(c);
}

/* The flight after SELECT: existence check, then changes. */
static int replay_send(satchel_client *c)
{
    uint32_t i, ngroups = 0;
    int rc;
    satchel_op *op = c->op;

    /* Moves are marked as sent first, so a retry after a crash knows the
     * server may already have done them.  Every entry is marked in flight:
     * a change recorded meanwhile (by another process) makes a new entry
     * instead of folding into one the server's answer will delete. */
    if ((rc = cl_txn(c)) < 0)
        return rc;
    for (i = 0; i < c->rp.n; i++) {
        struct rop *r = &c->rp.ops[i];
        if (satchel_store_op_get(c->store, c->txn, r->id, op) < 0)
            continue;
        op->attempts++;
        op->inflight = 1;
        if (op->type == SATCHEL_OP_MOVE && op->phase == 0)
            op->phase = 1;
        if ((rc = satchel_store_op_put(c->txn, op)) < 0)
            return cl_fail(c, rc, "cannot update queue");
    }
    if ((rc = cl_commit(c, 0)) < 0)
        return rc;

    c->job = J_REPLAY_OPS;
    /* Group equal changes: flags by (add, del, keywords); moves by dest. */
    for (i = 0; i < c->rp.n; i++)
        c->rp.ops[i].group = 0xFF; /* not grouped yet */
    /* Pass 1: every op joins the group of the first equal earlier op. */
    for (i = 0; i < c->rp.n; i++) {
        struct rop *r = &c->rp.ops[i];
        satchel_op other;
        uint32_t j;
        if (satchel_store_op_get(c->store, NULL, r->id, op) < 0)
            continue;
        uint32_t floor = 0;
        r->group = (uint8_t)ngroups;
        /* Groups go out in order: joining one must not put this change
         * before an earlier change to the same message. */
        for (j = 0; j < i; j++)
            if (c->rp.ops[j].uid == r->uid && c->rp.ops[j].group != 0xFF &&
                c->rp.ops[j].group > floor)
                floor = c->rp.ops[j].group;
        for (j = 0; j < i; j++) {
            const struct rop *q = &c->rp.ops[j];
            if (q->type != r->type || q->group == 0xFF || q->group < floor ||
                satchel_store_op_get(c->store, NULL, q->id, &other) < 0)
                continue;
            if ((r->type == SATCHEL_OP_FLAG && other.add == op->add &&
                 other.del == op->del && strcmp(other.kw_add, op->kw_add) == 0 &&
                 strcmp(other.kw_del, op->kw_del) == 0) ||
                (r->type == SATCHEL_OP_MOVE && strcmp(other.dest, op->dest) == 0 &&
                 (other.phase == 2) == (op->phase == 2)) ||
                r->type == SATCHEL_OP_EXPUNGE) {
                r->group = q->group;
                break;
            }
        }
        if (r->group == ngroups)
            ngroups++;
    }
    c->rp.ngroups = ngroups;
    c->rp.next_group = 0;
    c->rp.sub = 0;
    c->rp.check_sent = 0;
    c->rp.check_ok = 0;
    memset(c->rp.gwant, 0, sizeof c->rp.gwant);
    return replay_send_more(c);
}

/* One group's command (or pair), from its first op.  rp.sub says which of
 * a flag group's two STOREs already went. */
static int send_group(satchel_client *c, uint32_t g)
{
    struct rop *r = NULL;
    satchel_op *op = c->op;
    uint32_t i, n;
    int rc, move = (c->conn.caps & SATCHEL_CAP_MOVE) != 0;
    for (i = 0; i < c->rp.n && !r; i++)
        if (c->rp.ops[i].group == g)
            r = &c->rp.ops[i];
    if (!r || satchel_store_op_get(c->store, NULL, r->id, op) < 0)
        return 0;
    n = batch_uids(c, r->type, r->group, c->rp.uids);
    if (r->type == SATCHEL_OP_FLAG) {
        if (c->rp.sub == 0) {
            if ((op->add || op->kw_add[0]) &&
                ((rc = cl_cmd_begin(c, K_RCMD)) < 0 || (rc = cl_out_str(c, "UID STORE ")) < 0 ||
                 (rc = cl_out_uidset(c, c->rp.uids, n)) < 0 ||
                 (rc = cl_out_str(c, " +FLAGS.SILENT ")) < 0 ||
                 (rc = cl_out_flags(c, op->add, op->kw_add)) < 0 || (rc = cl_cmd_end(c)) < 0))
                return rc;
            if (op->add || op->kw_add[0])
                cl_cmd_arg(c, r->group);
            c->rp.sub = 1;
        }
        if ((op->del || op->kw_del[0]) &&
            ((rc = cl_cmd_begin(c, K_RCMD)) < 0 || (rc = cl_out_str(c, "UID STORE ")) < 0 ||
             (rc = cl_out_uidset(c, c->rp.uids, n)) < 0 ||
             (rc = cl_out_str(c, " -FLAGS.SILENT ")) < 0 ||
             (rc = cl_out_flags(c, op->del, op->kw_del)) < 0 || (rc = cl_cmd_end(c)) < 0))
            return rc;
        if (op->del || op->kw_del[0])
            cl_cmd_arg(c, r->group);
        return 0;
    }
    if (r->type == SATCHEL_OP_MOVE && !(op->phase == 2 && !move)) {
        if ((rc = cl_cmd_begin(c, K_RCMD)) < 0 ||
            (rc = cl_out_str(c, move ? "UID MOVE " : "UID COPY ")) < 0 ||
            (rc = cl_out_uidset(c, c->rp.uids, n)) < 0 || (rc = cl_out_str(c, " ")) < 0 ||
            (rc = cl_out_mailbox(c, op->dest)) < 0 || (rc = cl_cmd_end(c)) < 0)
            return rc;
        /* A COPY's source side waits for its OK: deleting after a
         * refused copy would lose the message. */
        cl_cmd_arg(c, r->group | (move ? 0 : RCMD_COPY));
        return 0;
    }
    return replay_send_delete(c, r->group, c->rp.uids, n);
}

/* Everything the batch still has to send, in order: the existence check,
 * each group, then what the server's answers asked for (the source side of
 * a finished COPY, the UID EXPUNGE after a \Deleted STORE).  Whatever does
 * not fit in the output now goes when it drains (the job's pump). */
static int replay_send_more(satchel_client *c)
{
    struct replay *rp = &c->rp;
    uint32_t g, n;
    int rc;
    if (!rp->check_sent) {
        n = batch_uids(c, 0, -1, rp->uids);
        if ((rc = cl_cmd_begin(c, K_RCHECK)) < 0 || (rc = cl_out_str(c, "UID FETCH ")) < 0 ||
            (rc = cl_out_uidset(c, rp->uids, n)) < 0 || (rc = cl_out_str(c, " (UID FLAGS)")) < 0 ||
            (rc = cl_cmd_end(c)) < 0)
            goto out;
        rp->check_sent = 1;
    }
    while (rp->next_group < rp->ngroups) {
        if ((rc = send_group(c, rp->next_group)) < 0)
            goto out;
        rp->next_group++;
        rp->sub = 0;
    }
    for (g = 0; g < rp->ngroups; g++) {
        if (rp->gwant[g] & GW_DELETE) {
            n = batch_uids(c, SATCHEL_OP_MOVE, (int)g, rp->uids);
            if ((rc = replay_send_delete(c, g, rp->uids, n)) < 0)
                goto out;
            rp->gwant[g] &= (uint8_t)~GW_DELETE;
        }
        if (rp->gwant[g] & GW_EXPUNGE) {
            if ((rc = replay_send_expunge(c, g)) < 0)
                goto out;
            rp->gwant[g] &= (uint8_t)~GW_EXPUNGE;
        }
    }
    return 0;
out:
    return rc == SATCHEL_E_AGAIN ? 0 : cl_fail(c, rc, "command does not fit the command queue");
}

/* Nothing of the batch is left to send. */
static int replay_all_sent(const satchel_client *c)
{
    uint32_t g;
    if (!c->rp.check_sent || c->rp.next_group < c->rp.ngroups)
        return 0;
    for (g = 0; g < c->rp.ngroups; g++)
        if (c->rp.gwant[g])
            return 0;
    return 1;
}

/* STORE \Deleted (+ UID EXPUNGE with UIDPLUS) for a group: expunges, and the
 * source side of a completed COPY. */
static int replay_send_delete(satchel_client *c, uint32_t group, const uint32_t *uids,
                              uint32_t n)
{
    int rc;
    {
        /* Never a plain EXPUNGE of the whole folder; without UIDPLUS the
         * \Deleted mark waits for a later expunge. */
        if ((rc = cl_cmd_begin(c, K_RCMD)) < 0 || (rc = cl_out_str(c, "UID STORE ")) < 0 ||
            (rc = cl_out_uidset(c, uids, n)) < 0 ||
            (rc = cl_out_str(c, " +FLAGS.SILENT (\\Deleted)")) < 0 || (rc = cl_cmd_end(c)) < 0)
            return rc;
        /* UID EXPUNGE waits for this OK: pipelined right behind the STORE,
         * Dovecot 2.3 was seen to answer OK and expunge nothing (a message
         * moved in earlier in the same session). */
        cl_cmd_arg(c, group | ((c->conn.caps & SATCHEL_CAP_UIDPLUS) ? RCMD_DELSTORE : RCMD_MARK));
    }
    return 0;
}

static int replay_send_expunge(satchel_client *c, uint32_t group)
{
    uint32_t n = batch_uids(c, 0, (int)group, c->rp.uids);
    int rc;
    if ((rc = cl_cmd_begin(c, K_RCMD)) < 0 || (rc = cl_out_str(c, "UID EXPUNGE ")) < 0 ||
        (rc = cl_out_uidset(c, c->rp.uids, n)) < 0 || (rc = cl_cmd_end(c)) < 0)
        return rc;
    cl_cmd_arg(c, group);
    return 0;
}

static int replay_on_fetch(satchel_client *c, const satchel_imap_arg *list)
{
    const satchel_imap_arg *k;
    uint32_t uid = 0, flags = 0, i;
    char kw[128];
    int has_flags = 0;
    for (k = list->child; k && k->next; k = k->next->next) {
        if (satchel_imap_arg_is(k, "UID"))
            satchel_imap_arg_u32(k->next, &uid);
        else if (satchel_imap_arg_is(k, "FLAGS") && k->next->type == SATCHEL_ARG_LIST) {
            fetch_map_flags(k->next, &flags, kw, sizeof kw);
            has_flags = 1;
        }
    }
    if (uid && cl_count_inflight(c, K_RGONE)) {
        for (i = 0; i < c->rp.n; i++)
            if (c->rp.ops[i].uid == uid)
                c->rp.ops[i].still = 1;
        return 0;
    }
    if (!uid || !has_flags || !cl_count_inflight(c, K_RCHECK))
        return 0;
    for (i = 0; i < c->rp.n; i++) {
        if (c->rp.ops[i].uid == uid) {
            c->rp.ops[i].exists = 1;
            c->rp.ops[i].sflags = flags;
        }
    }
    return 0;
}

static void replay_copyuid(satchel_client *c, const satchel_imap_arg *code)
{
    const satchel_imap_arg *src = code->next ? code->next->next : NULL;
    const satchel_imap_arg *dst = src ? src->next : NULL;
    uint32_t i, d;
    if (!src || !dst || src->type != SATCHEL_ARG_ATOM || dst->type != SATCHEL_ARG_ATOM ||
        !(c->conn.caps & SATCHEL_CAP_UIDPLUS))
        return; /* (a server without UIDPLUS would not send it) */
    /* The sets pair up in order (RFC 4315).  Each move of the batch is
     * looked up by arithmetic on the ranges: a set like 1:4294967295 costs
     * what its text costs, not four billion steps. */
    for (i = 0; i < c->rp.n; i++)
        if (c->rp.ops[i].type == SATCHEL_OP_MOVE &&
            satchel_seqset_pair(src->str, src->len, dst->str, dst->len, c->rp.ops[i].uid,
                                &d) == 1)
            c->rp.ops[i].mapped = d;
}

/* Look for a move's message in its destination by Message-ID: to map a
 * finished move to its new UID (map), or to learn whether a copy sent
 * before a crash happened. */
static int search_dest(satchel_client *c, const satchel_op *op, int map)
{
    int rc;
    satchel_folder d;
    c->rp.verify_id = op->id;
    c->rp.verify_found = 0;
    c->rp.verify_hits = 0;
    c->rp.found_uid = 0;
    c->rp.verify_fid =
        satchel_store_folder_get(c->store, NULL, op->dest, &d) == 0 ? d.id : 0;
    c->rp.map_mode = map;
    c->rp.selected = 0;
    c->job = J_REPLAY_VERIFY;
    if ((rc = cl_select(c, K_RVSELECT, op->dest, 0, 0, 0)) < 0)
        return cl_fail(c, rc, "cannot send SELECT");
    if ((rc = cl_cmd_begin(c, K_RVSEARCH)) < 0 ||
        (rc = cl_out_str(c, "UID SEARCH HEADER Message-ID ")) < 0 ||
        (rc = cl_out_astring(c, op->message_id)) < 0 || (rc = cl_cmd_end(c)) < 0)
        return cl_fail(c, rc, "cannot send UID SEARCH");
    return 0;
}

/* Pick the next batch: the folder of the first pending change that names a
 * real UID, and up to REPLAY_BATCH such changes of that folder. */
int replay_next(satchel_client *c)
{
    uint64_t at = 0;
    satchel_op *op = c->op;
    int rc;
    int picked = 0;
    uint32_t fid;
    c->rp.n = 0;
    /* The reason and the check belong to one batch: a refused CREATE's
     * text must not read as this batch's failure. */
    c->rp.reason[0] = '\0';
    c->rp.check_ok = 0;
    c->rp.deleted_asked = 0;
    while (satchel_store_op_next(c->store, NULL, at, op) == 0) {
        at = op->id;
        if (op->state == SATCHEL_OP_PENDING && op->type == SATCHEL_OP_MOVE &&
            op->phase == 3) {
            /* A finished move waiting for its new UID: look it up. */
            c->rp.n = 0;
            return search_dest(c, op, 1);
        }
        if (op->state != SATCHEL_OP_PENDING || op->type == SATCHEL_OP_MKDIR ||
            op->on_placeholder)
            continue;
        /* The batch is the changes of one folder, told by its id.  A name
         * that is not a stored folder is told by the name, kept in the
         * name scratch only while the batch is picked (nothing else uses it
         * here): the server judges the batch at its SELECT. */
        if (satchel_store_folder_id(c->store, NULL, op->folder, &fid) < 0)
            fid = 0;
        if (!picked) {
            /* The last batch's folder stays selected for this one when it
             * is the same folder. */
            picked = 1;
            if (fid == 0 || fid != c->rp.fid)
                c->rp.selected = 0;
            c->rp.fid = fid;
            if (fid == 0)
                memcpy(c->wire_name, op->folder, strlen(op->folder) + 1);
        } else if (fid != c->rp.fid || (fid == 0 && strcmp(op->folder, c->wire_name) != 0)) {
            continue;
        }
        c->rp.ops[c->rp.n].id = op->id;
        c->rp.ops[c->rp.n].uid = op->uid;
        c->rp.ops[c->rp.n].type = op->type;
        c->rp.ops[c->rp.n].exists = 0;
        c->rp.ops[c->rp.n].failed = 0;
        c->rp.ops[c->rp.n].mapped = 0;
        c->rp.ops[c->rp.n].phase0 = op->phase;
        c->rp.ops[c->rp.n].marked = 0;
        c->rp.ops[c->rp.n].listed = 0;
        c->rp.ops[c->rp.n].still = 0;
        c->rp.ops[c->rp.n].expunged = 0;
        if (++c->rp.n == REPLAY_BATCH)
            break;
    }
    if (c->rp.n == 0)
        return start_sync_after_replay(c);
    if (!(c->conn.caps & SATCHEL_CAP_MOVE)) {
        /* A copy sent before a crash may have happened: look for it in the
         * destination before copying again, so a retry never duplicates. */
        uint32_t i;
        for (i = 0; i < c->rp.n; i++) {
            if (c->rp.ops[i].type != SATCHEL_OP_MOVE ||
                satchel_store_op_get(c->store, NULL, c->rp.ops[i].id, op) < 0 ||
                op->phase != 1)
                continue;
            if (!op->message_id[0]) {
                /* Nothing to look for: cannot be made safe; do not copy. */
                if ((rc = cl_txn(c)) < 0)
                    return rc;
                rc = replay_op_fail(c, op, NULL, "interrupted copy of a message without "
                                          "Message-ID; check the destination, then retry");
                if (rc < 0 || (rc = cl_commit(c, 0)) < 0)
                    return rc < 0 ? cl_fail(c, rc, "cannot update queue") : rc;
                return replay_next(c);
            }
            return search_dest(c, op, 0);
        }
    }
    if (c->rp.selected)
        return replay_send(c);
    c->job = J_REPLAY_SELECT;
    c->rp.uidvalidity = 0;
    /* the folder as the batch's first change names it (the scratch op
     * holds whichever change was read last) */
    if ((rc = satchel_store_op_get(c->store, NULL, c->rp.ops[0].id, op)) < 0)
        return cl_fail(c, rc, "cannot read queue");
    if ((rc = cl_select(c, K_RSELECT, op->folder, 0, 0, 0)) < 0)
        return cl_fail(c, rc, "cannot send SELECT");
    return 0;
}

static int replay_pump(satchel_client *c)
{
    if (c->job == J_REPLAY_OPS)
        return replay_send_more(c);
    return 0;
}

/* Without UIDPLUS a move's original and a delete stay on the server
 * marked \Deleted.  Once the batch's marks are answered, ask which
 * messages of the folder are marked.  Returns 1 if the search went out, 0
 * when there is nothing to ask (a server with UIDPLUS expunges by UID, or
 * nothing was marked), or the error after cl_fail. */
static int send_search_deleted(satchel_client *c)
{
    uint32_t i;
    int any = 0, rc;
    if ((c->conn.caps & SATCHEL_CAP_UIDPLUS) || c->rp.deleted_asked)
        return 0;
    for (i = 0; i < c->rp.n; i++)
        any |= c->rp.ops[i].marked && c->rp.ops[i].exists && !c->rp.ops[i].failed;
    if (!any)
        return 0;
    c->rp.deleted_asked = 1;
    c->rp.deleted_others = 0;
    c->rp.deleted_listed = 0;
    if ((rc = cl_simple_cmd(c, K_RDELETED, "UID SEARCH DELETED")) < 0)
        return cl_fail(c, rc, "command does not fit the command queue");
    return 1;
}

static int replay_tagged(satchel_client *c, uint8_t kind, uint64_t arg, int ok,
                         const satchel_imap_resp *r)
{
    int rc;
    uint32_t i;
    if (kind == K_RCMD && ok && r->code && satchel_imap_arg_is(r->code, "COPYUID"))
        replay_copyuid(c, r->code);
    switch (kind) {
    case K_RSELECT:
        if (!ok) {
            replay_reason(c, "folder cannot be opened on the server", r->text, r->text_len);
            for (i = 0; i < c->rp.n; i++)
                c->rp.ops[i].failed = 1;
            c->rp.selected = 0;
            return replay_finish_batch(c);
        }
        c->rp.selected = 1;
        /* UIDs recorded under another UIDVALIDITY name other messages now. */
        {
            uint32_t renumbered = 0;
            for (i = 0; i < c->rp.n; i++) {
                satchel_op *op = c->op;
                if (satchel_store_op_get(c->store, NULL, c->rp.ops[i].id, op) == 0 &&
                    op->uidvalidity && c->rp.uidvalidity &&
                    op->uidvalidity != c->rp.uidvalidity) {
                    c->rp.ops[i].failed = 1;
                    renumbered++;
                }
            }
            if (renumbered) {
                /* Never send changes for renumbered messages; the others
                 * of the batch stay queued (see replay_finish_batch). */
                replay_reason(c, "UIDVALIDITY changed on the server", NULL, 0);
                return replay_finish_batch(c);
            }
        }
        return replay_send(c);
    case K_RVSELECT:
        return 0;
    case K_RVSEARCH: {
        satchel_op *op = c->op;
        if ((rc = cl_txn(c)) < 0)
            return rc;
        if (c->rp.map_mode &&
            satchel_store_op_get(c->store, c->txn, c->rp.verify_id, op) == 0) {
            /* Re-key the placeholder to the UID found (or drop it: the sync
             * brings the message), and let queued changes follow. */
            if (ok && !c->rp.verify_found) {
                /* Neither in the source nor in the destination: whatever
                 * happened to the move, the message is gone. */
                struct rop gone;
                memset(&gone, 0, sizeof gone);
                c->rp.check_ok = 1; /* the search is the proof */
                if ((rc = replay_op_fail(c, op, &gone, "message no longer on the server")) < 0)
                    return cl_fail(c, rc, "cannot update queue");
                if ((rc = cl_commit(c, 0)) < 0)
                    return rc;
                c->job = J_REPLAY_SELECT;
                return replay_next(c);
            }
            if ((rc = finish_move(c, op, ok ? c->rp.found_uid : 0)) < 0)
                return rc;
        } else if (satchel_store_op_get(c->store, c->txn, c->rp.verify_id, op) == 0) {
            /* Found: the copy happened; only the source side is left.  Not
             * found (or the search failed): copying again is safe. */
            op->phase = ok && c->rp.verify_found ? 2 : 0;
            if ((rc = satchel_store_op_put(c->txn, op)) < 0)
                return cl_fail(c, rc, "cannot update queue");
        }
        if ((rc = cl_commit(c, 0)) < 0)
            return rc;
        c->job = J_REPLAY_SELECT;
        return replay_next(c);
    }
    case K_RCHECK:
    case K_RCMD:
        if (kind == K_RCHECK && ok) {
            c->rp.check_ok = 1;
        } else if (kind == K_RCHECK) {
            /* Which messages exist is unknown: every change of the batch
             * fails, and none is taken for gone (see rollback). */
            replay_reason(c, "server refused the existence check", r->text, r->text_len);
            for (i = 0; i < c->rp.n; i++)
                c->rp.ops[i].failed = 1;
        } else if (!ok) {
            replay_reason(c, "server refused the change", r->text, r->text_len);
            for (i = 0; i < c->rp.n; i++)
                if (c->rp.ops[i].group == (uint8_t)arg)
                    c->rp.ops[i].failed = 1;
        } else if (kind == K_RCMD && (arg & RCMD_DELSTORE)) {
            c->rp.gwant[arg & 0xFF] |= GW_EXPUNGE;
        } else if (kind == K_RCMD && (arg & RCMD_MARK)) {
            for (i = 0; i < c->rp.n; i++)
                if (c->rp.ops[i].group == (uint8_t)arg &&
                    (c->rp.ops[i].type == SATCHEL_OP_MOVE ||
                     c->rp.ops[i].type == SATCHEL_OP_EXPUNGE))
                    c->rp.ops[i].marked = 1;
        } else if (kind == K_RCMD && (arg & RCMD_COPY)) {
            c->rp.gwant[arg & 0xFF] |= GW_DELETE;
        }
        if ((rc = replay_send_more(c)) < 0)
            return rc;
        if (cl_count_inflight(c, K_RCHECK) + cl_count_inflight(c, K_RCMD) == 0) {
            if (!replay_all_sent(c))
                return cl_fail(c, SATCHEL_E_INTERNAL,
                               "replay has a command larger than the command queue");
            if ((rc = send_search_deleted(c)) != 0)
                return rc < 0 ? rc : 0;
            return replay_finish_batch(c);
        }
        return 0;
    case K_RDELETED:
        /* Nothing marked \Deleted in the folder but what this batch
         * marked: an EXPUNGE removes exactly those.  Anything else marked
         * (another client's choice to make) leaves every mark in place. */
        if (ok && c->rp.deleted_listed && !c->rp.deleted_others) {
            /* Which of them the EXPUNGE removed is what the server lists
             * after it (a mark another client took back meanwhile stays),
             * asked in the same flight. */
            uint32_t n = 0, j;
            for (i = 0; i < c->rp.n; i++) {
                uint32_t u = c->rp.ops[i].uid;
                c->rp.ops[i].still = 0;
                if (!c->rp.ops[i].listed)
                    continue;
                for (j = n; j > 0 && c->rp.uids[j - 1] > u; j--)
                    c->rp.uids[j] = c->rp.uids[j - 1];
                c->rp.uids[j] = u;
                n++;
            }
            for (i = 0, j = 0; i < n; i++)
                if (j == 0 || c->rp.uids[j - 1] != c->rp.uids[i])
                    c->rp.uids[j++] = c->rp.uids[i];
            if ((rc = cl_simple_cmd(c, K_REXPUNGE, "EXPUNGE")) < 0 ||
                (rc = cl_cmd_begin(c, K_RGONE)) < 0 || (rc = cl_out_str(c, "UID FETCH ")) < 0 ||
                (rc = cl_out_uidset(c, c->rp.uids, j)) < 0 ||
                (rc = cl_out_str(c, " (UID)")) < 0 || (rc = cl_cmd_end(c)) < 0)
                return cl_fail(c, rc, "command does not fit the command queue");
            return 0;
        }
        return replay_finish_batch(c);
    case K_REXPUNGE:
        return 0; /* the FETCH behind it tells what it did */
    case K_RGONE:
        /* A refused FETCH proves nothing gone: the originals are kept, and
         * the next sync's check drops any that are not there. */
        if (ok)
            for (i = 0; i < c->rp.n; i++)
                if (c->rp.ops[i].listed && !c->rp.ops[i].still)
                    c->rp.ops[i].expunged = 1;
        return replay_finish_batch(c);
    default:
        return 0;
    }
}

static int replay_untagged(satchel_client *c, const satchel_imap_resp *r)
{
    const satchel_imap_arg *a = r->args, *code = r->code;
    uint32_t num;
    if (r->status != SATCHEL_STATUS_NONE) {
        if (code && c->job == J_REPLAY_SELECT &&
            satchel_imap_arg_is(code, "UIDVALIDITY"))
            satchel_imap_arg_u32(code->next, &c->rp.uidvalidity);
        if (code && c->job == J_REPLAY_OPS && satchel_imap_arg_is(code, "COPYUID"))
            replay_copyuid(c, code);
        return 0;
    }
    if (satchel_imap_arg_is(a, "SEARCH") && c->job == J_REPLAY_OPS &&
        cl_count_inflight(c, K_RDELETED)) {
        const satchel_imap_arg *h;
        if (r->truncated)
            c->rp.deleted_others = 1; /* not all of it seen: assume others */
        for (h = a->next; h; h = h->next) {
            uint32_t uid, i;
            int ours = 0;
            if (satchel_imap_arg_u32(h, &uid) < 0 || uid == 0)
                continue;
            for (i = 0; i < c->rp.n; i++) {
                struct rop *o = &c->rp.ops[i];
                if (o->uid == uid && o->marked && o->exists && !o->failed) {
                    if (!o->listed)
                        c->rp.deleted_listed++;
                    o->listed = 1;
                    ours = 1;
                }
            }
            if (!ours)
                c->rp.deleted_others = 1;
        }
        return 0;
    }
    if (satchel_imap_arg_is(a, "SEARCH")) {
        const satchel_imap_arg *h;
        if (c->job != J_REPLAY_VERIFY || !cl_count_inflight(c, K_RVSEARCH))
            return 0;
        /* Message-IDs are not unique: a hit the store already holds in the
         * destination as a server message is another message with the same
         * ID, not this move's copy.  Of the others, only a single one can
         * be mapped; more than one proves a copy exists but not which. */
        for (h = a->next; h; h = h->next) {
            uint32_t uid, mflags;
            if (satchel_imap_arg_u32(h, &uid) < 0 || uid == 0)
                continue;
            if (c->rp.verify_fid &&
                satchel_store_msg_mflags(c->store, NULL, c->rp.verify_fid, uid, &mflags) == 0 &&
                !(mflags & SATCHEL_MSG_F_PENDING))
                continue;
            c->rp.verify_found = 1;
            c->rp.found_uid = ++c->rp.verify_hits == 1 ? uid : 0;
        }
        return 0;
    }
    /* a = seq "FETCH" (items) */
    if (c->job == J_REPLAY_OPS && satchel_imap_arg_u32(a, &num) == 0 && a->next &&
        satchel_imap_arg_is(a->next, "FETCH") && a->next->next &&
        a->next->next->type == SATCHEL_ARG_LIST)
        return replay_on_fetch(c, a->next->next);
    return 0;
}

const struct cl_job cl_job_replay = {replay_untagged, replay_tagged, NULL, NULL,
                                     replay_pump};

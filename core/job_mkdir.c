/* Offline new folders (mkdir): the first step of the replay, before the
 * changes of messages, so a move into a new folder finds it there.  A job
 * of its own (the cl_job seam): its commands are CREATE and, after a plain
 * NO, a LIST of the name, and it hands on to the change batches
 * (replay_next) when every CREATE is settled. */
#include "client_internal.h"

#include <string.h>

/* CREATE every queued new folder, pipelined as far as the in-flight table
 * and the output allow; the pump and each answer send more from
 * rp.mkdir_at.  With none left to send or answer, on to the changes. */
static int mkdirs_more(satchel_client *c)
{
    uint64_t at = c->rp.mkdir_at;
    satchel_op *op = c->op;
    int rc, sent = 0;
    while (satchel_store_op_next(c->store, NULL, at, op) == 0) {
        at = op->id;
        if (op->state != SATCHEL_OP_PENDING || op->type != SATCHEL_OP_MKDIR)
            continue;
        if (c->conn.n_inflight + 2 >= MAX_INFLIGHT)
            break;
        if ((rc = cl_cmd_begin(c, K_CREATE)) < 0 || (rc = cl_out_str(c, "CREATE ")) < 0 ||
            (rc = cl_out_mailbox(c, op->dest)) < 0 || (rc = cl_cmd_end(c)) < 0) {
            if (rc == SATCHEL_E_AGAIN)
                break;
            return cl_fail(c, rc, "command does not fit the command queue");
        }
        cl_cmd_arg(c, op->id);
        c->rp.mkdir_at = op->id;
        sent++;
    }
    if (!sent && cl_count_inflight(c, K_CREATE) + cl_count_inflight(c, K_CREATE_LIST) == 0)
        return replay_next(c);
    return 0;
}

int replay_mkdirs(satchel_client *c)
{
    c->job = J_REPLAY_MKDIR;
    c->rp.mkdir_at = 0;
    return mkdirs_more(c);
}

/* A LIST line while folders are being created: a refused CREATE whose
 * name the server lists (as a mailbox that can be selected) made its
 * folder after all. */
static int replay_on_list(satchel_client *c, const satchel_imap_arg *a)
{
    const satchel_imap_arg *attrs = a->next, *name, *k;
    char *s = c->wire_name;
    satchel_op *op = c->op;
    uint32_t i;
    int verbatim;
    if (!attrs || attrs->type != SATCHEL_ARG_LIST || !attrs->next ||
        !(name = attrs->next->next) || cl_name_from_wire(c, name, s, &verbatim) < 0)
        return 0;
    for (k = attrs->child; k; k = k->next)
        if (satchel_imap_arg_is(k, "\\Noselect") || satchel_imap_arg_is(k, "\\NonExistent"))
            return 0;
    for (i = 0; i < c->conn.n_inflight; i++) {
        struct inflight *in = &c->conn.inflight[i];
        if (in->kind == K_CREATE_LIST &&
            satchel_store_op_get(c->store, c->txn, in->arg & ~CREATED_LISTED, op) == 0 &&
            strcmp(op->dest, s) == 0)
            in->arg |= CREATED_LISTED;
    }
    return 0;
}

/* The answer to a CREATE, or to the LIST after a plain NO. */
static int mkdir_tagged(satchel_client *c, uint8_t kind, uint64_t arg, int ok,
                        const satchel_imap_resp *r)
{
    int rc;
    satchel_op *op = c->op;
    /* An existing folder is what we wanted (a retry after a crash). */
    int exists = kind == K_CREATE_LIST ? ok && (arg & CREATED_LISTED) != 0
                                   : r->code && satchel_imap_arg_is(r->code, "ALREADYEXISTS");
    if ((rc = cl_txn(c)) < 0)
        return rc;
    if (satchel_store_op_get(c->store, c->txn, arg & ~CREATED_LISTED, op) == 0) {
        if (ok && kind == K_CREATE) {
            rc = satchel_store_op_del(c->txn, op->id);
            c->rp.done++;
        } else if (exists) {
            rc = satchel_store_op_del(c->txn, op->id);
            c->rp.done++;
        } else if (kind == K_CREATE) {
            /* A plain NO may still leave the folder there (Courier says
             * NO to a CREATE a killed session already sent, without
             * [ALREADYEXISTS]): what the server lists decides.  The
             * reason waits in the entry, which stays pending. */
            replay_reason(c, "server refused to create the folder", r->text, r->text_len);
            memcpy(op->reason, c->rp.reason, sizeof op->reason);
            if ((rc = satchel_store_op_put(c->txn, op)) == 0 &&
                ((rc = cl_cmd_begin(c, K_CREATE_LIST)) < 0 ||
                 (rc = cl_out_str(c, "LIST \"\" ")) < 0 ||
                 (rc = cl_out_mailbox(c, op->dest)) < 0 || (rc = cl_cmd_end(c)) < 0)) {
                if (rc == SATCHEL_E_AGAIN) {
                    /* No room to ask now (the queue holds later
                     * CREATEs): the entry stays pending.  When every
                     * CREATE is answered the walk starts over
                     * (replay_mkdirs) and sends it again, and its
                     * second NO brings the LIST; the last answer of a
                     * round always finds room, so each round settles
                     * at least one.  A refusal is never judged
                     * unasked. */
                    rc = 0;
                } else {
                    rc = replay_op_fail(c, op, NULL, op->reason);
                }
            } else if (rc == 0) {
                cl_cmd_arg(c, op->id);
            }
        } else {
            rc = replay_op_fail(c, op, NULL, op->reason);
        }
        if (rc < 0)
            return cl_fail(c, rc, "cannot update queue");
    }
    if ((rc = cl_commit(c, 0)) < 0)
        return rc;
    if (cl_count_inflight(c, K_CREATE) + cl_count_inflight(c, K_CREATE_LIST) == 0)
        return replay_mkdirs(c); /* more, or on to the folders */
    return 0;
}

static int mkdir_untagged(satchel_client *c, const satchel_imap_resp *r)
{
    if (r->status == SATCHEL_STATUS_NONE && satchel_imap_arg_is(r->args, "LIST"))
        return replay_on_list(c, r->args);
    return 0;
}

const struct cl_job cl_job_mkdir = {mkdir_untagged, mkdir_tagged, NULL, NULL, mkdirs_more};

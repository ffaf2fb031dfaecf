/* Sans-I/O IMAP client: session set-up (greeting, STARTTLS, capabilities,
 * authentication, ENABLE) and the header sync job.
 *
 * Sync of one folder, in the order the server sees it:
 *   SELECT f [(QRESYNC (uidvalidity modseq)) | (CONDSTORE)]
 *     QRESYNC: VANISHED (EARLIER) and changed FLAGS arrive here.
 *   then, without QRESYNC, as one pipelined flight:
 *     UID FETCH 1:U-1 (UID FLAGS) (CHANGEDSINCE m)   CONDSTORE, flags
 *     UID FETCH 1:U-1 (UID [FLAGS])                  reconcile (expunges)
 *     UID FETCH U:* (UID)                            count new messages
 *   then new messages, newest first, by sequence windows:
 *     FETCH a:b (UID FLAGS RFC822.SIZE INTERNALDATE BODYSTRUCTURE
 *                BODY.PEEK[HEADER.FIELDS (...)])
 * where U is the stored UIDNEXT: every UID below it is in the store.  U and
 * HIGHESTMODSEQ are written only in the transaction that completes the
 * folder, so an interrupted sync resumes from a state that is still true. */
#include "client_internal.h"

#include <string.h>

static void verify_mark(satchel_client *c, uint32_t uid);
static int send_reconcile(satchel_client *c, int with_flags);
static int after_follow(satchel_client *c);
static void win_seen(satchel_client *c, uint32_t k, int by_seq);
static int win_settle(satchel_client *c);
static int win_done(satchel_client *c, uint32_t lo, uint32_t hi, int by_seq);
static void win_push(satchel_client *c, uint32_t lo, uint32_t hi);
static int fill_windows(satchel_client *c);

/* *fresh: set when the message was not stored before (a repeated response
 * must not count twice toward its window). */
static int store_new_message(satchel_client *c, const struct fetch_items *it, int *fresh)
{
    satchel_msg *m = &c->msg;
    int rc, is_new = 0;

    fetch_map_msg(it, m, c->hdr, sizeof c->hdr);
    if ((rc = cl_txn(c)) < 0)
        return rc;
    {
        /* A server UID equal to a local placeholder (a server may use UIDs
         * in that range): keep the queued message; fetch this one after the
         * move has replayed. */
        uint32_t mflags;
        if (satchel_store_msg_mflags(c->store, c->txn, c->fs.f.id, m->uid, &mflags) == 0 &&
            (mflags & SATCHEL_MSG_F_PENDING)) {
            c->fs.incomplete = 1;
            return 0;
        }
    }
    rc = satchel_store_msg_put(c->txn, &c->fs.f, m, &is_new);
    if (rc < 0)
        return cl_fail(c, rc, "cannot store message");
    if (is_new)
        c->fs.n_new++;
    *fresh = is_new;
    if (it->uid > c->fs.max_uid)
        c->fs.max_uid = it->uid;
    /* Nothing commits mid-window: responses come in any order, so a prefix
     * of what arrived is no proof that nothing below it is missing. */
    return 0;
}

static int sync_on_fetch(satchel_client *c, const satchel_imap_arg *a,
                    int truncated)
{
    /* a = seq "FETCH" (items) */
    const satchel_imap_arg *list = a->next ? a->next->next : NULL;
    struct fetch_items it;
    int rc;
    int in_select = c->job == J_SELECT || c->job == J_FOLLOW ||
                    c->job == J_WINDOWS;

    if (!list || list->type != SATCHEL_ARG_LIST || !in_select)
        return 0; /* not ours: unsolicited or outside a folder sync */
    fetch_map_items(list, &it);
    if (it.uid == 0) {
        /* Every answer to our commands carries the UID we asked for, so
         * this is a unilateral FETCH (RFC 9051 7.5.2): it says nothing
         * about which messages exist, and its flags come again by UID (the
         * reconcile, CHANGEDSINCE, or QRESYNC, which always sends UIDs).
         * A window answer that really lacked its UID shows up as a window
         * whose count falls short. */
        return 0;
    }
    if (truncated && (cl_count_inflight(c, K_WINDOW) || cl_count_inflight(c, K_RESUME))) {
        /* The response did not fit: items after the overflow are missing.
         * Keep it only if UID, FLAGS and the headers survived (what was cut
         * is then the BODYSTRUCTURE); otherwise fetch it again next time. */
        if (!it.has_flags || !it.has_headers ||
            (it.hdr && it.hdr->type != SATCHEL_ARG_STRING)) {
            c->fs.incomplete = 1;
            return 0;
        }
        it.bs_truncated = 1;
    }
    if (it.has_headers || it.has_bs) {
        uint32_t seq = 0;
        if (truncated && !it.has_flags)
            c->fs.incomplete = 1;
        int fresh = 0;
        if ((rc = store_new_message(c, &it, &fresh)) < 0)
            return rc;
        /* Resume windows are keyed by UID, first-pass windows by sequence;
         * a sequence window counts each message stored once. */
        if (c->fs.nwin && cl_count_inflight(c, K_RESUME))
            win_seen(c, it.uid, 0);
        else if (c->fs.nwin && fresh && satchel_imap_arg_u32(a, &seq) == 0)
            win_seen(c, seq, 1);
        return win_settle(c);
    }
    if (cl_count_inflight(c, K_BLOCK) && it.uid >= c->fs.minp && it.uid <= c->fs.maxp) {
        verify_mark(c, it.uid);
        if (it.has_flags) {
            if ((rc = cl_txn(c)) < 0)
                return rc;
            rc = satchel_store_msg_set_flags(c->txn, &c->fs.f, it.uid, it.flags, it.kw,
                                             it.modseq);
            if (rc == 1)
                c->fs.n_changed++;
            else if (rc == SATCHEL_E_NOTFOUND)
                /* The kept block has a hole: it was not made by windows
                 * (a replayed move stores its message at the UID COPYUID
                 * names, at or above U).  Fetch the whole span again. */
                c->fs.block_hole = 1;
            else if (rc < 0)
                return cl_fail(c, rc, "cannot update flags");
        }
        return 0;
    }
    if (it.uid >= c->fs.f.uidnext) {
        /* What to fetch comes from where the server lists the UIDs at or
         * above U: the lowest sequence number holding one.  Not a count of
         * responses (a unilateral FETCH may list a UID twice) and not
         * EXISTS minus what is stored (a stale stored UID and a new one
         * cancel out). */
        uint32_t seq = 0;
        if (c->job == J_FOLLOW && cl_count_inflight(c, K_NEWUIDS) &&
            it.uid >= c->fs.newuid_from &&
            satchel_imap_arg_u32(a, &seq) == 0 && seq &&
            (c->fs.newuid_seq == 0 || seq < c->fs.newuid_seq))
            c->fs.newuid_seq = seq;
        return 0; /* a new message: fetched whole in a window */
    }
    if (cl_count_inflight(c, K_RECONCILE))
        verify_mark(c, it.uid);
    if (it.has_flags) {
        if ((rc = cl_txn(c)) < 0)
            return rc;
        rc = satchel_store_msg_set_flags(c->txn, &c->fs.f, it.uid, it.flags,
                                         it.kw, it.modseq);
        if (rc == 1)
            c->fs.n_changed++;
        else if (rc < 0 && rc != SATCHEL_E_NOTFOUND)
            return cl_fail(c, rc, "cannot update flags");
    }
    return 0;
}

/* The server listed uid in answer to a membership check: in any order,
 * and a UID outside the chunk in flight changes nothing. */
static void verify_mark(satchel_client *c, uint32_t uid)
{
    struct folder_sync *fs = &c->fs;
    if (fs->vhi && uid >= fs->vlo && uid <= fs->vhi)
        fs->vbits[(uid - fs->vlo) >> 3] |= (uint8_t)(1u << ((uid - fs->vlo) & 7));
}

/* Send the membership check's next chunk, from the first stored server
 * UID at or above from, at most VERIFY_BITS UIDs wide and ending by vend.
 * Returns 1 if sent, 0 when no stored UID is left in the range. */
static int verify_send(satchel_client *c, int kind, uint32_t from)
{
    struct folder_sync *fs = &c->fs;
    uint32_t count = 0, lo = 0, hi = 0;
    int rc;
    fs->vhi = 0;
    if (from == 0 || from > fs->vend)
        return 0;
    if ((rc = satchel_store_msg_span_from(c->store, c->txn, fs->f.id, from, &count, &lo,
                                          &hi)) < 0)
        return cl_fail(c, rc, "cannot read stored messages");
    if (count == 0 || lo > fs->vend)
        return 0;
    fs->vlo = lo;
    fs->vhi = fs->vend - lo >= VERIFY_BITS - 1 ? lo + (VERIFY_BITS - 1) : fs->vend;
    memset(fs->vbits, 0, sizeof fs->vbits);
    if ((rc = cl_cmd_begin(c, (uint8_t)kind)) < 0 || (rc = cl_out_str(c, "UID FETCH ")) < 0 ||
        (rc = cl_out_u64(c, fs->vlo)) < 0 || (rc = cl_out_str(c, ":")) < 0 ||
        (rc = cl_out_u64(c, fs->vhi)) < 0 ||
        (rc = cl_out_str(c, fs->vflags ? " (UID FLAGS)" : " (UID)")) < 0 ||
        (rc = cl_cmd_end(c)) < 0)
        return cl_fail(c, rc, "command does not fit the command queue");
    return 1;
}

/* The chunk's tagged OK: the server has listed all of it.  Delete the
 * stored server UIDs it did not list, then go on with the next chunk.
 * Returns 1 if another chunk was sent, 0 when the check is over. */
static int verify_done(satchel_client *c, int kind)
{
    struct folder_sync *fs = &c->fs;
    uint32_t u, run = 0, n;
    int rc, in_run = 0;
    if ((rc = cl_txn(c)) < 0)
        return rc;
    for (u = fs->vlo;; u++) {
        int listed = (fs->vbits[(u - fs->vlo) >> 3] >> ((u - fs->vlo) & 7)) & 1;
        if (!listed && !in_run) {
            run = u;
            in_run = 1;
        }
        if (in_run && (listed || u == fs->vhi)) {
            n = 0;
            if (satchel_store_msg_del_server_range(c->txn, &fs->f, run, listed ? u - 1 : u,
                                                   &n) < 0)
                return cl_fail(c, SATCHEL_E_STORE, "cannot delete expunged messages");
            fs->n_vanished += n;
            in_run = 0;
        }
        if (u == fs->vhi)
            break;
    }
    return verify_send(c, kind, fs->vhi < fs->vend ? fs->vhi + 1 : 0);
}

static int sync_on_vanished(satchel_client *c, const satchel_imap_arg *a)
{
    const satchel_imap_arg *set = a->next;
    satchel_seqset_iter it;
    uint32_t lo, hi, n;
    int rc;
    if (set && set->type == SATCHEL_ARG_LIST) /* (EARLIER) */
        set = set->next;
    if (!set || set->type != SATCHEL_ARG_ATOM)
        return 0;
    if (!(c->job == J_SELECT || c->job == J_FOLLOW || c->job == J_WINDOWS))
        return 0;
    if (c->job == J_WINDOWS)
        c->fs.incomplete = 1; /* sequence numbers moved under the windows */
    satchel_seqset_init(&it, set->str, set->len, UINT32_MAX);
    if ((rc = cl_txn(c)) < 0)
        return rc;
    while ((rc = satchel_seqset_next(&it, &lo, &hi)) == 1) {
        if (satchel_store_msg_del_server_range(c->txn, &c->fs.f, lo, hi, &n) < 0)
            return cl_fail(c, SATCHEL_E_STORE, "cannot delete vanished messages");
        c->fs.n_vanished += n;
    }
    if (rc < 0) {
        /* Some ranges may be applied; the rest will be reconciled by the
         * next sync since we keep the old modseq. */
        c->fs.incomplete = 1;
    }
    return 0;
}

static void sync_folder_event(satchel_client *c, int type, int err,
                              const char *text)
{
    satchel_event ev;
    memset(&ev, 0, sizeof ev);
    ev.type = type;
    ev.folder = c->fs.f.name;
    ev.n_new = c->fs.n_new;
    ev.n_changed = c->fs.n_changed;
    ev.n_vanished = c->fs.n_vanished;
    ev.total = c->fs.f.count;
    ev.err = err;
    ev.text = text;
    cl_emit(c, &ev);
}

/* UID FETCH from:* (UID): which messages are new is what the server lists
 * at or above from, whatever its counters say. */
static int send_newuids(satchel_client *c, uint32_t from)
{
    int rc;
    if ((rc = cl_cmd_begin(c, K_NEWUIDS)) < 0 || (rc = cl_out_str(c, "UID FETCH ")) < 0 ||
        (rc = cl_out_u64(c, from)) < 0 || (rc = cl_out_str(c, ":* (UID)")) < 0 ||
        (rc = cl_cmd_end(c)) < 0)
        return rc;
    c->fs.newuid_sent = from;
    return 0;
}

static int send_select(satchel_client *c)
{
    satchel_folder *f = &c->fs.f;
    int rc;
    /* QRESYNC only once the server confirmed it: a SELECT sent before
     * ENABLE's answer uses CONDSTORE. */
    if (c->conn.qresync_confirmed && f->uidvalidity && f->highestmodseq && f->uidnext > 1) {
        c->fs.used_qresync = 1;
        rc = cl_select(c, K_SELECT, f->name, f->uidvalidity, f->highestmodseq, 0);
    } else {
        rc = cl_select(c, K_SELECT, f->name, 0, 0, (c->conn.caps & SATCHEL_CAP_CONDSTORE) != 0);
    }
    if (rc < 0)
        return rc;
    /* The new UIDs go in the SELECT's flight, so listing them costs no
     * round trip.  If the SELECT fails the server answers it with no
     * mailbox selected (RFC 9051 6.3.2), and a changed UIDVALIDITY or
     * UIDNEXT makes after_select ignore it or ask again.  One that does
     * not fit now goes out from after_select. */
    c->fs.newuid_from = f->uidnext;
    if (f->uidvalidity && f->uidnext > 1)
        (void)send_newuids(c, f->uidnext);
    return 0;
}

/* Pick the next folder to sync: in id order after cursor_id, or the one
 * folder the job names (by name in fs.f.name until found). */
static int sync_next_folder(satchel_client *c)
{
    int rc;
    for (;;) {
        /* One folder record on the stack at a time: the one-folder lookup
         * reads into fs.f itself, which holds the name looked up. */
        satchel_folder f;
        if (c->job_all) {
            rc = satchel_store_folder_next_id(c->store, NULL, c->cursor_id, &f);
        } else if (c->cursor_id) {
            rc = SATCHEL_E_NOTFOUND;
        } else {
            rc = satchel_store_folder_get(c->store, NULL, c->fs.f.name, &f);
            if (rc == SATCHEL_E_NOTFOUND || (rc == 0 && (f.flags & SATCHEL_FOLDER_NOSELECT))) {
                cl_set_error(c, SATCHEL_E_NOTFOUND, "no such folder", c->fs.f.name,
                             strlen(c->fs.f.name));
                c->job = J_DONE;
                return 0;
            }
        }
        if (rc == SATCHEL_E_NOTFOUND) {
            c->job = J_DONE;
            return 0;
        }
        if (rc < 0)
            return cl_fail(c, rc, rc == SATCHEL_E_STORE && !c->job_all
                                      ? "folder record damaged in the store (run store check)"
                                      : "cannot read folders");
        c->cursor_id = f.id;
        if (f.flags & SATCHEL_FOLDER_NOSELECT)
            continue;
        {
            if (c->clean_gen && f.list_gen == c->clean_gen &&
                (f.flags & SATCHEL_FOLDER_UNCHANGED)) {
                /* Unchanged on the server: report it, select nothing. */
                memset(&c->fs, 0, sizeof c->fs);
                c->fs.f = f;
                sync_folder_event(c, SATCHEL_EV_FOLDER_SYNCED, 0, NULL);
                c->done_id = f.id;
                continue;
            }
        }
        memset(&c->fs, 0, sizeof c->fs);
        c->fs.f = f;
        c->job = J_SELECT;
        rc = send_select(c);
        return rc < 0 ? cl_fail(c, rc, "cannot send SELECT") : 0;
    }
}

/* The items of a new message's FETCH, by sequence window or by UID
 * range alike: flags, size, dates, structure, the headers we keep, MODSEQ
 * when offered, and a PREVIEW (RFC 8970, in the same round trip) as the
 * preview policy says; newest: this range holds the newest messages. */
static int out_header_items(satchel_client *c, int newest)
{
    int rc;
    int preview = (c->conn.caps & SATCHEL_CAP_PREVIEW) &&
                  (c->preview == SATCHEL_PREVIEW_ON ||
                   (c->preview == SATCHEL_PREVIEW_NEWEST && newest));
    if ((rc = cl_out_str(c, " (UID FLAGS RFC822.SIZE INTERNALDATE BODYSTRUCTURE "
                            "BODY.PEEK[HEADER.FIELDS (" HDR_FIELDS ")]")) < 0 ||
        ((c->conn.caps & SATCHEL_CAP_CONDSTORE) && !c->fs.nomodseq &&
         (rc = cl_out_str(c, " MODSEQ")) < 0) ||
        (preview && (rc = cl_out_str(c, " PREVIEW")) < 0))
        return rc;
    return cl_out_str(c, ")");
}

static int send_window(satchel_client *c)
{
    struct folder_sync *fs = &c->fs;
    uint32_t hi = fs->win_next_hi, lo;
    uint32_t pb = fs->exists > c->preview_n ? fs->exists - c->preview_n : 0;
    int rc;
    if (hi < fs->win_lo || hi == 0)
        return 0;
    lo = hi - fs->win_lo + 1 > c->fetch_window ? hi - c->fetch_window + 1
                                               : fs->win_lo;
    /* "newest": the top preview_n sequence numbers get a preview.  No
     * window straddles that line, so a window halved after a cut changes
     * nothing about which messages have one. */
    if (c->preview == SATCHEL_PREVIEW_NEWEST && hi > pb && lo <= pb)
        lo = pb + 1;
    if ((rc = cl_cmd_begin(c, K_WINDOW)) < 0 || (rc = cl_out_str(c, "FETCH ")) < 0 ||
        (rc = cl_out_u64(c, lo)) < 0 || (rc = cl_out_str(c, ":")) < 0 ||
        (rc = cl_out_u64(c, hi)) < 0 || (rc = out_header_items(c, hi > pb)) < 0 ||
        (rc = cl_cmd_end(c)) < 0)
        return rc;
    cl_cmd_arg(c, (uint64_t)lo << 32 | hi);
    /* Only a command that went in whole becomes a window. */
    fs->win_next_hi = lo - 1;
    win_push(c, lo, hi);
    return 0;
}

static int finish_folder(satchel_client *c)
{
    struct folder_sync *fs = &c->fs;
    int rc;
    if (fs->resume && !fs->incomplete && !fs->reconcile_sent && !fs->used_qresync &&
        fs->exists != fs->f.count - fs->placeholders) {
        /* A resumed sync skips the count check at SELECT (what is at or
         * above U was not known yet); now everything there is stored, and
         * a count that still disagrees means expunges below U, which
         * neither CHANGEDSINCE nor the kept block can show.  (Messages
         * moved here by a replay land at or above U, which makes this a
         * resume too.) */
        if ((rc = send_reconcile(c, 0)) < 0)
            return rc;
        if (cl_count_inflight(c, K_RECONCILE)) {
            fs->late_reconcile = 1;
            c->job = J_FOLLOW;
            return 0;
        }
    }
    if ((rc = cl_txn(c)) < 0)
        return rc;
    if (fs->incomplete && !fs->keep_block) {
        /* Something was skipped: what is stored at or above U may have
         * holes, so it cannot be resumed from.  Start over next time. */
        uint32_t n;
        if ((rc = satchel_store_msg_del_server_range(c->txn, &fs->f, fs->f.uidnext,
                                                     UINT32_MAX, &n)) < 0)
            return cl_fail(c, rc, "cannot drop partial messages");
        fs->n_new = fs->n_new > n ? fs->n_new - n : 0;
    }
    if (!fs->incomplete) {
        /* The server's UIDNEXT is a claim: never below what was seen.  And
         * after UID 4294967295 (the last a server can give) UIDNEXT would
         * be 2^32, which does not fit: it stays at 2^32-1, which leaves
         * that one message "at or above U", checked as a kept block by the
         * next sync instead of the whole folder fetched again. */
        uint64_t next = fs->uidnext;
        if (next == 0 || next <= fs->max_uid)
            next = (uint64_t)fs->max_uid + 1;
        /* A kept block that the server listed (complete, as this sync
         * made sure) is below the next UID too, even when nothing newer
         * came and the server names no UIDNEXT (Courier): otherwise it is
         * a "kept block" again on every later sync. */
        if (fs->resume && next <= fs->maxp)
            next = (uint64_t)fs->maxp + 1;
        if (next < fs->f.uidnext)
            next = fs->f.uidnext;
        fs->f.uidnext = next > UINT32_MAX ? UINT32_MAX : (uint32_t)next;
        fs->f.highestmodseq =
            (c->conn.caps & SATCHEL_CAP_CONDSTORE) && !fs->nomodseq ? fs->hms : 0;
    }
    if (!fs->incomplete && (rc = satchel_store_synced_mark(c->txn, fs->f.id)) < 0)
        return cl_fail(c, rc, "cannot mark folder synced");
    if ((rc = cl_commit(c, 1)) < 0)
        return rc;
    sync_folder_event(c, SATCHEL_EV_FOLDER_SYNCED, 0, NULL);
    c->done_id = fs->f.id;
    c->job = J_NEXT_FOLDER;
    return 0;
}

static int resume_fetch(satchel_client *c, uint32_t lo, uint32_t hi)
{
    int rc;
    if (hi)
        win_push(c, lo, hi);
    if ((rc = cl_cmd_begin(c, K_RESUME)) < 0 || (rc = cl_out_str(c, "UID FETCH ")) < 0 ||
        (rc = cl_out_u64(c, lo)) < 0 || (rc = cl_out_str(c, ":")) < 0 ||
        (hi ? (rc = cl_out_u64(c, hi)) : (rc = cl_out_str(c, "*"))) < 0 ||
        (rc = out_header_items(c, !hi)) < 0 || (rc = cl_cmd_end(c)) < 0)
        return cl_fail(c, rc, "command does not fit the command queue");
    cl_cmd_arg(c, (uint64_t)lo << 32 | hi);
    return 0;
}

static void win_push(satchel_client *c, uint32_t lo, uint32_t hi)
{
    struct folder_sync *fs = &c->fs;
    if (fs->nwin < SATCHEL_OPT_WINDOWS_MAX) {
        fs->wlo[fs->nwin] = lo;
        fs->whi[fs->nwin] = hi;
        fs->wgot[fs->nwin] = 0;
        fs->wdone[fs->nwin] = 0;
        fs->nwin++;
    }
}

static void win_drop(struct folder_sync *fs, uint32_t i, uint32_t n)
{
    uint32_t j;
    for (j = i; j + n < fs->nwin; j++) {
        fs->wlo[j] = fs->wlo[j + n];
        fs->whi[j] = fs->whi[j + n];
        fs->wgot[j] = fs->wgot[j + n];
        fs->wdone[j] = fs->wdone[j + n];
    }
    fs->nwin -= n;
}

/* A header response keyed k is being stored: it is data of its window. */
static void win_seen(satchel_client *c, uint32_t k, int by_seq)
{
    struct folder_sync *fs = &c->fs;
    uint32_t j;
    fs->win_msgs++;
    for (j = 0; j < fs->nwin; j++) {
        if (k >= fs->wlo[j] && (fs->whi[j] == 0 || k <= fs->whi[j])) {
            if (j + 1 > fs->wdata)
                fs->wdata = j + 1;
            /* Sequence numbers do not move during a FETCH (RFC 9051
             * 7.5.1), so a response for each of them completes it. */
            if (by_seq && ++fs->wgot[j] >= fs->whi[j] - fs->wlo[j] + 1)
                fs->wdone[j] = 1;
            return;
        }
    }
}

/* Commit the complete windows at the front once the transaction holds no
 * data of any window after them, then ask for more. */
static int win_settle(satchel_client *c)
{
    struct folder_sync *fs = &c->fs;
    uint32_t m = 0;
    int rc;
    while (m < fs->nwin && fs->wdone[m])
        m++;
    if (m == 0 || fs->wdata > m)
        return 0;
    if ((rc = cl_commit(c, 1)) < 0)
        return rc;
    win_drop(fs, 0, m);
    fs->wdata = 0;
    return c->job == J_WINDOWS && !cl_count_inflight(c, K_RESUME) ? fill_windows(c) : 0;
}

/* A window's tagged OK.  A UID window is then complete.  A sequence
 * window is complete only if a message came for each of its numbers: an
 * OK after fewer (an answer without its UID, one that could not be stored)
 * leaves a hole, and the window never commits. */
static int win_done(satchel_client *c, uint32_t lo, uint32_t hi, int by_seq)
{
    struct folder_sync *fs = &c->fs;
    uint32_t i;
    for (i = 0; i < fs->nwin; i++) {
        if (fs->wlo[i] == lo && fs->whi[i] == hi) {
            if (by_seq && fs->wgot[i] < hi - lo + 1) {
                fs->window_short = 1;
                return 0;
            }
            fs->wdone[i] = 1;
            return win_settle(c);
        }
    }
    return 0;
}

/* Header windows to keep in flight: responses for twice the measured
 * round-trip time plus SATCHEL_OPT_PIPE_MS at the rate measured since the
 * folder's first window (at least SATCHEL_OPT_PIPE_MIN bytes), in windows of
 * the response size measured so far; at least two, at most
 * SATCHEL_OPT_WINDOWS_MAX and what the command table allows.  The target
 * grows as the rate shows itself, like a TCP slow start. */
static uint32_t windows_target(const satchel_client *c)
{
    const struct folder_sync *fs = &c->fs;
    uint64_t got = c->ctr.bytes_in - fs->win_bytes0;
    uint64_t per_msg = fs->win_msgs >= 16 ? got / fs->win_msgs : 700;
    uint64_t per_win = per_msg * c->fetch_window + 1;
    uint64_t el = c->now - fs->win_t0, want = 0, n;
    if (el > 0)
        want = got * (2u * (uint64_t)c->rtt_ms + SATCHEL_OPT_PIPE_MS) / el;
    if (want < SATCHEL_OPT_PIPE_MIN)
        want = SATCHEL_OPT_PIPE_MIN;
    n = (want + per_win - 1) / per_win + 1;
    if (n < 2)
        n = 2;
    if (n > SATCHEL_OPT_WINDOWS_MAX)
        n = SATCHEL_OPT_WINDOWS_MAX;
    if (n > MAX_INFLIGHT - 8)
        n = MAX_INFLIGHT - 8;
    return (uint32_t)n;
}

/* Keep the pipe full: send windows while there are messages left, the
 * target allows, and the command buffer has room for one more. */
static int fill_windows(satchel_client *c)
{
    struct folder_sync *fs = &c->fs;
    int rc;
    /* Complete windows whose answer is still to come hold a command slot
     * but no window entry; at most four windows' data in one transaction.
     * A window that does not fit the output yet goes out from sync_pump. */
    while (fs->win_next_hi >= fs->win_lo && fs->win_next_hi > 0 &&
           !fs->window_short && !fs->window_refused &&
           fs->nwin < windows_target(c) && fs->wdata <= 4 &&
           c->conn.n_inflight + 4 < MAX_INFLIGHT) {
        if ((rc = send_window(c)) == SATCHEL_E_AGAIN)
            return 0;
        if (rc < 0)
            return cl_fail(c, rc, "command does not fit the command queue");
    }
    return 0;
}

/* The next older UID window of a resumed sync. */
static int send_down_window(satchel_client *c)
{
    struct folder_sync *fs = &c->fs;
    uint32_t hi = fs->rnext_hi, lo;
    lo = hi - fs->f.uidnext + 1 > fs->rwidth ? hi - fs->rwidth + 1 : fs->f.uidnext;
    fs->rnext_hi = lo > fs->f.uidnext ? lo - 1 : 0;
    if (fs->rwidth < (1u << 24))
        fs->rwidth *= 2; /* sparse UIDs: fewer, wider windows */
    return resume_fetch(c, lo, hi);
}

static int start_windows(satchel_client *c)
{
    struct folder_sync *fs = &c->fs;
    int rc;
    if (fs->resume) {
        /* Newer than the kept block first (the "*" of maxp+1:* can name
         * maxp itself when nothing is newer: it is just stored again), then
         * older, in descending UID windows that each extend the block. */
        c->job = J_WINDOWS;
        fs->upward = 1;
        fs->since_commit = 0;
        fs->rnext_hi = fs->minp > fs->f.uidnext ? fs->minp - 1 : 0;
        fs->rwidth = c->fetch_window;
        /* The kept block may have changed since: its flags and expunges
         * come first, at a few dozen bytes a message. */
        fs->vend = fs->maxp;
        fs->vflags = 1;
        if ((rc = verify_send(c, K_BLOCK, fs->minp)) < 0)
            return rc;
        if (fs->maxp == UINT32_MAX) {
            /* nothing can be newer than UID 2^32-1 */
            fs->upward = 0;
            if (!cl_count_inflight(c, K_BLOCK) && !fs->rnext_hi)
                return finish_folder(c);
            if (fs->rnext_hi && !cl_count_inflight(c, K_BLOCK))
                return send_down_window(c); /* the older windows start at once */
            return 0;
        }
        /* the open-ended newer range is a window too (hi 0) */
        win_push(c, fs->maxp + 1, 0);
        return resume_fetch(c, fs->maxp + 1, 0);
    }
    if (fs->k_new > fs->exists)
        fs->k_new = fs->exists;
    if (fs->k_new == 0)
        return finish_folder(c);
    fs->win_lo = fs->exists - fs->k_new + 1;
    fs->win_next_hi = fs->exists;
    fs->win_bytes0 = c->ctr.bytes_in;
    fs->win_t0 = c->now;
    fs->win_msgs = 0;
    c->job = J_WINDOWS;
    return fill_windows(c);
}

/* SELECT completed: decide what else the folder needs. */
static int after_select(satchel_client *c)
{
    struct folder_sync *fs = &c->fs;
    satchel_folder *f = &fs->f;
    uint32_t partial = 0, U;
    int rc, qresync_ok, condstore_ok;

    if ((rc = cl_txn(c)) < 0)
        return rc;
    if (fs->uidvalidity == 0) {
        /* RFC 9051 requires it; without it UIDs mean nothing. */
        fs->incomplete = 1;
    }
    if (f->uidvalidity != fs->uidvalidity || f->uidnext == 0) {
        /* New folder, or UIDs were renumbered: nothing stored is valid. */
        if (f->count) {
            uint32_t gone = 0;
            if ((rc = satchel_store_msg_del_server_range(c->txn, f, 0, UINT32_MAX,
                                                         &gone)) < 0)
                return cl_fail(c, rc, "cannot clear folder");
            fs->n_vanished += gone;
        }
        f->uidvalidity = fs->uidvalidity;
        f->uidnext = 1;
        f->highestmodseq = 0;
        fs->used_qresync = 0;
    }
    /* Counters are claims to check (real servers have moved them back
     * under the same UIDVALIDITY).  A UIDNEXT below ours means UIDs from
     * there up may be given again: what is stored from there on becomes a
     * kept block the server must list, and new mail below our old mark is
     * fetched.  A HIGHESTMODSEQ below ours means changes may carry modseqs
     * we think we have seen: no CHANGEDSINCE or QRESYNC shortcut this time,
     * a full check of every stored UID and its flags instead. */
    if (fs->uidnext && fs->uidnext < f->uidnext) {
        /* (and not above the highest UID stored: the old claim may have
         * been past UIDs the server gave out since) */
        uint32_t n = 0, lo = 0, hi = 0;
        if ((rc = satchel_store_msg_span_from(c->store, c->txn, f->id, 1, &n, &lo, &hi)) < 0)
            return cl_fail(c, rc, "cannot read stored messages");
        f->uidnext = fs->uidnext;
        if (n && hi < UINT32_MAX && hi + 1 < f->uidnext)
            f->uidnext = hi + 1;
        else if (!n)
            f->uidnext = 1;
    }
    if (fs->hms && f->highestmodseq && fs->hms < f->highestmodseq) {
        fs->modseq_back = 1;
        f->highestmodseq = 0;
    }
    U = f->uidnext;
    fs->newuid_from = U;
    /* Headers at or above U are what a cut sync of this folder committed:
     * the newest-first windows leave one block, [minp, maxp], holding every
     * server message of that span.  Keep it and fetch only what is around
     * it (by UID).  Without a usable span, drop them and start over. */
    if ((rc = satchel_store_msg_span_from(c->store, c->txn, f->id, U, &partial,
                                          &fs->minp, &fs->maxp)) < 0)
        return cl_fail(c, rc, "cannot read partial messages");
    if (partial && fs->uidvalidity == f->uidvalidity) {
        fs->resume = 1;
        fs->newuid_from = fs->maxp < UINT32_MAX ? fs->maxp + 1 : UINT32_MAX;
    } else if ((rc = satchel_store_msg_del_server_range(c->txn, f, U, UINT32_MAX,
                                                        &partial)) < 0) {
        return cl_fail(c, rc, "cannot drop partial messages");
    }
    /* Messages moved here offline wait under placeholder UIDs: they are not
     * on the server yet and do not count against EXISTS. */
    if ((rc = satchel_store_msg_count_pending(c->store, c->txn, f->id,
                                              &fs->placeholders)) < 0)
        return cl_fail(c, rc, "cannot count placeholders");
    if ((rc = cl_commit(c, 1)) < 0)
        return rc;

    c->job = J_FOLLOW;
    qresync_ok = fs->used_qresync && fs->hms && !fs->nomodseq && !fs->modseq_back;
    condstore_ok = (c->conn.caps & SATCHEL_CAP_CONDSTORE) && fs->hms &&
                   !fs->nomodseq && f->highestmodseq && !fs->modseq_back;
    if (U == 1) {
        /* Nothing stored: every message is new.  A K_NEWUIDS sent with the
         * SELECT (UIDVALIDITY changed) is answered and ignored. */
        fs->newuid_sent = 0;
        fs->k_new = fs->exists;
        return start_windows(c);
    }
    if (fs->resume && qresync_ok)
        return start_windows(c); /* VANISHED covered the kept block */
    if (!qresync_ok && condstore_ok && fs->hms != f->highestmodseq) {
        if ((rc = cl_cmd_begin(c, K_CHANGED)) < 0 ||
            (rc = cl_out_str(c, "UID FETCH 1:")) < 0 || (rc = cl_out_u64(c, U - 1)) < 0 ||
            (rc = cl_out_str(c, " (UID FLAGS) (CHANGEDSINCE ")) < 0 ||
            (rc = cl_out_u64(c, f->highestmodseq)) < 0 || (rc = cl_out_str(c, ")")) < 0 ||
            (rc = cl_cmd_end(c)) < 0)
            return cl_fail(c, rc, "command does not fit the command queue");
    }
    if (!qresync_ok && !condstore_ok && (rc = send_reconcile(c, 1)) < 0)
        return rc;
    fs->k_new = 0;
    /* The new UIDs were asked for with the SELECT, from the stored U; a U
     * lowered since (UIDNEXT went back) needs them from there. */
    if ((fs->newuid_sent == 0 || fs->newuid_sent > fs->newuid_from) &&
        (rc = send_newuids(c, fs->newuid_from)) < 0)
        return cl_fail(c, rc, "command does not fit the command queue");
    if (cl_count_inflight(c, K_CHANGED) + cl_count_inflight(c, K_RECONCILE) +
            cl_count_inflight(c, K_NEWUIDS) == 0)
        return after_follow(c); /* CONDSTORE and nothing changed */
    return 0;
}

static int send_reconcile(satchel_client *c, int with_flags)
{
    int rc;
    c->fs.reconcile_sent = 1;
    c->fs.vend = c->fs.f.uidnext - 1;
    c->fs.vflags = (uint8_t)with_flags;
    if ((rc = verify_send(c, K_RECONCILE, 1)) < 0)
        return rc;
    if (rc == 0)
        c->fs.reconcile_done = 1; /* nothing stored below U */
    return 0;
}

/* All follow-up commands of a folder completed. */
static int after_follow(satchel_client *c)
{
    struct folder_sync *fs = &c->fs;
    int rc;
    if ((rc = cl_commit(c, 1)) < 0)
        return rc;
    fs->k_new = fs->newuid_seq && fs->newuid_seq <= fs->exists
                    ? fs->exists - fs->newuid_seq + 1 : 0;
    if (fs->reconcile_sent && !fs->reconcile_done)
        fs->incomplete = 1; /* a chunk was refused: nothing was deleted */
    if (!fs->resume && fs->exists != fs->f.count - fs->placeholders + fs->k_new) {
        /* Counts disagree (a server's counters are claims to check):
         * something below U was expunged. */
        if (!fs->reconcile_sent) {
            if ((rc = send_reconcile(c, 0)) < 0)
                return rc;
            if (cl_count_inflight(c, K_RECONCILE))
                return 0;
        }
        fs->incomplete = 1; /* changed under us; the next sync retries */
    }
    return start_windows(c);
}

int satchel_client_sync(satchel_client *c, const char *folder)
{
    if (c->job != J_NONE && c->job != J_DONE)
        return SATCHEL_E_BUSY;
    if (folder && (strlen(folder) == 0 || strlen(folder) > SATCHEL_OPT_MAX_FOLDER_NAME))
        return SATCHEL_E_INVAL;
    c->job = J_QUEUED;
    c->top = &cl_job_sync;
    c->interrupted = 0;
    c->resuming = 0;
    c->done_id = 0;
    c->cursor_id = 0;
    c->want_replay = 1;
    c->clean_gen = 0;
    memset(&c->rp, 0, sizeof c->rp);
    c->job_rc = 0;
    c->err_text[0] = '\0';
    c->job_all = folder == NULL;
    memset(&c->fs, 0, sizeof c->fs);
    if (folder)
        memcpy(c->fs.f.name, folder, strlen(folder) + 1);
    return cl_job_advance(c);
}

/* Tagged answers to the folder sync's commands. */
static int sync_tagged(satchel_client *c, uint8_t kind, uint64_t arg, int ok,
                const satchel_imap_resp *r)
{
    int rc;
    switch (kind) {
    case K_SELECT:
        if (!ok) {
            char text[160];
            size_t n = r->text_len < sizeof text - 1 ? r->text_len : sizeof text - 1;
            memcpy(text, r->text, n);
            text[n] = '\0';
            if (c->txn) {
                satchel_store_abort(c->txn);
                c->txn = NULL;
            }
            sync_folder_event(c, SATCHEL_EV_FOLDER_ERROR, SATCHEL_E_SERVER, text);
            c->job = J_NEXT_FOLDER;
            return cl_job_advance(c);
        }
        if ((rc = after_select(c)) < 0)
            return rc;
        if (c->job == J_NEXT_FOLDER)
            return cl_job_advance(c);
        return 0;
    case K_CHANGED:
    case K_RECONCILE:
    case K_NEWUIDS:
        if (kind == K_NEWUIDS && c->job != J_FOLLOW) {
            /* Sent with a SELECT that failed, or not needed after all
             * (nothing stored, or a kept block QRESYNC covered). */
            return c->job == J_NEXT_FOLDER ? cl_job_advance(c) : 0;
        }
        /* (in an empty folder "U:*" names nothing, and some servers
         * refuse it: nothing is new there either way) */
        if (!ok && !(kind == K_NEWUIDS && c->fs.exists == 0))
            c->fs.incomplete = 1;
        if (kind == K_RECONCILE && ok) {
            if ((rc = verify_done(c, K_RECONCILE)) < 0)
                return rc;
            if (rc == 0)
                c->fs.reconcile_done = 1;
        }
        if (kind == K_RECONCILE && c->fs.late_reconcile) {
            if (cl_count_inflight(c, K_RECONCILE))
                return 0;
            if (!c->fs.reconcile_done)
                c->fs.incomplete = 1;
            if ((rc = finish_folder(c)) < 0)
                return rc;
            return cl_job_advance(c);
        }
        if (cl_count_inflight(c, K_CHANGED) + cl_count_inflight(c, K_RECONCILE) +
                cl_count_inflight(c, K_NEWUIDS) == 0) {
            if ((rc = after_follow(c)) < 0)
                return rc;
            if (c->job == J_NEXT_FOLDER)
                return cl_job_advance(c);
        }
        return 0;
    case K_BLOCK:
        /* Kept messages the server does not list in the chunk were
         * expunged meanwhile.  Their deletion shares the transaction of
         * the resume windows, which commits only when they are complete. */
        if (!ok) {
            c->fs.incomplete = 1;
        } else if ((rc = verify_done(c, K_BLOCK)) < 0) {
            return rc;
        } else if (rc == 0 && c->fs.block_hole) {
            c->fs.block_hole = 0;
            if ((rc = resume_fetch(c, c->fs.minp, c->fs.maxp)) < 0)
                return rc;
        }
        /* No newer range (the block ends at UID 2^32-1): the older windows
         * wait for nothing but this check. */
        if (ok && c->job == J_WINDOWS && c->fs.rnext_hi && !cl_count_inflight(c, K_RESUME) &&
            !cl_count_inflight(c, K_BLOCK) && (rc = send_down_window(c)) < 0)
            return rc;
        if (cl_count_inflight(c, K_RESUME) == 0 && c->job == J_WINDOWS && !c->fs.rnext_hi) {
            if ((rc = finish_folder(c)) < 0)
                return rc;
            return cl_job_advance(c);
        }
        return 0;
    case K_RESUME:
        if (!ok)
            c->fs.incomplete = 1;
        c->fs.upward = 0;
        if (ok && (rc = win_done(c, (uint32_t)(arg >> 32), (uint32_t)arg, 0)) < 0)
            return rc;
        while (ok && c->fs.rnext_hi && cl_count_inflight(c, K_RESUME) < WINDOWS_IN_FLIGHT)
            if ((rc = send_down_window(c)) < 0)
                return rc;
        if (cl_count_inflight(c, K_RESUME) == 0 && cl_count_inflight(c, K_BLOCK) == 0) {
            if ((rc = finish_folder(c)) < 0)
                return rc;
            return cl_job_advance(c);
        }
        return 0;
    case K_WINDOW:
        if (!ok)
            c->fs.window_refused = 1; /* its data proves nothing */
        else if ((rc = win_done(c, (uint32_t)(arg >> 32), (uint32_t)arg, 1)) < 0)
            return rc;
        if (ok && c->fs.win_next_hi >= c->fs.win_lo && c->fs.win_next_hi > 0 &&
            (rc = fill_windows(c)) < 0)
            return rc;
        if (cl_count_inflight(c, K_WINDOW) == 0) {
            struct folder_sync *fs = &c->fs;
            if (!fs->window_refused && !fs->window_short &&
                fs->win_next_hi >= fs->win_lo && fs->win_next_hi > 0)
                return 0; /* the rest goes out from sync_pump */
            if (fs->window_refused || fs->window_short || fs->nwin) {
                /* A hole the server will not fill now (a window refused, an
                 * answer without its UID): drop what is not proven, keep
                 * the committed block, and resume around it next time. */
                if (c->txn) {
                    satchel_store_abort(c->txn);
                    c->txn = NULL;
                    /* the counts in memory included what was dropped */
                    if ((rc = satchel_store_folder_get_id(c->store, NULL, fs->f.id,
                                                          &fs->f)) < 0)
                        return cl_fail(c, rc, "cannot read folder");
                }
                fs->incomplete = 1;
                fs->keep_block = 1;
            }
            if ((rc = finish_folder(c)) < 0)
                return rc;
            return cl_job_advance(c);
        }
        return 0;
    default:
        return 0;
    }
}

/* The sync job: replay the queue, LIST, then folder by folder. */
static int sync_advance(satchel_client *c)
{
    int rc;
    uint8_t fl;
    switch (c->job) {
    case J_QUEUED:
        if (c->resuming) {
            /* Folders this job already finished stay finished. */
            c->resuming = 0;
            if (c->job_all && c->done_id) {
                c->want_replay = 0;
                c->job = J_LIST;
                rc = list_send(c);
                c->cursor_id = c->done_id;
                return rc < 0 ? cl_fail(c, rc, "command does not fit the command queue") : 0;
            }
        }
        if (c->want_replay) {
            uint64_t pending = 0, failed = 0;
            c->want_replay = 0;
            satchel_store_queue_counts(c->store, &pending, &failed);
            if (pending) {
                c->rp.selected = 0;
                return replay_mkdirs(c);
            }
        }
        c->cursor_id = 0;
        /* A single folder already known needs no LIST. */
        if (!c->job_all && satchel_store_folder_flags(c->store, NULL, c->fs.f.name, &fl) == 0 &&
            !(fl & SATCHEL_FOLDER_NOSELECT)) {
            c->job = J_NEXT_FOLDER;
            return cl_job_advance(c);
        }
        c->job = J_LIST;
        rc = list_send(c);
        return rc < 0 ? cl_fail(c, rc, "command does not fit the command queue") : 0;
    case J_NEXT_FOLDER:
        if (c->conn.n_inflight > (uint32_t)cl_count_inflight(c, K_ENABLE))
            return 0;
        return sync_next_folder(c);
    default:
        return 0;
    }
}

/* A new connection: replay what is still queued, then sync on from the
 * last finished folder. */
static void sync_resume(satchel_client *c)
{
    /* A window that did not fit in the connection: smaller ones may. */
    if (c->window_cut && c->fetch_window > 16)
        c->fetch_window /= 2;
    c->window_cut = 0;
    c->job = J_QUEUED;
    c->want_replay = 1;
}

static int sync_untagged(satchel_client *c, const satchel_imap_resp *r)
{
    const satchel_imap_arg *a = r->args, *code = r->code;
    uint32_t num;
    if (r->status != SATCHEL_STATUS_NONE) {
        if (code && c->job == J_SELECT) {
            if (satchel_imap_arg_is(code, "UIDVALIDITY"))
                satchel_imap_arg_u32(code->next, &c->fs.uidvalidity);
            else if (satchel_imap_arg_is(code, "UIDNEXT"))
                satchel_imap_arg_u32(code->next, &c->fs.uidnext);
            else if (satchel_imap_arg_is(code, "HIGHESTMODSEQ"))
                satchel_imap_arg_u64(code->next, UINT64_MAX, &c->fs.hms);
            else if (satchel_imap_arg_is(code, "NOMODSEQ"))
                c->fs.nomodseq = 1;
        }
        return 0;
    }
    if (satchel_imap_arg_is(a, "VANISHED"))
        return sync_on_vanished(c, a);
    if (satchel_imap_arg_u32(a, &num) == 0 && a->next) {
        const satchel_imap_arg *w = a->next;
        if (satchel_imap_arg_is(w, "EXISTS")) {
            if (c->job == J_SELECT)
                c->fs.exists = num;
        } else if (satchel_imap_arg_is(w, "EXPUNGE")) {
            /* Sequence-numbered expunge: we do not map sequence numbers to
             * UIDs, so let the next sync reconcile. */
            if (c->job == J_FOLLOW || c->job == J_WINDOWS || c->job == J_SELECT)
                c->fs.incomplete = 1;
        } else if (satchel_imap_arg_is(w, "FETCH")) {
            return sync_on_fetch(c, a, r->truncated);
        }
    }
    return 0;
}

/* The output drained: windows that did not fit go out now. */
static int sync_pump(satchel_client *c)
{
    if (c->job == J_WINDOWS && !cl_count_inflight(c, K_RESUME))
        return fill_windows(c);
    return 0;
}

const struct cl_job cl_job_sync = {sync_untagged, sync_tagged, sync_advance, sync_resume,
                                   sync_pump};

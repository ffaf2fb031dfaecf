/* Folder listing: LIST (with SPECIAL-USE and LIST-STATUS when offered),
 * folder roles, and the sweep of folders the server no longer lists. */
#include "client_internal.h"

#include <string.h>

/* ---------- LIST ---------- */

static uint8_t role_from_name(const char *name, char delim)
{
    /* Without SPECIAL-USE, guess from the leaf name as common servers and
     * clients spell it (Thunderbird, K-9 and Dovecot's defaults). */
    static const struct {
        const char *n;
        uint8_t role;
    } guess[] = {
        {"sent", SATCHEL_ROLE_SENT},          {"sent items", SATCHEL_ROLE_SENT},
        {"sent messages", SATCHEL_ROLE_SENT}, {"sent mail", SATCHEL_ROLE_SENT},
        {"drafts", SATCHEL_ROLE_DRAFTS},      {"draft", SATCHEL_ROLE_DRAFTS},
        {"trash", SATCHEL_ROLE_TRASH},        {"deleted items", SATCHEL_ROLE_TRASH},
        {"deleted messages", SATCHEL_ROLE_TRASH}, {"bin", SATCHEL_ROLE_TRASH},
        {"junk", SATCHEL_ROLE_JUNK},          {"spam", SATCHEL_ROLE_JUNK},
        {"junk e-mail", SATCHEL_ROLE_JUNK},   {"archive", SATCHEL_ROLE_ARCHIVE},
        {"archives", SATCHEL_ROLE_ARCHIVE},
    };
    const char *leaf = name;
    size_t i;
    if (delim) {
        const char *p = strrchr(name, delim);
        if (p)
            leaf = p + 1;
    }
    for (i = 0; i < sizeof guess / sizeof guess[0]; i++)
        if (satchel_ascii_ieq(leaf, strlen(leaf), guess[i].n))
            return guess[i].role;
    return SATCHEL_ROLE_NONE;
}

int cl_name_from_wire(const satchel_client *c, const satchel_imap_arg *a, char *out,
                      int *verbatim)
{
    const char *s;
    uint32_t n;
    size_t len;
    *verbatim = 0;
    if (a->type == SATCHEL_ARG_NIL) {
        /* In a name's place NIL is a folder called NIL (RFC 9051 mailbox
         * is an astring), in whatever case it was sent. */
        s = a->str;
        n = 3;
    } else if (!satchel_imap_arg_string(a, &s, &n)) {
        return -1;
    }
    if (n == 0 || memchr(s, 0, n))
        return -1;
    /* Longer than the parser keeps: too long to keep, said, not dropped. */
    if (a->flags & SATCHEL_ARG_F_TRUNCATED)
        return -2;
    if (!c->conn.utf8_on &&
        satchel_mutf7_decode(s, n, out, SATCHEL_OPT_MAX_FOLDER_NAME + 1, &len, NULL) == 0)
        return 0;
    /* UTF-8 on the wire, or a server that does not encode (raw 8-bit or a
     * stray '&'): keep its bytes, and send them back the same way. */
    if (n > SATCHEL_OPT_MAX_FOLDER_NAME)
        return -2;
    memcpy(out, s, n);
    out[n] = '\0';
    *verbatim = !c->conn.utf8_on;
    return 0;
}

static int list_on_list(satchel_client *c, const satchel_imap_arg *a)
{
    /* a = "LIST" (attrs) delim name */
    const satchel_imap_arg *attrs = a->next, *delim, *name;
    satchel_folder f, old;
    char *s = c->wire_name;
    size_t n;
    uint8_t role = SATCHEL_ROLE_NONE, flags = 0;
    int rc, verbatim;

    if (!attrs || attrs->type != SATCHEL_ARG_LIST || !(delim = attrs->next) ||
        !(name = delim->next))
        return 0; /* malformed LIST lines are ignored, not fatal */
    if ((rc = cl_name_from_wire(c, name, s, &verbatim)) == -2) {
        /* Not kept, but not silently: the user hears which folder. */
        satchel_event ev;
        uint32_t k = name->len < 60 ? name->len : 60;
        memcpy(s, name->str, k);
        memcpy(s + k, "...", 4);
        memset(&ev, 0, sizeof ev);
        ev.type = SATCHEL_EV_FOLDER_ERROR;
        ev.folder = s;
        ev.err = SATCHEL_E_RANGE;
        {
            /* "... longer than N bytes ...", N the build's limit. */
            static const char pre[] = "folder name longer than the store's ";
            static const char post[] = "-byte limit (SATCHEL_OPT_MAX_FOLDER_NAME): "
                                       "not kept";
            char *t = c->wire_name + 64, num[12];
            uint32_t v = SATCHEL_OPT_MAX_FOLDER_NAME, d = 0;
            do {
                num[d++] = (char)('0' + v % 10u);
                v /= 10u;
            } while (v);
            memcpy(t, pre, sizeof pre - 1);
            t += sizeof pre - 1;
            while (d)
                *t++ = num[--d];
            memcpy(t, post, sizeof post);
            ev.text = c->wire_name + 64;
        }
        cl_emit(c, &ev);
        return 0;
    }
    if (rc < 0)
        return 0;
    n = strlen(s);
    if (verbatim)
        flags |= SATCHEL_FOLDER_VERBATIM;
    for (a = attrs->child; a; a = a->next) {
        if (satchel_imap_arg_is(a, "\\Noselect") ||
            satchel_imap_arg_is(a, "\\NonExistent"))
            flags |= SATCHEL_FOLDER_NOSELECT;
        else if (satchel_imap_arg_is(a, "\\Noinferiors"))
            flags |= SATCHEL_FOLDER_NOINFERIORS;
        else if (satchel_imap_arg_is(a, "\\Sent"))
            role = SATCHEL_ROLE_SENT;
        else if (satchel_imap_arg_is(a, "\\Drafts"))
            role = SATCHEL_ROLE_DRAFTS;
        else if (satchel_imap_arg_is(a, "\\Trash"))
            role = SATCHEL_ROLE_TRASH;
        else if (satchel_imap_arg_is(a, "\\Archive"))
            role = SATCHEL_ROLE_ARCHIVE;
        else if (satchel_imap_arg_is(a, "\\Junk"))
            role = SATCHEL_ROLE_JUNK;
        else if (satchel_imap_arg_is(a, "\\All"))
            role = SATCHEL_ROLE_ALL;
        else if (satchel_imap_arg_is(a, "\\Flagged"))
            role = SATCHEL_ROLE_FLAGGED;
    }
    if ((rc = cl_txn(c)) < 0)
        return rc;
    memset(&f, 0, sizeof f);
    memcpy(f.name, s, n);
    f.name[n] = '\0';
    rc = satchel_store_folder_get(c->store, c->txn, f.name, &old);
    if (rc == 0) {
        f = old;
    } else if (rc == SATCHEL_E_STORE) {
        /* Its record is damaged: it stays as it is, with its messages,
         * for `store check` and salvage; the walks pass over it (neither
         * synced nor swept) and every other folder syncs. */
        satchel_event ev;
        memset(&ev, 0, sizeof ev);
        ev.type = SATCHEL_EV_FOLDER_ERROR;
        ev.folder = f.name;
        ev.err = SATCHEL_E_STORE;
        ev.text = "folder record damaged in the store: not synced (run store check)";
        cl_emit(c, &ev);
        return 0;
    } else if (rc != SATCHEL_E_NOTFOUND) {
        return cl_fail(c, rc, "cannot read folder record");
    }
    f.delim = 0;
    if (delim->type == SATCHEL_ARG_STRING && delim->len == 1)
        f.delim = delim->str[0];
    if (satchel_ascii_ieq(s, n, "INBOX"))
        role = SATCHEL_ROLE_INBOX;
    if (role == SATCHEL_ROLE_NONE && !(c->conn.caps & SATCHEL_CAP_SPECIAL_USE))
        role = role_from_name(f.name, f.delim);
    f.role = role;
    f.flags = flags;
    f.list_gen = c->list_gen;
    rc = satchel_store_folder_put(c->txn, &f);
    if (rc == 0 && f.id)
        rc = 0;
    if (rc < 0)
        return cl_fail(c, rc, "cannot store folder");
    return 0;
}

/* LIST-STATUS: a folder whose UIDVALIDITY, UIDNEXT, message count and
 * HIGHESTMODSEQ all equal the stored ones has nothing to sync.  Without
 * HIGHESTMODSEQ flag changes would be invisible, so such folders are
 * always selected. */
static void list_on_status(satchel_client *c, const satchel_imap_arg *a)
{
    const satchel_imap_arg *name = a->next, *list, *k;
    uint64_t messages = UINT64_MAX, uidnext = 0, uidvalidity = 0, hms = 0, v;
    satchel_folder f;
    uint32_t pending = 0;
    char *buf = c->wire_name;
    int verbatim;
    if (!name || !(list = name->next) || list->type != SATCHEL_ARG_LIST ||
        cl_name_from_wire(c, name, buf, &verbatim) < 0)
        return;
    for (k = list->child; k && k->next; k = k->next->next) {
        if (satchel_imap_arg_u64(k->next, UINT64_MAX, &v) < 0)
            continue;
        if (satchel_imap_arg_is(k, "MESSAGES"))
            messages = v;
        else if (satchel_imap_arg_is(k, "UIDNEXT"))
            uidnext = v;
        else if (satchel_imap_arg_is(k, "UIDVALIDITY"))
            uidvalidity = v;
        else if (satchel_imap_arg_is(k, "HIGHESTMODSEQ"))
            hms = v;
    }
    if (satchel_store_folder_get(c->store, c->txn, buf, &f) < 0 ||
        satchel_store_msg_count_pending(c->store, c->txn, f.id, &pending) < 0)
        return;
    if (f.list_gen != c->list_gen)
        return; /* its LIST line did not come first: select it */
    if (hms && hms == f.highestmodseq && uidvalidity == f.uidvalidity &&
        uidnext == f.uidnext && f.uidvalidity && messages == (uint64_t)(f.count - pending)) {
        f.flags |= SATCHEL_FOLDER_UNCHANGED;
        if (cl_txn(c) < 0 || satchel_store_folder_put(c->txn, &f) < 0)
            cl_fail(c, SATCHEL_E_STORE, "cannot mark an unchanged folder");
    } else if (messages == 0 && f.count == 0 && uidvalidity && uidvalidity <= UINT32_MAX &&
             uidnext && uidnext <= UINT32_MAX &&
             (f.uidvalidity == 0 || f.uidvalidity == uidvalidity)) {
        /* Empty on both sides, first sync too: the STATUS said all that a
         * SELECT would, so record it as a completed sync and select nothing. */
        f.uidvalidity = (uint32_t)uidvalidity;
        f.uidnext = (uint32_t)uidnext;
        f.highestmodseq = (c->conn.caps & SATCHEL_CAP_CONDSTORE) ? hms : 0;
        f.flags |= SATCHEL_FOLDER_UNCHANGED;
        if (cl_txn(c) < 0 || satchel_store_folder_put(c->txn, &f) < 0 ||
            satchel_store_synced_mark(c->txn, f.id) < 0) {
            cl_fail(c, SATCHEL_E_STORE, "cannot store an empty folder's state");
            return;
        }
    }
}

/* Folders the server no longer lists are gone: drop them with their mail. */
static int list_done(satchel_client *c)
{
    satchel_folder f;
    uint32_t after = 0;
    int rc;
    if ((rc = cl_txn(c)) < 0)
        return rc;
    for (;;) {
        rc = satchel_store_folder_next_id(c->store, c->txn, after, &f);
        if (rc == SATCHEL_E_NOTFOUND)
            break;
        if (rc < 0)
            return cl_fail(c, rc, "cannot read folders");
        after = f.id;
        if (f.list_gen != c->list_gen && f.list_gen != UINT32_MAX) {
            /* (UINT32_MAX: created offline, not yet on the server) */
            rc = satchel_store_folder_delete(c->txn, f.name);
            if (rc < 0)
                return cl_fail(c, rc, "cannot delete folder");
        }
    }
    return cl_commit(c, 0);
}

int list_send(satchel_client *c)
{
    /* Mark and sweep: folders the LIST does not stamp with a generation
     * newer than any stored one are gone from the server. */
    satchel_folder f;
    uint32_t gen = 0;
    f.id = 0;
    while (satchel_store_folder_next_id(c->store, NULL, f.id, &f) == 0)
        if (f.list_gen > gen && f.list_gen != UINT32_MAX)
            gen = f.list_gen;
    c->list_gen = gen + 1;
    c->clean_gen = 0;
    c->status_phase = 0;
    if (c->conn.caps & SATCHEL_CAP_LIST_EXTENDED) {
        /* RFC 5819: the state of every folder in the same round trip, so
         * unchanged folders need no SELECT at all. */
        int su = (c->conn.caps & SATCHEL_CAP_SPECIAL_USE) != 0;
        int st = (c->conn.caps & SATCHEL_CAP_LIST_STATUS) != 0;
        int ms = st && (c->conn.caps & SATCHEL_CAP_CONDSTORE);
        int rc;
        if (su || st) {
            if ((rc = cl_cmd_begin(c, K_LIST)) < 0 ||
                (rc = cl_out_str(c, "LIST \"\" \"*\" RETURN (")) < 0 ||
                (su && (rc = cl_out_str(c, "SPECIAL-USE")) < 0) ||
                (su && st && (rc = cl_out_str(c, " ")) < 0) ||
                (st && (rc = cl_out_str(c, ms ? "STATUS (MESSAGES UIDNEXT UIDVALIDITY "
                                             "HIGHESTMODSEQ)"
                                           : "STATUS (MESSAGES UIDNEXT UIDVALIDITY)")) < 0) ||
                (rc = cl_out_str(c, ")")) < 0 || (rc = cl_cmd_end(c)) < 0)
                return rc;
            if (st)
                c->clean_gen = c->list_gen;
            return 0;
        }
    }
    return cl_simple_cmd(c, K_LIST, "LIST \"\" \"*\"");
}

/* Without LIST-STATUS: STATUS of each stored folder, in id order from
 * status_id, as many as the in-flight
 * table and the output take; the pump and each answer send more, so the
 * commands never wait for a round trip of their own (one flight, as the
 * wire sees it) and no folder count costs memory.  When none is left to
 * send or answer, on to the folders, which skip the ones their STATUS
 * shows unchanged (list_on_status). */
static int status_more(satchel_client *c)
{
    satchel_folder f;
    int rc;
    int ms = (c->conn.caps & SATCHEL_CAP_CONDSTORE) != 0;
    while (c->status_phase && c->conn.n_inflight + 4 < MAX_INFLIGHT) {
        rc = satchel_store_folder_next_id(c->store, c->txn, c->status_id, &f);
        if (rc == SATCHEL_E_NOTFOUND) {
            c->status_phase = 0;
            break;
        }
        if (rc < 0)
            return cl_fail(c, rc, "cannot read folders");
        if ((f.flags & SATCHEL_FOLDER_NOSELECT) || f.list_gen != c->list_gen) {
            c->status_id = f.id;
            continue;
        }
        if ((rc = cl_cmd_begin(c, K_STATUS)) < 0 || (rc = cl_out_str(c, "STATUS ")) < 0 ||
            (rc = cl_out_mailbox(c, f.name)) < 0 ||
            (rc = cl_out_str(c, ms ? " (MESSAGES UIDNEXT UIDVALIDITY HIGHESTMODSEQ)"
                                   : " (MESSAGES UIDNEXT UIDVALIDITY)")) < 0 ||
            (rc = cl_cmd_end(c)) < 0) {
            if (rc == SATCHEL_E_AGAIN)
                return 0; /* the rest when the output drains */
            /* a name no command can carry: that folder is selected */
            c->status_id = f.id;
            continue;
        }
        c->status_id = f.id;
    }
    if (!c->status_phase && !cl_count_inflight(c, K_STATUS)) {
        /* the unchanged marks, before the folders are read */
        if ((rc = cl_commit(c, 0)) < 0)
            return rc;
        c->status_id = 0;
        c->job = J_NEXT_FOLDER;
        return cl_job_advance(c);
    }
    return 0;
}

/* The LIST (or LIST-STATUS) completed: sweep, then sync folder by folder.
 * A STATUS answer (refused: that folder is selected) sends more. */
static int list_tagged(satchel_client *c, uint8_t kind, uint64_t arg, int ok,
                       const satchel_imap_resp *r)
{
    int rc;
    (void)arg;
    if (kind == K_STATUS)
        return c->job == J_LIST ? status_more(c) : 0;
    if (!ok) {
        cl_set_error(c, SATCHEL_E_SERVER, "LIST failed", r->text, r->text_len);
        return cl_fail(c, SATCHEL_E_SERVER, c->err_text);
    }
    if ((rc = list_done(c)) < 0)
        return rc;
    if (c->job_all && !c->clean_gen) {
        c->clean_gen = c->list_gen;
        c->status_phase = 1;
        c->status_id = 0;
        return status_more(c);
    }
    c->job = J_NEXT_FOLDER;
    /* (cursor: "" for a new job, the last finished folder on resume) */
    return cl_job_advance(c);
}

static int list_pump(satchel_client *c)
{
    return c->job == J_LIST && c->status_phase ? status_more(c) : 0;
}

static int list_untagged(satchel_client *c, const satchel_imap_resp *r)
{
    const satchel_imap_arg *a = r->args;
    if (!a || !(cl_count_inflight(c, K_LIST) || cl_count_inflight(c, K_STATUS)))
        return 0;
    if (satchel_imap_arg_is(a, "LIST"))
        return list_on_list(c, a);
    if (satchel_imap_arg_is(a, "STATUS"))
        list_on_status(c, a);
    return 0;
}

const struct cl_job cl_job_list = {list_untagged, list_tagged, NULL, NULL, list_pump};

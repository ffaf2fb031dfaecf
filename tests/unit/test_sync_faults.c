/* Sync faults of issue 10 as data: each row is a server answer that RFC
 * 9051 / RFC 7162 allow (reordered, interleaved, unilateral FETCH) or a
 * server fault (a window refused, a FETCH without its UID, a cut), applied
 * by the scripted server's answer rewrites (tests/fuzz/mock_server.h) to
 * the commands whose text contains `match`.
 *
 * After the perturbed sync the store must hold every server UID below the
 * stored UIDNEXT (what the store claims complete; an expunge it could not
 * confirm may still be there); rows marked `equal` must already equal the
 * server.  Then one
 * clean sync must make the store equal the server exactly (UIDs and
 * flags), and the store must be consistent throughout.
 *
 * Seeds the convergence harness (tests/integration/test_converge.py)
 * found are added here as rows when the mock can express them. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../fuzz/client_driver.h"
#include "satchel/opt.h"
#include "satchel/ops.h"
#include "satchel/seqset.h"
#include "../../core/store_internal.h"

#define CHECK_CONTEXT row->name
#include "check.h"

#define MAX_RULES 3

struct row {
    const char *name;
    const char *caps;
    unsigned n_msgs;       /* INBOX messages before anything */
    unsigned window;       /* fetch window (0: 3) */
    int presync;           /* a clean first sync before the perturbed one */
    size_t presync_cut;    /* ... cut after this many server bytes (0: none) */
    /* server changes between the first and the perturbed sync */
    unsigned expunge_uid;  /* 0: none */
    unsigned seen_uid;     /* mark \Seen (0: none) */
    unsigned add_msgs;
    int equal;             /* the perturbed sync alone must converge */
    mock_rule rules[MAX_RULES];
    /* UIDs put in the store after the first sync, as a replayed move does
     * with the UID COPYUID names (0-terminated) */
    unsigned stored[4];
    unsigned unused_rule; /* 1-based: this rule must never apply */
    uint32_t first_uid;   /* the folder's UIDs start here (0: at 1) */
    uint32_t want_uidnext; /* the stored UIDNEXT after the perturbed sync
                              must be at least this (0: not checked) */
    /* fault 4: the server's counters moved back after the expunge (0: no) */
    uint32_t set_uidnext;
    uint64_t set_hms;
    uint32_t claim_uidnext; /* the UIDNEXT the server claims at the first sync */
};

static const struct row rows[] = {
    /* Fault 1: no CONDSTORE; the answer to UID FETCH 1:3 (UID FLAGS) begins
     * with message 3 (a legal unilateral FETCH, or just another order).
     * Deleted 1 and 2 for good before. */
    {"reconcile: 3 before 1, 2, 3", MOCK_CAPS_NONE, 3, 0, 1, 0, 0, 3, 0, 1,
     {{"UID FETCH 1:3 (UID FLAGS)", MOCK_R_PREPEND, "* 3 FETCH (FLAGS (\\Seen) UID 3)\r\n",
       0, 0, 0}}, {0}, 0, 0, 0, 0, 0, 0},
    {"reconcile: answer in reverse order, one expunged", MOCK_CAPS_NONE, 6, 0, 1, 0, 4, 0,
     0, 1, {{"UID FETCH 1:", MOCK_R_REVERSE, NULL, 0, 0, 0}}, {0}, 0, 0, 0, 0, 0, 0},
    {"reconcile: answer refused", MOCK_CAPS_NONE, 5, 0, 1, 0, 2, 0, 0, 0,
     {{"UID FETCH 1:", MOCK_R_NO, NULL, 0, 1, 0}}, {0}, 0, 0, 0, 0, 0, 0},
    /* Fault 3: a FETCH without UID inside the answer to a window; messages
     * 3 and 4 were dropped and the sync said new 0. */
    {"window: UID-less unilateral FETCH inside", MOCK_CAPS_NONE, 4, 2, 0, 0, 0, 1, 0, 1,
     {{"FETCH 3:4 (", MOCK_R_INSERT, "* 1 FETCH (FLAGS (\\Seen))\r\n", 1, 0, 0}}, {0}, 0, 0, 0, 0, 0, 0},
    {"window: UID-less unilateral FETCH inside, QRESYNC", MOCK_CAPS_FULL, 4, 2, 0, 0, 0, 0,
     0, 1, {{"FETCH 3:4 (", MOCK_R_INSERT, "* 1 FETCH (FLAGS ())\r\n", 0, 0, 0}}, {0}, 0, 0, 0, 0, 0, 0},
    /* Fault 2: a committed block must be complete. */
    {"window: answered NO", MOCK_CAPS_FULL, 8, 2, 0, 0, 0, 0, 0, 0,
     {{"FETCH 5:6 (", MOCK_R_NO, NULL, 0, 0, 0}}, {0}, 0, 0, 0, 0, 0, 0},
    {"window: one answer without its UID", MOCK_CAPS_CONDSTORE, 8, 2, 0, 0, 0, 0, 0, 0,
     {{"FETCH 5:6 (", MOCK_R_DROP_UID, NULL, 1, 0, 0}}, {0}, 0, 0, 0, 0, 0, 0},
    {"window: answers in reverse order", MOCK_CAPS_NONE, 9, 3, 0, 0, 0, 0, 0, 1,
     {{"FETCH ", MOCK_R_REVERSE, NULL, 0, 0, 0}}, {0}, 0, 0, 0, 0, 0, 0},
    {"new messages: window refused after a first sync", MOCK_CAPS_CONDSTORE, 4, 2, 1, 0, 0,
     0, 5, 0, {{"FETCH 6:7 (", MOCK_R_NO, NULL, 0, 0, 0}}, {0}, 0, 0, 0, 0, 0, 0},
    /* A cut first sync leaves a kept block; its check and the resume
     * windows answered in reverse order, with an expunge in the block. */
    {"resume: block and windows reversed", MOCK_CAPS_NONE, 12, 3, 1, 2600, 11, 0, 2, 1,
     {{"UID FETCH ", MOCK_R_REVERSE, NULL, 0, 0, 0}}, {0}, 0, 0, 0, 0, 0, 0},
    {"resume: block check refused", MOCK_CAPS_CONDSTORE, 12, 3, 1, 2600, 0, 10, 0, 0,
     {{"(UID FLAGS)", MOCK_R_NO, NULL, 0, 1, 0}}, {0}, 0, 0, 0, 0, 0, 0},
    /* Seed 156969000913 (Cyrus): two messages moved in by a replay got UIDs
     * 6 and 8 while another client delivered 7; the store took 6..8 for a
     * block made by windows, trusted it, and never fetched 7. */
    {"replayed moves above U leave a hole", MOCK_CAPS_FULL, 5, 0, 1, 0, 0, 0, 3, 1,
     {{"UID FETCH 6:8 (UID FLAGS)", MOCK_R_REVERSE, NULL, 0, 0, 0}}, {6, 8, 0}, 0, 0, 0, 0, 0, 0},
    {"replayed moves above U leave a hole, CONDSTORE", MOCK_CAPS_CONDSTORE, 5, 0, 1, 0, 0,
     0, 3, 1, {{"UID FETCH 6:8 (UID FLAGS)", MOCK_R_REVERSE, NULL, 0, 0, 0}}, {6, 8, 0}, 0, 0, 0, 0, 0, 0},
    /* Fault 5: ENABLE QRESYNC answered OK without "* ENABLED QRESYNC":
     * QRESYNC must not be used (the second rule would refuse it). */
    {"ENABLE OK without ENABLED QRESYNC", MOCK_CAPS_FULL, 6, 0, 1, 0, 2, 3, 1, 1,
     {{"ENABLE ", MOCK_R_DROP, NULL, 0, 0, 0}, {"(QRESYNC", MOCK_R_NO, NULL, 0, 0, 0}},
     {0}, 2, 0, 0, 0, 0, 0},
    /* Fault 6: UID 4294967295.  UIDNEXT wrapped to 0 and every sync fetched
     * the whole folder again: a no-change sync must fetch no headers. */
    {"UID 4294967295, no-change resync", MOCK_CAPS_NONE, 3, 0, 1, 0, 0, 0, 0, 1,
     {{"BODY.PEEK[HEADER.FIELDS", MOCK_R_NO, NULL, 0, 0, 0}}, {0}, 1, 4294967293u, 0, 0, 0, 0},
    {"UID 4294967295, no-change resync, QRESYNC", MOCK_CAPS_FULL, 3, 0, 1, 0, 0, 0, 0, 1,
     {{"BODY.PEEK[HEADER.FIELDS", MOCK_R_NO, NULL, 0, 0, 0}}, {0}, 1, 4294967293u, 0, 0, 0, 0},
    {"UID 4294967295, one expunged below", MOCK_CAPS_CONDSTORE, 3, 0, 1, 0, 4294967294u, 0,
     0, 1, {{"BODY.PEEK[HEADER.FIELDS", MOCK_R_NO, NULL, 0, 0, 0}}, {0}, 1, 4294967293u, 0, 0, 0, 0},
    /* Fault 11: Courier names no UIDNEXT.  A replayed move stored its
     * message at UID 6, above U; nothing newer came, and U stayed 6: every
     * later sync checked that "kept block" again (a round trip and two
     * commands more, for ever). */
    {"no UIDNEXT, a replayed move above U", MOCK_CAPS_NONE, 5, 0, 1, 0, 0, 0, 1, 1,
     {{"SELECT", MOCK_R_DROP_TEXT, "UIDNEXT", 0, 0, 0},
      /* and, like Courier, "7:*" names nothing when 7 is past the end */
      {"UID FETCH 7:*", MOCK_R_DROP, NULL, 0, 0, 0}},
     {6, 0}, 0, 0, 7, 0, 0, 0},
    /* Fault 6: under QRESYNC the new messages were counted as EXISTS minus
     * the stored count.  UID 2 is expunged but its VANISHED never comes (a
     * stale stored UID) and UID 6 is delivered: the counts cancel out, 6
     * was never fetched and UIDNEXT moved past it.  Then the same with the
     * new UID listed twice (a unilateral FETCH next to the answer). */
    {"QRESYNC: a stale stored UID and a new one cancel out", MOCK_CAPS_FULL, 5, 0, 1, 0, 2,
     0, 1, 1, {{"SELECT", MOCK_R_DROP_TEXT, "VANISHED", 0, 0, 0}}, {0}, 0, 0, 0, 0, 0, 0},
    {"QRESYNC: a new UID listed twice", MOCK_CAPS_FULL, 5, 0, 1, 0, 0, 0, 1, 1,
     {{"UID FETCH 6:* (UID)", MOCK_R_PREPEND, "* 6 FETCH (FLAGS (\\Flagged) UID 6)\r\n", 0,
       0, 0}}, {0}, 0, 0, 0, 0, 0, 0},
    /* Fault 4: counters that go backwards under the same UIDVALIDITY.
     * HIGHESTMODSEQ drops below ours, then a flag changes with a modseq we
     * think we have seen; UIDNEXT drops and an expunged UID is given again
     * to a new message. */
    {"HIGHESTMODSEQ backwards, CONDSTORE", MOCK_CAPS_CONDSTORE, 5, 0, 1, 0, 0, 1, 0, 1,
     {{"SELECT", MOCK_R_NONE, NULL, 0, 0, 0}}, {0}, 0, 0, 0, 0, 1, 0},
    {"HIGHESTMODSEQ backwards, QRESYNC", MOCK_CAPS_FULL, 5, 0, 1, 0, 0, 1, 0, 1,
     {{"SELECT", MOCK_R_NONE, NULL, 0, 0, 0}}, {0}, 0, 0, 0, 0, 1, 0},
    {"UIDNEXT backwards below the one it claimed", MOCK_CAPS_CONDSTORE, 5, 0, 1, 0, 0, 0,
     1, 1, {{"SELECT", MOCK_R_NONE, NULL, 0, 0, 0}}, {0}, 0, 0, 0, 6, 0, 10},
};

/* COPYUID pairing (fault 7): arithmetic on ranges, whatever they span. */
static const struct {
    const char *src, *dst;
    uint32_t uid, want;
    int rc;
} pairs[] = {
    {"1:4294967295", "1:4294967295", 4294967295u, 4294967295u, 1},
    {"1:4294967295", "1:4294967295", 7, 7, 1},
    {"2", "1:4294967295", 2, 1, 1},
    {"4:6,9,20:21", "100:105", 20, 104, 1},
    {"4:6,9,20:21", "100:102,200,300:301", 21, 301, 1},
    {"4:6,9", "100:102", 9, 0, 0},      /* destination shorter */
    {"4:6,9", "100:103", 7, 0, 0},      /* not in the source */
    {"6:4", "13:11", 5, 12, 1},         /* ranges written high to low */
    {"1:4294967295,5", "1:4294967295,9", 5, 5, 1},
    {"1,,2", "1:2", 2, 0, SATCHEL_E_PROTO},
    {"1:2", "0:3", 2, 0, SATCHEL_E_PROTO},
};

static void run_pairs(void)
{
    struct row r0, *row = &r0;
    size_t i;
    memset(&r0, 0, sizeof r0);
    r0.name = "COPYUID pairing";
    for (i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        uint32_t out = 0;
        int rc = satchel_seqset_pair(pairs[i].src, strlen(pairs[i].src), pairs[i].dst,
                                     strlen(pairs[i].dst), pairs[i].uid, &out);
        CHECK(rc == pairs[i].rc && (rc != 1 || out == pairs[i].want),
              "[COPYUID %s %s] UID %u: rc %d out %u, want rc %d out %u", pairs[i].src,
              pairs[i].dst, pairs[i].uid, rc, out, pairs[i].rc, pairs[i].want);
    }
}

/* What a replayed move leaves in its destination: the message under the
 * UID the server named. */
static int put_stored(satchel_store *s, const unsigned *uids)
{
    satchel_store_txn *t;
    satchel_folder f;
    satchel_msg m;
    int rc;
    if ((rc = satchel_store_folder_get(s, NULL, "INBOX", &f)) < 0 ||
        (rc = satchel_store_begin(s, &t)) < 0)
        return rc;
    for (; *uids; uids++) {
        memset(&m, 0, sizeof m);
        m.uid = *uids;
        m.flags = MOCK_F_FLAGGED;
        snprintf(m.subject, sizeof m.subject, "moved here");
        if ((rc = satchel_store_msg_put(t, &f, &m, NULL)) < 0) {
            satchel_store_abort(t);
            return rc;
        }
    }
    if ((rc = satchel_store_folder_put(t, &f)) < 0) {
        satchel_store_abort(t);
        return rc;
    }
    return satchel_store_commit(t);
}

static void client_cfg(satchel_client_config *cfg, unsigned window)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->security = SATCHEL_SECURITY_NONE;
    cfg->user = "alice";
    cfg->password = "secret-pass-1";
    cfg->fetch_window = window ? window : 3;
}

/* A new store in a temporary folder (dir), or -1 after a failed check. */
static int fresh_store(const struct row *row, char *dir, size_t cap, satchel_store **s)
{
    if (cd_mkdtemp(dir, cap, "syncfaults") < 0 || satchel_store_open(NULL, dir, 0, s) < 0) {
        CHECK(0, "cannot make a store");
        return -1;
    }
    return 0;
}

/* A client of the test account (window 0: 3), or NULL after a failed
 * check. */
static satchel_client *new_client(const struct row *row, satchel_store *s, unsigned window)
{
    satchel_client_config cfg;
    satchel_client *c;
    client_cfg(&cfg, window);
    if (satchel_client_new(NULL, &cfg, s, &c) < 0) {
        CHECK(0, "cannot make a client");
        return NULL;
    }
    return c;
}

static void start_run(cd_run *run, size_t max_chunk)
{
    memset(run, 0, sizeof *run);
    run->now = 1000;
    run->max_chunk = max_chunk;
}

/* The end of a case: the store closed and removed, the server freed. */
static void finish(satchel_store *s, const char *dir, mock_server *ms)
{
    satchel_store_close(s);
    cd_rmdir(dir);
    mock_free(ms);
}

static int sync_once(satchel_store *s, mock_server *ms, unsigned window, size_t cut)
{
    satchel_client_config cfg;
    satchel_client *c;
    cd_run run;
    int rc;
    client_cfg(&cfg, window);
    if ((rc = satchel_client_new(NULL, &cfg, s, &c)) < 0)
        return rc;
    start_run(&run, 0);
    run.max_chunk = 97; /* any split gives the same result */
    run.cut_after = cut;
    rc = cd_drive_mock(c, ms, &run, 0);
    satchel_client_free(c);
    return rc;
}

struct collect {
    uint32_t uids[64], flags[64];
    unsigned n;
};

static int collect_cb(void *ctx, const satchel_msg *m)
{
    struct collect *c = ctx;
    if (c->n < 64) {
        c->uids[c->n] = m->uid;
        c->flags[c->n] = m->flags & 0x1fu;
        c->n++;
    }
    return 0;
}

/* Compare INBOX with the server.  exact: equal; else only what the store
 * claims (nothing missing below UIDNEXT). */
static void compare(const struct row *row, satchel_store *s, mock_server *ms, int exact,
                    const char *when)
{
    satchel_folder f;
    struct collect got;
    const mock_folder *mf = &ms->f[0];
    char why[300];
    unsigned i, j;
    CHECK(cd_store_check(s, why, sizeof why) == 0, "%s: store inconsistent: %s", when, why);
    if (satchel_store_folder_get(s, NULL, "INBOX", &f) < 0) {
        CHECK(!exact, "%s: INBOX not in the store", when);
        return;
    }
    memset(&got, 0, sizeof got);
    satchel_store_msg_list(s, f.id, 0, UINT32_MAX, collect_cb, &got);
    for (i = 0; i < got.n; i++) {
        for (j = 0; j < mf->n && mf->msgs[j].uid != got.uids[i]; j++)
            ;
        /* an unfinished sync may still hold what the server expunged:
         * nothing was deleted on a guess */
        CHECK(j < mf->n || !exact, "%s: UID %u stored but not on the server", when,
              got.uids[i]);
        if (j < mf->n && exact)
            CHECK((mf->msgs[j].flags & 0x1fu) == got.flags[i],
                  "%s: UID %u flags %#x, server %#x", when, got.uids[i], got.flags[i],
                  mf->msgs[j].flags & 0x1fu);
    }
    for (j = 0; j < mf->n; j++) {
        uint32_t u = mf->msgs[j].uid;
        for (i = 0; i < got.n && got.uids[i] != u; i++)
            ;
        if (exact)
            CHECK(i < got.n, "%s: server UID %u missing from the store", when, u);
        else
            CHECK(i < got.n || u >= f.uidnext,
                  "%s: server UID %u missing below the stored UIDNEXT %u (it would never "
                  "be fetched)", when, u, f.uidnext);
    }
}

static void run_row(const struct row *row)
{
    mock_server ms;
    mock_rule rules[MAX_RULES];
    satchel_store *s;
    char dir[256];
    unsigned i, nr = 0;
    int rc;
    mock_init(&ms, row->caps);
    mock_add_folder(&ms, "INBOX", "", 7001);
    if (row->first_uid)
        ms.f[0].uidnext = row->first_uid;
    for (i = 0; i < row->n_msgs; i++)
        mock_add_msg(&ms, 0, i % 2 ? MOCK_F_SEEN : 0, MOCK_V_PLAIN);
    if (fresh_store(row, dir, sizeof dir, &s) < 0)
        return;
    if (row->claim_uidnext)
        ms.f[0].uidnext = row->claim_uidnext;
    if (row->presync) {
        rc = sync_once(s, &ms, row->window, row->presync_cut);
        CHECK(row->presync_cut || rc == 0, "first sync rc %d", rc);
    }
    if (row->expunge_uid)
        mock_expunge(&ms, 0, row->expunge_uid);
    if (row->set_uidnext)
        ms.f[0].uidnext = row->set_uidnext;
    if (row->set_hms)
        ms.f[0].hms = row->set_hms;
    if (row->seen_uid)
        mock_set_flags(&ms, 0, row->seen_uid, MOCK_F_SEEN);
    for (i = 0; i < row->add_msgs; i++)
        mock_add_msg(&ms, 0, MOCK_F_FLAGGED, MOCK_V_PLAIN);
    if (row->stored[0])
        CHECK(put_stored(s, row->stored) == 0, "cannot put the moved messages");
    for (i = 0; i < MAX_RULES && row->rules[i].match; i++)
        rules[nr++] = row->rules[i];
    ms.rules = rules;
    ms.nrules = nr;
    rc = sync_once(s, &ms, row->window, 0);
    CHECK(rc == 0 || !row->equal, "perturbed sync rc %d", rc);
    for (i = 0; i < nr; i++) {
        if (i + 1 == row->unused_rule)
            CHECK(rules[i].used == 0, "rule %u (%s) applied: the client sent what it must "
                  "not", i, rules[i].match);
        else
            CHECK(rules[i].used > 0, "rule %u (%s) never applied: the row tests nothing", i,
                  rules[i].match);
    }
    compare(row, s, &ms, row->equal, "after the perturbed sync");
    if (row->want_uidnext) {
        satchel_folder f;
        CHECK(satchel_store_folder_get(s, NULL, "INBOX", &f) == 0 &&
                  f.uidnext >= row->want_uidnext,
              "stored UIDNEXT %u, want at least %u", f.uidnext, row->want_uidnext);
    }
    ms.nrules = 0;
    rc = sync_once(s, &ms, row->window, 0);
    CHECK(rc == 0, "clean sync rc %d", rc);
    compare(row, s, &ms, 1, "after one clean sync");
    finish(s, dir, &ms);
}

/* Courier's plain NO to a CREATE of a folder that exists (a killed
 * session had sent it): the mkdir was listed as failed although the folder
 * was there.  What the server lists decides; a refusal of a folder that is
 * not there still fails with the server's words. */
static const struct {
    const char *name, *folder;
    int on_server;    /* the folder is already there */
    int want_failed;  /* the mkdir must end failed, with this in its reason */
    const char *reason;
} mkdirs[] = {
    {"mkdir: plain NO, the folder exists", "Projects", 1, 0, NULL},
    {"mkdir: created", "Projects", 0, 0, NULL},
    {"mkdir: refused, not there", "Forbidden", 0, 1, "Permission denied"},
};

static void run_mkdirs(void)
{
    size_t i;
    for (i = 0; i < sizeof mkdirs / sizeof mkdirs[0]; i++) {
        struct row r0, *row = &r0;
        mock_server ms;
        satchel_store *s;
        satchel_folder f;
        satchel_op op;
        uint64_t pending = 9, nfailed = 9;
        char dir[256];
        memset(&r0, 0, sizeof r0);
        r0.name = mkdirs[i].name;
        mock_init(&ms, MOCK_CAPS_NONE);
        mock_add_folder(&ms, "INBOX", "", 7001);
        mock_add_msg(&ms, 0, 0, MOCK_V_PLAIN);
        if (fresh_store(row, dir, sizeof dir, &s) < 0)
            return;
        CHECK(sync_once(s, &ms, 0, 0) == 0, "first sync");
        CHECK(satchel_ops_mkdir(s, mkdirs[i].folder) == 0, "offline mkdir");
        if (mkdirs[i].on_server)
            mock_add_folder(&ms, mkdirs[i].folder, "", 7002);
        CHECK(sync_once(s, &ms, 0, 0) == 0, "sync with the mkdir");
        satchel_store_queue_counts(s, &pending, &nfailed);
        CHECK(pending == 0 && nfailed == (uint64_t)mkdirs[i].want_failed,
              "queue: %llu pending, %llu failed", (unsigned long long)pending,
              (unsigned long long)nfailed);
        if (mkdirs[i].want_failed) {
            CHECK(satchel_store_op_next(s, NULL, 0, &op) == 0 &&
                      strstr(op.reason, mkdirs[i].reason) != NULL,
                  "the reason names the server's words: \"%s\"", op.reason);
        } else {
            CHECK(satchel_store_folder_get(s, NULL, mkdirs[i].folder, &f) == 0 &&
                      mock_folder_by_name(&ms, mkdirs[i].folder) >= 0,
                  "%s on the server and in the store", mkdirs[i].folder);
        }
        finish(s, dir, &ms);
    }
}

/* Fault 10: a server with neither MOVE nor UIDPLUS kept a moved message's
 * original marked \Deleted for ever.  After the batch's marks, UID SEARCH
 * DELETED; an EXPUNGE only when it lists nothing but the batch's marks.
 * Rows: nothing else marked (expunged); another client's mark (nothing
 * expunged); the search answer naming one more (nothing expunged); the
 * search refused (nothing expunged).  Then one clean sync must make the
 * store equal the server, \Deleted flags included. */
#define CAPS_PLAIN "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ NAMESPACE"
static const struct {
    const char *name;
    unsigned other_mark;  /* another client marks this UID \Deleted (0: none) */
    mock_rule rule;
    int expunged;         /* the moved and deleted originals are gone */
} marks[] = {
    {"\\Deleted rule: only the batch's marks", 0, {"UID SEARCH DELETED", MOCK_R_NONE, NULL, 0, 0, 0}, 1},
    {"\\Deleted rule: another client's mark", 4, {"UID SEARCH DELETED", MOCK_R_NONE, NULL, 0, 0, 0}, 0},
    {"\\Deleted rule: the search names one more", 0,
     {"UID SEARCH DELETED", MOCK_R_PREPEND, "* SEARCH 5\r\n", 0, 0, 0}, 0},
    {"\\Deleted rule: the search refused", 0, {"UID SEARCH DELETED", MOCK_R_NO, NULL, 0, 0, 0}, 0},
    /* the answer to the search truncated by the parser (a line past the
     * response arena) must count as other marks */
    {"\\Deleted rule: a search answer too long to keep", 0,
     {"UID SEARCH DELETED", MOCK_R_PREPEND, NULL, 1, 0, 0}, 0},
};

static void run_marks(void)
{
    size_t i;
    for (i = 0; i < sizeof marks / sizeof marks[0]; i++) {
        struct row r0, *row = &r0;
        mock_server ms;
        mock_rule rules[1];
        satchel_store *s;
        char dir[256];
        uint32_t ph = 0;
        int trashed = 0, k, expunges = 0, rc;
        memset(&r0, 0, sizeof r0);
        r0.name = marks[i].name;
        mock_init(&ms, CAPS_PLAIN);
        mock_add_folder(&ms, "INBOX", "", 7001);
        mock_add_folder(&ms, "Archive", "", 7002);
        mock_add_folder(&ms, "Trash", "\\Trash", 7003);
        for (k = 0; k < 6; k++)
            mock_add_msg(&ms, 0, 0, MOCK_V_PLAIN);
        if (fresh_store(row, dir, sizeof dir, &s) < 0)
            return;
        CHECK(sync_once(s, &ms, 0, 0) == 0, "first sync");
        CHECK(satchel_ops_move(s, "INBOX", 2, "Archive", &ph) == 0 &&
                  satchel_ops_delete(s, "INBOX", 3, &trashed, &ph) == 0,
              "offline move and delete");
        if (marks[i].other_mark)
            mock_set_flags(&ms, 0, marks[i].other_mark, MOCK_F_DELETED);
        rules[0] = marks[i].rule;
        if (rules[0].action == MOCK_R_PREPEND && !rules[0].text) {
            /* "* SEARCH 2 3 3 3 ... 3 5": this batch's marks as far as
             * the response arena keeps, another's (5) past it */
            static char longsearch[60 * 1024];
            size_t n = (size_t)snprintf(longsearch, sizeof longsearch, "* SEARCH 2");
            while (n + 8 < sizeof longsearch)
                n += (size_t)snprintf(longsearch + n, sizeof longsearch - n, " 3");
            snprintf(longsearch + n, sizeof longsearch - n, " 5\r\n");
            rules[0].text = longsearch;
            rules[0].arg = 0;
        }
        ms.rules = rules;
        ms.nrules = 1;
        rc = sync_once(s, &ms, 0, 0);
        CHECK(rc == 0, "sync with the replay: rc %d", rc);
        CHECK(rules[0].used == 1, "UID SEARCH DELETED sent %u times, want once", rules[0].used);
        for (k = 2; k <= 3; k++) {
            const mock_msg *m = mock_find(&ms, 0, (uint32_t)k);
            if (marks[i].expunged)
                CHECK(!m, "UID %d still in INBOX on the server", k);
            else
                CHECK(m && (m->flags & MOCK_F_DELETED), "UID %d not left marked \\Deleted", k);
            expunges += !m;
        }
        if (marks[i].other_mark)
            CHECK(mock_find(&ms, 0, marks[i].other_mark) != NULL,
                  "another client's marked message was expunged");
        CHECK(ms.f[1].n == 1 && ms.f[2].n == 1, "Archive %u, Trash %u messages, want 1 each",
              ms.f[1].n, ms.f[2].n);
        ms.nrules = 0;
        CHECK(sync_once(s, &ms, 0, 0) == 0, "clean sync");
        compare(row, s, &ms, 1, "after one clean sync");
        (void)expunges;
        finish(s, dir, &ms);
    }
}

/* Issue 12: without LIST-STATUS a no-change resync selected every folder
 * (one round trip or more each).  STATUS of every stored folder goes out
 * in one stream after the LIST, and only folders it shows changed (or,
 * without CONDSTORE, that are not empty on both sides) are selected. */
static void run_status(const char *caps, int condstore)
{
    struct row r0, *row = &r0;
    mock_server ms;
    mock_rule rules[1];
    satchel_store *s;
    char dir[256];
    unsigned i, k;
    memset(&r0, 0, sizeof r0);
    r0.name = condstore ? "STATUS flight, CONDSTORE" : "STATUS flight, no CONDSTORE";
    mock_init(&ms, caps);
    mock_add_folder(&ms, "INBOX", "", 7001);
    for (k = 1; k < 6; k++) {
        char name[16];
        snprintf(name, sizeof name, "Folder%u", k);
        mock_add_folder(&ms, name, "", 7001 + k);
        for (i = 0; k < 4 && i < k; i++) /* Folder4 and Folder5 stay empty */
            mock_add_msg(&ms, (int)k, 0, MOCK_V_PLAIN);
    }
    mock_add_msg(&ms, 0, 0, MOCK_V_PLAIN);
    if (fresh_store(row, dir, sizeof dir, &s) < 0)
        return;
    CHECK(sync_once(s, &ms, 0, 0) == 0, "first sync");
    memset(rules, 0, sizeof rules);
    rules[0].match = "SELECT ";
    rules[0].action = MOCK_R_NONE;
    ms.rules = rules;
    ms.nrules = 1;
    CHECK(sync_once(s, &ms, 0, 0) == 0, "no-change resync");
    /* without CONDSTORE a STATUS cannot show flags unchanged: only the
     * empty folders are skipped */
    CHECK(rules[0].used == (condstore ? 0u : 4u), "no-change resync: %u SELECTs, want %u",
          rules[0].used, condstore ? 0u : 4u);
    rules[0].used = 0;
    mock_set_flags(&ms, 2, 1, MOCK_F_SEEN);
    mock_add_msg(&ms, 3, MOCK_F_FLAGGED, MOCK_V_PLAIN);
    CHECK(sync_once(s, &ms, 0, 0) == 0, "resync after changes");
    CHECK(rules[0].used == (condstore ? 2u : 4u), "after changes in 2 folders: %u SELECTs",
          rules[0].used);
    for (k = 0; k < 6; k++) {
        satchel_folder f;
        struct collect got;
        memset(&got, 0, sizeof got);
        CHECK(satchel_store_folder_get(s, NULL, ms.f[k].name, &f) == 0 &&
                  satchel_store_msg_list(s, f.id, 0, UINT32_MAX, collect_cb, &got) >= 0 &&
                  got.n == ms.f[k].n,
              "%s: %u stored, %u on the server", ms.f[k].name, got.n, ms.f[k].n);
        for (i = 0; i < got.n && i < ms.f[k].n; i++) {
            const mock_msg *m = mock_find(&ms, (int)k, got.uids[i]);
            CHECK(m && (m->flags & 0x1fu) == got.flags[i], "%s: UID %u flags", ms.f[k].name,
                  got.uids[i]);
        }
    }
    finish(s, dir, &ms);
}

/* Fault 12: a server that sends one byte every 5 s never trips the
 * silence timeout; the per-command deadline must end it, long before the
 * session could finish at that pace. */
static void run_slow_drip(void)
{
    struct row r0, *row = &r0;
    mock_server ms;
    satchel_store *s;
    satchel_client *c;
    cd_run run;
    char dir[256];
    int rc;
    memset(&r0, 0, sizeof r0);
    r0.name = "one byte every 5 s";
    mock_init(&ms, MOCK_CAPS_FULL);
    mock_add_folder(&ms, "INBOX", "", 7001);
    mock_add_msg(&ms, 0, 0, MOCK_V_PLAIN);
    if (fresh_store(row, dir, sizeof dir, &s) < 0)
        return;
    if (!(c = new_client(row, s, 0)))
        return;
    start_run(&run, 1);
    run.step_ms = 5000;
    rc = cd_drive_mock(c, &ms, &run, 0);
    CHECK(rc == SATCHEL_E_TIMEOUT, "rc %d (%s), want a timeout", rc,
          satchel_client_error_text(c));
    CHECK(strstr(satchel_client_error_text(c), "too slowly") != NULL,
          "error says why: %s", satchel_client_error_text(c));
    printf("slow drip: ended after %zu bytes, %llu s of server time\n", run.delivered,
           (unsigned long long)(run.now - 1000) / 1000);
    CHECK(run.delivered < 400, "ended after %zu bytes (%llu s)", run.delivered,
          (unsigned long long)(run.now - 1000) / 1000);
    satchel_client_free(c);
    finish(s, dir, &ms);
}

/* Fault 8: body downloads judged by what the answers contain, bounded in
 * requests: never more than size/request + a few, a part smaller than one
 * request takes one, a longer answer (a server that ignores <start.size>)
 * is the whole part. */
static const struct {
    const char *name;
    uint32_t len;       /* the part on the server */
    uint64_t expected;  /* what BODYSTRUCTURE said (0: unknown) */
    int whole;          /* the server ignores <start.size> */
    unsigned max_requests;
} bodies[] = {
    {"part smaller than one request", 5000, 5000, 0, 1},
    {"server ignores <start.size>, 800 KB part", 800000, 800000, 1, 2},
    {"server ignores <start.size>, size unknown", 300000, 0, 1, 2},
    {"BODYSTRUCTURE size too small", 5000, 1000, 0, 1},
    /* GNU imap4d gives some parts' line counts as their size */
    {"BODYSTRUCTURE size a line count, 600 KB part", 600000, 12000, 0, 4},
    {"BODYSTRUCTURE size a line count, 3 MB part", 3000000, 60000, 0, 14},
    {"BODYSTRUCTURE size too large", 5000, 9000, 0, 1},
    {"exactly two requests' worth", 2 * SATCHEL_OPT_BODY_REQUEST,
     2 * SATCHEL_OPT_BODY_REQUEST, 0, 3},
    {"1 MB part", 1000000, 1000000, 0, 4},
};

static void run_bodies(void)
{
    size_t i;
    for (i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        struct row r0, *row = &r0;
        mock_server ms;
        satchel_store *s;
        satchel_client *c;
        satchel_body_info bi;
        satchel_folder f;
        cd_run run;
        char dir[256];
        int rc;
        memset(&r0, 0, sizeof r0);
        r0.name = bodies[i].name;
        mock_init(&ms, MOCK_CAPS_FULL);
        mock_add_folder(&ms, "INBOX", "", 7001);
        mock_add_msg(&ms, 0, 0, MOCK_V_PLAIN);
        ms.body_len = bodies[i].len;
        ms.body_whole = bodies[i].whole;
        if (fresh_store(row, dir, sizeof dir, &s) < 0)
            return;
        CHECK(sync_once(s, &ms, 0, 0) == 0, "first sync");
        if (!(c = new_client(row, s, 0)))
            return;
        ms.body_requests = 0;
        rc = satchel_client_fetch_body(c, "INBOX", 1, "1", bodies[i].expected);
        CHECK(rc == 0, "fetch_body rc %d", rc);
        start_run(&run, 0);
        run.cut_after = 64u << 20; /* a client that asks forever stops here */
        rc = cd_drive_mock(c, &ms, &run, 0);
        CHECK(rc == 0, "body download rc %d (%s)", rc, satchel_client_error_text(c));
        CHECK(ms.body_requests <= bodies[i].max_requests, "%u requests for %u bytes, "
              "at most %u", ms.body_requests, bodies[i].len, bodies[i].max_requests);
        memset(&bi, 0, sizeof bi);
        CHECK(satchel_store_folder_get(s, NULL, "INBOX", &f) == 0 &&
                  satchel_store_body_info(s, NULL, f.id, 1, "1", &bi) == 0 && bi.complete &&
                  bi.stored == bodies[i].len,
              "stored %llu bytes, complete %d; the part has %u",
              (unsigned long long)bi.stored, bi.complete, bodies[i].len);
        /* What BODYSTRUCTURE said stays beside what came, so a difference
         * is never cached as a silent "complete". */
        CHECK(bi.expected == bodies[i].expected, "the record keeps size %llu, "
              "BODYSTRUCTURE said %llu", (unsigned long long)bi.expected,
              (unsigned long long)bodies[i].expected);
        satchel_client_free(c);
        finish(s, dir, &ms);
    }
}

/* Seeds for fuzz_client_session that reach the replay and the body
 * download: a first sync, offline changes (==QUEUE==), a sync that
 * replays them, then the newest message's part 1 (==BODY==), recorded
 * from the scripted server with MOVE, without MOVE, and without CONDSTORE. */
static int write_seed(const char *dir, const char *name, const char *caps)
{
    mock_server ms;
    satchel_store *s;
    satchel_client_config cfg;
    satchel_client *c;
    cd_run run;
    char sdir[256], path[512];
    uint32_t newest = 0;
    FILE *out;
    int k, i;
    mock_init(&ms, caps);
    mock_add_folder(&ms, "INBOX", "", 7001);
    mock_add_folder(&ms, "Archive", "\\Archive", 7002);
    mock_add_folder(&ms, "Trash", "\\Trash", 7003);
    for (i = 0; i < 7; i++)
        mock_add_msg(&ms, 0, i % 2 ? MOCK_F_SEEN : 0, i % 3 ? MOCK_V_PLAIN : MOCK_V_MULTIPART);
    mock_add_msg(&ms, 1, 0, MOCK_V_PLAIN);
    ms.body_len = 20000;
    ms.logging = 1;
    if (cd_mkdtemp(sdir, sizeof sdir, "seeds") < 0 || satchel_store_open(NULL, sdir, 0, &s) < 0)
        return -1;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (!(out = fopen(path, "wb")))
        return -1;
    fputc(0, out);    /* config: plain, every folder, default window */
    fputc(0x37, out); /* chunking seed */
    for (k = 0; k < 3; k++) {
        client_cfg(&cfg, 0);
        cfg.fetch_window = 0;
        if (satchel_client_new(NULL, &cfg, s, &c) < 0)
            return -1;
        if (k == 2)
            satchel_client_fetch_body(c, "INBOX", newest ? newest : 1, "1", 0);
        start_run(&run, 0);
        cd_drive_mock(c, &ms, &run, 0);
        satchel_client_free(c);
        fwrite(ms.log, 1, ms.log_len, out);
        ms.log_len = 0;
        if (k == 0) {
            fputs("\r\n==QUEUE==\r\n", out);
            cd_queue_changes(s, &newest);
        } else if (k == 1) {
            struct cd_newest nw;
            satchel_folder f;
            fputs("\r\n==BODY==\r\n", out);
            memset(&nw, 0, sizeof nw);
            if (satchel_store_folder_get(s, NULL, "INBOX", &f) == 0)
                satchel_store_msg_list(s, f.id, 0, 3, cd_newest_cb, &nw);
            newest = nw.n ? nw.uids[0] : 0;
        }
    }
    fclose(out);
    satchel_store_close(s);
    cd_rmdir(sdir);
    mock_free(&ms);
    printf("wrote %s\n", path);
    return 0;
}

/* A connection that ends (closed by the peer, or the port's handshake
 * failed) between the server's OK to STARTTLS and starttls_done must ask to be closed,
 * not for a handshake on a dead link (found by fuzz_client_session). */
static void run_starttls_close(void)
{
    static const char *const how[] = {"closed by the server", "handshake failed"};
    struct row r0, *row = &r0;
    unsigned k;
    memset(&r0, 0, sizeof r0);
    r0.name = "connection ends before the TLS handshake";
    for (k = 0; k < 2; k++) {
        satchel_client_config cfg;
        satchel_client *c;
        satchel_store *s;
        const uint8_t *out;
        char dir[256], reply[64];
        size_t n, tl;
        int w;
        static const char greet[] =
            "* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] ready\r\n";
        if (fresh_store(row, dir, sizeof dir, &s) < 0)
            return;
        client_cfg(&cfg, 0);
        cfg.security = SATCHEL_SECURITY_STARTTLS;
        if (satchel_client_new(NULL, &cfg, s, &c) < 0) {
            CHECK(0, "cannot make a client");
            return;
        }
        CHECK(satchel_client_connected(c, 1000, 0) == 0, "connected");
        CHECK(satchel_client_sync(c, NULL) == 0, "sync starts");
        CHECK(satchel_client_recv(c, (const uint8_t *)greet, sizeof greet - 1, 1000) == 0,
              "greeting");
        n = satchel_client_pending(c, &out);
        tl = 0;
        while (tl < n && out[tl] != ' ')
            tl++;
        CHECK(n == tl + sizeof " STARTTLS\r\n" - 1 &&
                  memcmp(out + tl, " STARTTLS\r\n", n - tl) == 0,
              "STARTTLS sent: %.*s", (int)n, (const char *)out);
        snprintf(reply, sizeof reply, "%.*s OK begin TLS\r\n", (int)tl, (const char *)out);
        satchel_client_sent(c, n); /* out is valid only until now */
        CHECK(satchel_client_recv(c, (const uint8_t *)reply, strlen(reply), 1001) == 0,
              "STARTTLS answered: %s", satchel_client_error_text(c));
        CHECK(satchel_client_want(c) == SATCHEL_WANT_STARTTLS, "handshake wanted: %d",
              satchel_client_want(c));
        satchel_client_closed(c, k == 0 ? SATCHEL_E_IO : SATCHEL_E_SECURITY);
        w = satchel_client_want(c);
        CHECK(w == SATCHEL_WANT_CLOSE, "%s after STARTTLS's OK: want %d, not close", how[k],
              w);
        CHECK(satchel_client_starttls_done(c) == SATCHEL_E_INVAL,
              "%s: no handshake is taken after", how[k]);
        CHECK(satchel_client_result(c) == (k == 0 ? SATCHEL_E_IO : SATCHEL_E_SECURITY),
              "%s: the session failed with its cause: %d", how[k], satchel_client_result(c));
        satchel_client_free(c);
        satchel_store_close(s);
        cd_rmdir(dir);
    }
}

/* Every folder of the server equals the store (UIDs and flags). */
static void compare_all(const struct row *row, satchel_store *s, mock_server *ms,
                        const char *when)
{
    unsigned k, i;
    char why[300];
    CHECK(cd_store_check(s, why, sizeof why) == 0, "%s: store inconsistent: %s", when, why);
    for (k = 0; k < (unsigned)ms->nf; k++) {
        satchel_folder f;
        struct collect got;
        memset(&got, 0, sizeof got);
        CHECK(satchel_store_folder_get(s, NULL, ms->f[k].name, &f) == 0 &&
                  satchel_store_msg_list(s, f.id, 0, UINT32_MAX, collect_cb, &got) >= 0 &&
                  got.n == ms->f[k].n,
              "%s: %s: %u stored, %u on the server", when, ms->f[k].name, got.n,
              ms->f[k].n);
        for (i = 0; i < got.n && i < ms->f[k].n; i++) {
            const mock_msg *m = mock_find(ms, (int)k, got.uids[i]);
            CHECK(m && (m->flags & 0x1fu) == got.flags[i], "%s: %s: UID %u", when,
                  ms->f[k].name, got.uids[i]);
        }
    }
}

static void count_synced(void *ctx, const satchel_event *ev)
{
    if (ev->type == SATCHEL_EV_FOLDER_SYNCED)
        ++*(unsigned *)ctx;
}

/* A sync of every folder cut anywhere, then resumed on a new connection
 * after a folder appeared on the server whose name sorts before the ones
 * already done: the resumed job goes on after the last finished folder and
 * must still sync the new one (the walk is in id order; by name, the new
 * folder fell behind the walk's place and waited for the next sync). */
static void run_walk_resume(void)
{
    struct row r0, *row = &r0;
    size_t cut;
    unsigned resumed = 0;
    memset(&r0, 0, sizeof r0);
    r0.name = "resumed walk meets a new folder";
    for (cut = 150; cut < 6000; cut += 37) {
        mock_server ms;
        satchel_store *s;
        satchel_client *c;
        cd_run run;
        char dir[256];
        unsigned k, synced = 0;
        int rc;
        mock_init(&ms, MOCK_CAPS_FULL);
        mock_add_folder(&ms, "INBOX", "", 7001);
        mock_add_folder(&ms, "Lists", "", 7002);
        mock_add_folder(&ms, "Sent", "\\Sent", 7003);
        for (k = 0; k < 3; k++) {
            mock_add_msg(&ms, (int)k, 0, MOCK_V_PLAIN);
            mock_add_msg(&ms, (int)k, MOCK_F_SEEN, MOCK_V_MULTIPART);
            mock_add_msg(&ms, (int)k, 0, MOCK_V_ENCODED);
        }
        if (fresh_store(row, dir, sizeof dir, &s) < 0)
            return;
        if (!(c = new_client(row, s, 2)))
            return;
        satchel_client_set_event_cb(c, count_synced, &synced);
        start_run(&run, 61);
        run.cut_after = cut;
        rc = cd_drive_mock(c, &ms, &run, 0);
        if (rc == 0 && !satchel_client_interrupted(c)) {
            /* the job ended before the cut: every later cut does too */
            satchel_client_free(c);
            finish(s, dir, &ms);
            break;
        }
        if (synced > 0)
            resumed++;
        mock_add_folder(&ms, "Archive", "", 7004);
        mock_add_msg(&ms, 3, 0, MOCK_V_PLAIN);
        mock_add_msg(&ms, 3, MOCK_F_FLAGGED, MOCK_V_PLAIN);
        run.cut_after = 0;
        rc = cd_drive_mock(c, &ms, &run, 0);
        CHECK(rc == 0, "cut after %zu: the resumed sync: %d (%s)", cut, rc,
              satchel_client_error_text(c));
        {
            char when[64];
            snprintf(when, sizeof when, "cut after %zu, resumed", cut);
            compare_all(row, s, &ms, when);
        }
        satchel_client_free(c);
        finish(s, dir, &ms);
    }
    printf("resumed walk: %u cuts after a finished folder\n", resumed);
    CHECK(resumed >= 5, "only %u cuts landed after a finished folder", resumed);
}

/* A sync of one folder the store does not know yet: the job lists the
 * folders first and must still know which one it was asked for, across a
 * cut anywhere and the resume; a name the server does not list ends the
 * job with "no such folder". */
static void run_one_folder(void)
{
    struct row r0, *row = &r0;
    size_t cut;
    memset(&r0, 0, sizeof r0);
    r0.name = "one folder not yet stored";
    for (cut = 0; cut < 4000; cut += cut ? 41 : 120) {
        mock_server ms;
        satchel_store *s;
        satchel_client *c;
        cd_run run;
        char dir[256];
        unsigned k;
        int rc, ended;
        mock_init(&ms, MOCK_CAPS_CONDSTORE);
        mock_add_folder(&ms, "INBOX", "", 7001);
        mock_add_folder(&ms, "Lists/Dev", "", 7002);
        for (k = 0; k < 2; k++) {
            mock_add_msg(&ms, (int)k, 0, MOCK_V_PLAIN);
            mock_add_msg(&ms, (int)k, MOCK_F_SEEN, MOCK_V_MULTIPART);
        }
        if (fresh_store(row, dir, sizeof dir, &s) < 0)
            return;
        if (!(c = new_client(row, s, 0)))
            return;
        CHECK(satchel_client_sync(c, "Lists/Dev") == 0, "one-folder job starts");
        start_run(&run, 53);
        run.cut_after = cut;
        rc = cd_drive_mock(c, &ms, &run, 0);
        ended = rc == 0 && !satchel_client_interrupted(c);
        if (!ended) {
            run.cut_after = 0;
            rc = cd_drive_mock(c, &ms, &run, 0);
        }
        CHECK(rc == 0, "cut after %zu: %d (%s)", cut, rc, satchel_client_error_text(c));
        {
            satchel_folder f;
            struct collect got;
            memset(&got, 0, sizeof got);
            CHECK(satchel_store_folder_get(s, NULL, "Lists/Dev", &f) == 0 &&
                      satchel_store_msg_list(s, f.id, 0, UINT32_MAX, collect_cb, &got) >= 0 &&
                      got.n == 2,
                  "cut after %zu: Lists/Dev holds %u of 2", cut, got.n);
            memset(&got, 0, sizeof got);
            CHECK(satchel_store_folder_get(s, NULL, "INBOX", &f) == 0 &&
                      satchel_store_msg_list(s, f.id, 0, UINT32_MAX, collect_cb, &got) >= 0 &&
                      got.n == 0,
                  "cut after %zu: INBOX (listed, not asked for) holds %u", cut, got.n);
        }
        if (cut == 0) {
            CHECK(satchel_client_sync(c, "Lists/Nope") == 0, "job for a missing folder");
            rc = cd_drive_mock(c, &ms, &run, 0);
            CHECK(rc == SATCHEL_E_NOTFOUND &&
                      strstr(satchel_client_error_text(c), "no such folder: Lists/Nope"),
                  "a folder the server does not list: %d (%s)", rc,
                  satchel_client_error_text(c));
        }
        satchel_client_free(c);
        finish(s, dir, &ms);
        if (ended)
            break;
    }
}

/* A queued move whose source folder is no longer a stored folder (a sync
 * dropped it while the move waited): the replay batches changes by folder
 * id, and such a change goes as a batch of its own, named as the change
 * names it, for the server to judge at its SELECT: it replays where the
 * server still has the folder and fails, with the server's reason, where
 * it does not.  A change of another folder queued with it replays alike. */
static void run_unstored_source(void)
{
    int gone;
    for (gone = 0; gone < 2; gone++) {
        struct row r0, *row = &r0;
        mock_server ms;
        satchel_store *s;
        satchel_store_txn *t;
        char dir[256];
        uint32_t ph = 0;
        uint64_t pending = 0, nfailed = 0;
        int k;
        memset(&r0, 0, sizeof r0);
        r0.name = gone ? "move from a folder gone from store and server"
                       : "move from a folder gone from the store only";
        mock_init(&ms, MOCK_CAPS_FULL);
        mock_add_folder(&ms, "INBOX", "", 7001);
        mock_add_folder(&ms, "Dest", "", 7002);
        mock_add_folder(&ms, "Gone", "", 7003);
        for (k = 0; k < 2; k++) {
            mock_add_msg(&ms, 0, 0, MOCK_V_PLAIN);
            mock_add_msg(&ms, 2, 0, MOCK_V_PLAIN);
        }
        if (fresh_store(row, dir, sizeof dir, &s) < 0)
            return;
        CHECK(sync_once(s, &ms, 0, 0) == 0, "first sync");
        CHECK(satchel_ops_move(s, "Gone", 1, "Dest", &ph) == 0 &&
                  satchel_ops_move(s, "INBOX", 2, "Dest", &ph) == 0,
              "offline moves");
        CHECK(satchel_store_begin(s, &t) == 0 && satchel_store_folder_delete(t, "Gone") == 0 &&
                  satchel_store_commit(t) == 0,
              "source folder dropped from the store");
        if (gone)
            mock_drop_last_folder(&ms); /* "Gone" was added last */
        CHECK(sync_once(s, &ms, 0, 0) == 0, "sync with the replay");
        satchel_store_queue_counts(s, &pending, &nfailed);
        CHECK(pending == 0 && nfailed == (uint64_t)gone, "queue: %llu pending, %llu failed",
              (unsigned long long)pending, (unsigned long long)nfailed);
        CHECK(ms.f[1].n == (gone ? 1u : 2u), "server Dest holds %u", ms.f[1].n);
        CHECK(ms.f[0].n == 1, "server INBOX holds %u", ms.f[0].n);
        if (!gone)
            CHECK(ms.f[2].n == 1, "server Gone holds %u", ms.f[2].n);
        CHECK(sync_once(s, &ms, 0, 0) == 0, "clean sync");
        compare_all(row, s, &ms, "after the replay and a clean sync");
        finish(s, dir, &ms);
    }
}

/* CREATEs pipelined on a slow uplink to a server that answers a repeated
 * CREATE with a plain NO (Courier): the LIST that judges a NO may find the
 * command queue full of later CREATEs.  It must be asked later, never the
 * change failed unasked: every mkdir of a folder the server has lands. */
static void run_mkdirs_full_queue(void)
{
    struct row r0, *row = &r0;
    mock_server ms;
    satchel_store *s;
    satchel_client *c;
    cd_run run;
    char dir[256], name[60];
    uint64_t pending = 9, nfailed = 9;
    unsigned k;
    int rc;
    memset(&r0, 0, sizeof r0);
    r0.name = "plain NO to CREATEs with the queue full";
    mock_init(&ms, MOCK_CAPS_NONE);
    mock_add_folder(&ms, "INBOX", "", 7001);
    mock_add_msg(&ms, 0, 0, MOCK_V_PLAIN);
    if (fresh_store(row, dir, sizeof dir, &s) < 0)
        return;
    CHECK(sync_once(s, &ms, 0, 0) == 0, "first sync");
    for (k = 0; k < 100; k++) {
        memset(name, 'a' + (int)(k % 26), sizeof name - 1);
        name[sizeof name - 1] = '\0';
        snprintf(name, 8, "P%03u", k);
        name[4] = '-';
        CHECK(satchel_ops_mkdir(s, name) == 0, "offline mkdir %u", k);
        /* another device created it meanwhile: the server says a plain NO */
        mock_add_folder(&ms, name, "", 7100 + k);
    }
    if (!(c = new_client(row, s, 0)))
        return;
    start_run(&run, 0);
    run.send_max = 200;
    rc = cd_drive_mock(c, &ms, &run, 0);
    CHECK(rc == 0, "sync with the mkdirs: %d (%s)", rc, satchel_client_error_text(c));
    satchel_store_queue_counts(s, &pending, &nfailed);
    CHECK(pending == 0 && nfailed == 0, "queue: %llu pending, %llu failed",
          (unsigned long long)pending, (unsigned long long)nfailed);
    satchel_client_free(c);
    finish(s, dir, &ms);
}

/* A sync of one folder, as the app starts it, on a client of its own. */
static int sync_one(satchel_store *s, mock_server *ms, const char *name)
{
    satchel_client_config cfg;
    satchel_client *c;
    cd_run run;
    int rc;
    client_cfg(&cfg, 0);
    if ((rc = satchel_client_new(NULL, &cfg, s, &c)) < 0)
        return rc;
    start_run(&run, 97);
    if ((rc = satchel_client_sync(c, name)) == 0)
        rc = cd_drive_mock(c, ms, &run, 0);
    satchel_client_free(c);
    return rc;
}

/* A name index entry damaged (lost, or leading to another folder) leaves
 * the folder's record behind without its entry: the folder looks new, and
 * the next LIST stores it again under a new id, beside the old record that
 * no name leads to.  That old record must not make the folder stored again
 * under its name go away (nor be synced beside it): whether the next sync
 * is of every folder or of that one folder, every folder of the server is
 * found by its name with all its messages, sync after sync. */
static void run_stray_record(void)
{
    int how;
    for (how = 0; how < 4; how++) {
        struct row r0, *row = &r0;
        mock_server ms;
        satchel_store *s;
        satchel_store_txn *t;
        satchel_folder inbox;
        char dir[256];
        int k, round;
        memset(&r0, 0, sizeof r0);
        r0.name = (how & 1) ? (how & 2 ? "index entry leads elsewhere, one-folder sync"
                                       : "index entry leads elsewhere, sync of all")
                            : (how & 2 ? "index entry lost, one-folder sync"
                                       : "index entry lost, sync of all");
        mock_init(&ms, MOCK_CAPS_FULL);
        mock_add_folder(&ms, "INBOX", "", 7001);
        mock_add_folder(&ms, "Lists", "", 7002);
        mock_add_folder(&ms, "Sent", "\\Sent", 7003);
        for (k = 0; k < 3; k++) {
            mock_add_msg(&ms, k, 0, MOCK_V_PLAIN);
            mock_add_msg(&ms, k, MOCK_F_SEEN, MOCK_V_MULTIPART);
        }
        if (fresh_store(row, dir, sizeof dir, &s) < 0)
            return;
        CHECK(sync_once(s, &ms, 0, 0) == 0, "first sync");
        compare_all(row, s, &ms, "first sync");
        CHECK(satchel_store_folder_get(s, NULL, "INBOX", &inbox) == 0, "INBOX stored");
        {
            MDB_val key = {5, (void *)"Lists"}, val;
            uint8_t vb[4];
            satchel_folder f;
            int rc = satchel_store_begin(s, &t);
            if (rc == 0 && (how & 1)) {
                be32(vb, inbox.id);
                val.mv_size = 4;
                val.mv_data = vb;
                rc = mdb_put(t->txn, s->fnames, &key, &val, 0);
            } else if (rc == 0) {
                rc = mdb_del(t->txn, s->fnames, &key, NULL);
            }
            CHECK(rc == 0 && satchel_store_commit(t) == 0, "index entry damaged");
            CHECK(satchel_store_folder_get(s, NULL, "Lists", &f) == SATCHEL_E_NOTFOUND,
                  "Lists no longer found by its name");
        }
        for (round = 1; round <= 2; round++) {
            char when[64];
            satchel_folder f;
            struct collect got;
            int one = round == 1 && (how & 2);
            int rc = one ? sync_one(s, &ms, "Lists") : sync_once(s, &ms, 0, 0);
            snprintf(when, sizeof when, "%s %d after the damage", one ? "sync of Lists" : "sync",
                     round);
            CHECK(rc == 0, "%s: %d", when, rc);
            for (k = one ? 1 : 0; k < (one ? 2 : 3); k++) {
                memset(&got, 0, sizeof got);
                CHECK(satchel_store_folder_get(s, NULL, ms.f[k].name, &f) == 0 &&
                          satchel_store_msg_list(s, f.id, 0, UINT32_MAX, collect_cb, &got) >=
                              0 &&
                          got.n == ms.f[k].n,
                      "%s: %s found by its name with %u of %u messages", when, ms.f[k].name,
                      got.n, ms.f[k].n);
            }
        }
        finish(s, dir, &ms);
    }
}

/* The folder sync's state shares its bytes with the body download's
 * chunk, and a one-folder sync keeps the name it was asked for there.  A
 * sync of one folder not yet stored, cut anywhere and left unfinished,
 * then a body download on the same client (its chunk written over that
 * state), then the same sync asked again and cut at the same place and
 * resumed: the folder is synced whole and the body is complete. */
static void run_sync_after_body(void)
{
    struct row r0, *row = &r0;
    size_t cut;
    unsigned cuts = 0;
    memset(&r0, 0, sizeof r0);
    r0.name = "one-folder sync after a body download";
    for (cut = 100; cut < 5000; cut += 47) {
        mock_server ms;
        satchel_store *s;
        satchel_client *c;
        satchel_body_info bi;
        satchel_folder f;
        struct collect got;
        cd_run run;
        char dir[256];
        int rc, pass, cut_in = 0;
        mock_init(&ms, MOCK_CAPS_FULL);
        mock_add_folder(&ms, "INBOX", "", 7001);
        mock_add_msg(&ms, 0, 0, MOCK_V_PLAIN);
        ms.body_len = 40000; /* more than one chunk */
        if (fresh_store(row, dir, sizeof dir, &s) < 0)
            return;
        CHECK(sync_once(s, &ms, 0, 0) == 0, "first sync");
        mock_add_folder(&ms, "Projects/New", "", 7002);
        mock_add_msg(&ms, 1, 0, MOCK_V_PLAIN);
        mock_add_msg(&ms, 1, MOCK_F_SEEN, MOCK_V_MULTIPART);
        mock_add_msg(&ms, 1, MOCK_F_FLAGGED, MOCK_V_ENCODED);
        if (!(c = new_client(row, s, 2)))
            return;
        for (pass = 0; pass < 2; pass++) {
            CHECK(satchel_client_sync(c, "Projects/New") == 0, "cut after %zu: sync starts",
                  cut);
            start_run(&run, 71);
            run.cut_after = cut;
            rc = cd_drive_mock(c, &ms, &run, 0);
            if (rc == 0 && !satchel_client_interrupted(c))
                break; /* ended before the cut */
            cut_in = 1;
            if (pass == 1) {
                run.cut_after = 0;
                rc = cd_drive_mock(c, &ms, &run, 0);
                break;
            }
            /* left unfinished: a body download on the same client */
            CHECK(satchel_client_fetch_body(c, "INBOX", 1, "1", 40000) == 0,
                  "cut after %zu: fetch_body", cut);
            start_run(&run, 0);
            rc = cd_drive_mock(c, &ms, &run, 0);
            CHECK(rc == 0, "cut after %zu: body download %d (%s)", cut, rc,
                  satchel_client_error_text(c));
        }
        CHECK(rc == 0, "cut after %zu: the sync %d (%s)", cut, rc,
              satchel_client_error_text(c));
        memset(&got, 0, sizeof got);
        CHECK(satchel_store_folder_get(s, NULL, "Projects/New", &f) == 0 &&
                  satchel_store_msg_list(s, f.id, 0, UINT32_MAX, collect_cb, &got) >= 0 &&
                  got.n == 3,
              "cut after %zu: Projects/New holds %u of 3", cut, got.n);
        if (cut_in) {
            memset(&bi, 0, sizeof bi);
            CHECK(satchel_store_folder_get(s, NULL, "INBOX", &f) == 0 &&
                      satchel_store_body_info(s, NULL, f.id, 1, "1", &bi) == 0 &&
                      bi.complete && bi.stored == 40000,
                  "cut after %zu: the body is complete (%llu bytes)", cut,
                  (unsigned long long)bi.stored);
        }
        satchel_client_free(c);
        finish(s, dir, &ms);
        if (!cut_in)
            break;
        cuts++;
    }
    printf("sync after a body download: %u cuts inside the sync\n", cuts);
    CHECK(cuts >= 10, "only %u cuts landed inside the sync", cuts);
}

/* No stored folder that the server does not have (the sweep's half of
 * "nothing invented"). */
static void no_extra_folders(const struct row *row, satchel_store *s, const mock_server *ms,
                             const char *when)
{
    static char after[SATCHEL_OPT_MAX_FOLDER_NAME + 1];
    satchel_folder f;
    int k;
    after[0] = '\0';
    while (satchel_store_folder_next(s, NULL, after, &f) == 0) {
        for (k = 0; k < ms->nf && strcmp(ms->f[k].name, f.name) != 0; k++)
            ;
        CHECK(k < ms->nf, "%s: %s stored, not on the server", when, f.name);
        memcpy(after, f.name, strlen(f.name) + 1);
    }
}

/* A sync of every folder cut anywhere; before the resume the server
 * renames a folder, deletes another and creates a third whose name sorts
 * first.  The resumed job (in id order from the last finished folder)
 * must leave the store equal to the server: the renamed folder under its
 * new name with all its mail, the deleted one gone, the new one synced,
 * whichever of them the walk had passed. */
static void run_walk_churn(const char *caps, const char *name)
{
    struct row r0, *row = &r0;
    size_t cut;
    unsigned landed = 0;
    memset(&r0, 0, sizeof r0);
    r0.name = name;
    for (cut = 150; cut < 8000; cut += 53) {
        mock_server ms;
        satchel_store *s;
        satchel_client *c;
        cd_run run;
        char dir[256], when[64];
        int k, rc;
        mock_init(&ms, caps);
        mock_add_folder(&ms, "INBOX", "", 7001);
        mock_add_folder(&ms, "Lists", "", 7002);
        mock_add_folder(&ms, "Sent", "\\Sent", 7003);
        mock_add_folder(&ms, "Work", "", 7004);
        for (k = 0; k < 4; k++) {
            mock_add_msg(&ms, k, 0, MOCK_V_PLAIN);
            mock_add_msg(&ms, k, MOCK_F_SEEN, MOCK_V_MULTIPART);
            mock_add_msg(&ms, k, MOCK_F_FLAGGED, MOCK_V_ENCODED);
        }
        if (fresh_store(row, dir, sizeof dir, &s) < 0)
            return;
        if (!(c = new_client(row, s, 2)))
            return;
        start_run(&run, 59);
        run.cut_after = cut;
        rc = cd_drive_mock(c, &ms, &run, 0);
        if (rc == 0 && !satchel_client_interrupted(c)) {
            satchel_client_free(c);
            finish(s, dir, &ms);
            break;
        }
        landed++;
        /* rename Lists (a rename keeps the mail; the name is new), delete
         * Work, create Aardvark */
        snprintf(ms.f[1].name, sizeof ms.f[1].name, "Lists-2026");
        mock_drop_last_folder(&ms); /* Work */
        mock_add_folder(&ms, "Aardvark", "", 7005);
        mock_add_msg(&ms, 3, 0, MOCK_V_PLAIN);
        mock_add_msg(&ms, 3, MOCK_F_ANSWERED, MOCK_V_PLAIN);
        run.cut_after = 0;
        rc = cd_drive_mock(c, &ms, &run, 0);
        CHECK(rc == 0, "cut after %zu: the resumed sync: %d (%s)", cut, rc,
              satchel_client_error_text(c));
        snprintf(when, sizeof when, "cut after %zu, resumed", cut);
        compare_all(row, s, &ms, when);
        no_extra_folders(row, s, &ms, when);
        satchel_client_free(c);
        finish(s, dir, &ms);
    }
    printf("%s: %u cuts\n", name, landed);
    CHECK(landed >= 20, "only %u cuts landed inside the sync", landed);
}

/* A body download keeps its folder by id and SELECTs the name the store
 * has for it when the command goes out.  Started with no connection, then
 * before it connects: the folder renamed (on the server, and in the store
 * as a rename keeps its id) downloads from the new name; the folder gone
 * from the store ends the job with that cause and caches nothing. */
static void run_body_folder_moves(void)
{
    int gone;
    for (gone = 0; gone < 2; gone++) {
        struct row r0, *row = &r0;
        mock_server ms;
        satchel_store *s;
        satchel_store_txn *t;
        satchel_client *c;
        satchel_body_info bi;
        satchel_folder f;
        satchel_cache_stats cs;
        cd_run run;
        char dir[256];
        int rc;
        memset(&r0, 0, sizeof r0);
        r0.name = gone ? "body of a folder dropped from the store before it connects"
                       : "body of a folder renamed before it connects";
        mock_init(&ms, MOCK_CAPS_FULL);
        mock_add_folder(&ms, "INBOX", "", 7001);
        mock_add_folder(&ms, "Old", "", 7002);
        mock_add_msg(&ms, 1, 0, MOCK_V_PLAIN);
        ms.body_len = 20000;
        if (fresh_store(row, dir, sizeof dir, &s) < 0)
            return;
        CHECK(sync_once(s, &ms, 0, 0) == 0, "first sync");
        if (!(c = new_client(row, s, 0)))
            return;
        CHECK(satchel_client_fetch_body(c, "Old", 1, "1", 20000) == 0, "fetch_body");
        CHECK(satchel_store_begin(s, &t) == 0 &&
                  satchel_store_folder_get(s, t, "Old", &f) == 0, "folder read");
        if (gone) {
            rc = satchel_store_folder_delete(t, "Old");
        } else {
            snprintf(f.name, sizeof f.name, "New");
            rc = satchel_store_folder_put(t, &f);
            snprintf(ms.f[1].name, sizeof ms.f[1].name, "New");
        }
        CHECK(rc == 0 && satchel_store_commit(t) == 0, "store changed");
        start_run(&run, 0);
        rc = cd_drive_mock(c, &ms, &run, 0);
        if (gone) {
            CHECK(rc == SATCHEL_E_NOTFOUND &&
                      strstr(satchel_client_error_text(c), "folder no longer in the store"),
                  "the job fails with its cause: %d (%s)", rc, satchel_client_error_text(c));
            CHECK(satchel_store_cache_stats(s, &cs) == 0 && cs.entries == 0 && cs.bytes == 0,
                  "nothing cached (%llu bytes)", (unsigned long long)cs.bytes);
        } else {
            memset(&bi, 0, sizeof bi);
            CHECK(rc == 0 && satchel_store_folder_get(s, NULL, "New", &f) == 0 &&
                      satchel_store_body_info(s, NULL, f.id, 1, "1", &bi) == 0 &&
                      bi.complete && bi.stored == 20000,
                  "downloaded from the new name: %d (%s), %llu bytes", rc,
                  satchel_client_error_text(c), (unsigned long long)bi.stored);
        }
        satchel_client_free(c);
        finish(s, dir, &ms);
    }
}

/* Many queued moves whose source folder the store no longer holds: they
 * go in batches told by the name they give (up to the batch size each),
 * not one SELECT each (as batches of one, 60 moves took 129 round trips
 * where the server has the folder, and 69 where it does not); where the
 * server has the folder they all replay, where it does not they all fail
 * with the server's reason.  (Under 64 moves: compare_all reads 64.) */
static void run_unstored_many(void)
{
    int gone;
    for (gone = 0; gone < 2; gone++) {
        struct row r0, *row = &r0;
        mock_server ms;
        satchel_store *s;
        satchel_store_txn *t;
        satchel_client *c;
        satchel_counters ct;
        cd_run run;
        char dir[256];
        uint32_t ph = 0;
        uint64_t pending = 0, nfailed = 0;
        int k, rc;
        memset(&r0, 0, sizeof r0);
        r0.name = gone ? "60 moves from a folder gone from store and server"
                       : "60 moves from a folder gone from the store only";
        mock_init(&ms, MOCK_CAPS_FULL);
        mock_add_folder(&ms, "INBOX", "", 7001);
        mock_add_folder(&ms, "Dest", "", 7002);
        mock_add_folder(&ms, "Gone", "", 7003);
        for (k = 0; k < 60; k++)
            mock_add_msg(&ms, 2, 0, MOCK_V_PLAIN);
        mock_add_msg(&ms, 0, 0, MOCK_V_PLAIN);
        if (fresh_store(row, dir, sizeof dir, &s) < 0)
            return;
        CHECK(sync_once(s, &ms, 0, 0) == 0, "first sync");
        for (k = 1, rc = 0; k <= 60 && rc == 0; k++)
            rc = satchel_ops_move(s, "Gone", (uint32_t)k, "Dest", &ph);
        CHECK(rc == 0 && satchel_ops_move(s, "INBOX", 1, "Dest", &ph) == 0, "offline moves");
        CHECK(satchel_store_begin(s, &t) == 0 && satchel_store_folder_delete(t, "Gone") == 0 &&
                  satchel_store_commit(t) == 0,
              "source folder dropped from the store");
        if (gone)
            mock_drop_last_folder(&ms); /* "Gone" was added last */
        if (!(c = new_client(row, s, 0)))
            return;
        start_run(&run, 0);
        rc = cd_drive_mock(c, &ms, &run, 0);
        satchel_client_get_counters(c, &ct);
        satchel_client_free(c);
        CHECK(rc == 0, "sync with the replay: %d", rc);
        printf("%s: %u round trips, %u commands\n", r0.name, ct.round_trips, ct.commands);
        CHECK(ct.round_trips <= 20, "%u round trips for 61 moves", ct.round_trips);
        satchel_store_queue_counts(s, &pending, &nfailed);
        CHECK(pending == 0 && nfailed == (gone ? 60u : 0u), "queue: %llu pending, %llu failed",
              (unsigned long long)pending, (unsigned long long)nfailed);
        CHECK(ms.f[1].n == (gone ? 1u : 61u), "server Dest holds %u", ms.f[1].n);
        CHECK(sync_once(s, &ms, 0, 0) == 0, "clean sync");
        compare_all(row, s, &ms, "after the replay and a clean sync");
        finish(s, dir, &ms);
    }
}

struct folder_errors {
    unsigned n;
    char folder[64], text[160];
};

static void note_folder_error(void *ctx, const satchel_event *ev)
{
    struct folder_errors *fe = ctx;
    if (ev->type != SATCHEL_EV_FOLDER_ERROR)
        return;
    fe->n++;
    snprintf(fe->folder, sizeof fe->folder, "%s", ev->folder ? ev->folder : "");
    snprintf(fe->text, sizeof fe->text, "%s", ev->text ? ev->text : "");
}

/* One folder's record damaged in the store (a flipped byte: its checksum
 * fails).  Every other folder must still sync, sync after sync; the damaged
 * record must stay exactly as it is (with its messages, for store check and
 * salvage), and the user must hear which folder and why.  A sync of that
 * one folder fails naming the damage. */
static void run_damaged_record(void)
{
    struct row r0, *row = &r0;
    mock_server ms;
    satchel_store *s;
    satchel_store_txn *t;
    satchel_folder lists;
    uint8_t kb[4], before[512], after[512];
    size_t blen = 0, alen = 0;
    char dir[256];
    int k, round, rc;
    memset(&r0, 0, sizeof r0);
    r0.name = "a folder record damaged";
    mock_init(&ms, MOCK_CAPS_FULL);
    mock_add_folder(&ms, "INBOX", "", 7001);
    mock_add_folder(&ms, "Lists", "", 7002);
    mock_add_folder(&ms, "Sent", "\\Sent", 7003);
    for (k = 0; k < 3; k++)
        mock_add_msg(&ms, k, 0, MOCK_V_PLAIN);
    if (fresh_store(row, dir, sizeof dir, &s) < 0)
        return;
    CHECK(sync_once(s, &ms, 0, 0) == 0, "first sync");
    CHECK(satchel_store_folder_get(s, NULL, "Lists", &lists) == 0, "Lists stored");
    be32(kb, lists.id);
    {
        MDB_val key = {4, kb}, val;
        rc = satchel_store_begin(s, &t);
        if (rc == 0 && (rc = mdb_get(t->txn, s->folders, &key, &val)) == 0 &&
            val.mv_size <= sizeof before) {
            memcpy(before, val.mv_data, val.mv_size);
            blen = val.mv_size;
            before[blen / 2] ^= 0x5a;
            val.mv_data = before;
            rc = mdb_put(t->txn, s->folders, &key, &val, 0);
        }
        CHECK(rc == 0 && blen > 0 && satchel_store_commit(t) == 0, "record damaged");
    }
    for (round = 1; round <= 2; round++) {
        satchel_client *c;
        cd_run run;
        struct folder_errors fe;
        mock_add_msg(&ms, 0, MOCK_F_FLAGGED, MOCK_V_PLAIN);
        mock_add_msg(&ms, 2, 0, MOCK_V_MULTIPART);
        if (!(c = new_client(row, s, 0)))
            break;
        memset(&fe, 0, sizeof fe);
        satchel_client_set_event_cb(c, note_folder_error, &fe);
        start_run(&run, 97);
        rc = cd_drive_mock(c, &ms, &run, 0);
        CHECK(rc == 0, "sync %d: %d (%s)", round, rc, satchel_client_error_text(c));
        CHECK(fe.n == 1 && strcmp(fe.folder, "Lists") == 0 && strstr(fe.text, "damaged"),
              "sync %d: %u folder errors, last %s: %s", round, fe.n, fe.folder, fe.text);
        satchel_client_free(c);
        {
            unsigned i;
            for (i = 0; i < 3; i += 2) {
                satchel_folder f;
                struct collect got;
                memset(&got, 0, sizeof got);
                CHECK(satchel_store_folder_get(s, NULL, ms.f[i].name, &f) == 0 &&
                          satchel_store_msg_list(s, f.id, 0, UINT32_MAX, collect_cb, &got) >=
                              0 &&
                          got.n == ms.f[i].n,
                      "sync %d: %s holds %u of %u", round, ms.f[i].name, got.n, ms.f[i].n);
            }
        }
    }
    rc = sync_one(s, &ms, "Lists");
    CHECK(rc == SATCHEL_E_STORE, "sync of the damaged folder: %d", rc);
    {
        MDB_val key = {4, kb}, val;
        rc = satchel_store_begin(s, &t);
        if (rc == 0 && mdb_get(t->txn, s->folders, &key, &val) == 0 &&
            val.mv_size <= sizeof after) {
            memcpy(after, val.mv_data, val.mv_size);
            alen = val.mv_size;
        }
        if (rc == 0)
            satchel_store_abort(t);
        CHECK(alen == blen && memcmp(before, after, blen) == 0,
              "the damaged record is left as it was");
        {
            struct collect got;
            memset(&got, 0, sizeof got);
            CHECK(satchel_store_msg_list(s, lists.id, 0, UINT32_MAX, collect_cb, &got) >= 0 &&
                      got.n == 1,
                  "its message is still there: %u", got.n);
        }
    }
    finish(s, dir, &ms);
}

int main(int argc, char **argv)
{
    size_t i;
    if (argc == 3 && strcmp(argv[1], "--write-seeds") == 0) {
        int rc = write_seed(argv[2], "replay-body-move", MOCK_CAPS_FULL);
        rc |= write_seed(argv[2], "replay-body-condstore", MOCK_CAPS_CONDSTORE);
        rc |= write_seed(argv[2], "replay-body-copy",
                         "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ "
                         "NAMESPACE UIDPLUS SPECIAL-USE");
        return rc ? 1 : 0;
    }
    for (i = 0; i < sizeof rows / sizeof rows[0]; i++)
        run_row(&rows[i]);
    run_pairs();
    run_slow_drip();
    run_starttls_close();
    run_walk_resume();
    run_one_folder();
    run_unstored_source();
    run_unstored_many();
    run_stray_record();
    run_sync_after_body();
    run_body_folder_moves();
    run_walk_churn(MOCK_CAPS_FULL, "resumed walk after churn, LIST-STATUS");
    run_walk_churn(MOCK_CAPS_CONDSTORE, "resumed walk after churn, CONDSTORE");
    run_walk_churn(MOCK_CAPS_NONE, "resumed walk after churn, STATUS flight");
    run_bodies();
    run_mkdirs();
    run_mkdirs_full_queue();
    run_damaged_record();
    run_marks();
    run_status(MOCK_CAPS_FULL, 1);
    run_status(MOCK_CAPS_NONE, 0);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}

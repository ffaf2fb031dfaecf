/* Fault injection: allocation failures, a full store, and a process killed
 * in the middle of commits.  After every fault the store must open again
 * and be consistent (each folder's count and unseen equal its records, no
 * orphan records), what was committed before must be intact, and a later
 * clean sync must bring the store to the same state as a run without faults.
 *
 * The client is driven sans-I/O against the scripted server in
 * tests/fuzz/mock_server.h, which answers the client's commands with its
 * own tags, so a fault anywhere cannot desynchronise the transcript.
 *
 *   test_faults                     run everything
 *   test_faults --write-seeds DIR   write the scripted sessions as seeds
 *                                   for fuzz_client_session and exit
 *
 * Best run under ASan/LSan too (-DSATCHEL_SANITIZE=ON): leaks and bad
 * frees on the failure paths are the point of the allocation test. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../fuzz/client_driver.h"
#include "../fuzz/fuzz_common.h"
#include "check.h"
#include "satchel/imap.h"
#include "satchel/opt.h"

/* ---- the scripted account ----------------------------------------------- */

static void build_server(mock_server *ms, const char *caps)
{
    int inbox, sent, dev, utf, trash;
    mock_init(ms, caps);
    inbox = mock_add_folder(ms, "INBOX", "", 1001);
    sent = mock_add_folder(ms, "Sent", "\\Sent", 1002);
    dev = mock_add_folder(ms, "Lists/Dev", "", 1003);
    utf = mock_add_folder(ms, "Entw\xc3\xbcrfe", "\\Drafts", 1004);
    trash = mock_add_folder(ms, "Trash", "\\Trash", 1005);
    (void)trash;
    mock_add_msg(ms, inbox, MOCK_F_SEEN, MOCK_V_PLAIN);
    mock_add_msg(ms, inbox, 0, MOCK_V_MULTIPART);
    mock_add_msg(ms, inbox, MOCK_F_SEEN | MOCK_F_FLAGGED, MOCK_V_ENCODED);
    mock_add_msg(ms, inbox, MOCK_F_KEYWORD, MOCK_V_PLAIN);
    mock_add_msg(ms, inbox, MOCK_F_SEEN | MOCK_F_ANSWERED, MOCK_V_PLAIN);
    mock_add_msg(ms, inbox, 0, MOCK_V_MULTIPART);
    mock_add_msg(ms, inbox, MOCK_F_SEEN, MOCK_V_PLAIN);
    mock_add_msg(ms, sent, MOCK_F_SEEN, MOCK_V_PLAIN);
    mock_add_msg(ms, sent, MOCK_F_SEEN, MOCK_V_MULTIPART);
    mock_add_msg(ms, dev, 0, MOCK_V_PLAIN);
    mock_add_msg(ms, dev, MOCK_F_SEEN, MOCK_V_ENCODED);
    mock_add_msg(ms, utf, MOCK_F_DRAFT, MOCK_V_PLAIN);
}

/* What happens on the server between two syncs. */
static void mutate_server(mock_server *ms)
{
    mock_set_flags(ms, 0, 2, MOCK_F_SEEN);
    mock_set_flags(ms, 0, 3, MOCK_F_FLAGGED);
    mock_expunge(ms, 0, 4);
    mock_expunge(ms, 0, 6);
    mock_add_msg(ms, 0, 0, MOCK_V_PLAIN);
    mock_add_msg(ms, 0, MOCK_F_SEEN, MOCK_V_MULTIPART);
    mock_expunge(ms, 2, 1);
    mock_add_msg(ms, 1, MOCK_F_SEEN, MOCK_V_PLAIN);
}

static void client_cfg(satchel_client_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->security = SATCHEL_SECURITY_NONE;
    cfg->user = "alice";
    cfg->password = "secret-pass-1";
    cfg->fetch_window = 3; /* several windows, several commits */
}

/* One sync: a new client (as the app makes per sync), one connection. */
static int sync_once(const satchel_allocator *a, satchel_store *s,
                     mock_server *ms, uint32_t window)
{
    satchel_client_config cfg;
    satchel_client *c;
    cd_run run;
    int rc;
    client_cfg(&cfg);
    if (window)
        cfg.fetch_window = window;
    rc = satchel_client_new(a, &cfg, s, &c);
    if (rc < 0)
        return rc;
    memset(&run, 0, sizeof run);
    run.now = 1000;
    run.max_chunk = 700;
    rc = cd_drive_mock(c, ms, &run, 0);
    satchel_client_free(c);
    return rc;
}

/* A text dump of the whole store, to compare two stores. */
static int dump_msg(void *ctx, const satchel_msg *m)
{
    char line[8192];
    fz_buf *b = ctx;
    snprintf(line, sizeof line, "  %u f%u s%llu d%lld/%d i%lld/%d kw[%s] from[%s] subj[%s] id[%s] bs[%s]\n",
             m->uid, m->flags, (unsigned long long)m->size, (long long)m->date, m->date_tz,
             (long long)m->internaldate, m->internaldate_tz, m->keywords,
             m->from, m->subject, m->message_id, m->bodystructure);
    fz_buf_puts(b, line);
    return 0;
}

static void dump_store(satchel_store *s, fz_buf *b)
{
    satchel_folder f;
    char after[SATCHEL_OPT_MAX_FOLDER_NAME + 1] = "";
    b->n = 0;
    if (b->p)
        b->p[0] = '\0';
    while (satchel_store_folder_next(s, NULL, after, &f) == 0) {
        char line[512];
        snprintf(line, sizeof line,
                 "%.300s: uv %u next %u hms %llu count %u unseen %u role %u flags %u\n",
                 f.name, f.uidvalidity, f.uidnext,
                 (unsigned long long)f.highestmodseq, f.count, f.unseen, f.role,
                 /* the unchanged mark is a hint of one LIST's STATUS, read
                  * only with that LIST's generation: not sync state */
                 f.flags & ~(unsigned)SATCHEL_FOLDER_UNCHANGED);
        fz_buf_puts(b, line);
        satchel_store_msg_list(s, f.id, 0, UINT32_MAX, dump_msg, b);
        memcpy(after, f.name, sizeof after);
    }
}

/* ---- 1. allocation failures in the parser ------------------------------ */

static void record_transcript(const char *caps, uint8_t **out, size_t *n)
{
    mock_server ms;
    satchel_store *s;
    char dir[256];
    int rc;
    build_server(&ms, caps);
    ms.logging = 1;
    if (cd_mkdtemp(dir, sizeof dir, "faults-rec") < 0 ||
        satchel_store_open(NULL, dir, 0, &s) < 0) {
        fprintf(stderr, "cannot make a scratch store\n");
        exit(2);
    }
    rc = sync_once(NULL, s, &ms, 0);
    CHECK(rc == 0, "scripted sync for the transcript: rc %d", rc);
    satchel_store_close(s);
    cd_rmdir(dir);
    *out = ms.log;
    *n = ms.log_len;
    ms.log = NULL;
    mock_free(&ms);
}

static void test_parser_alloc(void)
{
    uint8_t *t;
    size_t tn, pos;
    cd_alloc h;
    satchel_imap_parser *p;
    uint64_t count, n;
    unsigned responses = 0;
    int rc, mode;

    record_transcript(NULL, &t, &tn);
    CHECK(tn > 1000, "transcript is %zu bytes", tn);

    cd_alloc_init(&h, 0, 0);
    rc = satchel_imap_parser_new(&h.a, NULL, &p);
    CHECK(rc == 0, "parser_new rc %d", rc);
    count = h.allocs;
    for (pos = 0; rc >= 0 && pos < tn;) {
        const satchel_imap_resp *r;
        size_t used;
        rc = satchel_imap_parser_feed(p, t + pos, tn - pos, &used, &r);
        pos += used;
        if (rc == 1)
            responses++;
    }
    CHECK(rc >= 0 && pos == tn && responses > 50,
          "transcript parse: rc %d, %u responses", rc, responses);
    CHECK(h.allocs == count, "feeding allocated (%llu allocations, %llu at new)",
          (unsigned long long)h.allocs, (unsigned long long)count);
    satchel_imap_parser_free(p);
    CHECK(h.live_blocks == 0 && h.live_bytes == 0, "parser leaked %ld blocks",
          h.live_blocks);

    for (mode = 0; mode < 2; mode++) {
        for (n = 1; n <= count; n++) {
            cd_alloc_init(&h, n, mode);
            p = (satchel_imap_parser *)&h; /* must be overwritten */
            rc = satchel_imap_parser_new(&h.a, NULL, &p);
            CHECK(rc == SATCHEL_E_NOMEM && p == NULL,
                  "parser_new failing alloc %llu (mode %d): rc %d",
                  (unsigned long long)n, mode, rc);
            CHECK(h.live_blocks == 0 && h.live_bytes == 0,
                  "parser_new failing alloc %llu leaked %ld blocks",
                  (unsigned long long)n, h.live_blocks);
        }
    }
    free(t);
}

/* ---- 2. allocation failures in a whole sync ----------------------------- */

/* The scenario: a fresh sync, changes on the server, a resync.  Returns the
 * results through rc1/rc2. */
static void scenario(const satchel_allocator *a, const char *dir,
                     const char *caps, int *open_rc, int *rc1, int *rc2)
{
    mock_server ms;
    satchel_store *s = NULL;
    *rc1 = *rc2 = 1;
    build_server(&ms, caps);
    *open_rc = satchel_store_open(a, dir, 0, &s);
    if (*open_rc == 0) {
        *rc1 = sync_once(a, s, &ms, 0);
        mutate_server(&ms);
        *rc2 = sync_once(a, s, &ms, 0);
        satchel_store_close(s);
    }
    mock_free(&ms);
}

/* After a faulty run: the store opens, is consistent, and one clean resync
 * against the final server state gives exactly the reference store. */
static int recover_and_compare(const char *dir, const char *caps,
                               const fz_buf *ref, const char *what,
                               fz_buf *diff)
{
    mock_server ms;
    satchel_store *s;
    fz_buf d = {0};
    char why[512];
    int rc;
    int same;
    rc = satchel_store_open(NULL, dir, 0, &s);
    CHECK(rc == 0, "%s: store does not reopen: %d", what, rc);
    if (rc != 0)
        return 1;
    rc = cd_store_check(s, why, sizeof why);
    CHECK(rc == 0, "%s: inconsistent after the fault: %s", what, why);
    build_server(&ms, caps);
    mutate_server(&ms);
    rc = sync_once(NULL, s, &ms, 0);
    CHECK(rc == 0, "%s: clean resync after the fault: rc %d", what, rc);
    rc = cd_store_check(s, why, sizeof why);
    CHECK(rc == 0, "%s: inconsistent after the resync: %s", what, why);
    dump_store(s, &d);
    same = d.n == ref->n && memcmp(d.p, ref->p, d.n) == 0;
    if (!same && diff && diff->n == 0) {
        /* Keep the first difference for the report: the lines that differ. */
        const char *a = d.p, *b = ref->p;
        fz_buf_printf(diff, "%s:\n", what);
        while (a && b && *a && *b) {
            const char *ea = strchr(a, '\n'), *eb = strchr(b, '\n');
            size_t la = ea ? (size_t)(ea - a) : strlen(a);
            size_t lb = eb ? (size_t)(eb - b) : strlen(b);
            if (la != lb || memcmp(a, b, la) != 0) {
                fz_buf_puts(diff, "  got:  ");
                fz_buf_put(diff, a, la < 160 ? la : 160);
                fz_buf_puts(diff, "\n  want: ");
                fz_buf_put(diff, b, lb < 160 ? lb : 160);
                fz_buf_puts(diff, "\n");
            }
            a = ea ? ea + 1 : a + la;
            b = eb ? eb + 1 : b + lb;
        }
    }
    satchel_store_close(s);
    mock_free(&ms);
    free(d.p);
    return same;
}

static void test_sync_alloc(const char *caps, const char *name)
{
    cd_alloc h;
    char dir[256], what[128];
    fz_buf ref = {0};
    uint64_t count, n;
    int open_rc, rc1, rc2, mode, nomem_seen = 0, differ = 0;
    fz_buf diff = {0};
    satchel_store *s;

    if (cd_mkdtemp(dir, sizeof dir, "faults-alloc") < 0) {
        CHECK(0, "mkdtemp");
        return;
    }
    /* Reference: no faults, plus the recovery resync (a no-op here). */
    cd_alloc_init(&h, 0, 0);
    scenario(&h.a, dir, caps, &open_rc, &rc1, &rc2);
    CHECK(open_rc == 0 && rc1 == 0 && rc2 == 0, "%s: clean scenario: %d %d %d",
          name, open_rc, rc1, rc2);
    CHECK(h.live_blocks == 0, "%s: clean scenario leaked %ld blocks", name,
          h.live_blocks);
    count = h.allocs;
    if (satchel_store_open(NULL, dir, 0, &s) == 0) {
        mock_server ms;
        build_server(&ms, caps);
        mutate_server(&ms);
        rc1 = sync_once(NULL, s, &ms, 0);
        CHECK(rc1 == 0, "%s: reference resync rc %d", name, rc1);
        dump_store(s, &ref);
        satchel_store_close(s);
        mock_free(&ms);
    }
    CHECK(count > 10, "%s: only %llu allocations in a sync?", name,
          (unsigned long long)count);

    for (mode = 0; mode < 2; mode++) {
        for (n = 1; n <= count + 1; n++) {
            if (getenv("SATCHEL_TEST_ONLY") &&
                (uint64_t)atoi(getenv("SATCHEL_TEST_ONLY")) != n)
                continue;
            cd_wipe_store(dir);
            cd_alloc_init(&h, n, mode);
            scenario(&h.a, dir, caps, &open_rc, &rc1, &rc2);
            snprintf(what, sizeof what, "%s: failing allocation %llu%s", name,
                     (unsigned long long)n, mode ? " and later" : "");
            CHECK(h.live_blocks == 0 && h.live_bytes == 0,
                  "%s: leaked %ld blocks, %zu bytes", what, h.live_blocks,
                  h.live_bytes);
            if (h.failures == 0) {
                CHECK(n == count + 1, "%s: never reached", what);
                continue;
            }
            /* Every result is success or a clean error; the run that hit
             * the failure reports NOMEM. */
            if (open_rc != 0) {
                CHECK(open_rc == SATCHEL_E_NOMEM, "%s: store_open rc %d", what,
                      open_rc);
            } else {
                CHECK(rc1 <= 0 && rc2 <= 0 && rc1 >= SATCHEL_E_INTERNAL &&
                          rc2 >= SATCHEL_E_INTERNAL,
                      "%s: results %d %d", what, rc1, rc2);
                CHECK(rc1 == SATCHEL_E_NOMEM || rc2 == SATCHEL_E_NOMEM ||
                          (mode && (rc1 < 0 || rc2 < 0)),
                      "%s: failure not reported as SATCHEL_E_NOMEM: %d %d", what,
                      rc1, rc2);
            }
            if (rc1 == SATCHEL_E_NOMEM || rc2 == SATCHEL_E_NOMEM ||
                open_rc == SATCHEL_E_NOMEM)
                nomem_seen++;
            if (getenv("SATCHEL_TEST_VERBOSE"))
                printf("    %s: open %d, sync %d, resync %d\n", what, open_rc,
                       rc1, rc2);
            if (!recover_and_compare(dir, caps, &ref, what, &diff))
                differ++;
        }
    }
    /* A successful sync must leave the store equal to the server, however
     * the previous one ended. */
    CHECK(differ == 0,
          "%s: in %d of %llu fault runs, one clean sync afterwards does not "
          "give the store a fault-free run gives (BUG in client.c, see "
          "test_bug_resume_stale_flags); first:\n%s",
          name, differ, (unsigned long long)(2 * count + 2), diff.p);
    free(diff.p);
    CHECK(nomem_seen > 0, "%s: no run reported SATCHEL_E_NOMEM", name);
    printf("  %s: %llu allocations per scenario, each failed in turn\n", name,
           (unsigned long long)count);
    cd_rmdir(dir);
    free(ref.p);
}

/* ---- 3. the store fills up ---------------------------------------------- */

struct find_ctx {
    uint32_t uid;
    satchel_msg m;
    int found;
};

static int find_cb(void *ctx, const satchel_msg *m)
{
    struct find_ctx *f = ctx;
    if (m->uid == f->uid) {
        f->m = *m;
        f->found = 1;
    }
    return 0;
}

static void test_map_full(void)
{
    mock_server ms;
    satchel_store *s;
    satchel_folder f;
    fz_buf before = {0}, after_dump = {0};
    char dir[256], why[512];
    const uint64_t tiny = 256u * 1024u;
    int rc, big, i;

    if (cd_mkdtemp(dir, sizeof dir, "faults-full") < 0) {
        CHECK(0, "mkdtemp");
        return;
    }
    build_server(&ms, NULL);
    rc = satchel_store_open(NULL, dir, tiny, &s);
    CHECK(rc == 0, "open with a %llu byte map: %d", (unsigned long long)tiny, rc);
    if (rc != 0)
        return;
    rc = sync_once(NULL, s, &ms, 0);
    CHECK(rc == 0, "first sync fits: rc %d", rc);
    dump_store(s, &before);

    /* A flood of big messages, in a folder synced before and a new one. */
    big = mock_add_folder(&ms, "Big", "", 2001);
    for (i = 0; i < 300; i++) {
        mock_add_msg(&ms, 0, 0, MOCK_V_BIG);
        mock_add_msg(&ms, big, 0, MOCK_V_BIG);
    }
    rc = sync_once(NULL, s, &ms, 20);
    CHECK(rc == SATCHEL_E_STORE_FULL, "sync into a full store: rc %d (%s)", rc,
          satchel_strerror(rc));
    rc = cd_store_check(s, why, sizeof why);
    CHECK(rc == 0, "inconsistent while full: %s", why);
    satchel_store_close(s);

    /* Reopen: everything committed before is still there, unchanged. */
    rc = satchel_store_open(NULL, dir, tiny, &s);
    CHECK(rc == 0, "reopen after MAP_FULL: %d", rc);
    if (rc != 0)
        return;
    rc = cd_store_check(s, why, sizeof why);
    CHECK(rc == 0, "inconsistent after reopen: %s", why);
    rc = satchel_store_folder_get(s, NULL, "INBOX", &f);
    CHECK(rc == 0 && f.uidnext == 8,
          "INBOX UIDNEXT moved although its sync never completed: %u", f.uidnext);
    for (i = 1; i <= 7; i++) {
        /* The first sync's messages, byte for byte. */
        struct find_ctx fc;
        memset(&fc, 0, sizeof fc);
        fc.uid = (uint32_t)i;
        satchel_store_msg_list(s, f.id, 0, UINT32_MAX, find_cb, &fc);
        CHECK(fc.found, "message %d lost after MAP_FULL", i);
    }
    {
        /* Folders other than INBOX and Big: identical to before. */
        fz_buf a = {0}, b = {0};
        const char *p;
        dump_store(s, &after_dump);
        for (p = before.p; p && *p;) {
            const char *e = strchr(p, '\n');
            size_t len = e ? (size_t)(e - p) + 1 : strlen(p);
            if (strncmp(p, "Sent:", 5) == 0 || strncmp(p, "Lists/Dev:", 10) == 0) {
                char line[1024];
                snprintf(line, sizeof line, "%.*s", (int)len, p);
                fz_buf_puts(&a, line);
            }
            p += len;
        }
        for (p = after_dump.p; p && *p;) {
            const char *e = strchr(p, '\n');
            size_t len = e ? (size_t)(e - p) + 1 : strlen(p);
            if (strncmp(p, "Sent:", 5) == 0 || strncmp(p, "Lists/Dev:", 10) == 0) {
                char line[1024];
                snprintf(line, sizeof line, "%.*s", (int)len, p);
                fz_buf_puts(&b, line);
            }
            p += len;
        }
        CHECK(a.n > 0 && a.n == b.n && memcmp(a.p, b.p, a.n) == 0,
              "folder records changed by the failed sync:\n%s---\n%s", a.p, b.p);
        free(a.p);
        free(b.p);
    }
    satchel_store_close(s);

    /* With room, the next sync completes. */
    rc = satchel_store_open(NULL, dir, 64u << 20, &s);
    CHECK(rc == 0, "reopen with a bigger map: %d", rc);
    if (rc == 0) {
        rc = sync_once(NULL, s, &ms, 50);
        CHECK(rc == 0, "sync after growing the map: rc %d", rc);
        rc = satchel_store_folder_get(s, NULL, "Big", &f);
        CHECK(rc == 0 && f.count == 300 && f.uidnext == 301,
              "Big after recovery: rc %d count %u uidnext %u", rc, f.count,
              f.uidnext);
        rc = cd_store_check(s, why, sizeof why);
        CHECK(rc == 0, "inconsistent after recovery: %s", why);
        satchel_store_close(s);
    }
    mock_free(&ms);
    free(before.p);
    free(after_dump.p);
    cd_rmdir(dir);
}

/* ---- 4. killed in the middle of commits --------------------------------- */

/* Transaction g rewrites folder "F<g % 3>" as generation g: UIDVALIDITY g,
 * 1 + (g * 7919) % 97 messages whose size is g, UIDNEXT one past them, and
 * folder "gen" records g.  A kill can lose a transaction but never split
 * one. */
static uint32_t gen_count(uint32_t g)
{
    return 1 + (g * 7919u) % 97u;
}

static void killer_child(const char *dir)
{
    satchel_store *s;
    satchel_folder gen, f;
    satchel_msg m;
    uint32_t g, i;
    if (satchel_store_open(NULL, dir, 0, &s) != 0)
        _exit(3);
    memset(&gen, 0, sizeof gen);
    if (satchel_store_folder_get(s, NULL, "gen", &gen) != 0) {
        memset(&gen, 0, sizeof gen);
        snprintf(gen.name, sizeof gen.name, "gen");
    }
    for (g = gen.uidvalidity + 1;; g++) {
        satchel_store_txn *t;
        char name[16];
        if (satchel_store_begin(s, &t) != 0)
            _exit(4);
        snprintf(name, sizeof name, "F%u", g % 3);
        if (satchel_store_folder_get(s, t, name, &f) != 0) {
            memset(&f, 0, sizeof f);
            snprintf(f.name, sizeof f.name, "%s", name);
        }
        if (f.id && satchel_store_folder_clear(t, &f) != 0)
            _exit(5);
        if (!f.id && satchel_store_folder_put(t, &f) != 0)
            _exit(6);
        for (i = 1; i <= gen_count(g); i++) {
            memset(&m, 0, sizeof m);
            m.uid = i;
            m.size = g;
            m.flags = (i & 1) ? SATCHEL_FLAG_SEEN : 0;
            snprintf(m.subject, sizeof m.subject, "generation %u message %u", g, i);
            snprintf(m.bodystructure, sizeof m.bodystructure,
                     "(\"text\" \"plain\" NIL NIL NIL \"7bit\" %u 1)", g);
            if (satchel_store_msg_put(t, &f, &m, NULL) != 0)
                _exit(7);
        }
        f.uidvalidity = g;
        f.uidnext = gen_count(g) + 1;
        gen.uidvalidity = g;
        if (satchel_store_folder_put(t, &f) != 0 ||
            satchel_store_folder_put(t, &gen) != 0)
            _exit(8);
        if (satchel_store_commit(t) != 0)
            _exit(9);
    }
}

struct gen_check {
    uint32_t g, n, bad;
};

static int gen_cb(void *ctx, const satchel_msg *m)
{
    struct gen_check *c = ctx;
    c->n++;
    if (m->size != c->g)
        c->bad++;
    return 0;
}

static void test_kill(void)
{
    char dir[256], why[512];
    uint32_t last_gen = 0, progress = 0;
    int iter;
    unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();

    if (cd_mkdtemp(dir, sizeof dir, "faults-kill") < 0) {
        CHECK(0, "mkdtemp");
        return;
    }
    if (getenv("SATCHEL_TEST_SEED"))
        seed = (unsigned)atoi(getenv("SATCHEL_TEST_SEED"));
    printf("  kill test seed %u (SATCHEL_TEST_SEED to repeat)\n", seed);
    srand(seed);
    for (iter = 0; iter < 20; iter++) {
        pid_t pid;
        int status;
        satchel_store *s;
        satchel_folder gen, f;
        struct timespec ts;
        int rc, k, max_seen = 0;
        fflush(stdout);
        pid = fork();
        if (pid < 0) {
            CHECK(0, "fork: %s", strerror(errno));
            break;
        }
        if (pid == 0)
            killer_child(dir);
        ts.tv_sec = 0;
        ts.tv_nsec = (long)(2 + rand() % 60) * 1000000L;
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
              "iteration %d: child ended on its own (status 0x%x)", iter, status);

        rc = satchel_store_open(NULL, dir, 0, &s);
        CHECK(rc == 0, "iteration %d: reopen after SIGKILL: %d", iter, rc);
        if (rc != 0)
            continue;
        rc = cd_store_check(s, why, sizeof why);
        CHECK(rc == 0, "iteration %d: inconsistent after SIGKILL: %s", iter, why);
        memset(&gen, 0, sizeof gen);
        satchel_store_folder_get(s, NULL, "gen", &gen);
        CHECK(gen.uidvalidity >= last_gen, "iteration %d: generation went back",
              iter);
        if (gen.uidvalidity > last_gen)
            progress++;
        last_gen = gen.uidvalidity;
        for (k = 0; k < 3; k++) {
            char name[16];
            struct gen_check gc;
            snprintf(name, sizeof name, "F%d", k);
            if (satchel_store_folder_get(s, NULL, name, &f) != 0)
                continue;
            memset(&gc, 0, sizeof gc);
            gc.g = f.uidvalidity;
            satchel_store_msg_list(s, f.id, 0, UINT32_MAX, gen_cb, &gc);
            if (f.uidvalidity == 0)
                continue; /* created, nothing committed into it yet */
            CHECK(gc.bad == 0 && gc.n == gen_count(f.uidvalidity) &&
                      f.count == gc.n && f.uidnext == gc.n + 1,
                  "iteration %d: %s is generation %u with %u messages (%u of "
                  "another generation), want %u",
                  iter, name, f.uidvalidity, gc.n, gc.bad,
                  gen_count(f.uidvalidity));
            CHECK(f.uidvalidity <= gen.uidvalidity && f.uidvalidity % 3 == (uint32_t)k,
                  "iteration %d: %s generation %u, last %u", iter, name,
                  f.uidvalidity, gen.uidvalidity);
            if ((int)f.uidvalidity > max_seen)
                max_seen = (int)f.uidvalidity;
        }
        CHECK((uint32_t)max_seen == gen.uidvalidity,
              "iteration %d: last generation %u but newest folder has %d", iter,
              gen.uidvalidity, max_seen);
        satchel_store_close(s);
    }
    CHECK(progress >= 10, "the child committed in only %u of 20 runs", progress);
    printf("  kill test: %u generations committed over 20 kills\n", last_gen);
    cd_rmdir(dir);
}

/* ---- 5. client bugs found by fuzzing (fail until client.c is fixed) ------ */

/* A Date: header with a zone beyond +-24:00 ("+9959": valid RFC 5322
 * syntax) is stored as is, but the store refuses to decode a record with
 * such a zone, so the whole folder can no longer be listed. */
static void test_bug_far_zone(void)
{
    mock_server ms;
    satchel_store *s;
    satchel_folder f;
    char dir[256];
    struct find_ctx fc;
    int rc;
    if (cd_mkdtemp(dir, sizeof dir, "faults-zone") < 0)
        return;
    mock_init(&ms, NULL);
    mock_add_folder(&ms, "INBOX", "", 1);
    mock_add_msg(&ms, 0, 0, MOCK_V_PLAIN);
    mock_add_msg(&ms, 0, 0, MOCK_V_BADZONE);
    rc = satchel_store_open(NULL, dir, 0, &s);
    if (rc == 0) {
        rc = sync_once(NULL, s, &ms, 0);
        CHECK(rc == 0, "far zone: sync rc %d", rc);
        memset(&fc, 0, sizeof fc);
        fc.uid = 2;
        rc = satchel_store_folder_get(s, NULL, "INBOX", &f);
        if (rc == 0)
            rc = satchel_store_msg_list(s, f.id, 0, UINT32_MAX, find_cb, &fc);
        CHECK(rc == 0 && fc.found,
              "BUG (client.c): a Date: zone of +9959 makes INBOX unreadable: "
              "msg_list rc %d (%s)",
              rc, satchel_strerror(rc));
        satchel_store_close(s);
    }
    mock_free(&ms);
    cd_rmdir(dir);
}

/* A FETCH whose tree overflows the parser arena (here a FLAGS list of 2500
 * keywords) loses the items after the overflow, headers included.  The
 * client neither stores the message nor marks the folder incomplete, so
 * UIDNEXT moves past it and no later sync fetches it. */
static void test_bug_truncated_fetch(void)
{
    mock_server ms;
    satchel_store *s;
    satchel_folder f;
    char dir[256];
    struct find_ctx fc;
    int rc;
    if (cd_mkdtemp(dir, sizeof dir, "faults-trunc") < 0)
        return;
    mock_init(&ms, NULL);
    mock_add_folder(&ms, "INBOX", "", 1);
    mock_add_msg(&ms, 0, 0, MOCK_V_PLAIN);
    mock_add_msg(&ms, 0, 0, MOCK_V_HUGEFLAGS);
    mock_add_msg(&ms, 0, 0, MOCK_V_PLAIN);
    rc = satchel_store_open(NULL, dir, 0, &s);
    if (rc == 0) {
        rc = sync_once(NULL, s, &ms, 0);
        CHECK(rc == 0, "truncated fetch: sync rc %d", rc);
        memset(&fc, 0, sizeof fc);
        fc.uid = 2;
        rc = satchel_store_folder_get(s, NULL, "INBOX", &f);
        if (rc == 0)
            satchel_store_msg_list(s, f.id, 0, UINT32_MAX, find_cb, &fc);
        CHECK(rc == 0 && (fc.found || f.uidnext <= 2),
              "BUG (client.c): message 2 (FETCH overflowed the arena) is not "
              "stored, yet INBOX UIDNEXT is %u: it will never be fetched",
              f.uidnext);
        satchel_store_close(s);
    }
    mock_free(&ms);
    cd_rmdir(dir);
}

/* A fresh sync cut after its first window keeps that block of messages
 * and the next sync resumes around it (newer and older UIDs) -- but never
 * refreshes the flags of the kept block or drops what was expunged from
 * it, and still records the server's new HIGHESTMODSEQ, so those changes
 * are never seen again (QRESYNC/CHANGEDSINCE only report later ones). */
static void test_bug_resume_stale_flags(const char *caps, const char *name)
{
    mock_server ms;
    satchel_store *s;
    satchel_client_config cfg;
    satchel_client *c;
    satchel_folder f;
    char dir[256];
    cd_run run;
    int rc, i, bad = 0;
    uint32_t server_flags[41];
    if (cd_mkdtemp(dir, sizeof dir, "faults-resume") < 0)
        return;
    mock_init(&ms, caps);
    mock_add_folder(&ms, "INBOX", "", 77);
    for (i = 1; i <= 40; i++)
        mock_add_msg(&ms, 0, 0, MOCK_V_PLAIN);
    rc = satchel_store_open(NULL, dir, 0, &s);
    if (rc != 0)
        return;
    /* 1: cut in the middle of the fresh sync (window of 10, newest first). */
    client_cfg(&cfg);
    cfg.fetch_window = 10;
    satchel_client_new(NULL, &cfg, s, &c);
    memset(&run, 0, sizeof run);
    run.now = 1000;
    run.max_chunk = 500;
    run.cut_after = 9000;
    cd_drive_mock(c, &ms, &run, 0);
    satchel_client_free(c);
    /* The server changes: flags on every message, two expunged. */
    for (i = 1; i <= 40; i++)
        mock_set_flags(&ms, 0, (uint32_t)i, MOCK_F_SEEN | MOCK_F_FLAGGED);
    mock_expunge(&ms, 0, 35);
    mock_expunge(&ms, 0, 36);
    /* 2: a complete sync. */
    rc = sync_once(NULL, s, &ms, 10);
    CHECK(rc == 0, "resume %s: second sync rc %d", name, rc);
    for (i = 1; i <= 40; i++)
        server_flags[i] = mock_find(&ms, 0, (uint32_t)i) ? 1 : 0;
    rc = satchel_store_folder_get(s, NULL, "INBOX", &f);
    if (rc == 0) {
        for (i = 1; i <= 40; i++) {
            satchel_msg m;
            int got = satchel_store_msg_get(s, NULL, f.id, (uint32_t)i, &m) == 0;
            if (got != (int)server_flags[i] ||
                (got && m.flags != (SATCHEL_FLAG_SEEN | SATCHEL_FLAG_FLAGGED)))
                bad++;
        }
        CHECK(bad == 0 && f.count == 38,
              "BUG (client.c): after a cut fresh sync, the resuming sync left %d "
              "of 40 messages out of date (stale flags or expunged still "
              "stored; %u stored, server has 38), %s",
              bad, f.count, name);
    }
    satchel_store_close(s);
    mock_free(&ms);
    cd_rmdir(dir);
}

/* When the login answer carries no [CAPABILITY] code, the client asks with
 * CAPABILITY, but that path never reaches start_authenticated(), so a
 * server that offers QRESYNC never gets ENABLE QRESYNC and every resync
 * falls back to CONDSTORE (slower, and no VANISHED). */
static void test_bug_qresync_after_capability(void)
{
    mock_server ms;
    satchel_store *s;
    char dir[256];
    int rc;
    if (cd_mkdtemp(dir, sizeof dir, "faults-caps") < 0)
        return;
    build_server(&ms, MOCK_CAPS_FULL);
    ms.no_login_caps = 1;
    rc = satchel_store_open(NULL, dir, 0, &s);
    if (rc == 0) {
        rc = sync_once(NULL, s, &ms, 0);
        CHECK(rc == 0, "capabilities by command: sync rc %d", rc);
        CHECK(ms.enabled_qresync,
              "BUG (client.c): QRESYNC offered after login (CAPABILITY "
              "command) but never enabled");
        satchel_store_close(s);
    }
    mock_free(&ms);
    cd_rmdir(dir);
}

/* ---- seeds for the client fuzzer ---------------------------------------- */

static int write_seeds(const char *outdir)
{
    static const struct {
        const char *name, *caps;
    } profiles[] = {{"mock-full", MOCK_CAPS_FULL},
                    {"mock-condstore", MOCK_CAPS_CONDSTORE},
                    {"mock-none", MOCK_CAPS_NONE}};
    size_t i;
    for (i = 0; i < sizeof profiles / sizeof profiles[0]; i++) {
        mock_server ms;
        satchel_store *s;
        char dir[256], path[512];
        FILE *f;
        size_t first;
        build_server(&ms, profiles[i].caps);
        ms.logging = 1;
        if (cd_mkdtemp(dir, sizeof dir, "seeds") < 0 ||
            satchel_store_open(NULL, dir, 0, &s) != 0)
            return 1;
        /* The fuzz harness uses the default window: so do these. */
        if (sync_once(NULL, s, &ms, 250) != 0)
            fprintf(stderr, "warning: %s: first sync failed\n", profiles[i].name);
        first = ms.log_len;
        mutate_server(&ms);
        if (sync_once(NULL, s, &ms, 250) != 0)
            fprintf(stderr, "warning: %s: resync failed\n", profiles[i].name);
        satchel_store_close(s);
        cd_rmdir(dir);
        snprintf(path, sizeof path, "%s/%s", outdir, profiles[i].name);
        f = fopen(path, "wb");
        if (!f)
            return 1;
        fwrite("\x00\x30", 1, 2, f);
        fwrite(ms.log, 1, first, f);
        fwrite("\r\n==RECONNECT==\r\n", 1, 17, f);
        fwrite(ms.log + first, 1, ms.log_len - first, f);
        fclose(f);
        printf("wrote %s (%zu bytes)\n", path, ms.log_len + 19);
        mock_free(&ms);
    }
    {
        /* Odd content (far zone, a FETCH that overflows the parser arena,
         * big records), then UIDVALIDITY changes under the store. */
        mock_server ms;
        satchel_store *s;
        char dir[256], path[512];
        FILE *f;
        size_t first;
        mock_init(&ms, NULL);
        mock_add_folder(&ms, "INBOX", "", 7);
        mock_add_msg(&ms, 0, 0, MOCK_V_BADZONE);
        mock_add_msg(&ms, 0, MOCK_F_SEEN, MOCK_V_HUGEFLAGS);
        mock_add_msg(&ms, 0, 0, MOCK_V_BIG);
        mock_add_msg(&ms, 0, MOCK_F_SEEN, MOCK_V_ENCODED);
        ms.logging = 1;
        if (cd_mkdtemp(dir, sizeof dir, "seeds") < 0 ||
            satchel_store_open(NULL, dir, 0, &s) != 0)
            return 1;
        sync_once(NULL, s, &ms, 250);
        first = ms.log_len;
        mock_renumber(&ms, 0);
        mock_add_msg(&ms, 0, 0, MOCK_V_PLAIN);
        sync_once(NULL, s, &ms, 250);
        satchel_store_close(s);
        cd_rmdir(dir);
        snprintf(path, sizeof path, "%s/mock-odd", outdir);
        f = fopen(path, "wb");
        if (!f)
            return 1;
        fwrite("\x00\x90", 1, 2, f);
        fwrite(ms.log, 1, first, f);
        fwrite("\r\n==RECONNECT==\r\n", 1, 17, f);
        fwrite(ms.log + first, 1, ms.log_len - first, f);
        fclose(f);
        printf("wrote %s (%zu bytes)\n", path, ms.log_len + 19);
        mock_free(&ms);
    }
    {
        /* A fresh sync cut after a window, changes, the resuming sync. */
        mock_server ms;
        satchel_store *s;
        satchel_client_config cfg;
        satchel_client *c;
        cd_run run;
        char dir[256], path[512];
        FILE *f;
        size_t first;
        int k;
        mock_init(&ms, NULL);
        mock_add_folder(&ms, "INBOX", "", 77);
        for (k = 1; k <= 12; k++)
            mock_add_msg(&ms, 0, k % 3 ? MOCK_F_SEEN : 0, MOCK_V_PLAIN);
        ms.logging = 1;
        if (cd_mkdtemp(dir, sizeof dir, "seeds") < 0 ||
            satchel_store_open(NULL, dir, 0, &s) != 0)
            return 1;
        client_cfg(&cfg);
        cfg.fetch_window = 2; /* config bit 3 of the harness */
        satchel_client_new(NULL, &cfg, s, &c);
        memset(&run, 0, sizeof run);
        run.now = 1000;
        run.cut_after = 3000;
        cd_drive_mock(c, &ms, &run, 0);
        satchel_client_free(c);
        first = ms.log_len;
        for (k = 1; k <= 12; k++)
            mock_set_flags(&ms, 0, (uint32_t)k, MOCK_F_FLAGGED);
        mock_expunge(&ms, 0, 11);
        mock_add_msg(&ms, 0, 0, MOCK_V_MULTIPART);
        sync_once(NULL, s, &ms, 2);
        satchel_store_close(s);
        cd_rmdir(dir);
        snprintf(path, sizeof path, "%s/mock-cut", outdir);
        f = fopen(path, "wb");
        if (!f)
            return 1;
        fwrite("\x08\x00", 1, 2, f);
        fwrite(ms.log, 1, first, f);
        fwrite("\r\n==RECONNECT==\r\n", 1, 17, f);
        fwrite(ms.log + first, 1, ms.log_len - first, f);
        fclose(f);
        printf("wrote %s (%zu bytes)\n", path, ms.log_len + 19);
        mock_free(&ms);
    }
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc == 3 && strcmp(argv[1], "--write-seeds") == 0)
        return write_seeds(argv[2]);
    printf("parser allocation failures\n");
    test_parser_alloc();
    printf("sync allocation failures\n");
    test_sync_alloc(MOCK_CAPS_FULL, "qresync");
    test_sync_alloc(MOCK_CAPS_CONDSTORE, "condstore");
    test_sync_alloc(MOCK_CAPS_NONE, "plain");
    printf("store full (MDB_MAP_FULL)\n");
    test_map_full();
    printf("killed mid-commit\n");
    test_kill();
    printf("client bugs found by fuzzing\n");
    test_bug_far_zone();
    test_bug_truncated_fetch();
    test_bug_qresync_after_capability();
    test_bug_resume_stale_flags(MOCK_CAPS_FULL, "qresync");
    test_bug_resume_stale_flags(MOCK_CAPS_CONDSTORE, "condstore");
    test_bug_resume_stale_flags(MOCK_CAPS_NONE, "plain");
    return check_report("test_faults");
}

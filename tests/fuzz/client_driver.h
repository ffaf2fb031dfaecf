/* Helpers to run the sans-I/O client against a store in tests and fuzzers:
 * scratch store directories, a counting allocator that can fail on demand,
 * the store consistency check, and a drive loop against mock_server.h.
 * Header-only; POSIX (the including file defines _POSIX_C_SOURCE). */
#ifndef SATCHEL_CLIENT_DRIVER_H
#define SATCHEL_CLIENT_DRIVER_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "satchel/client.h"
#include "satchel/ops.h"
#include "satchel/store.h"

#include "mock_server.h"

#if defined(__GNUC__) || defined(__clang__)
#define CD_UNUSED __attribute__((unused))
#else
#define CD_UNUSED
#endif

/* ---- scratch store directories ----------------------------------------- */

/* A fresh directory, on tmpfs when there is one (LMDB syncs on commit). */
static CD_UNUSED int cd_mkdtemp(char *out, size_t cap, const char *tag)
{
    struct stat st;
    const char *base = getenv("SATCHEL_TEST_TMP");
    if (!base)
        base = (stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) &&
                access("/dev/shm", W_OK) == 0)
                   ? "/dev/shm"
                   : "/tmp";
    snprintf(out, cap, "%s/satchel-%s-XXXXXX", base, tag);
    return mkdtemp(out) ? 0 : -1;
}

static CD_UNUSED void cd_wipe_store(const char *dir)
{
    char p[512];
    snprintf(p, sizeof p, "%s/data.mdb", dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/lock.mdb", dir);
    unlink(p);
}

static CD_UNUSED void cd_rmdir(const char *dir)
{
    cd_wipe_store(dir);
    rmdir(dir);
}

/* ---- counting allocator ------------------------------------------------ */

typedef struct cd_alloc {
    satchel_allocator a;
    uint64_t allocs;   /* attempts so far */
    uint64_t fail_at;  /* fail attempt number fail_at (0: never) */
    int fail_after;    /* ... and every later one too */
    uint64_t failures;
    long live_blocks;
    size_t live_bytes;
} cd_alloc;

static void *cd_alloc_fn(void *ctx, size_t size)
{
    cd_alloc *h = ctx;
    void *p;
    h->allocs++;
    if (h->fail_at &&
        (h->allocs == h->fail_at || (h->fail_after && h->allocs > h->fail_at))) {
        h->failures++;
        return NULL;
    }
    p = malloc(size ? size : 1);
    if (p) {
        h->live_blocks++;
        h->live_bytes += size;
    }
    return p;
}

static void cd_free_fn(void *ctx, void *ptr, size_t size)
{
    cd_alloc *h = ctx;
    if (!ptr)
        return;
    h->live_blocks--;
    h->live_bytes -= size;
    free(ptr);
}

static CD_UNUSED void cd_alloc_init(cd_alloc *h, uint64_t fail_at, int after)
{
    memset(h, 0, sizeof *h);
    h->a.alloc = cd_alloc_fn;
    h->a.free = cd_free_fn;
    h->a.ctx = h;
    h->fail_at = fail_at;
    h->fail_after = after;
}

/* ---- store consistency ------------------------------------------------- */

struct cd_count {
    uint32_t n, unseen, last;
    int unordered;
};

static int cd_count_cb(void *ctx, const satchel_msg *m)
{
    struct cd_count *c = ctx;
    if (c->n && m->uid >= c->last)
        c->unordered = 1;
    if (m->uid == 0)
        c->unordered = 1;
    c->last = m->uid;
    c->n++;
    if (!(m->flags & SATCHEL_FLAG_SEEN))
        c->unseen++;
    return 0;
}

/* Every folder's count and unseen equal its message records, and no record
 * belongs to a folder that does not exist.  Returns 0, or -1 with why. */
static CD_UNUSED int cd_store_check(satchel_store *s, char *why, size_t cap)
{
    satchel_folder f;
    char after[SATCHEL_OPT_MAX_FOLDER_NAME + 1] = "";
    satchel_store_stats st;
    uint64_t total = 0;
    unsigned nf = 0;
    int rc;
    for (;;) {
        struct cd_count c;
        uint32_t from = 0;
        rc = satchel_store_folder_next(s, NULL, after, &f);
        if (rc == SATCHEL_E_NOTFOUND)
            break;
        if (rc < 0) {
            snprintf(why, cap, "folder_next after '%.200s': %d", after, rc);
            return -1;
        }
        if (++nf > 100000) {
            snprintf(why, cap, "folder_next does not end");
            return -1;
        }
        memset(&c, 0, sizeof c);
        rc = satchel_store_msg_list(s, f.id, 0, UINT32_MAX, cd_count_cb, &c);
        if (rc != 0) {
            snprintf(why, cap, "folder '%.200s': msg_list rc %d", f.name, rc);
            return -1;
        }
        if (c.unordered) {
            snprintf(why, cap, "folder '%.200s': UIDs not descending", f.name);
            return -1;
        }
        if (c.n != f.count || c.unseen != f.unseen) {
            snprintf(why, cap,
                     "folder '%.200s': record says count %u unseen %u, store has %u "
                     "messages, %u unseen",
                     f.name, f.count, f.unseen, c.n, c.unseen);
            return -1;
        }
        rc = satchel_store_msg_count_from(s, NULL, f.id, 0, &from);
        if (rc != 0 || from != f.count) {
            snprintf(why, cap, "folder '%.200s': count_from %u rc %d", f.name, from,
                     rc);
            return -1;
        }
        total += f.count;
        memcpy(after, f.name, sizeof after);
    }
    rc = satchel_store_stats_get(s, &st);
    if (rc != 0 || st.messages != total || st.folders != nf) {
        snprintf(why, cap,
                 "stats: rc %d, %llu message records and %u folders, folders "
                 "list %llu messages in %u folders",
                 rc, (unsigned long long)st.messages, st.folders,
                 (unsigned long long)total, nf);
        return -1;
    }
    return 0;
}

/* ---- offline changes, so a session replays a queue ---------------------- */

struct cd_newest {
    uint32_t uids[3];
    unsigned n;
};

static int cd_newest_cb(void *ctx, const satchel_msg *m)
{
    struct cd_newest *nw = ctx;
    if (m->mflags & SATCHEL_MSG_F_PENDING)
        return 0;
    nw->uids[nw->n++] = m->uid;
    return nw->n == 3;
}

/* Queue changes on INBOX's three newest messages, as a user offline would:
 * +\Seen and a keyword on the newest, the next moved to the second folder
 * in name order (or Trash), the third deleted.  Returns how many were
 * recorded; *newest gets the newest UID (0 when INBOX is empty), for a
 * body job. */
static CD_UNUSED int cd_queue_changes(satchel_store *s, uint32_t *newest)
{
    satchel_folder f, d;
    struct cd_newest nw;
    uint32_t ph;
    int trashed, n = 0;
    *newest = 0;
    memset(&nw, 0, sizeof nw);
    if (satchel_store_folder_get(s, NULL, "INBOX", &f) < 0)
        return 0;
    satchel_store_msg_list(s, f.id, 0, 3, cd_newest_cb, &nw);
    if (nw.n == 0)
        return 0;
    *newest = nw.uids[0];
    n += satchel_ops_flag(s, "INBOX", nw.uids[0], SATCHEL_FLAG_SEEN, 0, "$Fuzz", "") == 0;
    if (nw.n > 1 && satchel_store_folder_next(s, NULL, "INBOX", &d) == 0)
        n += satchel_ops_move(s, "INBOX", nw.uids[1], d.name, &ph) == 0;
    if (nw.n > 2)
        n += satchel_ops_delete(s, "INBOX", nw.uids[2], &trashed, &ph) == 0;
    return n;
}

/* ---- drive the client against the mock server -------------------------- */

typedef struct cd_run {
    uint64_t now;
    size_t max_chunk;   /* server bytes per satchel_client_recv (0: all) */
    int no_logout;      /* do not log out when the client goes idle */
    size_t cut_after;   /* drop the connection after this many server
                           bytes (0: never) */
    size_t delivered;   /* server bytes given to the client so far */
    int recv_rc;        /* the first fatal rc from recv/tick, or 0 */
    uint64_t step_ms;   /* clock advance per chunk given (0: 3 ms) */
    size_t send_max;    /* a slow uplink: client bytes the server takes per
                           step, with its answers read in between (0: all
                           of the client's output before any answer) */
    unsigned steps;
} cd_run;

/* One connection: greeting to close.  Returns the client's job result, or
 * the fatal rc that ended the connection. */
static CD_UNUSED int cd_drive_mock(satchel_client *c, mock_server *ms,
                                   cd_run *run, int tls_active)
{
    int logout_sent = 0, rc;
    mock_connect(ms);
    satchel_client_connected(c, run->now, tls_active);
    rc = satchel_client_sync(c, NULL);
    (void)rc; /* BUSY when a job survived the reconnect: it restarts */
    run->recv_rc = 0;
    for (;;) {
        const uint8_t *p;
        size_t n;
        int w = satchel_client_want(c);
        if (++run->steps > 10000000u)
            return SATCHEL_E_INTERNAL; /* the pair livelocked */
        if (w & SATCHEL_WANT_STARTTLS) {
            if ((rc = satchel_client_starttls_done(c)) < 0)
                return rc;
            continue;
        }
        n = satchel_client_pending(c, &p);
        if (n) {
            if (getenv("SATCHEL_TEST_TRACE"))
                fprintf(stderr, "C: %.*s", (int)n, (const char *)p);
            if (run->send_max && n > run->send_max)
                n = run->send_max;
            mock_input(ms, p, n);
            satchel_client_sent(c, n);
            if (!run->send_max || mock_pending(ms, &p) == 0)
                continue;
            /* the answers so far arrive while output still waits */
        }
        if (w & SATCHEL_WANT_CLOSE)
            break;
        if (!run->no_logout && !logout_sent && satchel_client_idle(c)) {
            logout_sent = 1;
            if (satchel_client_logout(c) == 0)
                continue;
        }
        n = mock_pending(ms, &p);
        if (n == 0) {
            /* The server has nothing more to say: it hangs up. */
            satchel_client_closed(c, SATCHEL_E_IO);
            break;
        }
        if (run->max_chunk && n > run->max_chunk)
            n = run->max_chunk;
        if (run->cut_after) {
            if (run->delivered >= run->cut_after) {
                satchel_client_closed(c, SATCHEL_E_IO);
                break;
            }
            if (n > run->cut_after - run->delivered)
                n = run->cut_after - run->delivered;
        }
        run->delivered += n;
        if (getenv("SATCHEL_TEST_TRACE"))
            fprintf(stderr, "S: %.*s", (int)n, (const char *)p);
        rc = satchel_client_recv(c, p, n, run->now);
        mock_consume(ms, n);
        run->now += run->step_ms ? run->step_ms : 3;
        if (rc < 0 && SATCHEL_ERR_IS_FATAL(rc)) {
            run->recv_rc = rc;
            break;
        }
        rc = satchel_client_tick(c, run->now);
        if (rc < 0) {
            run->recv_rc = rc;
            break;
        }
    }
    if (run->recv_rc < 0 && satchel_client_result(c) == 0)
        return run->recv_rc;
    return satchel_client_result(c);
}

#endif

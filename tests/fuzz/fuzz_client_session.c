/* fuzz_client_session: the sans-I/O client and sync engine fed hostile
 * server bytes, over a real store.
 *
 * Input: [config][chunk seed] then what the server sends.  The text
 * "\r\n==RECONNECT==\r\n" ends a connection and starts the next one with a
 * new client on the same store, as the app does for every sync (so a resync
 * runs against what the first session stored); "\r\n==RESUME==\r\n" ends
 * the connection and reconnects the same client (its job starts over);
 * "\r\n==QUEUE==\r\n" is a reconnect after offline changes on INBOX's
 * newest messages (cd_queue_changes: a flag, a move, a delete), so the next
 * sync replays them first; "\r\n==BODY==\r\n" is a reconnect whose job
 * is the download of part 1 of INBOX's newest message instead of a sync.
 * Chunks never extend past a line end, so the client acts on each response
 * before it sees the next, as with a real server.
 *   config bits 0-1: 0 security none (plain), 1 implicit TLS, 2 STARTTLS
 *                    (the handshake "succeeds" when asked), 3 implicit TLS
 *                    expected but the transport is plain
 *   bit 2: sync only INBOX      bit 3: fetch window of 2 messages
 *   bit 4: ignore SASL-IR (continuation path)
 *   bit 5: ignore CONDSTORE and QRESYNC
 *   bit 6: at the end, stay silent past the timeout
 *   bit 7: do not log out when the client goes idle
 * The client drains its output between chunks and time advances.  Checked:
 * no crash or leak, results are valid error codes, credentials never leave
 * on a connection that is not protected when protection was asked for, the
 * client's output is well-formed command lines, and the store is consistent
 * afterwards (every folder's count and unseen match its records). */
#define _POSIX_C_SOURCE 200809L
#include "fuzz_common.h"

#include "client_driver.h"
#include "satchel/opt.h"

#define SEP "\r\n==RECONNECT==\r\n"
#define SEP_RESUME "\r\n==RESUME==\r\n"
#define SEP_QUEUE "\r\n==QUEUE==\r\n"
#define SEP_BODY "\r\n==BODY==\r\n"
#define USER "alice"
#define PASS "secret-pass-1"
/* base64("\0alice\0secret-pass-1") */
#define PLAIN_B64 "AGFsaWNlAHNlY3JldC1wYXNzLTE="

static char store_dir[256];

static void remove_store_dir(void)
{
    cd_rmdir(store_dir);
}

struct ev_state {
    unsigned events;
};

static void on_event(void *ctx, const satchel_event *ev)
{
    struct ev_state *s = ctx;
    s->events++;
    FZ_CHECK(ev->type >= SATCHEL_EV_FOLDER_SYNCED && ev->type <= SATCHEL_EV_ALERT,
             "event type %d", ev->type);
    if (ev->type != SATCHEL_EV_ALERT) {
        FZ_CHECK(ev->folder && ev->folder[0], "folder event without folder");
        FZ_CHECK(strlen(ev->folder) <= SATCHEL_OPT_MAX_FOLDER_NAME,
                 "folder name too long");
    }
    if (ev->text)
        (void)strlen(ev->text);
    if (ev->type == SATCHEL_EV_FOLDER_ERROR)
        FZ_CHECK(ev->err < 0, "folder error without an error code");
}

static int memmem_(const uint8_t *h, size_t hn, const char *needle)
{
    size_t nn = strlen(needle), i;
    if (nn > hn)
        return 0;
    for (i = 0; i + nn <= hn; i++)
        if (memcmp(h + i, needle, nn) == 0)
            return 1;
    return 0;
}

struct out_state {
    int must_protect; /* credentials may not be sent now */
    fz_buf partial;   /* bytes of an incomplete command line */
    int in_literal;   /* the next line continues a command */
    uint64_t lit_left; /* literal bytes still to come */
};

/* Take the client's output and check it. */
static void drain(satchel_client *c, struct out_state *o)
{
    const uint8_t *p;
    size_t n = satchel_client_pending(c, &p);
    if (!n)
        return;
    if (o->must_protect) {
        FZ_CHECK(!memmem_(p, n, "AUTHENTICATE") && !memmem_(p, n, "LOGIN ") &&
                     !memmem_(p, n, PASS) && !memmem_(p, n, PLAIN_B64),
                 "credentials sent on an unprotected connection: %.*s", (int)n,
                 (const char *)p);
    }
    FZ_CHECK(memchr(p, 0, n) == NULL, "NUL byte in client output");
    if (getenv("SATCHEL_FUZZ_DEBUG") && atoi(getenv("SATCHEL_FUZZ_DEBUG")) > 1)
        fprintf(stderr, "C: %.*s", (int)n, (const char *)p);
    /* Every line is a tagged command "S<n> ..." or a SASL response; a line
     * ending in "{n+}" is followed by n literal bytes and then the rest of
     * the same command. */
    fz_buf_put(&o->partial, p, n);
    for (;;) {
        char *nl;
        size_t len;
        if (o->lit_left) {
            size_t k = o->lit_left < o->partial.n ? (size_t)o->lit_left
                                                  : o->partial.n;
            memmove(o->partial.p, o->partial.p + k, o->partial.n - k);
            o->partial.n -= k;
            o->lit_left -= k;
            if (o->lit_left)
                break;
        }
        nl = memchr(o->partial.p, '\n', o->partial.n);
        if (!nl)
            break;
        len = (size_t)(nl - o->partial.p) + 1;
        FZ_CHECK(len >= 2 && nl[-1] == '\r', "client line without CRLF");
        if (!o->in_literal)
            FZ_CHECK((o->partial.p[0] == 'S' && o->partial.p[1] >= '0' &&
                      o->partial.p[1] <= '9') ||
                         memcmp(o->partial.p, PLAIN_B64, strlen(PLAIN_B64)) == 0,
                     "client line is not a tagged command: %.40s", o->partial.p);
        o->in_literal = 0;
        if (len >= 5 && nl[-2] == '}') {
            char *open = nl - 2;
            while (open > o->partial.p && *open != '{')
                open--;
            FZ_CHECK(*open == '{', "'}' without '{'");
            o->lit_left = strtoull(open + 1, NULL, 10);
            o->in_literal = 1;
        }
        memmove(o->partial.p, o->partial.p + len, o->partial.n - len);
        o->partial.n -= len;
    }
    satchel_client_sent(c, n);
}

static void check_rc(int rc, const char *what)
{
    FZ_CHECK(rc == 0 || (rc <= SATCHEL_E_AGAIN && rc >= SATCHEL_E_NOTSUP) ||
                 (rc <= SATCHEL_E_FATAL && rc >= SATCHEL_E_INTERNAL),
             "%s: rc %d is not a satchel_err", what, rc);
}

/* Offset of the next separator (n if none); *resume tells which kind and
 * *seplen its length. */
static size_t find_sep(const uint8_t *d, size_t n, int *resume, size_t *seplen)
{
    static const char *const seps[] = {SEP, SEP_RESUME, SEP_QUEUE, SEP_BODY};
    size_t i, j;
    for (i = 0; i < n; i++) {
        if (d[i] != '\r')
            continue;
        for (j = 0; j < 4; j++) {
            size_t k = strlen(seps[j]);
            if (n - i >= k && memcmp(d + i, seps[j], k) == 0) {
                *resume = (int)j;
                *seplen = k;
                return i;
            }
        }
    }
    *seplen = 0;
    return n;
}

static satchel_client *new_client(cd_alloc *heap, const satchel_client_config *cfg,
                                   satchel_store *store, struct ev_state *evs)
{
    satchel_client *c;
    int rc = satchel_client_new(&heap->a, cfg, store, &c);
    FZ_CHECK(rc == 0, "client_new rc %d", rc);
    satchel_client_set_event_cb(c, on_event, evs);
    return c;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cd_alloc heap;
    satchel_store *store = NULL;
    satchel_client *c = NULL;
    satchel_client_config cfg;
    struct ev_state evs;
    struct out_state os;
    fz_chunker ch;
    uint8_t conf, seed;
    int mode, rc, tls_active, starttls_done;
    uint64_t now = 1000;
    size_t pos = 0;
    unsigned sessions = 0;
    int next_body = 0;
    uint32_t body_uid = 1;
    char why[512];

    if (size < 2 || size > 1u << 20)
        return 0;
    conf = data[0];
    seed = data[1];
    data += 2;
    size -= 2;
    if (!store_dir[0]) {
        if (cd_mkdtemp(store_dir, sizeof store_dir, "fuzz") < 0)
            abort();
        atexit(remove_store_dir);
    }
    cd_wipe_store(store_dir);
    rc = satchel_store_open(NULL, store_dir, 64u << 20, &store);
    FZ_CHECK(rc == 0, "store_open rc %d", rc);

    mode = conf & 3;
    memset(&cfg, 0, sizeof cfg);
    cfg.security = mode == 0 ? SATCHEL_SECURITY_NONE
                   : mode == 2 ? SATCHEL_SECURITY_STARTTLS
                               : SATCHEL_SECURITY_TLS;
    cfg.user = USER;
    cfg.password = PASS;
    cfg.fetch_window = (conf & 8) ? 2 : 0;
    cfg.disable_caps = ((conf & 16) ? SATCHEL_CAP_SASL_IR : 0) |
                       ((conf & 32) ? SATCHEL_CAP_CONDSTORE | SATCHEL_CAP_QRESYNC
                                    : 0);
    tls_active = mode == 1;
    cd_alloc_init(&heap, 0, 0);
    memset(&evs, 0, sizeof evs);
    c = new_client(&heap, &cfg, store, &evs);
    memset(&os, 0, sizeof os);
    fz_chunker_init(&ch, seed);

    while (pos <= size && sessions < 8) {
        int resume = 0, logout_sent = 0;
        int body_job = next_body;
        size_t seplen = 0;
        size_t end = pos + find_sep(data + pos, size - pos, &resume, &seplen);
        sessions++;
        starttls_done = 0;
        fz_buf_reset(&os.partial);
        os.in_literal = 0;
        os.lit_left = 0;
        rc = satchel_client_connected(c, now, tls_active);
        check_rc(rc, "connected");
        if (body_job) {
            rc = satchel_client_fetch_body(c, "INBOX", body_uid, "1", 0);
            FZ_CHECK(rc == 0 || rc == SATCHEL_E_BUSY || rc == SATCHEL_E_NOTFOUND ||
                         rc == SATCHEL_E_INVAL,
                     "fetch_body rc %d", rc);
        } else {
            rc = satchel_client_sync(c, (conf & 4) ? "INBOX" : NULL);
            FZ_CHECK(rc == 0 || rc == SATCHEL_E_BUSY, "sync rc %d", rc);
        }
        while (pos < end) {
            size_t n;
            int w;
            os.must_protect = cfg.security != SATCHEL_SECURITY_NONE &&
                              !tls_active && !starttls_done;
            w = satchel_client_want(c);
            if (w & SATCHEL_WANT_STARTTLS) {
                FZ_CHECK(mode == 2, "STARTTLS wanted in mode %d", mode);
                rc = satchel_client_starttls_done(c);
                check_rc(rc, "starttls_done");
                starttls_done = 1;
                continue;
            }
            drain(c, &os);
            if (satchel_client_want(c) & SATCHEL_WANT_CLOSE)
                break;
            if (!(conf & 128) && !logout_sent && satchel_client_idle(c)) {
                logout_sent = 1;
                rc = satchel_client_logout(c);
                check_rc(rc, "logout");
                continue;
            }
            n = fz_chunk(&ch, end - pos);
            {
                const uint8_t *lf = memchr(data + pos, '\n', n);
                if (lf)
                    n = (size_t)(lf - (data + pos)) + 1;
            }
            rc = satchel_client_recv(c, data + pos, n, now);
            check_rc(rc, "recv");
            pos += n;
            now += 1 + fz_rand(&ch) % 500;
            rc = satchel_client_tick(c, now);
            FZ_CHECK(rc == 0 || rc == SATCHEL_E_TIMEOUT, "tick rc %d", rc);
            FZ_CHECK(satchel_client_next_timeout(c, now) <= SATCHEL_OPT_TIMEOUT_MS ||
                         satchel_client_next_timeout(c, now) == UINT32_MAX,
                     "next_timeout");
            if (rc < 0 || (satchel_client_want(c) & SATCHEL_WANT_CLOSE))
                break;
        }
        drain(c, &os);
        if (conf & 64) {
            now += SATCHEL_OPT_TIMEOUT_MS + 1;
            rc = satchel_client_tick(c, now);
            FZ_CHECK(rc == 0 || rc == SATCHEL_E_TIMEOUT, "late tick rc %d", rc);
        }
        satchel_client_closed(c, SATCHEL_E_IO);
        FZ_CHECK(satchel_client_want(c) & SATCHEL_WANT_CLOSE ||
                     satchel_client_pending(c, &(const uint8_t *){NULL}) > 0,
                 "client does not want close after the connection closed");
        check_rc(satchel_client_result(c), "result");
        if (getenv("SATCHEL_FUZZ_DEBUG"))
            fprintf(stderr, "session %u: result %d (%s), %u events\n", sessions,
                    satchel_client_result(c), satchel_client_error_text(c),
                    evs.events);
        FZ_CHECK(satchel_client_error_text(c) != NULL, "error text");
        (void)strlen(satchel_client_error_text(c));
        {
            satchel_counters ctr;
            satchel_client_get_counters(c, &ctr);
            FZ_CHECK(ctr.bytes_in <= size, "bytes_in %llu > input",
                     (unsigned long long)ctr.bytes_in);
        }
        if (end >= size)
            break;
        pos = end + seplen;
        next_body = 0;
        if (resume == 2) {
            uint32_t newest;
            cd_queue_changes(store, &newest);
        } else if (resume == 3) {
            uint32_t newest;
            struct cd_newest nw;
            satchel_folder f;
            memset(&nw, 0, sizeof nw);
            if (satchel_store_folder_get(store, NULL, "INBOX", &f) == 0)
                satchel_store_msg_list(store, f.id, 0, 3, cd_newest_cb, &nw);
            newest = nw.n ? nw.uids[0] : 0;
            body_uid = newest ? newest : 1;
            next_body = 1;
        }
        if (resume != 1) {
            satchel_client_free(c);
            c = new_client(&heap, &cfg, store, &evs);
        }
    }
    satchel_client_free(c);
    FZ_CHECK(heap.live_blocks == 0 && heap.live_bytes == 0,
             "client leaked %ld blocks, %zu bytes", heap.live_blocks,
             heap.live_bytes);
    rc = cd_store_check(store, why, sizeof why);
    FZ_CHECK(rc == 0, "store inconsistent after the session: %s", why);
    if (getenv("SATCHEL_FUZZ_DEBUG")) {
        satchel_folder f;
        char after[SATCHEL_OPT_MAX_FOLDER_NAME + 1] = "";
        while (satchel_store_folder_next(store, NULL, after, &f) == 0) {
            fprintf(stderr, "  %s: %u messages, %u unseen, uidnext %u, modseq %llu\n",
                    f.name, f.count, f.unseen, f.uidnext,
                    (unsigned long long)f.highestmodseq);
            memcpy(after, f.name, sizeof after);
        }
    }
    satchel_store_close(store);
    fz_buf_free(&os.partial);
    return 0;
}

/* The device application: one account, one store, a port, and the session
 * loop that runs the sans-I/O client over the port (and TLS).  Shared by the
 * firmware and the host simulator; the console (console.h) drives it. */
#ifndef SATCHEL_APP_H
#define SATCHEL_APP_H

#include <stddef.h>
#include <stdint.h>

#include "satchel/client.h"
#include "satchel/port.h"
#include "satchel/store.h"
#include "satchel/tls.h"

typedef struct satchel_app_config {
    const char *host;     /* NULL: no server configured (offline only) */
    uint16_t port;
    uint8_t security;     /* satchel_security */
    const char *ca_file;  /* the CA's name in messages; NULL: system bundle */
    const char *ca_pem;   /* the trusted CAs, NUL-terminated PEM (loaded by
                             the board or host); NULL: TLS fails with
                             SATCHEL_E_CERT */
    const char *user;
    const char *password;
    uint32_t timeout_ms;  /* 0: SATCHEL_OPT_TIMEOUT_MS */
    uint32_t fetch_window;
    uint8_t preview;      /* satchel_preview (0: newest window only) */
    uint32_t disable_caps;
    int offline;          /* never touch the network */
    uint64_t cache_max;   /* body cache budget in bytes, 0: none */
    uint32_t retries;     /* reconnection attempts after a lost link */
    uint32_t backoff_ms;  /* first back-off (doubles, with jitter, to 30 s) */
    /* Prefetch after sync (off when count is 0): the text part of the
     * newest count messages of each folder named in folders (comma
     * separated), when it is at most max_size bytes and fits the budget
     * without evicting anything. */
    uint32_t prefetch_count;
    uint64_t prefetch_max_size;
    const char *prefetch_folders;
    /* When another process is syncing the same store: 0 fails at once with
     * "store busy", else wait up to this long for it to finish. */
    uint32_t sync_wait_ms;
    /* Keep no TLS session (with its master secret) in the store for quick
     * reconnects, and delete one saved before. */
    int no_session_cache;
    /* After a job, stay connected and logged in: the next satchel_app_sync
     * or satchel_app_fetch_body runs in the same session (a device that
     * stays online; drive it between commands with satchel_app_step and end
     * it with satchel_app_disconnect).  A lost connection is opened again by
     * the next job.  0: connect, run the job, log out (the simulator). */
    int keep_session;
} satchel_app_config;

/* Heap accounting allocator: wraps another and tracks current and peak. */
typedef struct satchel_heap_counter {
    satchel_allocator self;      /* pass &self where an allocator is taken */
    const satchel_allocator *under;
    size_t now, peak;
    uint64_t allocs;
    uint64_t fail_at;            /* testing: fail the Nth allocation (0: never) */
} satchel_heap_counter;
void satchel_heap_counter_init(satchel_heap_counter *h,
                               const satchel_allocator *under);

typedef struct satchel_app {
    const satchel_port *port;
    const satchel_allocator *alloc;
    satchel_heap_counter *heap;  /* may be NULL */
    satchel_store *store;
    satchel_app_config cfg;
    satchel_counters total;      /* all sessions since start */
    satchel_counters last;       /* the last session */
    uint32_t syncs;
    uint32_t caps;               /* of the last session */
    int last_rc;
    char last_error[256];
    char tls_version[32];
    char tls_cipher[64];
    int tls_resumed;             /* the last handshake resumed a session */
    uint32_t prefetched;         /* bodies prefetched by the last sync */
    uint32_t session_ms;         /* duration of the last session */
    uint32_t ttfb_ms;            /* last session: start to first body byte */
    satchel_msg scratch_msg;     /* console scratch, off the stack */
    satchel_op scratch_op;
    satchel_folder scratch_folder;
    uint32_t replayed, replay_failed; /* queue entries, last session */
    uint32_t reconnects;         /* since start */
    uint8_t buf[16384];
    /* The open session: set by satchel_app_connect (or inside
     * satchel_app_sync), cleared by satchel_app_disconnect. */
    satchel_client *client;
    satchel_conn *conn;
    satchel_tls *tls;
    uint64_t kept_t0;
    satchel_counters kept_base;  /* the open session's counters already
                                    reported in last and total */
} satchel_app;

/* Connect, authenticate, sync one folder (or all when folder is NULL),
 * log out.  Events go to cb.  Returns 0 or a negative satchel_err; the
 * reason is in app->last_error. */
int satchel_app_sync(satchel_app *app, const char *folder, satchel_event_cb cb,
                     void *ctx);

/* Download one part into the body cache (see satchel_client_fetch_body). */
int satchel_app_fetch_body(satchel_app *app, const char *folder, uint32_t uid,
                           const char *section, uint64_t expected);

/* Make sure part `section` (size bytes, encoded) of message uid in folder f
 * is complete in the body cache: a cached part counts as used (LRU); a
 * missing one is fetched.  *hit tells whether it was already there.
 * Returns 0; SATCHEL_E_RANGE when the part is larger than the cache budget,
 * SATCHEL_E_OFFLINE when it must be fetched and the app is offline, or the
 * fetch's error.  On failure app->last_error says why. */
int satchel_app_body_ensure(satchel_app *app, const satchel_folder *f,
                            uint32_t uid, const char *section, uint64_t size,
                            int *hit);

/* A session kept open between commands, for a device that stays online.
 * The calls never block for longer than one event (the TCP connect and a
 * TLS handshake count as one event each):
 *
 *   satchel_app_connect(app, cb, ctx);          connect; login follows
 *   satchel_app_start_sync(app, NULL);          or _start_body, any time
 *   for (;;) {
 *       rc = satchel_app_step(app, 50);         one event, then return
 *       if (rc <= 0) break;                     closed (0) or failed (< 0)
 *       if (satchel_app_idle(app)) ...          logged in, no job running:
 *   }                                           start another, or sleep
 *   satchel_app_disconnect(app);                LOGOUT, close, free
 *
 * After a failed step the connection is gone but the client is kept:
 * satchel_app_connect again resumes an interrupted job from what it
 * committed; satchel_app_disconnect ends it.  satchel_app_sync and
 * satchel_app_fetch_body refuse (SATCHEL_E_BUSY) while a kept session is
 * open. */

/* Create the client (the first time) and open the connection: TCP, then
 * TLS when implicit.  Events of every job in the session go to cb.
 * Returns 0, SATCHEL_E_OFFLINE (offline mode or no server), SATCHEL_E_INVAL
 * (no credentials), SATCHEL_E_BUSY (already connected), SATCHEL_E_NOMEM, or
 * the port's or TLS's error (see app->last_error). */
int satchel_app_connect(satchel_app *app, satchel_event_cb cb, void *ctx);

/* Start a job in the open session (see satchel_client_sync and
 * satchel_client_fetch_body): 0, SATCHEL_E_BUSY while another job runs or
 * (start_sync) while another process syncs the same store (app->last_error
 * names it; the sync lock is then held until satchel_app_disconnect),
 * SATCHEL_E_INVAL without a session or for bad arguments. */
int satchel_app_start_sync(satchel_app *app, const char *folder);
int satchel_app_start_body(satchel_app *app, const char *folder, uint32_t uid,
                           const char *section, uint64_t expected);

/* Drive the open session by one event: send pending bytes, do the
 * STARTTLS handshake, or wait at most wait_ms (less when a command's
 * timeout falls due sooner) for the server and feed what arrives.
 * Returns 1 while the connection is open, 0 once it closed cleanly (after
 * LOGOUT), or a negative satchel_err: SATCHEL_E_TIMEOUT, SATCHEL_E_IO,
 * SATCHEL_E_TLS, a job's error (satchel_client_result), or SATCHEL_E_INVAL
 * without a connection. */
int satchel_app_step(satchel_app *app, uint32_t wait_ms);

/* 1 when logged in with no job running and nothing left to send. */
int satchel_app_idle(const satchel_app *app);

/* LOGOUT (stepping until the server closes), close and free the client;
 * the session's figures go to app->last and app->total.  Returns 0, or
 * the error that ended the session. */
int satchel_app_disconnect(satchel_app *app);

#endif

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
    uint32_t replayed, replay_failed; /* queue entries, last session */
    uint32_t reconnects;         /* since start */
    uint8_t buf[16384];
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

#endif

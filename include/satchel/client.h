/* The sans-I/O IMAP client and sync engine.
 *
 * The client never touches a socket or a clock.  The port (see port.h and
 * firmware/) opens the connection, feeds received bytes with
 * satchel_client_recv, sends what satchel_client_pending returns, performs
 * the TLS handshake when asked (SATCHEL_WANT_STARTTLS), and passes the time
 * in milliseconds so the client can enforce its timeouts.  All memory is
 * taken at satchel_client_new through the allocator and does not grow with
 * folder or message size.
 *
 * Typical drive loop:
 *   satchel_client_connected(c, now, tls_active);
 *   satchel_client_sync(c, NULL);
 *   while (!(satchel_client_want(c) & SATCHEL_WANT_CLOSE)) {
 *       if (want & SATCHEL_WANT_STARTTLS) { handshake; satchel_client_starttls_done(c); }
 *       send satchel_client_pending(); satchel_client_sent(c, n);
 *       if (satchel_client_idle(c)) satchel_client_logout(c);
 *       wait for input; satchel_client_recv(...); satchel_client_tick(c, now);
 *   }
 */
#ifndef SATCHEL_CLIENT_H
#define SATCHEL_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "satchel/alloc.h"
#include "satchel/error.h"
#include "satchel/store.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum satchel_security {
    SATCHEL_SECURITY_TLS = 0, /* implicit TLS: the port handshakes first */
    SATCHEL_SECURITY_STARTTLS,
    SATCHEL_SECURITY_NONE     /* plain text, only when asked explicitly */
} satchel_security;

/* Server capabilities the engine uses. */
#define SATCHEL_CAP_IMAP4REV1 (1u << 0)
#define SATCHEL_CAP_IMAP4REV2 (1u << 1)
#define SATCHEL_CAP_STARTTLS (1u << 2)
#define SATCHEL_CAP_LOGINDISABLED (1u << 3)
#define SATCHEL_CAP_AUTH_PLAIN (1u << 4)
#define SATCHEL_CAP_SASL_IR (1u << 5)
#define SATCHEL_CAP_CONDSTORE (1u << 6)
#define SATCHEL_CAP_QRESYNC (1u << 7)
#define SATCHEL_CAP_ENABLE (1u << 8)
#define SATCHEL_CAP_SPECIAL_USE (1u << 9)
#define SATCHEL_CAP_LIST_EXTENDED (1u << 10)
#define SATCHEL_CAP_MOVE (1u << 11)
#define SATCHEL_CAP_UIDPLUS (1u << 12)
#define SATCHEL_CAP_LITERAL_PLUS (1u << 13)
#define SATCHEL_CAP_LITERAL_MINUS (1u << 14)
#define SATCHEL_CAP_IDLE (1u << 15)
#define SATCHEL_CAP_ESEARCH (1u << 16)
#define SATCHEL_CAP_PREVIEW (1u << 17)
#define SATCHEL_CAP_NAMESPACE (1u << 18)
#define SATCHEL_CAP_LIST_STATUS (1u << 19)
#define SATCHEL_CAP_UTF8_ACCEPT (1u << 20) /* RFC 6855 / RFC 9051 */

/* PREVIEW (RFC 8970) costs about 200 bytes a message, a third of what a
 * header sync moves, and makes the server read every message body the
 * first time.  The default asks for it only with the newest window of each
 * folder (the newest fetch_window messages: the ones a list shows first),
 * which is what a device on a slow link wants. */
typedef enum satchel_preview {
    SATCHEL_PREVIEW_NEWEST = 0,
    SATCHEL_PREVIEW_ON = 1,  /* with every header */
    SATCHEL_PREVIEW_OFF = 2  /* never */
} satchel_preview;

typedef struct satchel_client_config {
    uint8_t security;      /* satchel_security */
    const char *user;      /* copied */
    const char *password;  /* copied; wiped from memory at free */
    uint32_t fetch_window; /* 0: SATCHEL_OPT_FETCH_WINDOW */
    uint8_t preview;       /* satchel_preview: which headers come with an
                              RFC 8970 PREVIEW; 0 is SATCHEL_PREVIEW_NEWEST */
    uint32_t timeout_ms;   /* per command; 0: SATCHEL_OPT_TIMEOUT_MS */
    uint32_t disable_caps; /* SATCHEL_CAP_* to ignore (testing fallbacks) */
} satchel_client_config;

typedef struct satchel_counters {
    uint64_t bytes_in;    /* IMAP bytes received (after TLS) */
    uint64_t bytes_out;   /* IMAP bytes sent */
    uint32_t round_trips; /* flights: a flight starts when the client sends
                             while nothing it sent is unanswered (the
                             greeting counts as one) */
    uint32_t commands;
    uint64_t body_first_ms; /* clock value when the first body byte came */
} satchel_counters;

typedef enum satchel_event_type {
    SATCHEL_EV_FOLDER_SYNCED = 1, /* folder, new, changed, vanished */
    SATCHEL_EV_FOLDER_ERROR,      /* folder, text (server's words), err */
    SATCHEL_EV_ALERT              /* text: a server [ALERT], to show */
} satchel_event_type;

/* Pointers in an event are valid during the callback only. */
typedef struct satchel_event {
    int type;
    const char *folder;
    const char *text;
    uint32_t n_new, n_changed, n_vanished;
    uint32_t total;
    int err;
} satchel_event;

typedef void (*satchel_event_cb)(void *ctx, const satchel_event *ev);

/* Wants, as bits. */
#define SATCHEL_WANT_READ 0x01
#define SATCHEL_WANT_WRITE 0x02     /* satchel_client_pending has bytes */
#define SATCHEL_WANT_STARTTLS 0x04  /* handshake now, then _starttls_done */
#define SATCHEL_WANT_CLOSE 0x08     /* done or failed: close the transport */

typedef struct satchel_client satchel_client;

/* The store must outlive the client; cfg's strings are copied.  Returns 0
 * with *out set, SATCHEL_E_NOMEM, or SATCHEL_E_INVAL (no cfg or store, an
 * empty user, a user over 127 bytes or a password over 255 bytes). */
int satchel_client_new(const satchel_allocator *alloc,
                       const satchel_client_config *cfg, satchel_store *store,
                       satchel_client **out);
/* Aborts an open store transaction, wipes the password, the command queue
 * and the output buffer, and frees the client.  NULL is ignored. */
void satchel_client_free(satchel_client *c);
/* Events of every job go to cb (NULL: none) with ctx, from inside
 * satchel_client_recv and the job calls. */
void satchel_client_set_event_cb(satchel_client *c, satchel_event_cb cb,
                                 void *ctx);

/* A new transport connection is up (tls_active: implicit TLS already
 * negotiated).  Resets all per-connection state in one place; a job the
 * last connection interrupted resumes from what it committed.  Returns 0. */
int satchel_client_connected(satchel_client *c, uint64_t now_ms,
                             int tls_active);
/* Feed received bytes; all of them are taken.  Bytes that arrive while the
 * client waits for the STARTTLS handshake are dropped unread.  Returns 0,
 * or a negative satchel_err: the job's error once it failed (see
 * satchel_client_result), or a fatal one (SATCHEL_E_PROTO and friends)
 * after which the connection must be closed. */
int satchel_client_recv(satchel_client *c, const uint8_t *data, size_t len,
                        uint64_t now_ms);
/* The transport reached EOF (err 0) or failed (a negative satchel_err).
 * After LOGOUT this is the normal end; otherwise the job is interrupted. */
void satchel_client_closed(satchel_client *c, int err);
/* Bytes the port may send now, at most SATCHEL_OPT_OUTBUF; *data points
 * into the client and stays valid until the next call other than
 * satchel_client_pending.  Queued commands are serialized as the output
 * drains, so one command may take several calls; the bytes stop inside a
 * command only after a synchronizing literal's "{n}\r\n" (its data follows
 * once the server's "+" has been fed; a tagged answer instead ends the
 * command there) or when the connection fails (nothing more is offered). */
size_t satchel_client_pending(satchel_client *c, const uint8_t **data);
/* n bytes of what satchel_client_pending returned were sent (more than it
 * returned is taken as all of it).  A job with more to send than fitted
 * writes it now. */
void satchel_client_sent(satchel_client *c, size_t n);
/* The STARTTLS handshake the client asked for (SATCHEL_WANT_STARTTLS)
 * succeeded; capabilities are read again.  Returns 0, SATCHEL_E_INVAL when
 * no handshake was asked for, or the error that ends the session (for
 * instance SATCHEL_E_SECURITY). */
int satchel_client_starttls_done(satchel_client *c);
/* SATCHEL_WANT_* bits: what the port should do next. */
int satchel_client_want(const satchel_client *c);
/* Enforce timeouts; returns 0, or SATCHEL_E_TIMEOUT (the connection failed)
 * when the server has been silent too long with a command outstanding or
 * before its greeting. */
int satchel_client_tick(satchel_client *c, uint64_t now_ms);
/* Milliseconds until the next deadline (for the port's wait), or
 * UINT32_MAX when nothing is outstanding. */
uint32_t satchel_client_next_timeout(const satchel_client *c, uint64_t now_ms);

/* Jobs.  satchel_client_sync queues a sync of one folder (or all folders
 * when folder is NULL); it starts as soon as the session is authenticated,
 * after replaying the offline change queue (satchel/ops.h) if it holds
 * pending changes.  Returns 0, SATCHEL_E_BUSY when a job is queued or
 * running, SATCHEL_E_INVAL for an empty or over-long folder name, or the
 * error that failed the session when it starts at once. */
int satchel_client_sync(satchel_client *c, const char *folder);
/* Queue a download of one body part (section "1", "2.1", ...) of message
 * uid in folder into the store's body cache, with partial FETCHes
 * (BODY.PEEK, so \Seen is never set by it).  It resumes after whatever an
 * earlier, interrupted download committed.  expected is the size from
 * BODYSTRUCTURE (0 if unknown).  Returns 0 (also when the part is already
 * complete: nothing is queued), SATCHEL_E_BUSY, SATCHEL_E_INVAL (no folder
 * or section, uid 0, a section of SATCHEL_SECTION_MAX or more),
 * SATCHEL_E_NOTFOUND (no such folder in the store) or a store error.  The
 * job itself fails with SATCHEL_E_NOTFOUND when the message or part is no
 * longer on the server. */
int satchel_client_fetch_body(satchel_client *c, const char *folder,
                              uint32_t uid, const char *section,
                              uint64_t expected);

/* 1 when the job ended with its connection, unfinished: calling
 * satchel_client_connected on a new connection resumes it. */
int satchel_client_interrupted(const satchel_client *c);

/* 1 when authenticated, with no job and no command outstanding. */
int satchel_client_idle(const satchel_client *c);
/* Send LOGOUT; the client then wants CLOSE once the server answered.
 * Returns 0, SATCHEL_E_INVAL before the greeting or after the session
 * ended, or SATCHEL_E_AGAIN when the output has no room yet. */
int satchel_client_logout(satchel_client *c);

/* Result of the last job (0 or a negative satchel_err) and, for a failure,
 * a description naming the cause.  The text is static or owned by the
 * client, valid until the next call that changes the client. */
int satchel_client_result(const satchel_client *c);
const char *satchel_client_error_text(const satchel_client *c);
/* Counters since satchel_client_new, copied into *out. */
void satchel_client_get_counters(const satchel_client *c,
                                 satchel_counters *out);
/* SATCHEL_CAP_* the server offers on this connection (after
 * cfg.disable_caps); 0 before they are known. */
uint32_t satchel_client_caps(const satchel_client *c);
/* Queued changes the last sync replayed, and those that failed. */
void satchel_client_replay_counts(const satchel_client *c, uint32_t *done,
                                  uint32_t *failed);
/* 1 when the connection is encrypted (implicit TLS or after STARTTLS). */
int satchel_client_tls_active(const satchel_client *c);

#ifdef __cplusplus
}
#endif
#endif

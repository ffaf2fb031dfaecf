/* Internal to the client: the one struct every part of the engine shares,
 * and the functions the session, the command writer and the jobs call
 * across files.  Not a public header. */
#ifndef SATCHEL_CLIENT_INTERNAL_H
#define SATCHEL_CLIENT_INTERNAL_H

#include "satchel/ascii.h"
#include "satchel/client.h"
#include "satchel/imap.h"
#include "satchel/mime.h"
#include "satchel/mutf7.h"
#include "satchel/opt.h"
#include "satchel/ops.h"
#include "satchel/seqset.h"

#define MAX_INFLIGHT 128
#define MAX_USER 128
#define MAX_PASS 256
#define HDR_FIELDS "DATE FROM SUBJECT MESSAGE-ID"
#define WINDOWS_IN_FLIGHT 2
#define VERIFY_BITS 8192 /* UIDs per membership-check chunk (1 KB) */

enum cmd_kind {
    K_NONE,
    K_CAPABILITY,
    K_STARTTLS,
    K_AUTH,
    K_LOGIN,
    K_ENABLE,
    K_LIST,
    K_STATUS,    /* STATUS of a stored folder, without LIST-STATUS */
    K_SELECT,
    K_BSELECT,   /* body: SELECT the message's folder */
    K_CHANGED,   /* UID FETCH .. CHANGEDSINCE */
    K_RECONCILE, /* UID FETCH 1:U-1 */
    K_NEWUIDS,   /* UID FETCH U:* (UID) */
    K_WINDOW,    /* FETCH a:b headers */
    K_RESUME,    /* UID FETCH a:b headers, resuming a cut folder */
    K_BLOCK,     /* UID FETCH minp:maxp (UID FLAGS): is the kept block current? */
    K_BODYFETCH, /* UID FETCH n (BODY.PEEK[s]<o.l>) */
    K_CREATE,    /* replay: CREATE (arg: op id) */
    K_CREATE_LIST,   /* replay: LIST "" name after a CREATE's NO (arg: op id,
                    CREATED_LISTED once the server lists the name) */
    K_RSELECT,   /* replay: SELECT the batch's folder */
    K_RCHECK,    /* replay: UID FETCH set (UID FLAGS) */
    K_RCMD,      /* replay: STORE/MOVE/COPY/EXPUNGE (arg: group | kind) */
    K_RVSELECT,  /* replay: SELECT a move's destination to check it */
    K_RVSEARCH,  /* replay: UID SEARCH HEADER Message-ID there */
    K_RDELETED,  /* replay without UIDPLUS: UID SEARCH DELETED */
    K_REXPUNGE,  /* ... and EXPUNGE when it lists only the batch's marks */
    K_RGONE,     /* ... then UID FETCH those (UID): which are still there */
    K_LOGOUT
};

enum phase {
    PH_DOWN,      /* no connection */
    PH_GREETING,
    PH_PREAUTH,   /* capabilities, STARTTLS, authentication */
    PH_TLS,       /* waiting for the port's handshake */
    PH_AUTHED,
    PH_LOGOUT,
    PH_CLOSED
};

enum job_state {
    J_NONE,
    J_QUEUED,
    J_LIST,
    J_NEXT_FOLDER,
    J_SELECT,
    J_FOLLOW,
    J_WINDOWS,
    J_BODY_SELECT,
    J_BODY_FETCH,
    J_REPLAY_MKDIR,
    J_REPLAY_SELECT,
    J_REPLAY_OPS,
    J_REPLAY_VERIFY,
    J_DONE
};

struct inflight {
    uint32_t tag;
    uint8_t kind;
    uint64_t arg; /* K_BODYFETCH: the offset asked for */
    uint64_t at;  /* offset of its first byte in the connection's output */
};

struct body_job {
    uint32_t fid, uid;
    char section[SATCHEL_SECTION_MAX];
    uint64_t expected;
    uint64_t committed;   /* bytes in the store, committed */
    uint64_t written;     /* bytes written in the open transaction */
    uint64_t next_req;    /* next offset to ask for */
    uint64_t lit_origin;  /* origin of the literal being received */
    int lit_skip;         /* ignore the rest of this literal */
    int done, retry, seen, completed;
    size_t chunk_len;
    uint32_t n_req;       /* partial requests sent since ... */
    uint64_t req_base;    /* ... the download (re)started from this offset */
    uint32_t stalls;      /* answers in a row that added nothing */
    uint64_t last_end;    /* committed after the previous answer */
};

struct folder_sync {
    satchel_folder f;       /* stored state; sync state fields stay old
                               until the folder completes */
    uint32_t exists;
    uint32_t uidvalidity;
    uint32_t uidnext;       /* server's, 0 if not reported */
    uint64_t hms;           /* server's HIGHESTMODSEQ, 0 if none */
    uint8_t nomodseq;
    uint8_t used_qresync;
    uint8_t incomplete;     /* anomaly: keep old UIDNEXT/MODSEQ */
    uint8_t reconcile_sent, reconcile_done;
    uint32_t k_new;         /* server messages with UID >= U, from the
                               sequence numbers K_NEWUIDS lists them at */
    uint32_t max_uid;       /* highest UID fetched */
    uint32_t win_next_hi;   /* next window's top sequence number */
    uint32_t win_lo;        /* lowest sequence number to fetch */
    uint32_t n_new, n_changed, n_vanished;
    uint32_t placeholders;  /* offline moves waiting in this folder */
    uint8_t resume;         /* headers at or above U kept from a cut sync */
    uint32_t minp, maxp;    /* their UID span (the newest-first block) */
    uint32_t newuid_from;   /* K_NEWUIDS counts UIDs from here */
    uint32_t newuid_sent;   /* ... and the one in flight asks from here
                               (0: none sent) */
    uint32_t newuid_seq;    /* lowest sequence number it listed a UID at or
                               above newuid_from at (0: none) */
    uint32_t since_commit;  /* messages stored since the last commit */
    uint8_t upward;         /* the maxp+1:* fetch is running */
    /* Windows in flight, oldest first, as [lo, hi] of their key (sequence
     * numbers, or UIDs when resuming).  A window is complete when its
     * tagged answer came or, for sequence windows, a response for every
     * number in it.  Dovecot may answer a window only after later windows'
     * data, and may interleave pipelined windows' responses, so data of a
     * later window proves nothing: the transaction commits when every
     * window up to the last one it holds data of is complete, which keeps
     * what is stored one newest-first block. */
    uint32_t wlo[SATCHEL_OPT_WINDOWS_MAX], whi[SATCHEL_OPT_WINDOWS_MAX];
    uint32_t wgot[SATCHEL_OPT_WINDOWS_MAX]; /* responses received */
    uint8_t wdone[SATCHEL_OPT_WINDOWS_MAX];
    uint32_t nwin;
    uint32_t wdata;         /* windows 0..wdata-1 hold the txn's data */
    uint64_t win_bytes0;    /* bytes_in when the first window went out */
    uint64_t win_t0;        /* and the time */
    uint32_t win_msgs;      /* header responses received since then */
    uint8_t window_refused; /* a window was answered NO */
    uint8_t window_short;   /* a window's OK came with a message missing */
    uint8_t keep_block;     /* incomplete, but what committed is proven */
    uint8_t late_reconcile; /* resumed: counting expunges below U at the end */
    uint8_t modseq_back;    /* the server's HIGHESTMODSEQ is below ours */
    uint8_t block_hole;     /* the server lists a UID of the kept block that
                               is not stored */
    /* Membership check of stored UIDs, one chunk [vlo, vhi] at a time (the
     * reconcile below U, or the block kept from a cut sync): a bit per UID
     * the server listed, in whatever order.  After the chunk's tagged OK,
     * stored UIDs of the chunk it did not list are deleted; before it,
     * nothing. */
    uint32_t vlo, vhi, vend;
    uint8_t vflags;         /* ask for FLAGS too */
    uint8_t vbits[VERIFY_BITS / 8];
    uint32_t rnext_hi;      /* next lower UID window ends here (0: none) */
    uint32_t rwidth;        /* its UID width */
};

#define CREATED_LISTED (1ull << 63) /* K_CREATE_LIST arg flag: the name is listed */
#define RCMD_COPY 0x100u     /* K_RCMD arg flag: a COPY awaiting its OK */
#define RCMD_DELSTORE 0x200u /* K_RCMD arg flag: \Deleted STORE, then UID EXPUNGE */
#define RCMD_MARK 0x400u     /* K_RCMD arg flag: \Deleted STORE without UIDPLUS */
#define REPLAY_BATCH 40 /* worst case 3 commands each + 1 within MAX_INFLIGHT */

/* One queued change in the batch being replayed. */
struct rop {
    uint64_t id;
    uint32_t uid, mapped;  /* MOVE: UID in dest from COPYUID */
    uint8_t type, exists, failed, group;
    uint8_t phase0;        /* the op's phase when the batch began */
    uint8_t marked;        /* without UIDPLUS: its \Deleted STORE was OK */
    uint8_t listed;        /* ... UID SEARCH DELETED listed it */
    uint8_t still;         /* ... and the FETCH after the EXPUNGE listed it */
    uint8_t expunged;      /* ... so the EXPUNGE removed it */
    uint32_t sflags;       /* server flags seen by the check FETCH */
};

struct replay {
    /* The batch's folder: the id of the folder its changes were made in,
     * or 0 when that name is not a stored folder (then the batch is the
     * changes naming it, and its SELECT names the folder as they do).
     * The server has it selected for the replay: a flag, as only that
     * folder is ever selected by the replay and a batch of another folder
     * clears it. */
    uint32_t fid;
    uint8_t selected;
    struct rop ops[REPLAY_BATCH];
    uint32_t n;
    uint32_t uidvalidity;
    char reason[160];
    uint32_t done, failed; /* counters for the report */
    uint64_t verify_id;    /* move being checked in its destination */
    int verify_found;      /* a hit not already stored in the destination */
    uint32_t verify_fid;   /* the destination's folder id (0: not stored) */
    uint32_t verify_hits;  /* such hits: only exactly one maps a move */
    int map_mode;          /* the search maps a finished move (no COPYUID) */
    uint32_t found_uid;
    uint32_t uids[REPLAY_BATCH]; /* scratch: one command's UIDs */
    /* What of the batch is sent (see replay_send_more). */
    uint32_t ngroups, next_group;
    uint8_t sub, check_sent;
    uint8_t check_ok; /* the existence check was answered OK: a UID it did
                       * not return is gone, not merely unconfirmed */
    uint8_t gwant[REPLAY_BATCH]; /* GW_* follow-ups the answers asked for */
    uint64_t mkdir_at;           /* last CREATE sent */
    uint8_t deleted_asked;       /* UID SEARCH DELETED sent for this batch */
    uint8_t deleted_others;      /* it listed a UID this batch did not mark */
    uint32_t deleted_listed;     /* UIDs of this batch it listed */
};
#define GW_DELETE 1u  /* COPY done: STORE \Deleted on the source */
#define GW_EXPUNGE 2u /* \Deleted stored: UID EXPUNGE (UIDPLUS) */

/* What lives exactly as long as one connection.  satchel_client_connected
 * resets all of it in one place (cl_conn_reset). */
struct satchel_client;

/* A job: one piece of the engine's work with its own commands (K_*),
 * states (J_*) and state in the client.  The session hands each job the
 * responses that belong to it; a new job is a new file with one of these
 * and its entries in the kind and state tables of session.c.
 *   untagged: data or a status response with a code, while the client is
 *             in one of the job's states;
 *   tagged:   the answer to one of the job's commands (its K_* kinds);
 *   advance:  (jobs the app starts) send what can be sent now: called
 *             after login and whenever a step completes;
 *   resume:   (jobs the app starts) a new connection: go on from what is
 *             committed;
 *   pump:     (optional) the output drained: send what did not fit before
 *             (a command that does not fit yet gets SATCHEL_E_AGAIN).
 * Each returns 0, or a negative satchel_err after cl_fail. */
struct cl_job {
    int (*untagged)(struct satchel_client *c, const satchel_imap_resp *r);
    int (*tagged)(struct satchel_client *c, uint8_t kind, uint64_t arg, int ok,
                  const satchel_imap_resp *r);
    int (*advance)(struct satchel_client *c);
    void (*resume)(struct satchel_client *c);
    int (*pump)(struct satchel_client *c);
};
extern const struct cl_job cl_job_list, cl_job_sync, cl_job_body, cl_job_replay, cl_job_mkdir;

#define CL_WAIT_CONT 1   /* a synchronizing literal's "+" */
#define CL_WAIT_ENABLE 2 /* the answer to ENABLE UTF8=ACCEPT */

struct cl_conn {
    enum phase ph;
    int tls_active;
    int caps_known;
    uint32_t caps;
    int qresync_on;        /* ENABLE QRESYNC asked for (not asked again) */
    int qresync_confirmed; /* ... and the server said ENABLED QRESYNC */
    /* UTF8=ACCEPT (RFC 6855): asked for in the ENABLE sent after login when
     * offered.  Names are UTF-8 on the wire (and in LIST) only once the
     * server confirmed it: ENABLED naming it, then the ENABLE's tagged OK.
     * Until that answer, a command naming a mailbox whose two forms differ
     * waits in the command queue. */
    int utf8_asked;     /* ENABLE UTF8=ACCEPT sent, not answered yet */
    int utf8_confirmed; /* ... and ENABLED named it */
    int utf8_on;
    int want_starttls;
    int auth_sent;
    int authed_started; /* post-login set-up (ENABLE) done */
    int failed;
    struct inflight inflight[MAX_INFLIGHT];
    uint32_t n_inflight;
    uint64_t last_activity;
    uint32_t head_tag;   /* oldest command in flight, and since when */
    uint64_t head_since;
    /* The command queue (core/cmdq.c): the parts of queued commands, and
     * where serializing them into out[] has got to. */
    uint8_t q[SATCHEL_OPT_CMDQ];
    uint32_t q_head;    /* the part being serialized */
    uint32_t q_done;    /* end of the last complete command */
    uint32_t q_len;     /* end of the open command's parts */
    uint32_t q_last;    /* its last part, if raw bytes may join it */
    uint64_t s_pos;     /* bytes of the current part serialized */
    uint8_t s_form;     /* how the current string goes out, fixed at its start */
    uint8_t s_released; /* its synchronizing literal got its "+" */
    /* A name going out in modified UTF-7 (decided at its first byte, never
     * again: a half-sent name must not change form), its form's length,
     * and the encoder's state at s_m7_at bytes into the part, so a name
     * that drains slowly is encoded once, not again per drain. */
    uint8_t s_m7_on, s_m7_ok;
    uint64_t s_m7_total, s_m7_at;
    satchel_mutf7_state s_m7;
    uint8_t s_wait;     /* CL_WAIT_*: serializing stopped until an answer */
    uint32_t s_tag;     /* the command being serialized (0: between two) */
    uint8_t out[SATCHEL_OPT_OUTBUF];
    size_t out_len, out_off;
    uint64_t out_sent;  /* bytes of this connection handed to the port */
    int cont_seen;      /* a "+" answered what was sent before it */
    /* The command being written, to take back whole if it cannot go. */
    int cmd_open;
    uint32_t cmd_start;
    uint64_t cmd_activity;
};

struct satchel_client {
    const satchel_allocator *alloc;
    satchel_store *store;
    satchel_imap_parser *parser;
    satchel_event_cb ev_cb;
    void *ev_ctx;

    uint8_t security;
    uint32_t fetch_window, timeout_ms, disable_caps;
    uint8_t preview;    /* satchel_preview */
    uint32_t preview_n; /* "newest": this many messages (the configured
                           window, not one halved after a cut) */
    char user[MAX_USER];
    char pass[MAX_PASS];

    /* Counters and the clock live across connections. */
    uint32_t next_tag;
    uint64_t now;
    satchel_counters ctr;

    struct cl_conn conn; /* reset by cl_conn_reset, nowhere else */
    uint32_t rtt_ms;    /* shortest flight seen, send to answer (0: none yet) */
    uint32_t rtt_tag;   /* first command of the flight being timed */
    uint64_t rtt_t;     /* when it left */


    /* job */
    enum job_state job;
    int job_rc;
    int job_all;
    /* Sync state is kept by folder id, never by name: a name takes up to
     * SATCHEL_OPT_MAX_FOLDER_NAME bytes, an id four, and ids order a walk
     * that renames and removals do not disturb (satchel_store_folder_next_id).
     * The one name a job needs, a one-folder sync's folder before the
     * store knows it, is kept in fs.f.name (see there). */
    uint32_t cursor_id; /* the folder walk's last folder visited (0: none) */
    uint32_t done_id;   /* the last folder this job finished (0: none) */
    uint32_t status_id; /* the STATUS flight's last folder sent (0: none) */
    uint32_t list_gen;
    /* The LIST generation whose LIST-STATUS marked unchanged folders in the
     * store (SATCHEL_FOLDER_UNCHANGED), in this job; 0: none.  In the
     * store, so any number of folders costs no memory. */
    uint32_t clean_gen;
    /* Without LIST-STATUS: STATUS of every stored folder after the LIST,
     * sent in id order as the output drains (from status_id). */
    uint8_t status_phase;
    satchel_store_txn *txn;
    /* The folder sync's state and scratch, and the body download's chunk,
     * share their bytes: one job runs at a time (c->top), a sync starts
     * each folder's state afresh (keeping only its own folder's name) and
     * a download its chunk, and neither needs anything there after it
     * ends.  (The offline replay runs inside a sync.)  A download would
     * otherwise carry 12 KB of sync scratch, and a sync 16 KB of chunk it
     * never uses. */
    union {
        struct {
            /* fs.f is the folder being synced.  Before a one-folder job
             * (satchel_client_sync with a name) has found its folder in
             * the store, fs.f.name holds the name it asked for and fs.f.id
             * is 0; the folder found has that same name, so the name stays
             * there for the whole job and its resumes. */
            struct folder_sync fs;
            char hdr[1024]; /* scratch for header values of one FETCH */
            union {
                satchel_msg msg; /* scratch for one FETCH or one change */
                /* Scratch for a mailbox name from the server (LIST,
                 * STATUS), decoded to its stored form, and for the error
                 * text of one too long to keep.  It shares the FETCH
                 * scratch: each holds one response's data while that
                 * response is handled, and no response is both.  (Names
                 * going out are encoded as they are serialized: no buffer
                 * holds their modified UTF-7 form, up to five times as
                 * long.) */
                char wire_name[SATCHEL_OPT_MAX_FOLDER_NAME + 1 > 256u
                                   ? SATCHEL_OPT_MAX_FOLDER_NAME + 1
                                   : 256u];
            };
        };
        uint8_t chunk[SATCHEL_OPT_BODY_CHUNK];
    };
    struct body_job body;
    struct replay rp;
    int want_replay;
    const struct cl_job *top; /* the job the app started: sync or body */
    int interrupted; /* the job ended with the connection, unfinished */
    int window_cut;  /* ... in the middle of a header window */
    int resuming;    /* requeued after a lost connection */
    /* Scratch for one queued change, reloaded from the store at each use
     * and never kept across calls: the store's own (satchel_store_op_scratch),
     * which the app's offline operations use the same way, so the two
     * folder names in it are not held twice. */
    satchel_op *op;
    char err_text[200];
};

struct fetch_items {
    uint32_t uid;
    int has_flags, has_headers, has_bs, bs_truncated;
    uint32_t flags;
    uint64_t modseq;
    const satchel_imap_arg *size, *idate, *hdr, *bs, *preview;
    char kw[128];
};

/* session.c: errors, events, store transactions, job scheduling */
void cl_set_error(satchel_client *c, int rc, const char *what,
                  const char *detail, size_t dlen);
void cl_emit(satchel_client *c, satchel_event *ev);
int cl_fail(satchel_client *c, int rc, const char *what);
int cl_txn(satchel_client *c);
int cl_commit(satchel_client *c, int write_folder);
int cl_job_advance(satchel_client *c);
void cl_conn_reset(satchel_client *c, int tls_active, uint64_t now_ms);

/* cmdq.c: the command writer */
int cl_out_put(satchel_client *c, const void *p, size_t n);
int cl_out_str(satchel_client *c, const char *s);
int cl_out_u64(satchel_client *c, uint64_t v);
int cl_out_astring(satchel_client *c, const char *s);
/* A mailbox name as stored (UTF-8) in its wire form: modified UTF-7, or
 * UTF-8 once UTF8=ACCEPT is on, or the server's own bytes for a folder
 * marked SATCHEL_FOLDER_VERBATIM. */
int cl_out_mailbox(satchel_client *c, const char *name);
/* A mailbox name from the server (LIST, STATUS) to the stored form in
 * out[SATCHEL_OPT_MAX_FOLDER_NAME + 1]: decoded from modified UTF-7, or as
 * sent when UTF8=ACCEPT is on or the name is not modified UTF-7 (then
 * *verbatim is set).  A NIL atom is the name "NIL".  Returns 0; -2 when it
 * is too long to keep; -1 when it is empty, holds NUL or was truncated. */
int cl_name_from_wire(const satchel_client *c, const satchel_imap_arg *a, char *out,
                      int *verbatim);
/* A string as an atom, a quoted string or a literal, whichever its bytes
 * need when it goes out. */
int cl_out_nstring(satchel_client *c, const char *s, size_t n);
/* A literal of n bytes (any size, 64-bit) that read(ctx, off, buf, cap)
 * gives as the output drains: it writes 1..cap bytes of the data at offset
 * off into buf and returns how many, or a negative satchel_err (0 counts
 * as a failure).  It is asked for the data in order, each byte once.
 * ctx must live until the command is
 * answered or the connection ends (cl_conn_reset).  A failing read fails
 * the connection: the literal's length is on the wire already. */
typedef long (*cl_src_read)(void *ctx, uint64_t off, uint8_t *buf, size_t cap);
int cl_out_literal_src(satchel_client *c, uint64_t n, cl_src_read read, void *ctx);
int cl_out_continuation(satchel_client *c, const char *line);
int cl_out_uidset(satchel_client *c, const uint32_t *uids, uint32_t n);
int cl_out_flags(satchel_client *c, uint32_t bits, const char *kw);
int cl_cmd_begin(satchel_client *c, uint8_t kind);
int cl_cmd_end(satchel_client *c);
void cl_cmd_arg(satchel_client *c, uint64_t arg);
void cl_cmd_cancel(satchel_client *c);
/* Serialize queued commands into the output as far as it has room and
 * nothing waits for an answer; called whenever either changes. */
void cl_out_fill(satchel_client *c);
size_t cl_out_ready(const satchel_client *c);
int cl_hold_release(satchel_client *c);
int cl_hold_drop(satchel_client *c, uint32_t tag);
void cl_out_discard(satchel_client *c);
int cl_simple_cmd(satchel_client *c, uint8_t kind, const char *text);
int cl_select(satchel_client *c, uint8_t kind, const char *mailbox, uint32_t uidvalidity,
              uint64_t modseq, int condstore);
int cl_count_inflight(const satchel_client *c, uint8_t kind);
void cl_remove_inflight(satchel_client *c, uint32_t i);

/* fetch_map.c: FETCH items to a message record, no state */
void fetch_map_flags(const satchel_imap_arg *list, uint32_t *flags,
                     char *kw, size_t kwcap);
void fetch_map_items(const satchel_imap_arg *list, struct fetch_items *it);
void fetch_map_msg(const struct fetch_items *it, satchel_msg *m, char *hdr,
                   size_t hdrcap);

/* job_list.c: LIST, roles, LIST-STATUS */
int list_send(satchel_client *c);

/* job_sync.c: folder sync */

/* job_body.c: body download */
int body_sink(void *ctx, const char *item, uint64_t off, uint64_t total,
              const uint8_t *data, size_t len);

/* job_mkdir.c: offline new folders, the replay's first step */
int replay_mkdirs(satchel_client *c);

/* job_replay.c: offline queue replay */
/* The next batch of changes (after the mkdirs), or on to the sync. */
int replay_next(satchel_client *c);
/* c->rp.reason: what, then the server's text (control bytes blanked). */
void replay_reason(satchel_client *c, const char *what, const char *text, size_t len);
/* The change failed with reason: its local effect rolled back to the
 * server's truth (r: what the batch learnt of it, or NULL), counted, and
 * written in c->txn.  Returns 0 or a satchel_err. */
int replay_op_fail(satchel_client *c, satchel_op *op, const struct rop *r, const char *reason);

#endif

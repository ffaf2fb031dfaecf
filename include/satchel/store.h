/* The local mail store, on LMDB.
 *
 * Every change goes through a write transaction (satchel_store_txn) that
 * either commits whole or leaves the store as it was, so a crash or power
 * loss never leaves a half-written folder.  Folder records carry the sync
 * state (UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ) and message and unseen counts,
 * kept exact by the message functions below.
 *
 * Threads: a store handle, and every transaction and pointer it gives out,
 * is used from one thread at a time (the handle owns scratch buffers that
 * its functions share).  Other processes may open the same directory; LMDB
 * serializes their write transactions.
 *
 * Reads: every function that takes (s, t) reads inside the write
 * transaction t when t is not NULL (seeing its uncommitted changes), else
 * in a short read-only transaction of its own.
 *
 * Errors: besides the codes listed per function, every function that touches
 * the file can return SATCHEL_E_STORE (an I/O error from LMDB, or a record
 * that fails its checks: damaged records are reported, never a crash) or
 * SATCHEL_E_DAMAGED (a tree LMDB cannot walk), and every function that
 * writes can return SATCHEL_E_STORE_FULL (the map is full).  After an
 * error inside a write transaction the caller aborts it.
 */
#ifndef SATCHEL_STORE_H
#define SATCHEL_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "satchel/alloc.h"
#include "satchel/error.h"
#include "satchel/opt.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Special-use roles (RFC 6154), or guessed from the name. */
typedef enum satchel_role {
    SATCHEL_ROLE_NONE = 0,
    SATCHEL_ROLE_INBOX,
    SATCHEL_ROLE_SENT,
    SATCHEL_ROLE_DRAFTS,
    SATCHEL_ROLE_TRASH,
    SATCHEL_ROLE_ARCHIVE,
    SATCHEL_ROLE_JUNK,
    SATCHEL_ROLE_ALL,
    SATCHEL_ROLE_FLAGGED
} satchel_role;

/* Static lower-case name of a role ("inbox", "sent", ... or "" for none). */
const char *satchel_role_name(int role);

#define SATCHEL_FOLDER_NOSELECT 0x01u
#define SATCHEL_FOLDER_NOINFERIORS 0x02u
/* The server's name for this folder is not modified UTF-7: the store keeps
 * its bytes and they go out as they came. */
#define SATCHEL_FOLDER_VERBATIM 0x04u
/* The LIST-STATUS of generation list_gen showed nothing new on the server
 * (meaningful only together with that list_gen). */
#define SATCHEL_FOLDER_UNCHANGED 0x08u

typedef struct satchel_folder {
    char name[SATCHEL_OPT_MAX_FOLDER_NAME + 1]; /* as the server spells it */
    uint32_t id;           /* store-local id, never reused */
    uint32_t uidvalidity;  /* 0: never synced */
    uint32_t uidnext;      /* all UIDs below are in the store */
    uint64_t highestmodseq;/* 0: none or never synced */
    uint32_t count;        /* messages in the store */
    uint32_t unseen;       /* of those, without \Seen */
    uint32_t list_gen;     /* LIST generation that last saw the folder */
    uint8_t role;          /* satchel_role */
    uint8_t flags;         /* SATCHEL_FOLDER_* */
    char delim;            /* hierarchy delimiter, 0 if none */
} satchel_folder;

/* System flags as bits; other flags are kept as keywords. */
#define SATCHEL_FLAG_SEEN 0x01u
#define SATCHEL_FLAG_ANSWERED 0x02u
#define SATCHEL_FLAG_FLAGGED 0x04u
#define SATCHEL_FLAG_DELETED 0x08u
#define SATCHEL_FLAG_DRAFT 0x10u

#define SATCHEL_MSG_F_BS_TRUNCATED 0x01u /* BODYSTRUCTURE did not fit: bodystructure
                                            holds the whole parts that did */
#define SATCHEL_MSG_F_PENDING 0x02u      /* moved offline, UID is a placeholder */

typedef struct satchel_msg {
    uint32_t uid;
    uint32_t flags;         /* SATCHEL_FLAG_* */
    uint64_t size;          /* RFC822.SIZE (64-bit in RFC 9051) */
    uint32_t mflags;        /* SATCHEL_MSG_F_* */
    int64_t internaldate;   /* seconds since 1970 UTC */
    int64_t date;           /* Date: header, or internaldate if absent */
    int16_t internaldate_tz;/* minutes east of UTC */
    int16_t date_tz;
    uint64_t modseq;
    char keywords[128];     /* other flags, space-separated */
    char from[SATCHEL_OPT_MAX_FIELD];
    char subject[SATCHEL_OPT_MAX_FIELD]; /* UTF-8, decoded */
    char message_id[SATCHEL_OPT_MAX_FIELD];
    char bodystructure[SATCHEL_OPT_MAX_BODYSTRUCTURE]; /* IMAP syntax */
    char preview[SATCHEL_OPT_MAX_FIELD]; /* server's PREVIEW, UTF-8 */
} satchel_msg;

typedef struct satchel_store satchel_store;
typedef struct satchel_store_txn satchel_store_txn;

/* File access the store needs besides LMDB's own, supplied by the port
 * (core makes no OS calls).  Each hook returns 0 or a positive OS error
 * number (errno), like LMDB; the store turns those into Satchel errors.
 * Any hook may be NULL: the check it serves is then skipped. */
typedef struct satchel_store_fs {
    void *ctx;
    /* Size of path in bytes and whether it is a directory; ENOENT if it
     * does not exist. */
    int (*stat)(void *ctx, const char *path, uint64_t *size, int *is_dir);
    /* Read exactly len bytes at off (a short read is EIO). */
    int (*read)(void *ctx, const char *path, uint64_t off, void *buf,
                size_t len);
    /* Write len bytes at off and make them durable. */
    int (*write)(void *ctx, const char *path, uint64_t off, const void *buf,
                 size_t len);
    /* Give bytes [0, len) of path (created if missing, mode 0600) real
     * blocks on disk, so that writes through a memory map of it cannot
     * fault on a full disk. */
    int (*allocate)(void *ctx, const char *path, uint64_t len);
    /* Create directory path (0700); EEXIST when it exists. */
    int (*mkdir)(void *ctx, const char *path);
    /* Bytes still free on the file system holding path (LMDB reports a
     * write cut short by a full disk as EIO: this tells the two apart). */
    int (*space)(void *ctx, const char *path, uint64_t *avail);
    /* This process's id, and whether process pid is still running. */
    uint32_t (*pid)(void *ctx);
    int (*alive)(void *ctx, uint32_t pid);
} satchel_store_fs;

typedef struct satchel_store_config {
    const satchel_allocator *alloc; /* NULL: satchel_allocator_default();
                                       must outlive the store */
    uint64_t map_size;              /* most bytes the store may grow to;
                                       0: SATCHEL_OPT_STORE_MAP_SIZE */
    const satchel_store_fs *fs;     /* NULL: trust the file as LMDB does;
                                       must outlive the store */
    char *err;                      /* if not NULL, gets what went wrong */
    size_t err_cap;
} satchel_store_config;

/* Open (creating if needed) the store in directory path, which must exist.
 * With cfg->fs the files are checked before LMDB maps them: a data.mdb
 * that is empty, truncated, or whose meta pages do not add up is refused
 * (never replaced by a new store); with one damaged meta page next to a
 * sound one the store falls back to the sound one's commit and says so in
 * satchel_store_notice.  A store with content but no Satchel version
 * record is refused with or without cfg->fs.
 * On success *out is the handle, valid until satchel_store_close; on
 * failure *out is NULL and cfg->err names the file and what is wrong.
 * Returns 0, SATCHEL_E_INVAL (empty path), SATCHEL_E_NOMEM,
 * SATCHEL_E_NOTFOUND (no such directory), SATCHEL_E_NOTDIR,
 * SATCHEL_E_PERM, SATCHEL_E_READONLY, SATCHEL_E_DISK_FULL (no room to
 * create the store), SATCHEL_E_DAMAGED, or SATCHEL_E_STORE (another I/O
 * error, or a store of an unknown version). */
int satchel_store_open_config(const satchel_store_config *cfg,
                              const char *path, satchel_store **out);
/* satchel_store_open_config without file hooks or error text. */
int satchel_store_open(const satchel_allocator *alloc, const char *path,
                       uint64_t map_size, satchel_store **out);
/* What open had to repair, as text ("" when nothing); valid until close. */
const char *satchel_store_notice(const satchel_store *s);
/* Close and free the handle.  s may be NULL.  Any write transaction still
 * open must have been committed or aborted first. */
void satchel_store_close(satchel_store *s);

/* Write transactions.
 *
 * begin returns 0 with *out set, SATCHEL_E_BUSY when this handle already
 * has a write transaction open (one at a time per handle; *out is NULL),
 * SATCHEL_E_NOMEM or SATCHEL_E_STORE.  A write transaction open in another
 * process is waited for, not reported as BUSY.
 *
 * commit makes every change durable at once and returns 0,
 * SATCHEL_E_STORE_FULL, SATCHEL_E_DISK_FULL (the file system is full),
 * SATCHEL_E_PERM, SATCHEL_E_READONLY or SATCHEL_E_STORE; on failure nothing of the
 * transaction is kept.  abort discards every change.  Both always free t,
 * whatever they return, so t must not be used again; abort accepts NULL.
 * Pointers read through t (none are returned today; records are copied
 * out) do not outlive it. */
int satchel_store_begin(satchel_store *s, satchel_store_txn **out);
/* begin for a transaction that frees space (evicting, deleting): it may
 * grow the store past its map size by a small reserve (1/32 of the map,
 * at least 128 KB), so that a full map never stops the eviction that would
 * empty it.  Same return codes as begin. */
int satchel_store_begin_reserve(satchel_store *s, satchel_store_txn **out);
int satchel_store_commit(satchel_store_txn *t);
void satchel_store_abort(satchel_store_txn *t);

/* Folders.  A folder's record is keyed by its id, which never changes and
 * is never reused; an index finds it by name, for any name of 1 to
 * SATCHEL_OPT_MAX_FOLDER_NAME bytes.  Messages, cached bodies and pins are
 * keyed by the id.
 *
 * folder_get copies the folder into *out.  Returns 0 or SATCHEL_E_NOTFOUND
 * (also for an empty or over-long name). */
int satchel_store_folder_get(satchel_store *s, satchel_store_txn *t,
                             const char *name, satchel_folder *out);
/* The SATCHEL_FOLDER_* flags of the named folder into *flags, without
 * copying the folder (for callers that hold no folder buffer).  Returns 0
 * or SATCHEL_E_NOTFOUND, as folder_get. */
int satchel_store_folder_flags(satchel_store *s, satchel_store_txn *t,
                               const char *name, uint8_t *flags);
/* The id of the named folder into *id, without copying the folder.
 * Returns 0 or SATCHEL_E_NOTFOUND, as folder_get. */
int satchel_store_folder_id(satchel_store *s, satchel_store_txn *t, const char *name,
                            uint32_t *id);
/* The folder with that id into *out.  Returns 0 or SATCHEL_E_NOTFOUND. */
int satchel_store_folder_get_id(satchel_store *s, satchel_store_txn *t,
                                uint32_t id, satchel_folder *out);
/* Create the folder (assigning f->id) when f->id is 0, else rewrite it
 * (a changed name moves its index entry: a rename keeps id, messages,
 * bodies and pins).  Returns 0 or SATCHEL_E_INVAL (empty or over-long name,
 * or a name another folder has). */
int satchel_store_folder_put(satchel_store_txn *t, satchel_folder *f);
/* Delete a folder and every message in it, with their cached bodies and
 * pins.  Queue entries naming it are left to the caller.  Returns 0 or
 * SATCHEL_E_NOTFOUND. */
int satchel_store_folder_delete(satchel_store_txn *t, const char *name);
/* Delete every message of f (UIDVALIDITY changed), with their cached bodies
 * and pins, and zero f->count and f->unseen; the caller writes f back.
 * Returns 0. */
int satchel_store_folder_clear(satchel_store_txn *t, satchel_folder *f);
/* The folder whose name follows after in the name index, or the first when
 * after is NULL or "" (byte order of names, but for names longer than 440
 * bytes that share their first 440: those follow a hash of the name).
 * after need not be a stored folder any more.  A damaged record is skipped and counted
 * (satchel_store_damaged).  Returns 0 or SATCHEL_E_NOTFOUND at the end. */
int satchel_store_folder_next(satchel_store *s, satchel_store_txn *t,
                              const char *after, satchel_folder *out);
/* The folder with the lowest id above after (0: the first), in id order:
 * the order folders were first stored in, which a folder's rename or
 * removal does not move, so a walk resumed from a folder's id neither
 * skips nor repeats any other (unlike a walk by name, whose position goes
 * with the name).  A damaged record is skipped and counted, and so is one
 * that its name does not lead to (its index entry lost): the folders are
 * those folder_next lists.  Returns 0 or SATCHEL_E_NOTFOUND at the end. */
int satchel_store_folder_next_id(satchel_store *s, satchel_store_txn *t, uint32_t after,
                                 satchel_folder *out);

/* Messages.  Every function that changes messages of folder f keeps
 * f->count and f->unseen exact; the caller writes f back with folder_put in
 * the same transaction.
 *
 * msg_put inserts or replaces m (key f->id, m->uid); *is_new (may be NULL)
 * tells which.  Strings longer than their field are cut.  Returns 0 or
 * SATCHEL_E_INVAL (UID 0). */
int satchel_store_msg_put(satchel_store_txn *t, satchel_folder *f,
                          const satchel_msg *m, int *is_new);
/* Set flags and keywords of a stored message, and raise its modseq to
 * modseq if higher.  Returns 1 if flags or keywords changed, 0 if they were
 * already so, SATCHEL_E_NOTFOUND if the UID is not stored. */
int satchel_store_msg_set_flags(satchel_store_txn *t, satchel_folder *f,
                                uint32_t uid, uint32_t flags,
                                const char *keywords, uint64_t modseq);
/* Delete one message with its cached bodies and pin.  Returns 1 if
 * deleted, 0 if it was not stored. */
int satchel_store_msg_del(satchel_store_txn *t, satchel_folder *f,
                          uint32_t uid);
/* Delete stored UIDs in [lo, hi] with their bodies and pins; *deleted gets
 * how many.  Cost is in the number of stored messages in the range, not the
 * width of the range.  Returns 0. */
int satchel_store_msg_del_range(satchel_store_txn *t, satchel_folder *f,
                                uint32_t lo, uint32_t hi, uint32_t *deleted);
/* The same, sparing messages moved here offline (SATCHEL_MSG_F_PENDING):
 * they are not the server's, whatever UID they carry. */
int satchel_store_msg_del_server_range(satchel_store_txn *t, satchel_folder *f,
                                       uint32_t lo, uint32_t hi,
                                       uint32_t *deleted);
/* Server messages at or above uid (not the ones moved here offline): how
 * many, and the lowest and highest UID among them (0 when none).  Returns
 * 0; on an error the outputs are not meaningful. */
int satchel_store_msg_span_from(satchel_store *s, satchel_store_txn *t,
                                uint32_t folder_id, uint32_t uid,
                                uint32_t *count, uint32_t *lo, uint32_t *hi);
/* Messages of the folder moved here offline, waiting for the server.
 * Returns 0. */
int satchel_store_msg_count_pending(satchel_store *s, satchel_store_txn *t,
                                    uint32_t folder_id, uint32_t *count);
/* Copy one message into *out.  Returns 0 or SATCHEL_E_NOTFOUND. */
int satchel_store_msg_get(satchel_store *s, satchel_store_txn *t,
                          uint32_t folder_id, uint32_t uid, satchel_msg *out);
/* One message's SATCHEL_MSG_F_* flags into *mflags, checked as msg_get
 * checks the record but without a message buffer of the caller's (it
 * decodes into the store's own scratch message: not for use inside a
 * msg_foreach callback, which that scratch is lent to).
 * Returns 0 or SATCHEL_E_NOTFOUND, or SATCHEL_E_STORE for a damaged
 * record. */
int satchel_store_msg_mflags(satchel_store *s, satchel_store_txn *t, uint32_t folder_id,
                             uint32_t uid, uint32_t *mflags);
/* How many stored messages of the folder have UID >= uid.  Returns 0. */
int satchel_store_msg_count_from(satchel_store *s, satchel_store_txn *t,
                                 uint32_t folder_id, uint32_t uid,
                                 uint32_t *count);

/* Visit messages newest first (descending UID), skipping offset, at most
 * count of them, in one read-only snapshot.  m points into the handle's
 * scratch and is valid during the callback only; the callback must not call
 * msg_list or msg_set_flags on the same store.  Return non-zero from the
 * callback to stop: msg_list returns that value.  Otherwise returns 0, or
 * SATCHEL_E_DAMAGED when the tree itself cannot be walked.  A damaged
 * record is skipped and counted (satchel_store_damaged). */
typedef int (*satchel_store_msg_cb)(void *ctx, const satchel_msg *m);
int satchel_store_msg_list(satchel_store *s, uint32_t folder_id,
                           uint32_t offset, uint32_t count,
                           satchel_store_msg_cb cb, void *ctx);

typedef struct satchel_store_stats {
    uint64_t bytes;    /* bytes of the map in use */
    uint64_t map_size; /* ceiling */
    uint32_t folders;
    uint64_t messages;
} satchel_store_stats;
/* Returns 0 or SATCHEL_E_STORE. */
int satchel_store_stats_get(satchel_store *s, satchel_store_stats *out);

/* ---- Body cache ----
 *
 * Bodies (or single MIME parts) are stored in chunks as they arrive, keyed
 * by folder, UID and IMAP section ("1", "2.1"; "" is not allowed).  Every
 * chunk write is part of the caller's transaction, so an interrupted
 * download keeps exactly the chunks that committed and resumes from there.
 * The cache keeps its bytes within a budget by evicting the least recently
 * used bodies; pinned messages are never evicted, and headers and sync
 * state are not part of the cache at all. */

#define SATCHEL_SECTION_MAX 32

typedef struct satchel_body_info {
    uint64_t stored;   /* bytes stored, from offset 0 */
    uint64_t expected; /* size announced by BODYSTRUCTURE, 0 if unknown */
    uint64_t atime;    /* LRU clock of the last use */
    uint8_t complete;
} satchel_body_info;

typedef struct satchel_cache_stats {
    uint64_t bytes;     /* body bytes stored */
    uint64_t budget;    /* bytes the cache may hold */
    uint64_t entries;   /* bodies (parts) stored, complete or not */
    uint64_t hits, misses, evictions;
    uint64_t pinned;    /* pinned messages */
} satchel_cache_stats;

/* Budget for body bytes.  0, or more than 3/8 of the map size, means 3/8
 * of the map size (the default after open): bodies and their copy-on-write
 * then leave a quarter of the map to headers, the queue and LMDB's free
 * pages.  Kept in the handle, not in the file: set it after every open. */
void satchel_store_set_cache_budget(satchel_store *s, uint64_t bytes);

/* Functions taking a section return SATCHEL_E_INVAL for one that is empty,
 * too long, or has characters other than digits, '.' and upper-case
 * letters.
 *
 * body_info returns 0, or SATCHEL_E_NOTFOUND when nothing of that body is
 * stored (*out is then zeroed). */
int satchel_store_body_info(satchel_store *s, satchel_store_txn *t,
                            uint32_t fid, uint32_t uid, const char *section,
                            satchel_body_info *out);
/* Append len bytes (copied) at offset, which must equal the bytes already
 * stored, to a body not yet complete (SATCHEL_E_INVAL otherwise).  expected
 * is kept when the body is new.  Makes room under the budget by evicting
 * other unpinned bodies first, never this one.  Returns 0, SATCHEL_E_RANGE
 * (len alone is over the budget) or SATCHEL_E_STORE_FULL (even evicting
 * cannot make room). */
int satchel_store_body_write(satchel_store_txn *t, uint32_t fid, uint32_t uid,
                             const char *section, uint64_t offset,
                             const uint8_t *data, size_t len,
                             uint64_t expected);
/* Mark a body complete (all bytes stored); a body with nothing stored
 * becomes an empty complete one.  Returns 0. */
int satchel_store_body_complete(satchel_store_txn *t, uint32_t fid,
                                uint32_t uid, const char *section);
/* Record a use: moves the body to the recent end of the LRU order and
 * counts a hit (hit=1) or a miss (hit=0, when it had to be fetched).
 * Returns 0, also when nothing of the body is stored (only counted). */
int satchel_store_body_touch(satchel_store_txn *t, uint32_t fid, uint32_t uid,
                             const char *section, int hit);
/* Visit the stored bytes of a body in order from offset 0, in one
 * read-only snapshot.  data points into the map and is valid during the
 * callback only.  A non-zero return from the callback stops the walk and is
 * returned.  Otherwise returns 0 (also when nothing is stored: the callback
 * is not called) or SATCHEL_E_STORE when the chunks do not follow each
 * other. */
typedef int (*satchel_store_chunk_cb)(void *ctx, const uint8_t *data,
                                      size_t len);
int satchel_store_body_read(satchel_store *s, uint32_t fid, uint32_t uid,
                            const char *section, satchel_store_chunk_cb cb,
                            void *ctx);
/* Drop the cached bodies of one message (section NULL: all its parts), of
 * a whole folder (uid 0), or of everything (fid 0), pinned or not; *n gets
 * how many.  Returns 0. */
int satchel_store_body_evict(satchel_store_txn *t, uint32_t fid, uint32_t uid,
                             const char *section, uint32_t *n);
/* Evict least recently used, unpinned bodies until need more bytes fit in
 * the budget (or, with no budget, until need bytes were freed).  Returns 0,
 * SATCHEL_E_RANGE when need alone is larger than the budget, or
 * SATCHEL_E_STORE_FULL when nothing is left to evict. */
int satchel_store_cache_make_room(satchel_store_txn *t, uint64_t need);
/* After SATCHEL_E_STORE_FULL: headers and queued changes come before
 * cached bodies.  In a transaction of its own (it may use the reserve),
 * evict least recently used, unpinned bodies, 1/16 of the map size (at
 * least 256 KB) or all there are.  Returns 0 when something was evicted
 * (try the write again), SATCHEL_E_STORE_FULL when nothing could be,
 * SATCHEL_E_BUSY when s has a write transaction open, or another error. */
int satchel_store_make_room(satchel_store *s);
/* Evict least recently used, unpinned bodies until bytes were freed,
 * whatever the budget (after SATCHEL_E_STORE_FULL), never the body named by
 * (fid, uid, section) (section NULL: protect nothing), so that a download
 * never evicts its own committed chunks.  Returns 0, SATCHEL_E_INVAL (bad
 * section) or SATCHEL_E_STORE_FULL when nothing is left to evict. */
int satchel_store_cache_free(satchel_store_txn *t, uint64_t bytes, uint32_t fid,
                            uint32_t uid, const char *section);
/* Pin (on non-zero) or unpin a message: its bodies are never evicted to
 * make room.  Returns 0. */
int satchel_store_pin(satchel_store_txn *t, uint32_t fid, uint32_t uid,
                      int on);
/* Returns 1 if pinned, 0 if not, or a negative error. */
int satchel_store_is_pinned(satchel_store *s, satchel_store_txn *t,
                            uint32_t fid, uint32_t uid);
/* Returns 0. */
int satchel_store_cache_stats(satchel_store *s, satchel_cache_stats *out);

/* ---- Offline change queue ----
 *
 * Every local change (flags, move, delete, new folder) is one queue record
 * written in the same transaction as its effect on the store.  Messages
 * moved offline live in their destination under a placeholder UID at or
 * above SATCHEL_PLACEHOLDER_UID until the server assigns the real one. */

#define SATCHEL_PLACEHOLDER_UID 0xF0000000u

typedef enum satchel_op_type {
    SATCHEL_OP_FLAG = 1,   /* add/del flags and keywords */
    SATCHEL_OP_MOVE,       /* to dest (delete to Trash is a move) */
    SATCHEL_OP_EXPUNGE,    /* delete for good (in Trash, or no Trash) */
    SATCHEL_OP_MKDIR       /* create folder dest */
} satchel_op_type;

typedef enum satchel_op_state {
    SATCHEL_OP_PENDING = 0,
    SATCHEL_OP_FAILED = 1  /* reason says why; kept until retried/dropped */
} satchel_op_state;

typedef struct satchel_op {
    uint64_t id;            /* queue order; assigned by op_add */
    uint8_t type, state;
    uint8_t phase;          /* MOVE: 1 once sent (a retry must check first),
                               2 copy found done, 3 moved: find new UID */
    uint8_t on_placeholder; /* uid names a message moved offline, not yet
                               on the server: wait for its move */
    uint8_t inflight;       /* sent by a replay that has not seen the
                               answer: never folded into or changed by a
                               later local change (that makes a new entry) */
    uint32_t uid;           /* message in folder (may be a placeholder) */
    uint32_t dest_uid;      /* MOVE: its placeholder in dest */
    uint32_t uidvalidity;   /* of folder when queued */
    uint32_t add, del;      /* FLAG: SATCHEL_FLAG_* bits */
    uint32_t base;          /* FLAG: flags the change was made against */
    uint32_t attempts;
    uint64_t created;       /* queue clock: order of recording */
    char folder[SATCHEL_OPT_MAX_FOLDER_NAME + 1];
    char dest[SATCHEL_OPT_MAX_FOLDER_NAME + 1];
    char kw_add[64], kw_del[64];
    char message_id[SATCHEL_OPT_MAX_FIELD];
    char reason[160];
} satchel_op;

/* Scratch for one queue entry, owned by s and freed with it.  The offline
 * operations (satchel_ops_*) overwrite it; a caller (the engine's replay)
 * fills it with op_get/op_next at each use and keeps nothing in it across
 * a call to satchel_ops_* on s.  Never NULL for an open store. */
satchel_op *satchel_store_op_scratch(satchel_store *s);
/* Append op at the end of the queue: assigns op->id and op->created.
 * The per-message index (op_index) is the caller's to update.  Strings
 * longer than their field are cut.  Returns 0. */
int satchel_store_op_add(satchel_store_txn *t, satchel_op *op);
/* Write op under op->id, replacing the entry there.  Returns 0. */
int satchel_store_op_put(satchel_store_txn *t, const satchel_op *op);
/* Remove entry id (0 also when there is none); the index is the caller's.
 * Returns 0. */
int satchel_store_op_del(satchel_store_txn *t, uint64_t id);
/* Copy entry id into *out.  Returns 0 or SATCHEL_E_NOTFOUND. */
int satchel_store_op_get(satchel_store *s, satchel_store_txn *t, uint64_t id,
                         satchel_op *out);
/* The op after id in queue order (0: the first), skipping and counting
 * damaged entries.  0 or SATCHEL_E_NOTFOUND. */
int satchel_store_op_next(satchel_store *s, satchel_store_txn *t, uint64_t after,
                          satchel_op *out);
/* The id of the latest queued op that touched message (fid, uid), as set
 * by op_index (*id 0 for a damaged index entry).  Returns 0 or
 * SATCHEL_E_NOTFOUND. */
int satchel_store_op_latest(satchel_store *s, satchel_store_txn *t,
                            uint32_t fid, uint32_t uid, uint64_t *id);
/* Set the latest op of message (fid, uid) to id; id 0 removes the entry.
 * Returns 0. */
int satchel_store_op_index(satchel_store_txn *t, uint32_t fid, uint32_t uid,
                           uint64_t id);
/* Next placeholder UID for a message moved offline.  Callers must check
 * the destination has no message with that UID (a server may use UIDs in
 * the same range) and ask again if it does.  Returns 0. */
int satchel_store_placeholder(satchel_store_txn *t, uint32_t *uid);
/* One syncing session per store, across processes.  lock records this
 * process (the fs hook's pid) as the store's syncing session and returns
 * 0, or SATCHEL_E_BUSY with *holder the pid of a live process holding it
 * (a holder that is no longer running is replaced).  Without pid hooks it
 * always succeeds.  unlock releases what this handle took. */
int satchel_store_sync_lock(satchel_store *s, uint32_t *holder);
void satchel_store_sync_unlock(satchel_store *s);

/* Pending and failed entries.  Returns 0. */
int satchel_store_queue_counts(satchel_store *s, uint64_t *pending,
                               uint64_t *failed);
/* Record that folder fid completed a sync now, in queue-clock terms.
 * Returns 0. */
int satchel_store_synced_mark(satchel_store_txn *t, uint32_t fid);
/* Queue clock when folder fid last completed a sync (0: never, or an
 * error).  An entry recorded before that saw the server's state of its
 * message. */
uint64_t satchel_store_synced_clock(satchel_store *s, satchel_store_txn *t,
                                    uint32_t fid);

/* Small named blobs kept with the store (e.g. the TLS session for quick
 * reconnects).  Names are 1 to 58 bytes (SATCHEL_E_INVAL otherwise).
 * get copies the blob into buf and returns 0, SATCHEL_E_NOTFOUND or
 * SATCHEL_E_RANGE (cap too small; *len is then 0). */
int satchel_store_blob_get(satchel_store *s, const char *name, uint8_t *buf,
                           size_t cap, size_t *len);
/* Store a copy of data under name; len 0 deletes it.  Returns 0. */
int satchel_store_blob_put(satchel_store_txn *t, const char *name,
                           const uint8_t *data, size_t len);

/* ---- Damage, checks, salvage and backup ----
 *
 * Satchel's records (folders, messages, body records, queue entries) end
 * in a CRC-32C, since LMDB checks nothing of what it stores.  Listings
 * (msg_list, folder_next, op_next) skip a record that fails its checks
 * and count it here, so one bad record does not hide the others. */

/* Damaged records skipped by listings since the store was opened. */
uint64_t satchel_store_damaged(const satchel_store *s);

typedef struct satchel_store_report {
    uint64_t records;  /* Satchel records read */
    uint64_t damaged;  /* of those, failing their checks */
    uint64_t problems; /* every problem reported, damaged records included */
    uint64_t copied;   /* salvage: records written to the new store */
} satchel_store_report;

/* Called once per problem with a line of text, valid during the call. */
typedef void (*satchel_store_problem_cb)(void *ctx, const char *what);

/* Read every record and every LMDB tree of the store (and LMDB's free
 * list) in one read-only snapshot, reporting each problem through cb (may
 * be NULL).  Returns 0 when nothing is wrong, SATCHEL_E_DAMAGED when
 * problems were found (out says how many), or another error when the check
 * could not run. */
int satchel_store_check(satchel_store *s, satchel_store_problem_cb cb,
                        void *ctx, satchel_store_report *out);

/* Copy every record that passes its checks into a new store in directory
 * dir (created through the port's mkdir hook when missing; it must not hold
 * a store yet): the queue first, then folders, messages (their counts
 * recomputed), pins and complete cached bodies.  Damaged records are
 * reported through cb and left behind.  Returns 0 (problems may have been
 * reported), SATCHEL_E_BUSY (dir already holds a store), or an error from
 * opening or writing the new store. */
int satchel_store_salvage(satchel_store *s, const char *dir,
                          satchel_store_problem_cb cb, void *ctx,
                          satchel_store_report *out);

/* salvage for a store that does not open (or should not be trusted to):
 * its data.mdb in directory src is read page by page through cfg->fs
 * (which must have read, stat and mkdir), never mapped by LMDB, so damage
 * anywhere only costs the records it touches.  Records that pass their
 * checks go into a new store in dir (opened with cfg's allocator, map size
 * and hooks): the queue first, then meta values, folders, messages with
 * their counts rebuilt, and pins; cached bodies are left behind.  Damaged
 * pages and records are reported through cb.  Returns as salvage. */
int satchel_store_salvage_file(const satchel_store_config *cfg, const char *src,
                               const char *dir, satchel_store_problem_cb cb,
                               void *ctx, satchel_store_report *out);

/* A consistent, compacted copy of the store as it was when the call began,
 * taken while it stays in use (LMDB's mdb_env_copy2 with MDB_CP_COMPACT),
 * into directory dir (created when missing; it must not hold a data.mdb).
 * The copy opens as a store.  err (may be NULL) gets what went wrong.
 * Returns 0, SATCHEL_E_BUSY (dir already holds a data.mdb),
 * SATCHEL_E_DISK_FULL, SATCHEL_E_PERM, SATCHEL_E_NOTDIR or SATCHEL_E_STORE. */
int satchel_store_backup(satchel_store *s, const char *dir, char *err,
                         size_t err_cap);

/* Encode/decode a message record (exposed for tests and fuzzing).  encode
 * returns the length or SATCHEL_E_RANGE (buf NULL: the length it would
 * write, cap ignored); decode returns 0 or SATCHEL_E_STORE for a damaged
 * record. */
int satchel_store_msg_encode(const satchel_msg *m, uint8_t *buf, size_t cap);
int satchel_store_msg_decode(const uint8_t *buf, size_t len, uint32_t uid,
                             satchel_msg *out);

#ifdef __cplusplus
}
#endif
#endif

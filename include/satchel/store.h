/* The local mail store, on LMDB.
 *
 * Every change goes through a write transaction (satchel_store_txn) that
 * either commits whole or leaves the store as it was, so a crash or power
 * loss never leaves a half-written folder.  Folder records carry the sync
 * state (UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ) and message and unseen counts,
 * kept exact by the message functions below.
 *
 * Records read back from the file are validated like server input: a
 * damaged record gives SATCHEL_E_STORE, never a crash.
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

#define SATCHEL_MSG_F_BS_TRUNCATED 0x01u /* BODYSTRUCTURE did not fit */
#define SATCHEL_MSG_F_PENDING 0x02u      /* moved offline, UID is a placeholder */

typedef struct satchel_msg {
    uint32_t uid;
    uint32_t flags;         /* SATCHEL_FLAG_* */
    uint32_t size;          /* RFC822.SIZE */
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

/* Open (creating if needed) the store in directory path, which must exist.
 * map_size 0 means SATCHEL_OPT_STORE_MAP_SIZE.  Returns 0, SATCHEL_E_STORE
 * (cannot open, or not a Satchel store of a known version) or _NOMEM. */
int satchel_store_open(const satchel_allocator *alloc, const char *path,
                       uint64_t map_size, satchel_store **out);
void satchel_store_close(satchel_store *s);

/* Write transactions.  One at a time per store.  Abort discards every change
 * made through the transaction; commit makes them durable at once. */
int satchel_store_begin(satchel_store *s, satchel_store_txn **out);
int satchel_store_commit(satchel_store_txn *t);
void satchel_store_abort(satchel_store_txn *t);

/* Folders.  folder_put creates the folder (assigning f->id) when f->id is 0,
 * else rewrites it; the name is the key. */
int satchel_store_folder_get(satchel_store *s, satchel_store_txn *t,
                             const char *name, satchel_folder *out);
int satchel_store_folder_put(satchel_store_txn *t, satchel_folder *f);
/* Delete a folder and every message in it. */
int satchel_store_folder_delete(satchel_store_txn *t, const char *name);
/* Delete every message of f (UIDVALIDITY changed) and reset its counts. */
int satchel_store_folder_clear(satchel_store_txn *t, satchel_folder *f);
/* The folder whose name follows after (in byte order), or the first when
 * after is NULL or "".  Returns 0 or SATCHEL_E_NOTFOUND at the end. */
int satchel_store_folder_next(satchel_store *s, satchel_store_txn *t,
                              const char *after, satchel_folder *out);

/* Messages.  msg_put inserts or replaces; *is_new (may be NULL) tells which.
 * f->count and f->unseen are kept exact; the caller writes f back with
 * folder_put in the same transaction. */
int satchel_store_msg_put(satchel_store_txn *t, satchel_folder *f,
                          const satchel_msg *m, int *is_new);
/* Set flags and keywords of a stored message.  Returns 1 if they changed, 0
 * if they were already so, SATCHEL_E_NOTFOUND if the UID is not stored. */
int satchel_store_msg_set_flags(satchel_store_txn *t, satchel_folder *f,
                                uint32_t uid, uint32_t flags,
                                const char *keywords, uint64_t modseq);
/* Returns 1 if deleted, 0 if it was not stored. */
int satchel_store_msg_del(satchel_store_txn *t, satchel_folder *f,
                          uint32_t uid);
/* Delete stored UIDs in [lo, hi]; *deleted gets how many.  Cost is in the
 * number of stored messages in the range, not the width of the range. */
int satchel_store_msg_del_range(satchel_store_txn *t, satchel_folder *f,
                                uint32_t lo, uint32_t hi, uint32_t *deleted);
/* The same, sparing messages moved here offline (SATCHEL_MSG_F_PENDING):
 * they are not the server's, whatever UID they carry. */
int satchel_store_msg_del_server_range(satchel_store_txn *t, satchel_folder *f,
                                       uint32_t lo, uint32_t hi,
                                       uint32_t *deleted);
/* Server messages at or above uid (not the ones moved here offline): how
 * many, and the lowest and highest UID among them. */
int satchel_store_msg_span_from(satchel_store *s, satchel_store_txn *t,
                                uint32_t folder_id, uint32_t uid,
                                uint32_t *count, uint32_t *lo, uint32_t *hi);
/* Messages of the folder moved here offline, waiting for the server. */
int satchel_store_msg_count_pending(satchel_store *s, satchel_store_txn *t,
                                    uint32_t folder_id, uint32_t *count);
/* Read one message. */
int satchel_store_msg_get(satchel_store *s, satchel_store_txn *t,
                          uint32_t folder_id, uint32_t uid, satchel_msg *out);
/* How many stored messages of the folder have UID >= uid. */
int satchel_store_msg_count_from(satchel_store *s, satchel_store_txn *t,
                                 uint32_t folder_id, uint32_t uid,
                                 uint32_t *count);

/* Visit messages newest first (descending UID), skipping offset, at most
 * count of them.  m is valid during the callback only; return non-zero from
 * the callback to stop (that value is returned). */
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
    uint64_t budget;    /* 0: no budget beyond the store's map size */
    uint64_t entries;   /* bodies (parts) stored, complete or not */
    uint64_t hits, misses, evictions;
    uint64_t pinned;    /* pinned messages */
} satchel_cache_stats;

/* Budget for body bytes (0: none).  Kept in the store handle. */
void satchel_store_set_cache_budget(satchel_store *s, uint64_t bytes);

/* Returns 0 or SATCHEL_E_NOTFOUND when nothing of that body is stored. */
int satchel_store_body_info(satchel_store *s, satchel_store_txn *t,
                            uint32_t fid, uint32_t uid, const char *section,
                            satchel_body_info *out);
/* Append len bytes at offset, which must equal the bytes already stored
 * (SATCHEL_E_INVAL otherwise).  Makes room under the budget by evicting
 * other bodies first; SATCHEL_E_STORE_FULL when even that cannot. */
int satchel_store_body_write(satchel_store_txn *t, uint32_t fid, uint32_t uid,
                             const char *section, uint64_t offset,
                             const uint8_t *data, size_t len,
                             uint64_t expected);
/* Mark a body complete (all bytes stored). */
int satchel_store_body_complete(satchel_store_txn *t, uint32_t fid,
                                uint32_t uid, const char *section);
/* Record a use: moves the body to the recent end of the LRU order and
 * counts a hit (hit=1) or a miss (hit=0, when it had to be fetched). */
int satchel_store_body_touch(satchel_store_txn *t, uint32_t fid, uint32_t uid,
                             const char *section, int hit);
/* Visit the stored bytes of a body in order from offset 0.  data is valid
 * during the callback only; a non-zero return stops (and is returned). */
typedef int (*satchel_store_chunk_cb)(void *ctx, const uint8_t *data,
                                      size_t len);
int satchel_store_body_read(satchel_store *s, uint32_t fid, uint32_t uid,
                            const char *section, satchel_store_chunk_cb cb,
                            void *ctx);
/* Drop the cached bodies of one message (section NULL: all its parts), of
 * a whole folder (uid 0), or of everything (fid 0); *n gets how many. */
int satchel_store_body_evict(satchel_store_txn *t, uint32_t fid, uint32_t uid,
                             const char *section, uint32_t *n);
/* Evict least recently used, unpinned bodies until need more bytes fit in
 * the budget (or, with no budget, until need bytes were freed).  Returns 0
 * or SATCHEL_E_RANGE when need alone is larger than the budget. */
int satchel_store_cache_make_room(satchel_store_txn *t, uint64_t need);
int satchel_store_pin(satchel_store_txn *t, uint32_t fid, uint32_t uid,
                      int on);
int satchel_store_is_pinned(satchel_store *s, satchel_store_txn *t,
                            uint32_t fid, uint32_t uid);
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

/* Append op (assigns op->id).  Index: the op becomes the latest one of the
 * message it leaves the message at (folder/uid, or dest/dest_uid). */
int satchel_store_op_add(satchel_store_txn *t, satchel_op *op);
int satchel_store_op_put(satchel_store_txn *t, const satchel_op *op);
int satchel_store_op_del(satchel_store_txn *t, uint64_t id);
int satchel_store_op_get(satchel_store *s, satchel_store_txn *t, uint64_t id,
                         satchel_op *out);
/* The op after id in queue order (0: the first).  0 or SATCHEL_E_NOTFOUND. */
int satchel_store_op_next(satchel_store *s, satchel_store_txn *t, uint64_t after,
                          satchel_op *out);
/* The latest queued op that touched message (fid, uid), if any. */
int satchel_store_op_latest(satchel_store *s, satchel_store_txn *t,
                            uint32_t fid, uint32_t uid, uint64_t *id);
int satchel_store_op_index(satchel_store_txn *t, uint32_t fid, uint32_t uid,
                           uint64_t id); /* id 0 removes the entry */
/* Next placeholder UID for a message moved offline.  Callers must check
 * the destination has no message with that UID (a server may use UIDs in
 * the same range) and ask again if it does. */
int satchel_store_placeholder(satchel_store_txn *t, uint32_t *uid);
int satchel_store_queue_counts(satchel_store *s, uint64_t *pending,
                               uint64_t *failed);
/* Queue clock when folder fid last completed a sync (0: never).  An entry
 * recorded before that saw the server's state of its message. */
int satchel_store_synced_mark(satchel_store_txn *t, uint32_t fid);
uint64_t satchel_store_synced_clock(satchel_store *s, satchel_store_txn *t,
                                    uint32_t fid);

/* Small named blobs kept with the store (e.g. the TLS session for quick
 * reconnects).  get returns 0, SATCHEL_E_NOTFOUND or SATCHEL_E_RANGE (cap
 * too small). */
int satchel_store_blob_get(satchel_store *s, const char *name, uint8_t *buf,
                           size_t cap, size_t *len);
int satchel_store_blob_put(satchel_store_txn *t, const char *name,
                           const uint8_t *data, size_t len);

/* Encode/decode a message record (exposed for tests and fuzzing).  encode
 * returns the length or SATCHEL_E_RANGE; decode returns 0 or
 * SATCHEL_E_STORE for a damaged record. */
int satchel_store_msg_encode(const satchel_msg *m, uint8_t *buf, size_t cap);
int satchel_store_msg_decode(const uint8_t *buf, size_t len, uint32_t uid,
                             satchel_msg *out);

#ifdef __cplusplus
}
#endif
#endif

/* Private to the store's modules (core/store_*.c): the handle, record
 * formats and the helpers they share.  Not part of the public API.
 *
 * Layout (named LMDB databases):
 *   meta     "version" -> u32, "next_fid" -> u32, counters, "blob:" names
 *   folders  folder id (BE32) -> folder record, the name inside it
 *   fnames   name key (store_fname_key) -> folder id (BE32): the name index
 *   msgs     folder id (BE32) | uid (BE32) -> message record
 *   bodies, bodymeta, lru, pins: the body cache (store_cache.c)
 *   queue, qidx: the offline change queue (store_queue.c)
 * Big-endian keys make LMDB's byte order the numeric order. */
#ifndef SATCHEL_STORE_INTERNAL_H
#define SATCHEL_STORE_INTERNAL_H

#include "satchel/store.h"

#include <lmdb.h>

/* 1: folders keyed by name (names up to 200 bytes), RFC822.SIZE in 32
 * bits; migrated at open (store_env.c). */
#define STORE_VERSION 2u
/* Record versions.  Records written now end in a CRC-32C of the bytes
 * before it (LMDB checks nothing of what it stores); older versions without
 * one are still read. */
#define REC_CRC 4u
/* The CRC covers the record's key too (a flipped key byte would otherwise
 * move a record unseen); the version before it covers the value only. */
#define MSG_REC_VERSION 4u   /* 1: before previews; 2: before the CRC */
#define FOLDER_REC_VERSION 4u /* 3 and older: keyed by name (version 1 stores) */
#define BODYMETA_VERSION 3u
#define OP_REC_VERSION 3u
#define BODYMETA_LEN 26u     /* without the CRC */
#define FOLDER_REC_LEN 36u   /* without the CRC */
#define MSG_REC_FIXED 41u
#define MSG_REC_COMPACT 5u   /* written now: core/store_msgrec.c */

/* The name index.  LMDB keys are at most 511 bytes, so a name longer than
 * FNAME_KEY_DIRECT bytes is keyed by its first FNAME_KEY_DIRECT bytes, a
 * NUL (which no name holds, so no short name's key looks like it), a
 * 64-bit hash of the whole name and the folder id: two names that share
 * both prefix and hash get two keys, and a lookup compares the full name
 * kept in each candidate's record.  Keys keep names in byte order, but for
 * long names sharing a prefix. */
#define FNAME_KEY_DIRECT 440u
#define FNAME_KEY_PART (FNAME_KEY_DIRECT + 1u + 8u) /* without the id */
#define FNAME_KEY_MAX (FNAME_KEY_PART + 4u)
/* The key of name (n bytes) for folder id into k (FNAME_KEY_MAX bytes);
 * returns its length.  *part gets the length of the part shared by every
 * folder of that name (the whole key for a short name). */
size_t store_fname_key(const char *name, size_t n, uint32_t id, uint8_t *k,
                       size_t *part);

#define MSG_REC_MAX                                                          \
    (MSG_REC_FIXED + 16 + 6 * 2 + 128 + 4 * SATCHEL_OPT_MAX_FIELD +          \
     SATCHEL_OPT_MAX_BODYSTRUCTURE + REC_CRC)

/* A store is used from one thread; the scratch buffers below keep large
 * records off the stack, which is small on devices. */
struct satchel_store {
    const satchel_allocator *alloc;
    MDB_env *env;
    MDB_dbi meta, folders, fnames, msgs;
    MDB_dbi bodies, bodymeta, lru, pins;
    MDB_dbi queue, qidx;
    uint64_t budget;
    uint64_t map_size;
    uint64_t damaged;    /* damaged records skipped by listings */
    const satchel_store_fs *fs;
    int txn_active;
    int sync_locked;     /* this handle holds the sync lock */
    char notice[256];
    char path[SATCHEL_OPT_STORE_PATH_MAX + 1];
    satchel_msg scratch;
    satchel_folder fscratch; /* name index lookups and folder_delete's copy */
    /* core/ops.c's scratch: operations on one store run one at a time. */
    satchel_msg ops_msg;
    satchel_op ops_op;
};

struct satchel_store_txn {
    satchel_store *s;
    MDB_txn *txn;
    int reserve; /* begun with the map grown by the reserve */
};

/* LMDB's lock file for its default 126 readers: 125 reader slots of 64
 * bytes after a 192-byte header, as LMDB sizes it on 64-bit hosts. */
#define STORE_LOCK_FILE_SIZE 8192u

/* mdb_get and mdb_cursor_get, then a check that the key and value they
 * return lie inside the file: LMDB takes a node's sizes and offsets from
 * the page as they are, so one flipped byte would otherwise send a reader
 * past the end of the map (SIGBUS or SIGSEGV).  MDB_CORRUPTED if not. */
#define STORE_VALUE_MAX (1u << 20) /* well above any record or body chunk */
#define STORE_BAD_NODE (-30600) /* our own code: a node outside the file */
int store_get(MDB_txn *txn, MDB_dbi dbi, MDB_val *k, MDB_val *v);
int store_cget(MDB_cursor *cur, MDB_val *k, MDB_val *v, MDB_cursor_op op);
/* store_cget that steps over bad nodes (in the direction of op, which is
 * MDB_NEXT or MDB_PREV), adding how many to *skipped. */
int store_cstep(MDB_cursor *cur, MDB_val *k, MDB_val *v, MDB_cursor_op op,
                uint64_t *skipped);

/* LMDB result or OS error number to Satchel error. */
int store_err(int rc);
/* The same for a write to s's file: a short write on a nearly full file
 * system is a full disk, not an I/O error. */
int store_err_write(satchel_store *s, int rc);

/* Append text or a decimal number to a NUL-terminated buffer. */
void store_txt(char *buf, size_t cap, const char *s);
void store_txt_num(char *buf, size_t cap, uint64_t v);

/* Check a store directory's files through the port's hooks before LMDB
 * maps them (store_open.c).  Returns 0 (notice may say what was repaired)
 * or an error with err naming the file and what is wrong. */
int store_check_files(const satchel_store_fs *fs, const char *dir,
                      char *err, size_t cap, char *notice, size_t ncap);

/* Walk every branch and leaf page of the commit LMDB will use, through the
 * port's read hook.  0, or SATCHEL_E_DAMAGED with err saying which page
 * and why. */
int store_check_trees(const satchel_store_fs *fs, const satchel_allocator *alloc,
                      const char *dir, char *err, size_t cap);

/* Salvage without LMDB: walk the newest sound commit of dir's data.mdb
 * through the port's read hook, going on past damaged pages and nodes
 * (each reported to problem), and hand every record of the named
 * database want to leaf (key and value valid during the call; a negative
 * return stops the walk and is returned).  When want's database record is
 * gone the walk returns 1; with scan set, every leaf record of every page
 * of the file then goes to leaf instead (stale copies included). */
#define STORE_SALVAGE_VALUE_MAX 65536u
typedef int (*store_leaf_fn)(void *ctx, const uint8_t *k, size_t klen,
                             const uint8_t *v, size_t vlen);
typedef void (*store_problem_fn)(void *ctx, uint64_t page, const char *why);
int store_walk_file(const satchel_store_fs *fs, const satchel_allocator *alloc,
                    const char *dir, const char *want, store_leaf_fn leaf,
                    store_problem_fn problem, void *ctx, int scan);

/* Create dir (through the port) and make sure it holds no store yet. */
int store_prepare_dir(const satchel_store_fs *fs, const char *dir, char *err,
                      size_t cap);

/* The cache budget that leaves room for everything else in the map. */
uint64_t store_default_budget(const satchel_store *s);

/* Read helpers run inside the caller's write transaction when given one,
 * else in a short read-only transaction of their own. */
int store_rtxn(satchel_store *s, satchel_store_txn *t, MDB_txn **txn);
void store_rtxn_end(satchel_store_txn *t, MDB_txn *txn);

/* Values in the meta database. */
void store_meta_key(const char *name, MDB_val *k);
int store_meta_get32(MDB_txn *txn, MDB_dbi dbi, const char *key, uint32_t *v);
int store_meta_put32(MDB_txn *txn, MDB_dbi dbi, const char *key, uint32_t v);
uint64_t store_meta_get64(MDB_txn *txn, MDB_dbi dbi, const char *name);
int store_meta_put64(MDB_txn *txn, MDB_dbi dbi, const char *name, uint64_t x);
int store_meta_add64(MDB_txn *txn, MDB_dbi dbi, const char *name, int64_t d);

/* CRC-32C (Castagnoli) of n bytes. */
uint32_t store_crc32c(const uint8_t *p, size_t n);
/* Append the CRC of key k (klen bytes, may be 0) then b[0, len) at
 * b + len; returns the sealed length. */
size_t store_seal(uint8_t *b, size_t len, const void *k, size_t klen);
int store_msg_encode_v5(const satchel_msg *m, uint8_t *b, size_t cap);
int store_msg_decode_v5(const uint8_t *b, size_t len, uint32_t uid, satchel_msg *m);
uint32_t store_msg_peek(const void *p, size_t len, int which_mflags);
/* 0 when the record's last four bytes are that CRC (*len then excludes
 * them), SATCHEL_E_STORE otherwise. */
int store_unseal(const uint8_t *b, size_t *len, const void *k, size_t klen);

/* Record decoders shared with store_check.c; SATCHEL_E_STORE when damaged. */
/* store_folder_decode reads both layouts: version 4 (keyed by id, the name
 * in the record) and versions 1-3 (keyed by name). */
int store_folder_decode(const MDB_val *k, const MDB_val *v, satchel_folder *f);
/* Folder id in the index of name, verified against the record's full
 * name: 0 with *id set, SATCHEL_E_NOTFOUND, or an error. */
int store_fname_find(satchel_store *s, MDB_txn *txn, const char *name,
                     uint32_t *id);
/* Rebuild the name index from the folder records (version 1 stores carry
 * none, and salvage writes records one by one).  Inside txn. */
int store_fnames_rebuild(satchel_store *s, MDB_txn *txn);
/* Version 1 to 2 in txn: folder records keyed by name become records
 * keyed by id with the name inside, indexed by name. */
int store_migrate_v1(satchel_store *s, MDB_txn *txn);
int store_op_decode(const uint8_t *b, size_t len, uint64_t id, satchel_op *op);
int store_bodymeta_decode(const MDB_val *k, const MDB_val *v, satchel_body_info *bi);

/* Length-prefixed strings inside records. */
int store_put_str(uint8_t *buf, size_t cap, size_t *pos, const char *s,
                  size_t max);
int store_get_str(const uint8_t *buf, size_t len, size_t *pos, char *out,
                  size_t max);

/* Delete stored messages of f with lo <= uid <= hi (sparing those moved
 * here offline when keep_pending), with their cached bodies and pins. */
int store_del_range(satchel_store_txn *t, satchel_folder *f, uint32_t lo,
                    uint32_t hi, uint32_t *deleted, int keep_pending);

static inline void be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static inline uint32_t rd_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           p[3];
}

static inline void be64(uint8_t *p, uint64_t v)
{
    be32(p, (uint32_t)(v >> 32));
    be32(p + 4, (uint32_t)v);
}

static inline uint64_t rd_be64(const uint8_t *p)
{
    return (uint64_t)rd_be32(p) << 32 | rd_be32(p + 4);
}

static inline void le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static inline void le64(uint8_t *p, uint64_t v)
{
    le32(p, (uint32_t)v);
    le32(p + 4, (uint32_t)(v >> 32));
}

static inline uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static inline uint64_t rd64(const uint8_t *p)
{
    return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

static inline void store_msg_key(uint8_t *k, uint32_t fid, uint32_t uid)
{
    be32(k, fid);
    be32(k + 4, uid);
}

#endif

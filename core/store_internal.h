/* Private to the store's modules (core/store_*.c): the handle, record
 * formats and the helpers they share.  Not part of the public API.
 *
 * Layout (named LMDB databases):
 *   meta     "version" -> u32, "next_fid" -> u32, counters, "blob:" names
 *   folders  name -> folder record
 *   msgs     folder id (BE32) | uid (BE32) -> message record
 *   bodies, bodymeta, lru, pins: the body cache (store_cache.c)
 *   queue, qidx: the offline change queue (store_queue.c)
 * Big-endian keys make LMDB's byte order the numeric order. */
#ifndef SATCHEL_STORE_INTERNAL_H
#define SATCHEL_STORE_INTERNAL_H

#include "satchel/store.h"

#include <lmdb.h>

#define STORE_VERSION 1u
#define MSG_REC_VERSION 2u /* 1: before previews; still read */
#define BODYMETA_LEN 26u
#define FOLDER_REC_LEN 36u
#define MSG_REC_FIXED 41u

#define MSG_REC_MAX                                                          \
    (MSG_REC_FIXED + 6 * 2 + 128 + 4 * SATCHEL_OPT_MAX_FIELD +               \
     SATCHEL_OPT_MAX_BODYSTRUCTURE)

/* A store is used from one thread; the scratch buffers below keep large
 * records off the stack, which is small on devices. */
struct satchel_store {
    const satchel_allocator *alloc;
    MDB_env *env;
    MDB_dbi meta, folders, msgs;
    MDB_dbi bodies, bodymeta, lru, pins;
    MDB_dbi queue, qidx;
    uint64_t budget;
    uint64_t map_size;
    const satchel_store_fs *fs;
    int txn_active;
    char notice[256];
    uint8_t rec[MSG_REC_MAX];
    satchel_msg scratch;
    /* core/ops.c's scratch: operations on one store run one at a time. */
    satchel_msg ops_msg;
    satchel_op ops_op, ops_follow;
};

struct satchel_store_txn {
    satchel_store *s;
    MDB_txn *txn;
};

/* LMDB's lock file for its default 126 readers: 125 reader slots of 64
 * bytes after a 192-byte header, as LMDB sizes it on 64-bit hosts. */
#define STORE_LOCK_FILE_SIZE 8192u

/* LMDB result or OS error number to Satchel error. */
int store_err(int rc);

/* Append text or a decimal number to a NUL-terminated buffer. */
void store_txt(char *buf, size_t cap, const char *s);
void store_txt_num(char *buf, size_t cap, uint64_t v);

/* Check a store directory's files through the port's hooks before LMDB
 * maps them (store_open.c).  Returns 0 (notice may say what was repaired)
 * or an error with err naming the file and what is wrong. */
int store_check_files(const satchel_store_fs *fs, const char *dir,
                      char *err, size_t cap, char *notice, size_t ncap);

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

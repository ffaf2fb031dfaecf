/* Store tests: records round-trip, counts stay exact, ranges delete only
 * what is stored, a damaged record is an error (never a crash), and an
 * aborted transaction leaves nothing behind. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "satchel/ops.h"
#include "satchel/store.h"

#include "../../core/store_internal.h"

static satchel_msg m;

static void mk(uint32_t uid, uint32_t flags)
{
    memset(&m, 0, sizeof m);
    m.uid = uid;
    m.flags = flags;
    m.size = uid * 10;
    m.internaldate = 1700000000 + uid;
    m.internaldate_tz = -420;
    m.date = m.internaldate;
    snprintf(m.subject, sizeof m.subject, "Subject %u \xc3\xa9", uid);
    snprintf(m.from, sizeof m.from, "Sender <s%u@example.org>", uid);
    snprintf(m.message_id, sizeof m.message_id, "<%u@example.org>", uid);
    snprintf(m.keywords, sizeof m.keywords, "$Forwarded");
    snprintf(m.bodystructure, sizeof m.bodystructure, "(\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" %u 1)", uid);
}

static int count_cb(void *ctx, const satchel_msg *msg)
{
    uint32_t *last = ctx;
    if (*last && msg->uid >= *last)
        return 1; /* must be descending */
    *last = msg->uid;
    return 0;
}

/* One message's subject damaged on disk: listing skips it and counts it,
 * store check names it, salvage leaves it behind and keeps the rest. */
static void test_damaged_record(const char *base)
{
    char dir[300], path[340], dst[340];
    satchel_store *s;
    satchel_store_txn *t;
    satchel_store_report r;
    satchel_folder f;
    uint32_t i, last = 0;
    FILE *fp;
    static uint8_t data[1 << 20];
    size_t n, k;
    snprintf(dir, sizeof dir, "%s/damaged", base);
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    snprintf(dst, sizeof dst, "%s/salvaged", base);
    if (mkdir(dir, 0700) != 0 || mkdir(dst, 0700) != 0 ||
        satchel_store_open(NULL, dir, 0, &s) != 0)
        return;
    memset(&f, 0, sizeof f);
    strcpy(f.name, "INBOX");
    CHECK(satchel_store_begin(s, &t) == 0 && satchel_store_folder_put(t, &f) == 0,
          "damage: folder");
    for (i = 1; i <= 20; i++) {
        mk(i, 0);
        if (i == 13)
            strcpy(m.subject, "The one that gets damaged");
        satchel_store_msg_put(t, &f, &m, NULL);
    }
    CHECK(satchel_store_folder_put(t, &f) == 0 && satchel_store_commit(t) == 0,
          "damage: commit");
    satchel_store_close(s);
    fp = fopen(path, "r+b");
    n = fp ? fread(data, 1, sizeof data, fp) : 0;
    for (k = 0; k + 8 < n && memcmp(data + k, "gets damaged", 12) != 0; k++)
        ;
    CHECK(k + 8 < n, "damage: record found in the file");
    data[k] ^= 0x20;
    if (fp) {
        fseek(fp, 0, SEEK_SET);
        fwrite(data, 1, n, fp);
        fclose(fp);
    }
    CHECK(satchel_store_open(NULL, dir, 0, &s) == 0, "damage: opens");
    CHECK(satchel_store_msg_list(s, f.id, 0, 100, count_cb, &last) == 0 && last == 1,
          "damage: listing goes on past the bad record");
    CHECK(satchel_store_damaged(s) == 1, "damage: counted %llu",
          (unsigned long long)satchel_store_damaged(s));
    CHECK(satchel_store_check(s, NULL, NULL, &r) == SATCHEL_E_DAMAGED && r.damaged == 1,
          "damage: store check finds it (%llu)", (unsigned long long)r.damaged);
    CHECK(satchel_store_salvage(s, dst, NULL, NULL, &r) == 0 && r.damaged == 1,
          "damage: salvage leaves it behind");
    satchel_store_close(s);
    CHECK(satchel_store_open(NULL, dst, 0, &s) == 0 &&
              satchel_store_folder_get(s, NULL, "INBOX", &f) == 0 && f.count == 19 &&
              satchel_store_check(s, NULL, NULL, &r) == 0,
          "damage: the salvaged store holds the 19 others, counted right (%u)", f.count);
    satchel_store_close(s);
}

/* A map filled to the brim: eviction still works (it may use the reserve),
 * and making room never takes the body being downloaded. */
static void test_full_map(const char *base)
{
    char dir[300];
    satchel_store *s;
    satchel_store_txn *t;
    satchel_folder f;
    satchel_body_info bi;
    static uint8_t chunk[16384];
    uint32_t uid, i, n = 0;
    int rc = 0;
    snprintf(dir, sizeof dir, "%s/fullmap", base);
    if (mkdir(dir, 0700) != 0 || satchel_store_open(NULL, dir, 1u << 20, &s) != 0)
        return;
    memset(chunk, 'x', sizeof chunk);
    memset(&f, 0, sizeof f);
    strcpy(f.name, "INBOX");
    CHECK(satchel_store_begin(s, &t) == 0 && satchel_store_folder_put(t, &f) == 0 &&
              satchel_store_commit(t) == 0, "full map: folder");
    /* Three bodies: 1 (oldest, being downloaded), 2 and 3. */
    for (uid = 1; uid <= 3; uid++) {
        CHECK(satchel_store_begin(s, &t) == 0, "full map: begin body");
        for (i = 0; i < 4; i++)
            satchel_store_body_write(t, f.id, uid, "1", (uint64_t)i * sizeof chunk, chunk,
                                     sizeof chunk, 0);
        CHECK(satchel_store_commit(t) == 0, "full map: body %u", uid);
    }
    /* Headers until the map is full. */
    for (uid = 100; rc == 0 && uid < 100000; uid += 50) {
        if (satchel_store_begin(s, &t) < 0)
            break;
        for (i = 0; i < 50 && rc == 0; i++) {
            mk(uid + i, 0);
            memset(m.bodystructure, 'b', sizeof m.bodystructure - 1);
            m.bodystructure[sizeof m.bodystructure - 1] = '\0';
            rc = satchel_store_msg_put(t, &f, &m, NULL);
        }
        if (rc == 0)
            rc = satchel_store_folder_put(t, &f);
        if (rc == 0)
            rc = satchel_store_commit(t);
        else
            satchel_store_abort(t);
    }
    CHECK(rc == SATCHEL_E_STORE_FULL, "full map: headers fill it (%d)", rc);
    /* Room for the download of body 1: bodies 2 and 3 go, 1 stays. */
    CHECK(satchel_store_begin_reserve(s, &t) == 0 &&
              satchel_store_cache_free(t, 3 * 4 * sizeof chunk, f.id, 1, "1") ==
                  SATCHEL_E_STORE_FULL &&
              satchel_store_commit(t) == 0,
          "full map: freeing evicts all but the body being downloaded, then says full");
    CHECK(satchel_store_body_info(s, NULL, f.id, 1, "1", &bi) == 0 &&
              bi.stored == 4 * sizeof chunk, "full map: the downloading body is intact");
    CHECK(satchel_store_body_info(s, NULL, f.id, 2, "1", &bi) == SATCHEL_E_NOTFOUND &&
              satchel_store_body_info(s, NULL, f.id, 3, "1", &bi) == SATCHEL_E_NOTFOUND,
          "full map: the others were evicted");
    CHECK(satchel_store_begin_reserve(s, &t) == 0 &&
              satchel_store_body_evict(t, 0, 0, NULL, &n) == 0 && n == 1 &&
              satchel_store_commit(t) == 0,
          "full map: cache evict of everything works");
    satchel_store_close(s);
}

/* Headers fill a store holding cached bodies: an offline change still
 * records, by evicting bodies first. */
static void test_change_room(const char *base)
{
    char dir[300];
    satchel_store *s;
    satchel_store_txn *t;
    satchel_folder f;
    satchel_cache_stats cs;
    static uint8_t chunk[16384];
    uint32_t uid, i;
    int rc = 0;
    snprintf(dir, sizeof dir, "%s/room", base);
    if (mkdir(dir, 0700) != 0 || satchel_store_open(NULL, dir, 1u << 20, &s) != 0)
        return;
    memset(chunk, 'y', sizeof chunk);
    memset(&f, 0, sizeof f);
    strcpy(f.name, "INBOX");
    satchel_store_begin(s, &t);
    satchel_store_folder_put(t, &f);
    for (i = 0; i < 12; i++)
        satchel_store_body_write(t, f.id, 1, "1", (uint64_t)i * sizeof chunk, chunk,
                                 sizeof chunk, 0);
    CHECK(satchel_store_commit(t) == 0, "room: a cached body");
    for (uid = 100; rc == 0 && uid < 100000; uid += 20) {
        if (satchel_store_begin(s, &t) < 0)
            break;
        for (i = 0; i < 20 && rc == 0; i++) {
            mk(uid + i, 0);
            memset(m.bodystructure, 'b', sizeof m.bodystructure - 1);
            m.bodystructure[sizeof m.bodystructure - 1] = '\0';
            rc = satchel_store_msg_put(t, &f, &m, NULL);
        }
        if (rc == 0)
            rc = satchel_store_folder_put(t, &f);
        if (rc == 0)
            rc = satchel_store_commit(t);
        else
            satchel_store_abort(t);
    }
    CHECK(rc == SATCHEL_E_STORE_FULL, "room: headers fill the store (%d)", rc);
    /* To the last page: one header at a time. */
    for (rc = 0; rc == 0 && uid < 200000; uid++) {
        if (satchel_store_begin(s, &t) < 0)
            break;
        mk(uid, 0);
        rc = satchel_store_msg_put(t, &f, &m, NULL);
        if (rc == 0)
            rc = satchel_store_folder_put(t, &f);
        if (rc == 0)
            rc = satchel_store_commit(t);
        else
            satchel_store_abort(t);
    }
    rc = 0;
    for (i = 0; i < 40 && rc == 0; i++)
        rc = satchel_ops_flag(s, "INBOX", 100 + i, SATCHEL_FLAG_FLAGGED, 0, "", "");
    satchel_store_cache_stats(s, &cs);
    CHECK(rc == 0 && cs.bytes < 12 * sizeof chunk,
          "room: 40 offline changes recorded in the full store by evicting the body "
          "(%d, %llu cached)", rc, (unsigned long long)cs.bytes);
    satchel_store_close(s);
}

/* Folder names of every length up to SATCHEL_OPT_MAX_FOLDER_NAME: keyed
 * by id, found by name (long names share a 440-byte index prefix and are
 * told apart by hash and full name), listed once each in name order, and
 * renamed or deleted in one transaction.  RFC822.SIZE above 2^32-1. */
#define NNAMES 9
static void test_folder_names(const char *base)
{
    static char names[NNAMES][SATCHEL_OPT_MAX_FOLDER_NAME + 1];
    static const size_t lens[NNAMES] = {1, 439, 440, 441, 1000, 1000, 3000,
                                        SATCHEL_OPT_MAX_FOLDER_NAME, 12};
    static satchel_folder f, g;
    char dir[512], after[SATCHEL_OPT_MAX_FOLDER_NAME + 1];
    satchel_store *s;
    satchel_store_txn *t;
    satchel_store_report rep;
    satchel_msg out;
    uint32_t ids[NNAMES], seen = 0;
    size_t i, j;
    int ok = 1;
    snprintf(dir, sizeof dir, "%s/names", base);
    mkdir(dir, 0700);
    for (i = 0; i < NNAMES; i++) {
        /* Long names share a 600-byte prefix; two differ in the last byte. */
        for (j = 0; j < lens[i]; j++)
            names[i][j] = (char)('a' + (j < 600 ? 0 : (int)((j + i) % 26)));
        names[i][lens[i]] = '\0';
    }
    names[5][999] = 'Z';
    memcpy(names[8], "Donn\xc3\xa9" "es/\xc3\x89t\xc3\xa9", 13);
    names[8][13] = '\0';
    CHECK(satchel_store_open(NULL, dir, 0, &s) == 0, "names: open");
    CHECK(satchel_store_begin(s, &t) == 0, "names: begin");
    for (i = 0; i < NNAMES && ok; i++) {
        memset(&f, 0, sizeof f);
        memcpy(f.name, names[i], strlen(names[i]) + 1);
        ok = satchel_store_folder_put(t, &f) == 0;
        ids[i] = f.id;
        mk(5, 0);
        m.size = 5000000000ull + i; /* RFC822.SIZE is 64-bit (RFC 9051) */
        ok = ok && satchel_store_msg_put(t, &f, &m, NULL) == 0 &&
             satchel_store_folder_put(t, &f) == 0;
    }
    CHECK(ok, "names: every length stored (stopped at %zu)", i);
    memset(&f, 0, sizeof f);
    memcpy(f.name, names[6], strlen(names[6]) + 1);
    CHECK(satchel_store_folder_put(t, &f) == SATCHEL_E_INVAL,
          "names: a second folder with a taken name is refused");
    CHECK(satchel_store_folder_get(s, t, "", &g) == SATCHEL_E_NOTFOUND,
          "names: empty name not found");
    CHECK(satchel_store_commit(t) == 0, "names: commit");
    satchel_store_close(s);
    CHECK(satchel_store_open(NULL, dir, 0, &s) == 0, "names: reopen");
    for (i = 0; i < NNAMES; i++) {
        int found = satchel_store_folder_get(s, NULL, names[i], &g) == 0 &&
                    g.id == ids[i] && strcmp(g.name, names[i]) == 0 && g.count == 1 &&
                    satchel_store_msg_get(s, NULL, g.id, 5, &out) == 0 &&
                    out.size == 5000000000ull + i;
        CHECK(found, "names: %zu-byte name found with its message and 64-bit size", lens[i]);
    }
    {
        char miss[1001];
        memcpy(miss, names[4], 1001);
        miss[999] = 'Y';
        CHECK(satchel_store_folder_get(s, NULL, miss, &g) == SATCHEL_E_NOTFOUND,
              "names: a long name differing in its last byte is not found");
    }
    after[0] = '\0';
    for (i = 0; i < 20 && satchel_store_folder_next(s, NULL, after, &g) == 0; i++) {
        for (j = 0; j < NNAMES; j++)
            if (strcmp(g.name, names[j]) == 0)
                seen |= 1u << j;
        ok = !after[0] || strncmp(after, g.name, 440) <= 0;
        CHECK(ok, "names: listed in name order");
        memcpy(after, g.name, strlen(g.name) + 1);
    }
    CHECK(i == NNAMES && seen == (1u << NNAMES) - 1, "names: each listed once (%zu)", i);
    /* Rename a long folder: same id and messages, old name gone. */
    CHECK(satchel_store_begin(s, &t) == 0, "names: begin rename");
    CHECK(satchel_store_folder_get(s, t, names[6], &f) == 0, "names: get 3000");
    f.name[2999] = '!';
    CHECK(satchel_store_folder_put(t, &f) == 0 && f.id == ids[6], "names: rename");
    CHECK(satchel_store_folder_delete(t, names[4]) == 0, "names: delete 1000");
    CHECK(satchel_store_commit(t) == 0, "names: commit rename");
    CHECK(satchel_store_folder_get(s, NULL, names[6], &g) == SATCHEL_E_NOTFOUND &&
              satchel_store_folder_get(s, NULL, f.name, &g) == 0 && g.id == ids[6] &&
              g.count == 1, "names: renamed folder keeps id and messages");
    CHECK(satchel_store_folder_get(s, NULL, names[4], &g) == SATCHEL_E_NOTFOUND &&
              satchel_store_msg_get(s, NULL, ids[4], 5, &out) == SATCHEL_E_NOTFOUND &&
              satchel_store_folder_get(s, NULL, names[5], &g) == 0,
          "names: deleted with its messages, its near twin kept");
    /* Listing goes on after a folder that is gone. */
    CHECK(satchel_store_folder_next(s, NULL, names[4], &g) == 0 &&
              strcmp(g.name, names[5]) == 0,
          "names: next after a deleted name");
    CHECK(satchel_store_check(s, NULL, NULL, &rep) == 0 && rep.problems == 0,
          "names: store check clean (%llu problems)", (unsigned long long)rep.problems);
    satchel_store_close(s);
}

/* Two long names whose index keys share prefix and hash (a collision,
 * made here by writing a second entry under one folder's key part that
 * leads to another folder): lookups and listing go by the full name in
 * each candidate's record, and store check names the entry. */
static void test_name_chain(const char *base)
{
    static satchel_folder a, c, g;
    static char after[SATCHEL_OPT_MAX_FOLDER_NAME + 1];
    char dir[512];
    uint8_t kb[FNAME_KEY_MAX], vb[4];
    size_t part, i;
    satchel_store *s;
    satchel_store_txn *t;
    satchel_store_report rep;
    MDB_val k, v = {4, vb};
    int found_a = 0, rc = 0;
    snprintf(dir, sizeof dir, "%s/chain", base);
    mkdir(dir, 0700);
    memset(&a, 0, sizeof a);
    memset(&c, 0, sizeof c);
    memset(a.name, 'p', 800);
    memset(c.name, 'p', 800);
    a.name[799] = 'A';
    c.name[799] = 'C';
    CHECK(satchel_store_open(NULL, dir, 0, &s) == 0, "chain: open");
    CHECK(satchel_store_begin(s, &t) == 0 && satchel_store_folder_put(t, &c) == 0 &&
              satchel_store_folder_put(t, &a) == 0 && c.id < a.id,
          "chain: two long folders");
    /* The decoy sorts before a's own entry: its id is c's, a smaller one. */
    k.mv_size = store_fname_key(a.name, strlen(a.name), c.id, kb, &part);
    k.mv_data = kb;
    be32(vb, c.id);
    CHECK(mdb_put(t->txn, s->fnames, &k, &v, 0) == 0 && satchel_store_commit(t) == 0,
          "chain: second entry under a's key part");
    CHECK(satchel_store_folder_get(s, NULL, a.name, &g) == 0 && g.id == a.id,
          "chain: a found past the other candidate");
    CHECK(satchel_store_folder_get(s, NULL, c.name, &g) == 0 && g.id == c.id,
          "chain: c found by its own key");
    after[0] = '\0';
    for (i = 0; i < 10 && (rc = satchel_store_folder_next(s, NULL, after, &g)) == 0; i++) {
        found_a += strcmp(g.name, a.name) == 0;
        memcpy(after, g.name, strlen(g.name) + 1);
    }
    CHECK(rc == SATCHEL_E_NOTFOUND && found_a == 1 && i <= 3,
          "chain: listing ends, a listed once (%zu folders listed)", i);
    CHECK(satchel_store_check(s, NULL, NULL, &rep) == SATCHEL_E_DAMAGED && rep.problems == 2,
          "chain: store check names the entry and the count (%llu problems)",
          (unsigned long long)rep.problems);
    /* The walk in id order lists the same folders, each once, past the
     * decoy; and once a's own entry is lost, a's record is a stray that
     * neither walk lists (a sync would store the folder again when it is
     * next listed, and a stray standing for it would be swept by name). */
    for (i = 0, found_a = 0, g.id = 0;
         i < 10 && (rc = satchel_store_folder_next_id(s, NULL, g.id, &g)) == 0; i++)
        found_a += g.id == a.id;
    CHECK(rc == SATCHEL_E_NOTFOUND && found_a == 1 && i == 2,
          "chain: id walk lists both, a once (%zu folders listed)", i);
    k.mv_size = store_fname_key(a.name, strlen(a.name), a.id, kb, &part);
    k.mv_data = kb;
    CHECK(satchel_store_begin(s, &t) == 0 && mdb_del(t->txn, s->fnames, &k, NULL) == 0 &&
              satchel_store_commit(t) == 0,
          "chain: a's own entry lost");
    CHECK(satchel_store_folder_get(s, NULL, a.name, &g) == SATCHEL_E_NOTFOUND,
          "chain: a no longer found by its name");
    for (i = 0, found_a = 0, g.id = 0;
         i < 10 && (rc = satchel_store_folder_next_id(s, NULL, g.id, &g)) == 0; i++)
        found_a += g.id == a.id;
    CHECK(rc == SATCHEL_E_NOTFOUND && found_a == 0 && i == 1,
          "chain: id walk passes over the stray (%zu folders listed)", i);
    after[0] = '\0';
    for (i = 0, found_a = 0;
         i < 10 && (rc = satchel_store_folder_next(s, NULL, after, &g)) == 0; i++) {
        found_a += g.id == a.id;
        memcpy(after, g.name, strlen(g.name) + 1);
    }
    CHECK(rc == SATCHEL_E_NOTFOUND && found_a == 0 && i == 1,
          "chain: name walk passes over it too (%zu folders listed)", i);
    satchel_store_close(s);
}

int main(void)
{
    char dir[] = "/tmp/satchel-store-XXXXXX";
    satchel_store *s;
    satchel_store_txn *t;
    satchel_folder f, g;
    satchel_msg out;
    uint8_t rec[8192];
    uint32_t n, i, last = 0;
    int rc, is_new, len;

    if (!mkdtemp(dir))
        return 1;
    CHECK(satchel_store_open(NULL, dir, 0, &s) == 0, "open");

    /* Record round trip and damaged records. */
    mk(7, SATCHEL_FLAG_SEEN);
    len = satchel_store_msg_encode(&m, rec, sizeof rec);
    CHECK(len > 0, "encode");
    CHECK(satchel_store_msg_decode(rec, (size_t)len, 7, &out) == 0 &&
              strcmp(out.subject, m.subject) == 0 && out.internaldate_tz == -420 &&
              strcmp(out.bodystructure, m.bodystructure) == 0,
          "decode round trip");
    for (i = 0; i < (uint32_t)len; i++) {
        rc = satchel_store_msg_decode(rec, i, 7, &out);
        if (rc != SATCHEL_E_STORE)
            break;
    }
    CHECK(i == (uint32_t)len, "every truncation is a clean error (stopped at %u)", i);
    /* The CRC-32C catches every single-byte change anywhere in the record. */
    for (i = 0; i < (uint32_t)len; i++) {
        uint8_t x;
        for (x = 1; x; x = (uint8_t)(x << 1)) {
            rec[i] ^= x;
            rc = satchel_store_msg_decode(rec, (size_t)len, 7, &out);
            rec[i] ^= x;
            if (rc != SATCHEL_E_STORE)
                break;
        }
        if (x)
            break;
    }
    CHECK(i == (uint32_t)len, "every bit flip is caught (not at byte %u)", i);
    rec[0] = 99;
    CHECK(satchel_store_msg_decode(rec, (size_t)len, 7, &out) == SATCHEL_E_STORE,
          "bad version");

    /* Folder and messages with counts. */
    memset(&f, 0, sizeof f);
    strcpy(f.name, "INBOX");
    f.role = SATCHEL_ROLE_INBOX;
    CHECK(satchel_store_begin(s, &t) == 0, "begin");
    CHECK(satchel_store_folder_put(t, &f) == 0 && f.id != 0, "folder put");
    for (i = 1; i <= 100; i++) {
        mk(i * 2, i % 3 ? 0 : SATCHEL_FLAG_SEEN);
        rc = satchel_store_msg_put(t, &f, &m, &is_new);
        if (rc || !is_new)
            break;
    }
    CHECK(i == 101, "100 puts");
    mk(4, SATCHEL_FLAG_SEEN);
    CHECK(satchel_store_msg_put(t, &f, &m, &is_new) == 0 && !is_new, "replace");
    CHECK(f.count == 100 && f.unseen == 66, "counts %u %u", f.count, f.unseen);
    CHECK(satchel_store_msg_set_flags(t, &f, 8, SATCHEL_FLAG_SEEN, "", 5) == 1 &&
              f.unseen == 65, "set flags: unseen %u", f.unseen);
    CHECK(satchel_store_msg_set_flags(t, &f, 8, SATCHEL_FLAG_SEEN, "", 5) == 0,
          "set flags idempotent");
    CHECK(satchel_store_msg_set_flags(t, &f, 7, 0, "", 5) == SATCHEL_E_NOTFOUND,
          "set flags missing");
    CHECK(satchel_store_msg_del_range(t, &f, 11, 20, &n) == 0 && n == 5 &&
              f.count == 95, "del range %u", n);
    CHECK(satchel_store_msg_del_range(t, &f, 1000, 4000000000u, &n) == 0 && n == 0,
          "wide empty range");
    CHECK(satchel_store_msg_count_from(s, t, f.id, 190, &n) == 0 && n == 6,
          "count from %u", n);
    CHECK(satchel_store_folder_put(t, &f) == 0, "folder write");
    CHECK(satchel_store_commit(t) == 0, "commit");

    /* Abort leaves nothing. */
    CHECK(satchel_store_begin(s, &t) == 0, "begin 2");
    CHECK(satchel_store_folder_clear(t, &f) == 0 && f.count == 0, "clear");
    satchel_store_abort(t);
    CHECK(satchel_store_folder_get(s, NULL, "INBOX", &g) == 0 && g.count == 95 &&
              g.unseen == f.unseen + 0 * 0 + (g.unseen), "after abort %u", g.count);
    CHECK(satchel_store_msg_get(s, NULL, g.id, 22, &out) == 0 &&
              strcmp(out.from, "Sender <s22@example.org>") == 0, "msg get");

    /* Newest first listing. */
    CHECK(satchel_store_msg_list(s, g.id, 0, 1000, count_cb, &last) == 0 && last == 2,
          "list descending, last %u", last);

    /* Second folder and iteration order; close and reopen (restart). */
    satchel_store_close(s);
    CHECK(satchel_store_open(NULL, dir, 0, &s) == 0, "reopen");
    CHECK(satchel_store_begin(s, &t) == 0, "begin 3");
    memset(&f, 0, sizeof f);
    strcpy(f.name, "Archive");
    CHECK(satchel_store_folder_put(t, &f) == 0, "folder 2");
    CHECK(satchel_store_commit(t) == 0, "commit 3");
    CHECK(satchel_store_folder_next(s, NULL, NULL, &g) == 0 && strcmp(g.name, "Archive") == 0,
          "first folder");
    CHECK(satchel_store_folder_next(s, NULL, "Archive", &g) == 0 &&
              strcmp(g.name, "INBOX") == 0 && g.count == 95,
          "second folder");
    CHECK(satchel_store_folder_next(s, NULL, "INBOX", &g) == SATCHEL_E_NOTFOUND,
          "end of folders");
    CHECK(satchel_store_begin(s, &t) == 0 &&
              satchel_store_folder_delete(t, "INBOX") == 0 &&
              satchel_store_commit(t) == 0,
          "folder delete");
    {
        satchel_store_stats st;
        CHECK(satchel_store_stats_get(s, &st) == 0 && st.folders == 1 &&
                  st.messages == 0, "stats after delete: %llu",
              (unsigned long long)st.messages);
    }
    satchel_store_close(s);
    test_damaged_record(dir);
    test_full_map(dir);
    test_change_room(dir);
    test_folder_names(dir);
    test_name_chain(dir);
    {
        char cmd[256];
        snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
        if (system(cmd) != 0)
            return 1;
    }
    return check_report("test_store");
}

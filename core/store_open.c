/* Opening a store: validate before trusting.
 *
 * LMDB trusts its file.  Given a truncated data.mdb it maps pages past the
 * end of the file and the process dies of SIGBUS at the first read; given a
 * zero-length file or a damaged meta page it quietly starts a new, empty
 * database over what was there.  So before LMDB sees the file, the port's
 * file hooks (satchel_store_fs) let us read both meta pages and the file's
 * size, and anything that does not add up is refused with a message that
 * names the file and what is wrong.  One damaged meta page next to a sound
 * one is the case LMDB's double meta pages exist for: we fall back to the
 * sound one's commit, and say so. */
#include "store_internal.h"

#include <errno.h>
#include <string.h>

/* ---- text ---- */

void store_txt(char *buf, size_t cap, const char *s)
{
    size_t n, k;
    if (!buf || cap == 0)
        return;
    n = strlen(buf);
    k = strlen(s);
    if (n + 1 >= cap)
        return;
    if (k > cap - 1 - n)
        k = cap - 1 - n;
    memcpy(buf + n, s, k);
    buf[n + k] = '\0';
}

void store_txt_num(char *buf, size_t cap, uint64_t v)
{
    char d[21];
    int i = 20;
    d[i] = '\0';
    do {
        d[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    store_txt(buf, cap, d + i);
}

/* ---- LMDB's meta pages ----
 * A page starts with a 16-byte header (pgno, pad, flags, lower, upper), or
 * 12 bytes where size_t is 4 bytes; the meta page's body follows:
 * magic u32, version u32, address, mapsize, two MDB_db records (pad u32,
 * flags u16, depth u16, branch, leaf, overflow, entries, root), last_pg,
 * txnid, every wide field size_t-sized in the byte order of the writer. */

#define W ((size_t)sizeof(size_t))
#define PAGEHDR (W + 8)
#define META_MAGIC 0xBEEFC0DEu
#define META_VERSION 1u
#define P_META 0x08u
#define DB_REC (8 + 5 * W)
#define META_LEN (24 + 14 * W)
#define PGNO_INVALID ((uint64_t)(size_t)-1)

struct meta {
    uint64_t psize, last_pg, txnid;
    uint64_t root[2], depth[2], entries[2], pages[2];
    const char *bad; /* why it is not usable, or NULL */
};

static uint64_t rd_w(const uint8_t *p)
{
    size_t v;
    memcpy(&v, p, sizeof v);
    return (uint64_t)v;
}

static uint32_t rd_u32n(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static uint16_t rd_u16n(const uint8_t *p)
{
    uint16_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static int pow2_psize(uint64_t v)
{
    return v >= 512 && v <= 65536 && (v & (v - 1)) == 0;
}

/* Decode meta page i (page bytes p) of a file of fsize bytes. */
static void meta_parse(const uint8_t *p, unsigned i, uint64_t fsize,
                       struct meta *m)
{
    const uint8_t *b = p + PAGEHDR;
    unsigned d;
    memset(m, 0, sizeof *m);
    if (rd_w(p) != i) {
        m->bad = "wrong page number";
        return;
    }
    if (!(rd_u16n(p + W + 2) & P_META)) {
        m->bad = "not marked as a meta page";
        return;
    }
    if (rd_u32n(b) != META_MAGIC) {
        m->bad = "bad magic number";
        return;
    }
    if (rd_u32n(b + 4) != META_VERSION) {
        m->bad = "unknown LMDB format version";
        return;
    }
    m->psize = rd_u32n(b + 8 + 2 * W);
    if (!pow2_psize(m->psize)) {
        m->bad = "impossible page size";
        return;
    }
    m->last_pg = rd_w(b + 8 + 2 * W + 2 * DB_REC);
    m->txnid = rd_w(b + 8 + 2 * W + 2 * DB_REC + W);
    for (d = 0; d < 2; d++) {
        const uint8_t *db = b + 8 + 2 * W + d * DB_REC;
        m->depth[d] = rd_u16n(db + 6);
        m->pages[d] = rd_w(db + 8) + rd_w(db + 8 + W) + rd_w(db + 8 + 2 * W);
        m->entries[d] = rd_w(db + 8 + 3 * W);
        m->root[d] = rd_w(db + 8 + 4 * W);
    }
    if (m->last_pg < 1 || m->last_pg > (UINT64_MAX / m->psize) - 1) {
        m->bad = "impossible last page";
        return;
    }
    /* Commits alternate between the two meta pages by transaction id. */
    if (m->txnid != 0 && (m->txnid & 1u) != i) {
        m->bad = "transaction id does not belong on this page";
        return;
    }
    for (d = 0; d < 2; d++) {
        if (m->root[d] == PGNO_INVALID) {
            if (m->depth[d] != 0 || m->entries[d] != 0) {
                m->bad = "empty tree with entries";
                return;
            }
        } else if (m->root[d] < 2 || m->root[d] > m->last_pg ||
                   m->depth[d] == 0 || m->depth[d] > 32 ||
                   m->pages[d] > m->last_pg) {
            m->bad = "tree points outside the file";
            return;
        }
    }
    if ((m->last_pg + 1) * m->psize > fsize) {
        m->bad = "truncated";
        return;
    }
}

/* The path of a file in the store directory. */
static int join(char *buf, size_t cap, const char *dir, const char *file)
{
    size_t n = strlen(dir), k = strlen(file);
    if (n + 1 + k + 1 > cap)
        return SATCHEL_E_RANGE;
    memcpy(buf, dir, n);
    buf[n] = '/';
    memcpy(buf + n + 1, file, k + 1);
    return 0;
}

static void say(char *err, size_t cap, const char *file, const char *what)
{
    if (!err || !cap)
        return;
    err[0] = '\0';
    store_txt(err, cap, file);
    store_txt(err, cap, ": ");
    store_txt(err, cap, what);
}

static void read_metas(const satchel_store_fs *fs, const char *path, uint64_t size,
                       uint64_t psize, struct meta *m)
{
    unsigned i;
    for (i = 0; i < 2; i++) {
        uint8_t hdr[PAGEHDR + META_LEN];
        if (size < i * psize + PAGEHDR + META_LEN ||
            fs->read(fs->ctx, path, i * psize, hdr, PAGEHDR + META_LEN) != 0) {
            memset(&m[i], 0, sizeof m[i]);
            m[i].bad = "truncated";
            continue;
        }
        meta_parse(hdr, i, size, &m[i]);
        if (!m[i].bad && m[i].psize != psize)
            m[i].bad = "page size differs from the other meta page";
    }
}

static int meta_pair_ok(const struct meta *m)
{
    uint64_t a = m[0].txnid, b = m[1].txnid;
    return (a == 0 && b == 0) || a == b + 1 || b == a + 1;
}

static int same_metas(const struct meta *a, const struct meta *b)
{
    unsigned i;
    for (i = 0; i < 2; i++)
        if (a[i].bad != b[i].bad || a[i].txnid != b[i].txnid ||
            a[i].last_pg != b[i].last_pg)
            return 0;
    return 1;
}

int store_check_files(const satchel_store_fs *fs, const char *dir,
                      char *err, size_t cap, char *notice, size_t ncap)
{
    char path[SATCHEL_OPT_STORE_PATH_MAX + 16];
    uint64_t size = 0, psize = 0;
    struct meta m[2];
    int is_dir = 0, rc, sound, bad;
    unsigned i;

    if (!fs || !fs->stat)
        return 0;
    rc = fs->stat(fs->ctx, dir, &size, &is_dir);
    if (rc) {
        say(err, cap, dir, rc == ENOENT ? "no such directory"
                                                   : satchel_strerror(store_err(rc)));
        return rc == ENOENT ? SATCHEL_E_NOTFOUND : store_err(rc);
    }
    if (!is_dir) {
        say(err, cap, dir, "not a directory (the store is a directory holding data.mdb)");
        return SATCHEL_E_NOTDIR;
    }
    if (join(path, sizeof path, dir, "data.mdb") < 0) {
        say(err, cap, dir, "path too long");
        return SATCHEL_E_INVAL;
    }
    rc = fs->stat(fs->ctx, path, &size, &is_dir);
    if (rc == ENOENT)
        return 0; /* a new store */
    if (rc) {
        say(err, cap, path, satchel_strerror(store_err(rc)));
        return store_err(rc);
    }
    if (is_dir) {
        say(err, cap, path, "is a directory");
        return SATCHEL_E_DAMAGED;
    }
    if (size == 0) {
        say(err, cap, path, "is empty (0 bytes); refusing to start a new store "
                            "over it: remove the store directory to start over, "
                            "or restore a backup");
        return SATCHEL_E_DAMAGED;
    }
    if (!fs->read)
        return 0;
    /* Page 0 tells the page size; if it is damaged, look for page 1 at
     * every possible size. */
    {
        static const uint32_t sizes[] = {4096, 8192, 16384, 32768, 65536,
                                         512, 1024, 2048};
        uint8_t hdr[PAGEHDR + META_LEN];
        unsigned k;
        if (size >= PAGEHDR + META_LEN &&
            fs->read(fs->ctx, path, 0, hdr, PAGEHDR + META_LEN) == 0) {
            meta_parse(hdr, 0, UINT64_MAX, &m[0]);
            if (!m[0].bad)
                psize = m[0].psize;
        }
        for (k = 0; !psize && k < sizeof sizes / sizeof sizes[0]; k++) {
            if (size >= sizes[k] + PAGEHDR + META_LEN &&
                fs->read(fs->ctx, path, sizes[k], hdr, PAGEHDR + META_LEN) == 0) {
                meta_parse(hdr, 1, UINT64_MAX, &m[1]);
                if (!m[1].bad && m[1].psize == sizes[k])
                    psize = sizes[k];
            }
        }
    }
    if (!psize) {
        say(err, cap, path, size < 2 * 4096u
                                ? "truncated: too short to hold LMDB's two meta pages"
                                : "both meta pages are damaged: not an LMDB "
                                  "file, or not one Satchel can repair");
        return SATCHEL_E_DAMAGED;
    }
    /* Another process may be committing while we read: a meta page read
     * half-written, or a file still growing, must not pass for damage.
     * Read until two readings in a row agree (LMDB writes a meta page with
     * one small write, so a torn reading does not repeat). */
    {
        struct meta prev[2];
        unsigned tries;
        /* (Read only after the first copy; cleared for gcc -Os, which
         * cannot see that and warns.) */
        memset(prev, 0, sizeof prev);
        for (tries = 0; tries < 4; tries++) {
            if (tries && fs->stat(fs->ctx, path, &size, &is_dir) != 0)
                break;
            read_metas(fs, path, size, psize, m);
            if (!m[0].bad && !m[1].bad && meta_pair_ok(m))
                break;
            if (tries && same_metas(prev, m))
                break;
            memcpy(prev, m, sizeof prev);
        }
    }
    if (!m[0].bad && !m[1].bad) {
        uint64_t a = m[0].txnid, b = m[1].txnid;
        if ((a == 0 && b == 0) || a == b + 1 || b == a + 1)
            return 0;
        say(err, cap, path, "the two meta pages disagree about the last "
                            "commit; one of them is damaged");
        return SATCHEL_E_DAMAGED;
    }
    if (m[0].bad && m[1].bad) {
        if (!strcmp(m[0].bad, "truncated") || !strcmp(m[1].bad, "truncated")) {
            uint64_t need = 0;
            for (i = 0; i < 2; i++)
                if (!strcmp(m[i].bad, "truncated") && m[i].last_pg &&
                    (!need || (m[i].last_pg + 1) * psize < need))
                    need = (m[i].last_pg + 1) * psize;
            say(err, cap, path, "truncated: the file has ");
            store_txt_num(err, cap, size);
            store_txt(err, cap, " bytes but its last commit needs ");
            store_txt_num(err, cap, need);
        } else {
            say(err, cap, path, "both meta pages are damaged (page 0: ");
            store_txt(err, cap, m[0].bad);
            store_txt(err, cap, "; page 1: ");
            store_txt(err, cap, m[1].bad);
            store_txt(err, cap, ")");
        }
        return SATCHEL_E_DAMAGED;
    }
    /* One sound meta page: fall back to its commit by writing over the
     * damaged page a copy that names the commit before it, so that LMDB
     * opens the sound one and its next commit replaces the copy. */
    sound = m[0].bad ? 1 : 0;
    bad = 1 - sound;
    if (m[sound].txnid == 0 || m[sound].root[1] == PGNO_INVALID) {
        say(err, cap, path, "meta page ");
        store_txt_num(err, cap, (uint64_t)bad);
        store_txt(err, cap, " is damaged (");
        store_txt(err, cap, m[bad].bad);
        store_txt(err, cap, ") and the other one holds an empty store: "
                            "refusing to open it as empty");
        return SATCHEL_E_DAMAGED;
    }
    if (!fs->write) {
        say(err, cap, path, "meta page ");
        store_txt_num(err, cap, (uint64_t)bad);
        store_txt(err, cap, " is damaged (");
        store_txt(err, cap, m[bad].bad);
        store_txt(err, cap, ")");
        return SATCHEL_E_DAMAGED;
    }
    {
        uint8_t buf[PAGEHDR + META_LEN];
        size_t txoff = PAGEHDR + 8 + 2 * W + 2 * DB_REC + W;
        size_t t = (size_t)(m[sound].txnid - 1);
        size_t pg = (size_t)bad;
        if ((rc = fs->read(fs->ctx, path, (uint64_t)sound * psize, buf, sizeof buf)) ||
            (memcpy(buf, &pg, W), memcpy(buf + txoff, &t, W),
             rc = fs->write(fs->ctx, path, (uint64_t)bad * psize, buf, sizeof buf))) {
            say(err, cap, path, "cannot repair a damaged meta page: ");
            store_txt(err, cap, satchel_strerror(store_err(rc)));
            return store_err(rc);
        }
    }
    say(notice, ncap, path, "meta page ");
    store_txt_num(notice, ncap, (uint64_t)bad);
    store_txt(notice, ncap, " was damaged (");
    store_txt(notice, ncap, m[bad].bad);
    store_txt(notice, ncap, "); fell back to the commit in meta page ");
    store_txt_num(notice, ncap, (uint64_t)sound);
    store_txt(notice, ncap, " (transaction ");
    store_txt_num(notice, ncap, m[sound].txnid);
    store_txt(notice, ncap, "): changes from the last commit may be lost");
    return 0;
}

/* ---- LMDB's trees ----
 * LMDB follows page numbers and node offsets as it finds them, so a
 * flipped byte in a branch or leaf page sends it outside the map.  Before
 * anything reads the store, walk every tree of the commit LMDB will use and
 * check each page against its neighbours' claims: right number, right
 * kind for its level, node offsets and sizes inside the page, children and
 * overflow runs inside the file.  Only branch and leaf pages are read, not
 * the overflow pages holding large values (body chunks). */

#define P_BRANCH 0x01u
#define P_LEAF 0x02u
#define P_OVERFLOW 0x04u
#define F_BIGDATA 0x01u
#define F_SUBDATA 0x02u
#define F_DUPDATA 0x04u
#define NODE_HDR 8u

struct walk {
    const satchel_store_fs *fs;
    const char *path;
    uint8_t *buf; /* one page */
    uint64_t psize, last_pg, pages;
    uint64_t bad_pg;
    const char *bad;
    /* Salvage: go on past damage (reporting it), descend into the named
     * database want only, and hand every record of it to leaf. */
    int tolerant;
    const char *want;
    store_leaf_fn leaf;
    store_problem_fn problem;
    void *ctx;
    uint8_t *vbuf; /* a large value, read from its overflow pages */
    size_t vcap;
    int stop; /* leaf returned an error */
    int found; /* the wanted database was reached */
    int intkeys; /* LMDB's free list: keys are native size_t integers */
    uint64_t leaves; /* records seen in the tree being walked */
};

static int walk_fail(struct walk *w, uint64_t pg, const char *why)
{
    w->bad_pg = pg;
    w->bad = why;
    if (w->tolerant && w->problem)
        w->problem(w->ctx, pg, why);
    return -1;
}

static int walk_read(struct walk *w, uint64_t pg)
{
    if (pg < 2 || pg > w->last_pg)
        return walk_fail(w, pg, "a page number outside the file");
    if (w->fs->read(w->fs->ctx, w->path, pg * w->psize, w->buf, (size_t)w->psize))
        return walk_fail(w, pg, "a page that cannot be read");
    return 0;
}

static int walk_db(struct walk *w, uint64_t root, uint64_t levels, int is_main);

/* Why node i of page p (with free space starting at upper) is unusable,
 * or NULL. */
static const char *node_bad(const struct walk *w, const uint8_t *p, unsigned upper,
                            unsigned i, int leaf, int is_main)
{
    unsigned off = rd_u16n(p + PAGEHDR + 2 * i), ksize, nflags;
    const uint8_t *node;
    if (off < upper || off + NODE_HDR > w->psize)
        return "a node outside its page";
    node = p + off;
    nflags = rd_u16n(node + 4);
    ksize = rd_u16n(node + 6);
    if (off + NODE_HDR + ksize > w->psize)
        return "a key running past its page";
    if (leaf) {
        uint64_t dsize = (uint64_t)rd_u16n(node) | (uint64_t)rd_u16n(node + 2) << 16;
        const uint8_t *data = node + NODE_HDR + ksize;
        if (nflags & ~(unsigned)(F_BIGDATA | F_SUBDATA))
            return "a node with flags Satchel never writes";
        if (nflags & F_BIGDATA) {
            uint64_t ov, npages;
            if (off + NODE_HDR + ksize + W > w->psize)
                return "a node running past its page";
            ov = rd_w(data);
            npages = (PAGEHDR + dsize + w->psize - 1) / w->psize;
            if (ov < 2 || ov > w->last_pg || npages > w->last_pg - ov + 1)
                return "a large value outside the file";
        } else if (off + NODE_HDR + ksize + dsize > w->psize) {
            return "a value running past its page";
        } else if ((nflags & F_SUBDATA) && (!is_main || dsize != DB_REC)) {
            return "a database record in the wrong place";
        } else if (is_main && !(nflags & F_SUBDATA)) {
            /* Satchel keeps nothing but named databases in the main one. */
            return "a main-database record that names no database";
        }
    }
    return NULL;
}

/* A record of the wanted database: its value, read from overflow pages
 * when large, to the visitor. */
static void walk_leaf(struct walk *w, uint64_t pg, const uint8_t *node)
{
    unsigned nflags = rd_u16n(node + 4), ksize = rd_u16n(node + 6);
    uint64_t dsize = (uint64_t)rd_u16n(node) | (uint64_t)rd_u16n(node + 2) << 16;
    const uint8_t *key = node + NODE_HDR, *data = key + ksize;
    int rc;
    if (nflags & F_BIGDATA) {
        if (dsize > w->vcap ||
            w->fs->read(w->fs->ctx, w->path, rd_w(data) * w->psize + PAGEHDR, w->vbuf,
                        (size_t)dsize)) {
            walk_fail(w, pg, "a large value that cannot be read");
            return;
        }
        data = w->vbuf;
    }
    rc = w->leaf(w->ctx, key, ksize, data, (size_t)dsize);
    if (rc < 0)
        w->stop = rc;
}

/* Check page pg at level (1 = root) of a tree of levels levels, then its
 * children.  The one page buffer is reread after each child, so memory
 * stays at one page whatever the depth (at most 32). */
static int walk_page(struct walk *w, uint64_t pg, uint64_t level,
                     uint64_t levels, int is_main)
{
    const uint8_t *p = w->buf;
    unsigned flags, lower, upper, n, i;
    int leaf = level == levels;
    if (walk_read(w, pg) < 0)
        return -1;
    w->pages++;
    if (rd_w(p) != pg)
        return walk_fail(w, pg, "a page whose number does not match its place");
    flags = rd_u16n(p + W + 2);
    lower = rd_u16n(p + W + 4);
    upper = rd_u16n(p + W + 6);
    if ((flags & (P_BRANCH | P_LEAF | P_OVERFLOW | P_META)) != (leaf ? P_LEAF : P_BRANCH))
        return walk_fail(w, pg, "a page of the wrong kind for its level");
    if (lower < PAGEHDR || lower > upper || upper > w->psize || (lower - PAGEHDR) % 2)
        return walk_fail(w, pg, "a page whose free-space bounds are impossible");
    n = (lower - PAGEHDR) / 2;
    if (n == 0 && (level != 1 || levels != 1))
        return walk_fail(w, pg, "an empty page inside a tree");
    /* The page itself first, before following anything it names. */
    for (i = 0; i < n && !w->tolerant; i++) {
        const char *why = node_bad(w, p, upper, i, leaf, is_main);
        if (why)
            return walk_fail(w, pg, why);
    }
    /* Keys strictly ascending (LMDB's default order: bytes, then length;
     * a branch page's first key is not stored).  A node pointer that now
     * names another node, or a changed key, breaks it. */
    for (i = leaf ? 1 : 2; i < n && !w->tolerant; i++) {
        const uint8_t *a = p + rd_u16n(p + PAGEHDR + 2 * (i - 1)),
                      *b = p + rd_u16n(p + PAGEHDR + 2 * i);
        size_t al = rd_u16n(a + 6), bl = rd_u16n(b + 6);
        int d;
        if (w->intkeys) {
            uint64_t x, y;
            if (al != W || bl != W)
                return walk_fail(w, pg, "a free-list key of the wrong size");
            x = rd_w(a + NODE_HDR);
            y = rd_w(b + NODE_HDR);
            d = x < y ? -1 : x > y;
            al = 0;
            bl = 1;
        } else {
            d = memcmp(a + NODE_HDR, b + NODE_HDR, al < bl ? al : bl);
        }
        if (d > 0 || (d == 0 && al >= bl))
            return walk_fail(w, pg, "keys out of order");
    }
    if (leaf)
        w->leaves += n;
    for (i = 0; i < n && !w->stop; i++) {
        const uint8_t *node;
        const char *why;
        if (i > 0 && walk_read(w, pg) < 0)
            return -1;
        if ((why = node_bad(w, p, upper, i, leaf, is_main)) != NULL) {
            walk_fail(w, pg, why); /* tolerant: skip this node */
            continue;
        }
        node = p + rd_u16n(p + PAGEHDR + 2 * i);
        if (!leaf) {
            uint64_t child = (uint64_t)rd_u16n(node) | (uint64_t)rd_u16n(node + 2) << 16 |
                             (W > 4 ? (uint64_t)rd_u16n(node + 4) << 32 : 0);
            if (walk_page(w, child, level + 1, levels, is_main) < 0 && !w->tolerant)
                return -1;
        } else if (rd_u16n(node + 4) & F_SUBDATA) {
            unsigned ksize = rd_u16n(node + 6);
            const uint8_t *data = node + NODE_HDR + ksize;
            uint64_t entries = rd_w(data + 8 + 3 * W), outer = w->leaves;
            if (w->want && (ksize != strlen(w->want) ||
                            memcmp(node + NODE_HDR, w->want, ksize) != 0))
                continue;
            w->leaves = 0;
            w->found = 1;
            if (walk_db(w, rd_w(data + 8 + 4 * W), rd_u16n(data + 6), 0) < 0 &&
                !w->tolerant)
                return -1;
            /* A page that lost nodes (a smaller free-space bound) reads as
             * a valid, shorter tree: the count its database record keeps
             * tells. */
            if (w->leaves != entries && !w->stop &&
                walk_fail(w, pg, "a database holding a different number of records "
                                 "than it counts (records lost in a damaged page)") < 0 &&
                !w->tolerant)
                return -1;
            w->leaves = outer;
        } else if (!is_main && w->leaf) {
            walk_leaf(w, pg, node);
        }
    }
    return 0;
}

static int walk_db(struct walk *w, uint64_t root, uint64_t levels, int is_main)
{
    if (root == PGNO_INVALID)
        return levels == 0 ? 0 : walk_fail(w, 0, "an empty tree with levels");
    if (levels == 0 || levels > 32)
        return walk_fail(w, root, "a tree of impossible depth");
    return walk_page(w, root, 1, levels, is_main);
}

/* Whether the main tree of commit m starts with a page of the right kind. */
static int root_ok(const satchel_store_fs *fs, const char *path, const struct meta *m)
{
    uint8_t hdr[24];
    uint64_t pg = m->root[1];
    unsigned off;
    if (pg == PGNO_INVALID)
        return m->depth[1] == 0;
    if (pg < 2 || pg > m->last_pg ||
        fs->read(fs->ctx, path, pg * m->psize, hdr, PAGEHDR + 2) != 0 ||
        rd_w(hdr) != pg ||
        (rd_u16n(hdr + W + 2) & (P_BRANCH | P_LEAF | P_OVERFLOW | P_META)) !=
            (m->depth[1] == 1 ? P_LEAF : P_BRANCH))
        return 0;
    if (m->depth[1] != 1)
        return 1;
    /* A leaf of the main database holds named databases only. */
    off = rd_u16n(hdr + PAGEHDR);
    if (off + NODE_HDR > m->psize ||
        fs->read(fs->ctx, path, pg * m->psize + off, hdr, NODE_HDR) != 0)
        return 0;
    return (rd_u16n(hdr + 4) & F_SUBDATA) != 0;
}

int store_walk_file(const satchel_store_fs *fs, const satchel_allocator *alloc,
                    const char *dir, const char *want, store_leaf_fn leaf,
                    store_problem_fn problem, void *ctx, int scan)
{
    char path[SATCHEL_OPT_STORE_PATH_MAX + 16];
    uint8_t hdr[PAGEHDR + META_LEN];
    static const uint32_t sizes[] = {4096, 8192, 16384, 32768, 65536, 512, 1024, 2048};
    struct meta m[2];
    struct walk w;
    unsigned i, use;
    int rc;
    if (!fs || !fs->read || join(path, sizeof path, dir, "data.mdb") < 0)
        return SATCHEL_E_INVAL;
    /* Both meta pages, whatever the page size; the newest sound one wins.
     * Pages past the end of a truncated file are simply unreadable. */
    memset(m, 0, sizeof m);
    m[0].bad = m[1].bad = "unreadable";
    if (fs->read(fs->ctx, path, 0, hdr, sizeof hdr) == 0)
        meta_parse(hdr, 0, UINT64_MAX, &m[0]);
    for (i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        if (!m[0].bad && sizes[i] != m[0].psize)
            continue;
        if (fs->read(fs->ctx, path, sizes[i], hdr, sizeof hdr) == 0) {
            meta_parse(hdr, 1, UINT64_MAX, &m[1]);
            if (!m[1].bad && m[1].psize == sizes[i])
                break;
        }
    }
    if (m[0].bad && m[1].bad)
        return SATCHEL_E_DAMAGED;
    use = m[0].bad ? 1 : m[1].bad ? 0 : m[1].txnid > m[0].txnid ? 1 : 0;
    if (!m[0].bad && !m[1].bad && !root_ok(fs, path, &m[use]) && root_ok(fs, path, &m[1 - use])) {
        /* The newest commit's main tree does not start with a page of the
         * right kind: its meta page is damaged in a way its fields hide. */
        m[use].bad = "a main tree root that is not one";
        use = 1 - use;
    }
    if (problem && (m[0].bad || m[1].bad))
        problem(ctx, 1u - use, "a damaged meta page: salvaging the commit in the other one, "
                               "which may be one commit older than the last");
    else if (problem && !(m[0].txnid == m[1].txnid + 1 || m[1].txnid == m[0].txnid + 1))
        problem(ctx, use, "the meta pages disagree about the last commit: salvaging the "
                          "one with the higher transaction id, which may be the older one");
    memset(&w, 0, sizeof w);
    w.fs = fs;
    w.path = path;
    w.psize = m[use].psize;
    w.last_pg = m[use].last_pg;
    w.tolerant = 1;
    w.want = want;
    w.leaf = leaf;
    w.problem = problem;
    w.ctx = ctx;
    w.vcap = STORE_SALVAGE_VALUE_MAX;
    w.buf = alloc->alloc(alloc->ctx, (size_t)w.psize);
    w.vbuf = alloc->alloc(alloc->ctx, w.vcap);
    if (!w.buf || !w.vbuf) {
        rc = SATCHEL_E_NOMEM;
    } else {
        walk_db(&w, m[use].root[1], m[use].depth[1], 1);
        rc = w.stop;
        if (rc == 0 && want && !w.found && !scan) {
            rc = 1;
        } else if (rc == 0 && want && !w.found) {
            /* Its database record is gone: look at every leaf page of the
             * file instead.  The visitor must tell records from stale
             * copies (the CRC covers the key). */
            uint64_t pg;
            w.want = NULL;
            for (pg = 2; pg <= w.last_pg && !w.stop; pg++) {
                unsigned n, j, upper;
                if (fs->read(fs->ctx, path, pg * w.psize, w.buf, (size_t)w.psize) ||
                    rd_w(w.buf) != pg || (rd_u16n(w.buf + W + 2) & 0x7fu) != P_LEAF)
                    continue;
                upper = rd_u16n(w.buf + W + 6);
                n = (rd_u16n(w.buf + W + 4) - PAGEHDR) / 2;
                if (rd_u16n(w.buf + W + 4) < PAGEHDR || upper > w.psize || n > w.psize / 2)
                    continue;
                for (j = 0; j < n && !w.stop; j++) {
                    const uint8_t *node;
                    if (node_bad(&w, w.buf, upper, j, 1, 0))
                        continue;
                    node = w.buf + rd_u16n(w.buf + PAGEHDR + 2 * j);
                    if (!(rd_u16n(node + 4) & (F_BIGDATA | F_SUBDATA)))
                        walk_leaf(&w, pg, node);
                }
            }
            rc = w.stop ? w.stop : 1;
        }
    }
    if (w.buf)
        alloc->free(alloc->ctx, w.buf, (size_t)w.psize);
    if (w.vbuf)
        alloc->free(alloc->ctx, w.vbuf, w.vcap);
    return rc;
}

int store_check_trees(const satchel_store_fs *fs, const satchel_allocator *alloc,
                      const char *dir, char *err, size_t cap)
{
    char path[SATCHEL_OPT_STORE_PATH_MAX + 16];
    uint8_t hdr[PAGEHDR + META_LEN];
    struct meta m[2];
    struct walk w;
    uint64_t size = 0;
    unsigned use, tries;
    int is_dir = 0, rc;
    if (!fs || !fs->read || !fs->stat || join(path, sizeof path, dir, "data.mdb") < 0 ||
        fs->stat(fs->ctx, path, &size, &is_dir) != 0)
        return 0;
    if (fs->read(fs->ctx, path, 0, hdr, PAGEHDR + META_LEN) != 0)
        return 0;
    meta_parse(hdr, 0, size, &m[0]);
    if (m[0].bad)
        return 0; /* a fresh file LMDB just wrote, or checked before */
    if (fs->read(fs->ctx, path, m[0].psize, hdr, PAGEHDR + META_LEN) != 0)
        return 0;
    meta_parse(hdr, 1, size, &m[1]);
    if (m[1].bad)
        return 0;
    memset(&w, 0, sizeof w);
    w.fs = fs;
    w.path = path;
    w.psize = m[0].psize;
    w.buf = alloc->alloc(alloc->ctx, (size_t)w.psize);
    if (!w.buf)
        return SATCHEL_E_NOMEM;
    /* Another process committing meanwhile may reuse pages of the commit
     * being walked (we are no LMDB reader): a walk that fails while a newer
     * commit appeared is done again on that one. */
    for (tries = 0;; tries++) {
        uint64_t txnid;
        use = m[1].txnid > m[0].txnid ? 1 : 0;
        txnid = m[use].txnid;
        w.last_pg = m[use].last_pg;
        w.intkeys = 1;
        w.leaves = 0;
        rc = walk_db(&w, m[use].root[0], m[use].depth[0], 0);
        if (rc == 0 && w.leaves != m[use].entries[0])
            rc = walk_fail(&w, m[use].root[0], "a free list holding a different "
                                               "number of records than it counts");
        w.intkeys = 0;
        w.leaves = 0;
        if (rc == 0 && (rc = walk_db(&w, m[use].root[1], m[use].depth[1], 1)) == 0 &&
            w.leaves != m[use].entries[1])
            rc = walk_fail(&w, m[use].root[1], "a main database holding a different "
                                               "number of records than it counts");
        rc = rc == 0 ? 0 : SATCHEL_E_DAMAGED;
        if (rc == 0 || tries == 3 || fs->stat(fs->ctx, path, &size, &is_dir) != 0)
            break;
        read_metas(fs, path, size, w.psize, m);
        if (m[0].bad || m[1].bad || !meta_pair_ok(m) ||
            (m[0].txnid <= txnid && m[1].txnid <= txnid))
            break;
    }
    alloc->free(alloc->ctx, w.buf, (size_t)w.psize);
    if (rc < 0 && err && cap) {
        err[0] = '\0';
        store_txt(err, cap, "data.mdb: page ");
        store_txt_num(err, cap, w.bad_pg);
        store_txt(err, cap, " is damaged (");
        store_txt(err, cap, w.bad);
        store_txt(err, cap, "); LMDB cannot read the store safely. The file is "
                            "left as it is: salvage what is readable into a new "
                            "store, or restore a backup");
    }
    return rc;
}

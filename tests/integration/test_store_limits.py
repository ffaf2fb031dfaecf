"""The store at its limits: a cache that would fill it, and a full disk.

Cache fills the store: a store map of a few MB (--map-size), bodies larger
than everything else.  After every body fetched, `sync` works and
`cache evict` works: the default budget (3/8 of the map) keeps room for
headers, the queue and LMDB's free pages, and evicting may use a reserve.

Session cache off: --no-session-cache keeps no TLS session (with its
master secret) in the store and deletes one saved before; the next
connection cannot resume.

RFC822.SIZE is 64-bit (RFC 9051): a scripted server (no real one stores
4 GB) announces sizes of 2^32-1, 2^32, 5,000,000,000 and 2^63-1; each is
shown exactly by `list` and `show`, online and again offline after a
restart, and a size past 2^63-1 is not taken as another number.

Disk full (root only: the test mounts a small tmpfs; elsewhere it says it
skipped): during a sync, during a body download, and while recording
offline changes.  Each must fail with "disk full", lose nothing that was
committed, leave the store usable in the same process (no leaked
transaction), and work again once space is freed.
"""
import base64
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import satchel_test as st  # noqa: E402
from fake_imap import FakeImap, make_messages  # noqa: E402

check = st.Checks()


def big_message(i, nbytes):
    payload = bytes((j * 7 + i) & 0xFF for j in range(nbytes))
    b64 = base64.encodebytes(payload).decode().replace("\n", "\r\n")
    return ("From: Big <big%d@example.org>\r\nSubject: big %d\r\n"
            "Message-ID: <big-%d@example.org>\r\nMIME-Version: 1.0\r\n"
            "Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n"
            "--b\r\nContent-Type: text/plain\r\n\r\nhello %d\r\n"
            "--b\r\nContent-Type: application/octet-stream\r\n"
            "Content-Transfer-Encoding: base64\r\n\r\n%s--b--\r\n" % (i, i, i, i, b64)).encode()


def said_disk_full(r):
    text = (r.stdout + r.stderr).lower()
    return "disk full" in text and "malformed" not in text


def cache_fills_store(dc, work):
    db = os.path.join(work, "small-map")
    extra = ["--map-size", str(3 << 20)]
    r = st.run_sim(dc, db, ["sync"], extra=extra, check=False)
    check(r.returncode == 0, "small map: first sync: %s" % r.describe()[-600:])
    uids = sorted(dc.server_state("alice", "Big"))
    evicted_ok = sync_ok = 0
    for n, uid in enumerate(uids):
        r = st.run_sim(dc, db, ["body Big %d 2 --raw" % uid], extra=extra, check=False)
        check(r.returncode == 0, "small map: body %d: %s" % (uid, r.describe()[-600:]))
        r = st.run_sim(dc, db, ["sync", "cache"], extra=extra, check=False)
        sync_ok += check(r.returncode == 0, "small map: sync after body %d: %s" % (
            uid, r.describe()[-600:]))
        if r.returncode == 0:
            c = r.json[-1]
            check(c["bytes"] <= c["budget"] <= 3 * (3 << 20) // 8,
                  "small map: cache %d within budget %d" % (c["bytes"], c["budget"]))
        if n % 2:
            r = st.run_sim_offline(db, ["cache evict"], extra=extra, check=False)
            evicted_ok += check(r.returncode == 0, "small map: cache evict after body %d: %s" % (
                uid, r.describe()[-600:]))
    print("cache fills the store: %d bodies of ~1 MB into a 3 MB map; sync ok %d times, "
          "cache evict ok %d times" % (len(uids), sync_ok, evicted_ok))
    # Offline changes still have room at the end.
    inbox = sorted(dc.server_state("alice", "INBOX"))
    r = st.run_sim_offline(db, ["flag INBOX %d +\\Flagged" % inbox[0], "queue"], extra=extra,
                           check=False)
    check(r.returncode == 0, "small map: offline change recorded: %s" % r.describe()[-400:])


def folder_counts(db):
    r = st.run_sim_offline(db, ["folders"], check=False)
    if r.returncode != 0 or not r.json:
        return None
    return {f["name"]: f["messages"] for f in r.json[0]["folders"]}


def session_cache_off(dc, work):
    db = os.path.join(work, "sessions")
    st.run_sim(dc, db, ["sync"])
    r = st.run_sim(dc, db, ["sync", "status"])
    check(r.json[-1]["tls"].get("resumed") is True, "a second connection resumes the saved TLS "
          "session: %s" % r.json[-1])
    r = st.run_sim(dc, db, ["sync", "status"], extra=["--no-session-cache"])
    check(r.json[-1]["tls"].get("resumed") is False, "--no-session-cache does not resume: %s" %
          r.json[-1])
    r = st.run_sim(dc, db, ["sync", "status"])
    check(r.json[-1]["tls"].get("resumed") is False, "the session saved before was deleted: %s" %
          r.json[-1])
    print("session cache: resumed with it, not with --no-session-cache, and nothing left")


def disk_full(dc, work):
    if os.geteuid() != 0:
        print("disk full: SKIPPED (needs root to mount a small tmpfs)")
        return
    fs = st.Tmpfs(os.path.join(work, "tmpfs"), 3 << 20)
    try:
        db = os.path.join(fs.path, "db")
        # 1. During a sync: too little room for the whole mail set.
        fs.fill(leave=160 * 1024)
        r = st.run_sim(dc, db, ["sync"], check=False)
        check(r.returncode != 0 and said_disk_full(r),
              "sync on a full disk says disk full: %s" % r.describe()[-800:])
        r = st.run_sim_offline(db, ["store check"], check=False)
        check(r.returncode == 0, "after the failed sync the store checks clean: %s" %
              r.describe()[-800:])
        fs.free()
        r = st.run_sim(dc, db, ["sync"], check=False)
        check(r.returncode == 0, "sync works once space is freed: %s" % r.describe()[-600:])
        want = {n: len(dc.server_state("alice", n)) for n in ("INBOX", "Archive", "Big")}
        got = folder_counts(db) or {}
        check(all(got.get(n) == c for n, c in want.items()),
              "after the resumed sync the store matches the server: %s vs %s" % (got, want))

        # 2. During a body download: room for a part of the body only.
        uid = sorted(dc.server_state("alice", "Big"))[0]
        inbox = sorted(dc.server_state("alice", "INBOX"))
        fs.fill(leave=300 * 1024)
        r = st.run_sim(dc, db, ["body Big %d 2 --raw" % uid, "flag INBOX %d +$AfterFull" % inbox[1],
                                "queue"], check=False)
        check(r.returncode != 0 and said_disk_full(r),
              "body download on a full disk says disk full: %s" % r.describe()[-800:])
        check(len(r.json) >= 3 and r.json[1].get("ok", True) is not False,
              "the store is not left busy: a change in the same session after the failure "
              "works (%s)" % r.json[1:2])
        fs.free()
        r = st.run_sim(dc, db, ["body Big %d 2 --raw" % uid, "cache"], check=False)
        check(r.returncode == 0, "body download works once space is freed: %s" %
              r.describe()[-600:])

        # 3. Recording offline changes until the disk is full: three with
        # room, then on a full disk.
        recorded = failed = 0
        for u in inbox[2:5]:
            r = st.run_sim_offline(db, ["flag INBOX %d +$Full%d" % (u, u)], check=False)
            recorded += r.returncode == 0
        check(recorded == 3, "three offline changes recorded with room")
        fs.fill(leave=0)
        for u in inbox[5:60]:
            r = st.run_sim_offline(db, ["flag INBOX %d +$Full%d" % (u, u)], check=False)
            if r.returncode == 0:
                recorded += 1
            else:
                failed += 1
                check(said_disk_full(r), "offline change on a full disk says disk full: %s" %
                      r.describe()[-400:])
                break
        r = st.run_sim_offline(db, ["queue"], check=False)
        q = r.json[0] if r.returncode == 0 and r.json else {"entries": []}
        kws = {e.get("flags") for e in q["entries"]}
        check("+$AfterFull" in kws, "the change made after the failed body download is kept")
        lost = [u for u in inbox[2:2 + recorded] if "+$Full%d" % u not in kws]
        check(not lost, "offline changes acknowledged before the disk filled are all queued "
              "(%d recorded, lost %s)" % (recorded, lost[:5]))
        check(failed == 1, "recording stopped with a disk-full error (%d recorded first)" % recorded)
        fs.free()
        r = st.run_sim_offline(db, ["flag INBOX %d +$Freed" % inbox[70]], check=False)
        check(r.returncode == 0, "recording works once space is freed: %s" % r.describe()[-400:])
        print("disk full: sync, body download and %d offline changes before the disk "
              "filled; each recovered" % recorded)
    finally:
        fs.close()


def size64(work):
    sizes = {1: 2**32 - 1, 2: 2**32, 3: 5_000_000_000, 4: 2**63 - 1, 5: 2**64 + 5}
    msgs = make_messages(5)
    for m in msgs:
        m["size"] = sizes[m["uid"]]
    with FakeImap(mail={"INBOX": msgs}) as srv:
        db = os.path.join(work, "size64")
        r = srv.run_sim(db, ["sync", "list INBOX", "show INBOX 3"])
        got = {m["uid"]: m["size"] for m in r.json[1]["messages"]} if len(r.json) > 1 else {}
        want = {u: v for u, v in sizes.items() if v < 2**63}
        check(r.returncode in (0, 1) and {u: got.get(u) for u in want} == want,
              "sizes above 2^32-1 kept exactly: %s" % got)
        check(got.get(5) != 5 and got.get(5) != sizes[5] % 2**32,
              "a size past 2^63-1 is not wrapped: %s" % got.get(5))
        check(len(r.json) > 2 and r.json[2].get("size") == 5_000_000_000,
              "show: %s" % (r.json[2] if len(r.json) > 2 else r.describe()[:300]))
    r = st.run_sim_offline(db, ["list INBOX"], check=False)
    got = {m["uid"]: m["size"] for m in r.json[0]["messages"]} if r.json else {}
    check({u: got.get(u) for u in want} == want, "offline after a restart: %s" % got)
    r = st.run_sim_offline(db, ["show INBOX 4"], json=False, check=False)
    check("9223372036854775807" in r.stdout, "text: %r" % r.stdout[:300])


def main():
    work = tempfile.mkdtemp(prefix="satchel-limits-")
    try:
        size64(work)
        with st.Dovecot(profile="full") as dc:
            dc.load_mailset()
            dc.create_folder("alice", "Big")
            dc.add_messages("alice", "Big", [big_message(i, 700_000) for i in range(5)])
            cache_fills_store(dc, work)
            session_cache_off(dc, work)
            disk_full(dc, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return check.report()


if __name__ == "__main__":
    sys.exit(main())

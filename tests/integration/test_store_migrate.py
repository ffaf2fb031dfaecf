"""A store of the previous format opens, migrated, with nothing lost.

tests/data/store-v1.tar.xz holds a store written by satchel-sim at store
version 1 (folders keyed by name; made by tests/data/make_store_v1.py from
commit b7d95b9): folders with an ASCII, a non-ASCII and a 200-byte name,
synced messages, two cached bodies (one pinned) and five offline changes
in the queue (two flag changes, a move, a delete to Trash, a new folder),
with what that satchel-sim printed for each reading command.

  * Opened by this satchel-sim, offline, the store is migrated at open
    (one transaction) and every reading command prints what the old one
    did: folders and their counts and UIDVALIDITY, every message of every
    folder, the queue, the cache and its pin, the cached bodies (served
    offline), a message's structure.  `store check` finds nothing wrong,
    and it opens again (already migrated) the same.
  * --salvage (page by page, never mapped by LMDB) reads the version 1
    file into a new store with every folder, message and queued change.
  * A copy whose file is read-only cannot be migrated: it is refused with
    a message saying so, and the file is left byte for byte as it was.
  * Against a Dovecot holding the same mail (UIDVALIDITY set to the
    store's with doveadm), the next sync replays the five queued changes,
    and imaplib sees them applied.
"""
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import satchel_test as st  # noqa: E402

FIXTURE = os.path.join(os.path.dirname(__file__), "..", "data", "store-v1.tar.xz")

check = st.Checks()


def unpack(work, name):
    d = os.path.join(work, name)
    with tarfile.open(FIXTURE) as tar:
        tar.extractall(d)
    return os.path.join(d, "store-v1")


def test_offline(work, manifest):
    db = unpack(work, "offline")
    os.remove(os.path.join(db, "manifest.json"))
    r = st.run_sim_offline(db, ["status"], check=False)
    check(r.returncode == 0, "the version 1 store opens: %s" % r.describe()[:400])
    check("migrated from version 1" in r.stderr, "open says it migrated: %r" % r.stderr[:300])
    # In the order they were run on the old store: bodies read offline
    # count cache hits.
    cmds = sorted(manifest["outputs"], key=lambda c: c.startswith("body "))
    for rnd in ("migrated", "reopened"):
        same = 0
        for cmd in cmds:
            want = manifest["outputs"][cmd]
            got = st.run_sim_offline(db, [cmd], check=False).json
            if cmd == "cache" and got:
                # Offline reads count hits: the fixture's file was taken
                # after the old satchel-sim's, these add more.
                got[0]["hits"] = want["hits"]
            ok = bool(got) and got[0] == want
            check(ok, "[%s] %s prints what version 1 did:\n  want %s\n  got  %s" % (
                rnd, cmd[:60], json.dumps(want)[:300], json.dumps(got)[:300]))
            same += ok
        print("[%s] %d of %d reading commands print the same" % (
            rnd, same, len(manifest["outputs"])))
        r = st.run_sim_offline(db, ["store check"], check=False)
        check(r.returncode == 0, "[%s] store check clean: %s" % (rnd, r.describe()[:400]))
    return db


def test_salvage(work, manifest):
    """--salvage reads a version 1 file page by page (folder records keyed
    by name) into a new store: every folder, message and queued change
    comes across; cached bodies are left behind, as from any store."""
    db = unpack(work, "salvage")
    dest = os.path.join(work, "salvaged")
    p = subprocess.run([st.satchel_sim_path(), "--db", db, "--salvage", dest],
                       capture_output=True, text=True, timeout=120)
    check(p.returncode == 0, "salvage of a version 1 file: %s" % (p.stdout + p.stderr)[-300:])
    out = manifest["outputs"]
    for cmd in ["folders", "queue"] + [c for c in out if c.startswith("list ")]:
        got = st.run_sim_offline(dest, [cmd], check=False).json
        check(bool(got) and got[0] == out[cmd], "salvaged: %s as before:\n  want %s\n  got  %s"
              % (cmd[:60], json.dumps(out[cmd])[:300], json.dumps(got)[:300]))
    r = st.run_sim_offline(dest, ["store check"], check=False)
    check(r.returncode == 0, "salvaged store checks clean: %s" % r.describe()[:300])


def test_readonly(work):
    if os.geteuid() == 0:
        print("read-only case skipped: root writes through file modes")
        return
    db = unpack(work, "readonly")
    data = os.path.join(db, "data.mdb")
    with open(data, "rb") as f:
        before = f.read()
    os.chmod(data, 0o400)
    r = st.run_sim_offline(db, ["folders"], check=False)
    check(r.returncode != 0, "a read-only version 1 store is not opened unmigrated")
    with open(data, "rb") as f:
        check(f.read() == before, "the refused store's file is unchanged")


def test_replay(work, manifest):
    db = unpack(work, "replay")
    with st.Dovecot(profile="full") as dc:
        for f, items in manifest["messages"].items():
            if f != "INBOX":
                dc.create_folder("alice", f)
            for m in items:
                dc.append("alice", f, m, date_time=1704103200)
        for f, uv in manifest["uidvalidity"].items():
            if f == "Neu-Ordner" or dc.server_state("alice", f).uidvalidity == uv:
                continue
            subprocess.run(["doveadm", "-c", dc.conf_path, "mailbox", "update", "-u",
                            "alice", "--uid-validity", str(uv), f],
                           check=True, capture_output=True)
        r = st.run_sim(dc, db, ["sync", "queue"], check=False)
        check(r.returncode == 0 and r.json[0].get("replayed") == 5 and
              r.json[1]["pending"] == 0 and r.json[1]["failed"] == 0,
              "the migrated queue replays: %s" % r.describe()[:500])
        inbox = dc.server_state("alice", "INBOX")
        by_mid = {m["message_id"]: (u, m) for u, m in inbox.items()}
        m3 = by_mid.get("<f0-3@migrate.test>", (0, {"flags": []}))[1]
        m6 = by_mid.get("<f0-6@migrate.test>", (0, {"flags": []}))[1]
        check("\\Flagged" in m3["flags"], "flag +\\Flagged replayed: %s" % m3["flags"])
        check("$Forwarded" in m6["flags"], "keyword replayed: %s" % m6["flags"])
        donnees = {m["message_id"] for m in dc.server_state("alice", "Donn\u00e9es").values()}
        trash = {m["message_id"] for m in dc.server_state("alice", "Trash").values()}
        live = {mid for mid, (u, m) in by_mid.items() if "\\Deleted" not in m["flags"]}
        check("<f0-4@migrate.test>" in donnees and "<f0-4@migrate.test>" not in live,
              "the move replayed: %s" % sorted(donnees))
        check("<f0-5@migrate.test>" in trash and "<f0-5@migrate.test>" not in live,
              "the delete to Trash replayed: %s" % sorted(trash))
        names = dc._with_client("alice", lambda c: c.list('""', '"Neu-Ordner"')[1])
        check(any(x and b"Neu-Ordner" in x for x in names), "the new folder was created")
        r = st.run_sim_offline(db, ["store check", "cache"], check=False)
        check(r.returncode == 0 and r.json[1]["pinned"] == 1,
              "after the sync: store check clean, the pin kept: %s" % r.describe()[:300])


def main():
    with tarfile.open(FIXTURE) as tar:
        manifest = json.load(tar.extractfile("store-v1/manifest.json"))
    work = tempfile.mkdtemp(prefix="satchel-test-migrate-")
    try:
        test_offline(work, manifest)
        test_salvage(work, manifest)
        test_readonly(work)
        test_replay(work, manifest)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return check.report()


if __name__ == "__main__":
    sys.exit(main())

"""Make tests/data/store-v1.tar.xz: a store written by the store format
before folders were keyed by id (store version 1, folders keyed by name,
RFC822.SIZE in 32 bits), for test_store_migrate.

It needs a satchel-sim built from a commit with that format (b7d95b9 or
earlier):

    git worktree add /tmp/v1 b7d95b9 && SATCHEL_BUILD_DIR=/tmp/v1/build /tmp/v1/scripts/build
    SATCHEL_SIM=/tmp/v1/build/boards/host/satchel-sim python3 tests/data/make_store_v1.py

Against a private Dovecot: three folders besides the special-use ones (one
with a non-ASCII name, one with a 200-byte name, the old limit), a first
sync, two cached bodies (one pinned), then offline a flag change, a
keyword, a move, a delete to Trash and a new folder.  The archive holds
the store's data.mdb and manifest.json: the messages (to load a server
again), each folder's UIDVALIDITY, and what the old satchel-sim printed
for every reading command, which the new one must print the same after
migrating.
"""
import io
import json
import os
import sys
import tarfile
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import satchel_test as st  # noqa: E402

LONG200 = "Archiv-" + "lang " * 36 + "ende " + "Ende-202"   # 200 bytes

MSG = ("From: Ann <ann@example.org>\r\nTo: bob@example.org\r\n"
       "Subject: %s\r\nMessage-ID: <%s@migrate.test>\r\n"
       "Date: Mon, 01 Jan 2024 10:%02d:00 +0000\r\n"
       "Content-Type: text/plain; charset=utf-8\r\n\r\n"
       "Body of %s: caf\u00e9 %s\r\n")

FOLDERS = {
    "INBOX": 8,
    "Donn\u00e9es": 3,
    LONG200: 2,
}

OFFLINE = ["flag INBOX 3 +\\Flagged", "flag INBOX 6 +$Forwarded",
           "move INBOX 4 \"Donn\u00e9es\"", "delete INBOX 5", "mkdir Neu-Ordner"]


def messages():
    out = {}
    for f, n in FOLDERS.items():
        tag = "f%d" % list(FOLDERS).index(f)
        out[f] = [MSG % ("%s message %d" % (tag, i), "%s-%d" % (tag, i), i, tag, "x" * (i * 37))
                  for i in range(1, n + 1)]
    return out


def reading_commands(names):
    q = st.imap_quote
    cmds = ["folders", "queue", "cache"]
    for n in names:
        cmds.append("list %s 0 100" % q(n))
    cmds += ["show INBOX 1", "parts INBOX 1", "body INBOX 1", "body INBOX 2"]
    return cmds


def main():
    assert len(LONG200.encode()) == 200, len(LONG200.encode())
    if not os.environ.get("SATCHEL_SIM"):
        sys.exit("set SATCHEL_SIM to a satchel-sim of store version 1")
    out_path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "store-v1.tar.xz")
    msgs = messages()
    with tempfile.TemporaryDirectory(prefix="satchel-make-v1-") as work, \
            st.Dovecot(profile="full") as dc:
        for f, items in msgs.items():
            if f != "INBOX":
                dc.create_folder("alice", f)
            for m in items:
                dc.append("alice", f, m, date_time=1704103200)
        db = os.path.join(work, "db")
        st.run_sim(dc, db, ["sync"])
        st.run_sim(dc, db, ["body INBOX 1", "body INBOX 2", "cache pin INBOX 2"])
        st.run_sim_offline(db, OFFLINE)
        r = st.run_sim_offline(db, ["folders"])
        folders = r.json[0]["folders"]
        names = [f["name"] for f in folders]
        cmds = reading_commands(names)
        outputs = {}
        for c in cmds:
            outputs[c] = st.run_sim_offline(db, [c]).json[0]
        manifest = {
            "messages": msgs,
            "uidvalidity": {f["name"]: f["uidvalidity"] for f in folders},
            "offline": OFFLINE,
            "outputs": outputs,
        }
        with tarfile.open(out_path, "w:xz") as tar:
            tar.add(os.path.join(db, "data.mdb"), arcname="store-v1/data.mdb")
            blob = json.dumps(manifest, indent=1, sort_keys=True).encode()
            info = tarfile.TarInfo("store-v1/manifest.json")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    print("wrote %s (%d bytes)" % (out_path, os.path.getsize(out_path)))


if __name__ == "__main__":
    main()

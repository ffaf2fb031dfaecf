#!/usr/bin/env python3
"""Record real Dovecot sessions as fuzz seeds.

Runs a private Dovecot (tests/lib/satchel_test.py) with plaintext login
allowed, puts a small recording proxy between it and satchel-sim
(--security none), and syncs: a fresh sync, then a resync after flag
changes, expunges and new mail, then a resync with nothing changed, for each
capability profile (full = QRESYNC, condstore, none).  What the server sent
becomes seeds:

  corpus/fuzz_client_session/dovecot-<profile>   all sessions of a profile,
        joined by the harness's reconnect marker (header: config 0, chunk
        seed 0xC0)
  corpus/fuzz_imap_parser/dovecot-<profile>-<n>  one session each
  corpus/fuzz_bodystructure/dovecot-<k>          BODYSTRUCTUREs seen
  corpus/fuzz_seqset/dovecot-vanished-<k>        VANISHED sets seen

Usage: tests/fuzz/record_dovecot.py [--sim PATH] [--out DIR]
Needs dovecot and a built satchel-sim ($SATCHEL_SIM or build/).  The seeds
replay against whatever client is current, so re-record when the client's
commands change (the replay still passes, it just covers less).
"""

import argparse
import json
import os
import re
import shutil
import socket
import sys
import tarfile
import tempfile
import threading
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "lib"))
import satchel_test as st  # noqa: E402

SEP = b"\r\n==RECONNECT==\r\n"


class Recorder:
    """TCP proxy: every accepted connection is relayed to target_port; the
    bytes the server sends are kept per connection."""

    def __init__(self, target_port):
        self.target = target_port
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        self.sessions = []
        self.client_bytes = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            u = socket.create_connection(("127.0.0.1", self.target))
            s2c, c2s = bytearray(), bytearray()
            with self.lock:
                self.sessions.append(s2c)
                self.client_bytes.append(c2s)
            t1 = threading.Thread(target=self._pump, args=(u, c, s2c))
            t2 = threading.Thread(target=self._pump, args=(c, u, c2s))
            t1.start()
            t2.start()

    @staticmethod
    def _pump(src, dst, log):
        try:
            while True:
                d = src.recv(65536)
                if not d:
                    break
                log += d
                dst.sendall(d)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self):
        self.sock.close()


def pick_messages():
    """A few messages per feature from the committed mail set."""
    tmp = tempfile.mkdtemp(prefix="satchel-mailset-")
    try:
        with tarfile.open(st.MAILSET) as t:
            t.extractall(tmp)
        root = Path(tmp) / "mailset"
        man = json.loads((root / "manifest.json").read_text())["messages"]
        return _pick(root, man)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _pick(root, man):
    chosen, seen = [], {}
    for m in man:
        feats = m["features"] or ["plain"]
        folder = m["folder"]
        if seen.get(folder, 0) < 2 or any(seen.get(f, 0) < 2 for f in feats):
            for f in feats + [folder]:
                seen[f] = seen.get(f, 0) + 1
            chosen.append((folder, (root / m["file"]).read_bytes(), m["flags"]))
        if len(chosen) >= 30:
            break
    return chosen


def record_profile(profile, sim, msgs):
    with st.Dovecot(profile=profile, allow_plaintext=True) as dc:
        by_folder = {}
        for folder, raw, flags in msgs:
            by_folder.setdefault(folder, []).append((raw, flags))
        for folder, items in by_folder.items():
            dc.add_messages("alice", folder, [r for r, _ in items],
                            flags=[f for _, f in items], subscribe=True)
        dc.create_folder("alice", "Entw\u00fcrfe")
        rec = Recorder(dc.imap_port)
        db = tempfile.mkdtemp(prefix="satchel-rec-db-")
        os.environ["SATCHEL_SIM"] = sim
        try:
            return _sessions(dc, db, rec, msgs)
        finally:
            rec.close()
            shutil.rmtree(db, ignore_errors=True)


def _sessions(dc, db, rec, msgs):
    st.run_sim(dc, db, ["sync"], security="none", port=rec.port)
    # Changes: flags, expunges, new mail.
    dc.store_flags("alice", "INBOX", [1, 2], "+", ["\\Seen", "$Label1"])
    dc.store_flags("alice", "INBOX", [3], "-", ["\\Seen"])
    dc.expunge("alice", "INBOX", [4, 6])
    extra = [raw for _, raw, _ in msgs[:2]]
    dc.add_messages("alice", "INBOX", extra)
    st.run_sim(dc, db, ["sync"], security="none", port=rec.port)
    st.run_sim(dc, db, ["sync"], security="none", port=rec.port)
    return [bytes(s) for s in rec.sessions]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sim", default=os.environ.get("SATCHEL_SIM",
                                                    st.satchel_sim_path()))
    ap.add_argument("--out", default=str(HERE / "corpus"))
    args = ap.parse_args()
    out = Path(args.out)
    msgs = pick_messages()
    bs_seen, van_seen = set(), set()
    for profile in ("full", "condstore", "none"):
        sessions = record_profile(profile, args.sim, msgs)
        print("%s: %d sessions, %s bytes" % (profile, len(sessions),
                                             [len(s) for s in sessions]))
        d = out / "fuzz_client_session"
        d.mkdir(parents=True, exist_ok=True)
        (d / ("dovecot-%s" % profile)).write_bytes(b"\x00\xc0" + SEP.join(sessions))
        d = out / "fuzz_imap_parser"
        d.mkdir(parents=True, exist_ok=True)
        for i, s in enumerate(sessions):
            (d / ("dovecot-%s-%d" % (profile, i + 1))).write_bytes(b"\x04\x40" + s)
        for s in sessions:
            for m in re.finditer(rb"BODYSTRUCTURE (\(.*?\)) BODY\[", s):
                bs_seen.add(m.group(1))
            for m in re.finditer(rb"\* VANISHED (?:\(EARLIER\) )?([0-9:,*]+)\r\n", s):
                van_seen.add(m.group(1))
    d = out / "fuzz_bodystructure"
    d.mkdir(parents=True, exist_ok=True)
    for i, bs in enumerate(sorted(bs_seen, key=len)[-12:]):
        (d / ("dovecot-%02d" % i)).write_bytes(b"\x00" + bs)
    d = out / "fuzz_seqset"
    d.mkdir(parents=True, exist_ok=True)
    for i, v in enumerate(sorted(van_seen)):
        (d / ("dovecot-vanished-%d" % i)).write_bytes(b"\xff\xff\xff\xff" + v)
    print("bodystructures: %d, vanished sets: %d" % (len(bs_seen), len(van_seen)))


if __name__ == "__main__":
    main()

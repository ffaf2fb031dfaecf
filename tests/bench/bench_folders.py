"""Many folders: resync cost against the folder count (prints figures;
asserts nothing about speed).

A private Dovecot (full profile: LIST-STATUS, QRESYNC) gets N folders (2,000
by default; a tenth of them with non-ASCII names, so they travel in
modified UTF-7), one message in every 100th.  satchel-sim syncs them all,
then:
  * a no-change resync of the whole account;
  * a resync after one new message in one folder.
For each: round trips and IMAP bytes both ways as the client counts them,
wall time, and the store size.  With LIST-STATUS a no-change resync is
greeting, login, ENABLE + LIST-STATUS, LOGOUT whatever N is.  Then the same
with LIST-STATUS removed (imap_capability, profile "nolist-status"): the
LIST, then STATUS of every stored folder streamed in one flight, and a
SELECT only for folders whose STATUS changed.

Usage: python3 tests/bench/bench_folders.py [--counts 256,2000]
       [--profiles full,nolist-status]
"""
import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import satchel_test as st  # noqa: E402

MSG = ("From: Ann <ann@example.org>\r\nTo: bob@example.org\r\nSubject: %s\r\n"
       "Message-ID: <f%d@bench.test>\r\nDate: Mon, 01 Jan 2024 10:00:00 +0000\r\n"
       "\r\nBody %d.\r\n")


def name_of(i):
    return ("Projekt-%04d-\u00dcbersicht" % i) if i % 10 == 0 else ("Folder-%04d" % i)


def add_folders(dc, start, end):
    def fn(c):
        for i in range(start, end):
            q = st.imap_quote(st.imap_utf7_encode(name_of(i)))
            typ, data = c.create(q)
            if typ != "OK":
                raise RuntimeError("CREATE %s: %r" % (name_of(i), data))
            if i % 100 == 0:
                c.append(q, None, None, (MSG % ("m%d" % i, i, i)).encode())
    dc._with_client("alice", fn)


def sync(dc, db, label):
    t0 = time.monotonic()
    r = st.run_sim(dc, db, ["sync"], timeout=1200)
    wall = time.monotonic() - t0
    s = r.json[-1]
    store = sum(os.path.getsize(os.path.join(db, f)) for f in os.listdir(db))
    print("  %-34s %6d round trips %9d B in %7d B out %6.2f s  %d folders reported, "
          "store %d KB" % (label, s["round_trips"], s["bytes_in"], s["bytes_out"], wall,
                           len(s["folders"]), store // 1024))
    return s


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--counts", default="256,1279,2000",
                    help="folder counts to measure, ascending")
    ap.add_argument("--profiles", default="full,nolist-status",
                    help="Dovecot profiles: full (LIST-STATUS), nolist-status")
    args = ap.parse_args()
    counts = [int(x) for x in args.counts.split(",")]
    for profile in args.profiles.split(","):
        run(profile, counts)
    return 0


def run(profile, counts):
    root = tempfile.mkdtemp(prefix="satchel-bench-folders-")
    print("bench_folders: Dovecot %s profile (%s, QRESYNC), TLS" % (
        profile, "LIST-STATUS" if profile == "full" else "no LIST-STATUS: STATUS per folder"))
    with st.Dovecot(profile=profile) as dc:
        have = 0
        db = os.path.join(root, "db")
        for n in counts:
            t0 = time.monotonic()
            add_folders(dc, have, n)
            have = n
            print("%d folders (+ the 6 of the fixture; created in %.1f s):"
                  % (n, time.monotonic() - t0))
            sync(dc, db, "sync after adding folders")
            sync(dc, db, "no-change resync")
            dc.append("alice", name_of(n - 1), MSG % ("new", 10**6 + n, n))
            sync(dc, db, "one new message in one folder")


if __name__ == "__main__":
    sys.exit(main())

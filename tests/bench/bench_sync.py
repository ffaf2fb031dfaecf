"""Header sync benchmark (prints figures; asserts nothing about speed).

1. The whole shared SpamAssassin corpus (4,650 messages) in one folder of a
   private Dovecot (QRESYNC profile): initial header sync, then a no-change
   resync of that folder and of the whole account.  Wall time, IMAP bytes
   both ways as the client counts them and as Dovecot logs them (in=/out=),
   round trips, engine heap peak and process max RSS.
2. Heap peak against folder size: 1,000 and 10,000 synthesized messages.

Usage: python3 tests/bench/bench_sync.py [--corpus PATH] [--profile full]
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import satchel_test as st  # noqa: E402


def massif_peak(path):
    """Peak of heap + allocator overhead over all snapshots, in bytes."""
    peak = cur = 0
    with open(path) as f:
        for line in f:
            if line.startswith("mem_heap_B="):
                cur = int(line.split("=")[1])
            elif line.startswith("mem_heap_extra_B="):
                peak = max(peak, cur + int(line.split("=")[1]))
    return peak


def run(dc, db, commands, security="tls", massif=None):
    """Run satchel-sim (under valgrind massif when massif names an output
    file); return (json lines, wall seconds)."""
    pwfile = os.path.join(dc.tmp, "secrets", "bench.pw")
    os.makedirs(os.path.dirname(pwfile), mode=0o700, exist_ok=True)
    with open(os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
        f.write(dc.users["alice"])
    args = [st.satchel_sim_path(), "--db", db, "--server",
            "127.0.0.1:%d" % dc.imaps_port, "--security", security, "--ca",
            dc.ca_file, "--user", "alice", "--password-file", pwfile, "--json",
            "-c", "; ".join(commands)]
    if massif:
        args = ["valgrind", "--tool=massif", "--massif-out-file=" + massif,
                "--max-snapshots=500"] + args
    t0 = time.monotonic()
    p = subprocess.run(args, capture_output=True)
    wall = time.monotonic() - t0
    if p.returncode != 0:
        sys.exit("satchel-sim failed: %s %s" % (p.stdout[-500:], p.stderr[-500:]))
    import json
    return [json.loads(l) for l in p.stdout.decode().splitlines() if l.strip()], wall


def server_bytes(dc, mark):
    dc.wait_sessions_logged()
    s = dc.session_bytes("alice", since=mark)
    return sum(x["in"] for x in s), sum(x["out"] for x in s)


def sync_figures(dc, db, label, commands=("sync",), massif=None):
    mark = dc.log_mark()
    res, wall = run(dc, db, list(commands) + ["stats"], massif=massif)
    sync = res[0]
    stats = res[-1]
    s_in, s_out = server_bytes(dc, mark)
    new = sum(f.get("new", 0) for f in sync["folders"])
    extra = ""
    if massif:
        extra = "  process heap peak %d B (valgrind massif: engine, mbedTLS, LMDB, libc)" % (
            massif_peak(massif))
    print("%-34s %7.2f s  %6d new  client in %9d out %6d  server in %6d out %9d  "
          "%3d round trips  engine heap peak %6d B%s" % (
              label, wall, new, sync["bytes_in"], sync["bytes_out"], s_in, s_out,
              sync["round_trips"], stats["heap_peak"], extra))
    return sync, stats


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", default=st.CORPUS)
    ap.add_argument("--profile", default="full")
    args = ap.parse_args()
    if not args.corpus or not os.path.exists(args.corpus):
        print("bench_sync: corpus not found (%s); skipped" % args.corpus)
        return 0
    corpus = list(st.load_corpus(args.corpus))
    total = sum(len(m) for m in corpus)
    print("corpus: %d messages, %.1f MB" % (len(corpus), total / 1e6))
    with tempfile.TemporaryDirectory(prefix="satchel-bench-") as work:
        with st.Dovecot(profile=args.profile) as dc:
            dc.add_messages("alice", "INBOX", corpus)
            # Let Dovecot index once so the first sync measures the client,
            # not the server building its index.
            dc.server_state("alice", "INBOX")
            db = os.path.join(work, "db")
            sync, _ = sync_figures(dc, db, "initial sync (%d msgs)" % len(corpus))
            sync_figures(dc, db, "no-change resync, INBOX", ["sync INBOX"])
            sync_figures(dc, db, "no-change resync, all folders")
        for n in (1000, 10000):
            with st.Dovecot(profile=args.profile) as dc:
                dc.add_messages("alice", "INBOX", st.synth_messages(n, corpus[:500]))
                dc.server_state("alice", "INBOX")
                db = os.path.join(work, "db-%d" % n)
                sync_figures(dc, db, "initial sync (%d synthesized)" % n)
                if shutil.which("valgrind"):
                    db2 = os.path.join(work, "db-massif-%d" % n)
                    sync_figures(dc, db2, "same, under massif (%d)" % n,
                                 massif=os.path.join(work, "massif-%d.out" % n))
                sync_figures(dc, db, "no-change resync INBOX (%d)" % n, ["sync INBOX"])
    return 0


if __name__ == "__main__":
    sys.exit(main())

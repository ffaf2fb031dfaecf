"""Body-on-demand benchmark (prints figures; asserts nothing about speed).

1. Opening the text part of 100 messages of the sample mail set, one
   session each (connect, TLS, login, SELECT, partial FETCH): time to first
   body byte and total time, median and 90th percentile; wire bytes
   against the part sizes.
2. A 25 MB attachment (about 34 MB as base64) through the cache: total
   time, engine heap peak, and process heap peak under valgrind massif
   when valgrind is installed.
3. Hit and miss counts for a reading pattern under a 150,000-byte
   budget (smaller than the 100 text parts): 100 opened, then 100 random
   reopenings among them.

Usage: python3 tests/bench/bench_bodies.py
"""
import os
import random
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import satchel_test as st  # noqa: E402
from bench_sync import massif_peak  # noqa: E402


def big_message(mb):
    payload = os.urandom(mb * 1024 * 1024)
    import base64
    b64 = base64.encodebytes(payload).replace(b"\n", b"\r\n")
    head = (b"From: Big <big@example.org>\r\nSubject: %d MB attachment\r\n"
            b"Message-ID: <big-attachment@example.org>\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: multipart/mixed; boundary=\"BB\"\r\n\r\n"
            b"--BB\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n"
            b"--BB\r\nContent-Type: application/octet-stream; name=\"big.bin\"\r\n"
            b"Content-Disposition: attachment; filename=\"big.bin\"\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\n" % mb)
    return head + b64 + b"--BB--\r\n"


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))]


def main():
    with tempfile.TemporaryDirectory(prefix="satchel-bench-bodies-") as work, \
            st.Dovecot(profile="full") as dc:
        dc.load_mailset()
        dc.create_folder("alice", "Big")
        dc.add_messages("alice", "Big", [big_message(25)])
        db = os.path.join(work, "db")
        st.run_sim(dc, db, ["sync"])
        inbox = sorted(dc.server_state("alice", "INBOX"))[-100:]

        # 1. Opening text parts.
        ttfb, total, wire, size = [], [], [], []
        for u in inbox:
            r = st.run_sim(dc, db, ["parts INBOX %d" % u, "body INBOX %d" % u])
            b = r.json[1]
            part = [p for p in r.json[0]["parts"] if p["part"] == b["part"]][0]
            ttfb.append(b["ttfb_ms"])
            total.append(b["fetch_ms"])
            wire.append(b["bytes_in"])
            size.append(part["size"])
        print("open text part (100 messages, one session each, TLS on loopback):")
        print("  time to first body byte: median %d ms, p90 %d ms" % (
            statistics.median(ttfb), pct(ttfb, 0.9)))
        print("  total per message:       median %d ms, p90 %d ms" % (
            statistics.median(total), pct(total, 0.9)))
        over = [w - s for w, s in zip(wire, size)]
        print("  IMAP bytes in per open: median %d for a median part of %d bytes "
              "(overhead median %d: greeting, login, SELECT, FETCH framing)" % (
                  statistics.median(wire), statistics.median(size), statistics.median(over)))

        # 2. The 25 MB attachment.
        r = st.run_sim(dc, db, ["parts Big 1"])
        att = [p for p in r.json[0]["parts"] if p["attachment"]][0]
        r = st.run_sim(dc, db, ["body Big 1 %s --raw" % att["part"], "stats"],
                       json=False, timeout=600)
        r2 = st.run_sim_offline(db, ["stats", "cache"])
        cache = r2.json[1]
        r = st.run_sim(dc, os.path.join(work, "db2"), ["sync Big", "body Big 1 %s" % att["part"], "stats"],
                       timeout=600)
        b, stats = r.json[1], r.json[2]
        print("25 MB attachment (%d bytes as base64): fetched in %d ms, first byte after %d ms, "
              "engine heap peak %d bytes (whole run, decode and print included)" % (
                  att["size"], b["fetch_ms"], b["ttfb_ms"], stats["heap_peak"]))
        del cache
        if shutil_which("valgrind"):
            out = os.path.join(work, "massif.out")
            pw = os.path.join(work, "pw")
            with open(os.open(pw, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
                f.write(dc.users["alice"])
            db3 = os.path.join(work, "db3")
            st.run_sim(dc, db3, ["sync Big"])
            args = ["valgrind", "--tool=massif", "--massif-out-file=" + out,
                    st.satchel_sim_path(), "--db", db3, "--server",
                    "127.0.0.1:%d" % dc.imaps_port, "--ca", dc.ca_file, "--user", "alice",
                    "--password-file", pw, "--timeout", "120000", "-c",
                    "body Big 1 %s --raw" % att["part"]]
            subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           check=True, timeout=1200)
            print("  process heap peak for the same download (massif: engine, mbedTLS, "
                  "LMDB, libc): %d bytes" % massif_peak(out))

        # 3. Hits and misses under a budget.
        db4 = os.path.join(work, "db4")
        st.run_sim(dc, db4, ["sync INBOX"])
        rnd = random.Random(7)
        seq = inbox + [rnd.choice(inbox) for _ in range(100)]
        r = st.run_sim(dc, db4, ["body INBOX %d" % u for u in seq] + ["cache"],
                       extra=["--cache-max", "150000"], timeout=900)
        c = r.json[-1]
        print("reading pattern (100 opens + 100 random reopens, budget 150,000): "
              "%d hits, %d misses, %d evictions, %d bytes cached in %d bodies" % (
                  c["hits"], c["misses"], c["evictions"], c["bytes"], c["entries"]))
    return 0


def shutil_which(name):
    import shutil
    return shutil.which(name)


if __name__ == "__main__":
    sys.exit(main())

"""Round trips of an initial header sync against folder size (prints figures).

For each size, a private Dovecot (QRESYNC profile, TLS on loopback, rawlog
on) holds that many synthesized messages in INBOX, next to the empty
special-use folders.  One initial sync; printed: the client's round-trip
counter, the flights Dovecot's rawlog shows after login (tests/lib/rawlog.py),
the first command of each flight, wall time, and IMAP bytes per message.
The target is a constant number of flights after login at every size.

Usage: python3 tests/bench/bench_flights.py [--sizes 1000,10000,50000]
         [--extra "--preview off"] [--detail]
"""
import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import satchel_test as st  # noqa: E402
import rawlog  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1000,10000,50000")
    ap.add_argument("--extra", default="", help="more satchel-sim options")
    ap.add_argument("--detail", action="store_true")
    a = ap.parse_args()
    base = (list(st.load_corpus(limit=500)) if st.corpus_available()
            else st.load_mailset()["INBOX"])
    for n in [int(x) for x in a.sizes.split(",")]:
        with tempfile.TemporaryDirectory(prefix="satchel-bench-flights-") as work, \
                st.Dovecot(profile="full", extra_conf=rawlog.CONF) as dc:
            rawlog.enable(dc, "alice")
            dc.add_messages("alice", "INBOX", st.synth_messages(n, base))
            dc.server_state("alice", "INBOX")  # Dovecot indexes first
            before = set(rawlog.sessions(dc, "alice"))
            t0 = time.monotonic()
            r = st.run_sim(dc, os.path.join(work, "db"), ["sync", "stats"],
                           extra=a.extra.split(), timeout=1800)
            wall = time.monotonic() - t0
            sess = [s for s in rawlog.sessions(dc, "alice") if s not in before]
            detail = []
            wire = sum(rawlog.flights(s, detail) for s in sess)
            s = r.json[0]
            print("%6d messages: %5.2f s  client round trips %3d (%d after login)  "
                  "rawlog flights after login %3d  IMAP in %9d B (%d B/message)  "
                  "store %d B (%d B/message)" % (
                      n, wall, s["round_trips"], s["round_trips"] - 2, wire,
                      s["bytes_in"], s["bytes_in"] // n, r.json[-1]["store_bytes"],
                      r.json[-1]["store_bytes"] // n), flush=True)
            if a.detail:
                print("        flights start with: " +
                      ", ".join("%s %s" % (t, v) for _, t, v in detail))
    return 0


if __name__ == "__main__":
    sys.exit(main())

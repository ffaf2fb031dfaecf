"""Header sync over an emulated slow link (prints figures; asserts nothing).

satchel-sim --stack lwip --link rtt=300ms,rate=256kbit against a private
Dovecot holding 1,000 messages in INBOX: the initial header sync and a
no-change resync, with wall time against the link's floor:

    floor = wire bytes / rate + round trips x RTT

The wire bytes are the IMAP bytes both ways plus TLS records (29 bytes per
record of up to 16 KB), TCP/IP headers (54 bytes per 1,460-byte segment),
and about 6 KB of TLS handshake.  The necessary round trips are the TCP
handshake, two for TLS 1.2, and the IMAP round trips the client counted
(greeting, login, each command flight).  Needs the lwIP stack (scripts/fetch-lwip).

Usage: python3 tests/bench/bench_link.py [--messages 1000] [--link SPEC]
"""
import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import satchel_test as st  # noqa: E402


def floor_s(imap_bytes, round_trips, rtt_s, rate_bps):
    records = imap_bytes / 16384 + round_trips * 2
    wire = imap_bytes + records * 29 + (imap_bytes / 1460) * 54 + 6000
    necessary_rt = round_trips + 1 + 2  # TCP handshake, TLS 1.2 handshake
    return wire * 8 / rate_bps + necessary_rt * rtt_s, wire


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=1000)
    ap.add_argument("--link", default="rtt=300ms,rate=256kbit,seed=1")
    a = ap.parse_args()
    link = dict(kv.split("=") for kv in a.link.split(","))
    rtt = float(link.get("rtt", "0ms").rstrip("ms")) / 1000.0
    rate = float(link.get("rate", "256kbit").rstrip("kbit")) * 1000.0
    base = st.load_mailset()["INBOX"]
    with tempfile.TemporaryDirectory(prefix="satchel-bench-link-") as work, \
            st.Dovecot(profile="full") as dc:
        dc.add_messages("alice", "INBOX", st.synth_messages(a.messages, base))
        dc.server_state("alice", "INBOX")
        db = os.path.join(work, "db")
        extra = ["--stack", "lwip", "--link", a.link, "--timeout", "120000"]
        print("link %s, %d messages in INBOX" % (a.link, a.messages))
        for label, cmd in (("initial header sync", "sync"),
                           ("no-change resync, whole account", "sync"),
                           ("no-change resync, INBOX", "sync INBOX")):
            t0 = time.monotonic()
            r = st.run_sim(dc, db, [cmd], extra=extra, timeout=1800)
            wall = time.monotonic() - t0
            s = r.json[0]
            imap = s["bytes_in"] + s["bytes_out"]
            fl, wire = floor_s(imap, s["round_trips"], rtt, rate)
            after_login = s["round_trips"] - 2  # greeting, login
            print("%-34s %7.2f s (floor %6.2f s, %.2fx)  IMAP %8d B (wire ~%d B)  "
                  "%2d round trips (%d after login, LOGOUT included)" % (
                      label, wall, fl, wall / fl, imap, wire, s["round_trips"],
                      after_login))
    return 0


if __name__ == "__main__":
    sys.exit(main())

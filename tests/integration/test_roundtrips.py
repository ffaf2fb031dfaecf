"""The client's round-trip counter against the server's own record.

A flight starts when the client sends while nothing it sent is unanswered.
Dovecot's rawlog stamps every command as the imap process read it and every
answer as it wrote it; tests/lib/rawlog.py counts flights from that.  For
each session the client's `round_trips` must equal the rawlog's count plus
the two flights before login that the rawlog cannot see (waiting for the
greeting, and AUTHENTICATE with its initial response).

Sessions: an initial sync of an account whose INBOX holds several header
windows (where a counter that looks only at parsed responses undercounts:
the next window goes out while the answer to the previous one is still
unparsed), a no-change resync, a resync after another client changed flags
and delivered mail, and a body fetch.
"""
import os
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import satchel_test as st  # noqa: E402
import rawlog  # noqa: E402

check = st.Checks()
PRE_LOGIN = 2  # greeting; AUTHENTICATE PLAIN with SASL-IR


def compare(dc, db, label, commands):
    n0 = len(rawlog.sessions(dc, "alice"))
    r = st.run_sim(dc, db, commands + ["stats"])
    sess = rawlog.sessions(dc, "alice")
    check(len(sess) == n0 + 1, "%s: one rawlog session (%d)" % (label, len(sess) - n0))
    detail = []
    wire = rawlog.flights(sess[-1], detail)
    client = r.json[-1]["round_trips"]  # stats: the whole session
    print("%-34s client %3d  rawlog %3d (+%d before login)" % (
        label, client, wire, PRE_LOGIN))
    if not check(client == wire + PRE_LOGIN,
                 "%s: client counted %d round trips, the wire %d + %d before login"
                 % (label, client, wire, PRE_LOGIN)):
        for t, tag, verb in detail:
            print("   flight at %d.%06d: %s %s" % (t // 1000000, t % 1000000, tag, verb))


def main():
    with tempfile.TemporaryDirectory(prefix="satchel-test-rt-") as work, \
            st.Dovecot(profile="full", extra_conf=rawlog.CONF) as dc:
        rawlog.enable(dc, "alice")
        ms = st.load_mailset()
        dc.load_mailset()
        dc.add_messages("alice", "INBOX", st.synth_messages(3000, ms["INBOX"]))
        dc.server_state("alice", "INBOX")
        db = os.path.join(work, "db")
        compare(dc, db, "initial sync", ["sync"])
        compare(dc, db, "no-change resync", ["sync"])
        dc.store_flags("alice", "INBOX", [1, 2, 3, 500], "+", ["\\Flagged"])
        dc.add_messages("alice", "INBOX", st.synth_messages(40, ms["INBOX"],
                                                            domain="later.test"))
        compare(dc, db, "resync after changes", ["sync INBOX"])
        compare(dc, db, "body of one message", ["body INBOX 7"])
    return check.report()


if __name__ == "__main__":
    sys.exit(main())

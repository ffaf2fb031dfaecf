"""Queued moves that do not fit one output buffer, against a Dovecot that
offers no LITERAL+.

60 messages are moved offline, each into its own folder with a 190-byte
name (spaces and parentheses, so every name goes out as a quoted string):
one replay batch is then more than 8 KB of commands, which used to fail
the whole sync with "command buffer overflow" on every retry.  The replay
runs once with MOVE and once with UID COPY + STORE + UID EXPUNGE (more
commands per batch).  Python's imaplib then checks every folder on the
server: each moved message is in its folder exactly once and gone from
INBOX; the local store agrees and the queue is empty.
"""
import os
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import satchel_test as st  # noqa: E402

CAP_MOVE = 1 << 11
N = 60

check = st.Checks()


def name_for(i):
    head = "Project (%02d) " % i
    body = "long folder name segment "
    s = head
    while len(s) < 190:
        s += body
    return s[:189] + chr(ord("a") + i % 26)


def scenario(label, mask, work):
    db = os.path.join(work, "db-" + label)
    extra = ["--disable-caps", str(mask)] if mask else []
    names = [name_for(i) for i in range(N)]
    check(all(len(n) == 190 for n in names), "names are 190 bytes")
    with st.Dovecot(profile="noliteral") as dc:
        caps = dc._with_client("alice", lambda c: c.capabilities)
        check("LITERAL+" not in caps and "LITERAL-" not in caps,
              "[%s] server offers neither LITERAL+ nor LITERAL-: %s" % (label, caps))
        dc.load_mailset()
        for n in names:
            dc.create_folder("alice", n)
        r = st.run_sim(dc, db, ["sync"], extra=extra, timeout=300)
        check(r.json[0]["ok"], "[%s] first sync: %s" % (label, r.json[0]))
        inbox = dc.server_state("alice", "INBOX")
        uids = sorted(inbox)[:N]
        mids = [inbox[u]["message_id"] for u in uids]
        ops = ["move INBOX %d %s" % (u, st.imap_quote(n)) for u, n in zip(uids, names)]
        r = st.run_sim_offline(db, ops + ["queue"])
        check(all(x.get("ok", True) for x in r.json[:N]), "[%s] moves recorded" % label)
        check(r.json[N]["pending"] == N, "[%s] %d queued: %s" % (label, N, r.json[N]["pending"]))

        r = st.run_sim(dc, db, ["sync", "queue"], extra=extra, timeout=300)
        out, q = r.json[0], r.json[1]
        check(out["ok"], "[%s] replaying sync ok: %s" % (label, out.get("error")))
        check(out.get("replayed") == N and not out.get("replay_failed"),
              "[%s] replayed %s, failed %s" % (label, out.get("replayed"), out.get("replay_failed")))
        check(q["pending"] == 0 and q["failed"] == 0, "[%s] queue empty: %s" % (label, q))
        print("[%s] replay: %s round trips, %s bytes out" % (
            label, out.get("round_trips"), out.get("bytes_out")))

        inbox_after = {m["message_id"] for m in dc.server_state("alice", "INBOX").values()
                       if "\\Deleted" not in m["flags"]}
        landed = 0
        for mid, n in zip(mids, names):
            there = [m for m in dc.server_state("alice", n).values()
                     if m["message_id"] == mid]
            landed += len(there) == 1
        check(landed == N, "[%s] every message is in its folder once: %d of %d"
              % (label, landed, N))
        check(not (set(mids) & inbox_after), "[%s] moved messages gone from INBOX: %d left"
              % (label, len(set(mids) & inbox_after)))
        r = st.run_sim_offline(db, ["list %s 0 10" % st.imap_quote(n) for n in names])
        local = sum(1 for x in r.json if x.get("total") == 1)
        check(local == N, "[%s] local store has each message in its folder: %d" % (label, local))


def main():
    with tempfile.TemporaryDirectory(prefix="satchel-test-long-names-") as work:
        scenario("move", 0, work)
        scenario("copy", CAP_MOVE, work)
    return check.report()


if __name__ == "__main__":
    sys.exit(main())

"""Offline change chains that bring a message back to where an earlier
offline move put it, replayed against Dovecot and checked with imaplib.

A move that cancels out (Trash -> Archive -> Trash) returns the message to
the first move's placeholder; it must stay a placeholder, or the changes
queued for it afterwards name a UID the server never gave and are lost
(bench_queue found one: deleted from Trash after such a round trip, the
message stayed on the server).  Each chain runs on its own message; one
sync replays them all; then every message must be where the chain left it,
with its flags, or gone.
"""
import os
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import satchel_test as st  # noqa: E402

check = st.Checks()

# (name, steps); a step is "del", "mv FOLDER" or "flag +FLAG".
CHAINS = [
    ("trash, away and back, then expunged",
     ["del", "flag +$A", "mv Archive", "del", "flag +$B", "del"]),
    ("trash, away and back, flagged", ["del", "mv Archive", "mv Trash", "flag +$C"]),
    ("moved on and back to a placeholder, flagged",
     ["mv Archive", "mv Junk", "mv Archive", "flag +\\Flagged"]),
    ("back to the start cancels out", ["mv Archive", "mv Junk", "mv INBOX", "flag +$D"]),
    ("away and back, then moved on", ["mv Archive", "mv Junk", "mv Archive", "mv Sent"]),
]


def main():
    with tempfile.TemporaryDirectory(prefix="satchel-test-chains-") as work, \
            st.Dovecot(profile="full") as dc:
        dc.load_mailset()
        db = os.path.join(work, "db")
        st.run_sim(dc, db, ["sync"])
        inbox = dc.server_state("alice", "INBOX")
        uids = sorted(inbox)
        want = {}
        for k, (name, steps) in enumerate(CHAINS):
            uid = uids[10 + k]
            mid = inbox[uid]["message_id"]
            folder, flags = "INBOX", set(inbox[uid]["flags"])
            for s in steps:
                word, _, arg = s.partition(" ")
                if word == "del":
                    r = st.run_sim_offline(db, ["delete %s %d" % (st.imap_quote(folder), uid)])
                    out = r.json[0]
                    if out["to_trash"]:
                        folder, uid = "Trash", out["new_uid"]
                    else:
                        folder = None
                elif word == "mv":
                    r = st.run_sim_offline(db, ["move %s %d %s" % (
                        st.imap_quote(folder), uid, st.imap_quote(arg))])
                    folder, uid = arg, r.json[0]["new_uid"]
                else:
                    st.run_sim_offline(db, ["flag %s %d %s" % (st.imap_quote(folder), uid, arg)])
                    flags.add(arg[1:])
            want[mid] = (name, folder, flags)
        r = st.run_sim(dc, db, ["sync", "queue"])
        check(r.json[0]["ok"], "replaying sync ok: %s" % r.json[0].get("error"))
        q = r.json[1]
        check(q["pending"] == 0 and q["failed"] == 0, "queue empty: %s" % q)
        where = {}
        for f in ("INBOX", "Trash", "Archive", "Junk", "Sent"):
            for m in dc.server_state("alice", f).values():
                if "\\Deleted" not in m["flags"]:
                    where.setdefault(m["message_id"], []).append((f, set(m["flags"])))
        for mid, (name, folder, flags) in want.items():
            got = where.get(mid, [])
            if folder is None:
                check(not got, "%s: gone from the server, found in %s" % (name, got))
            else:
                check(len(got) == 1 and got[0][0] == folder and flags <= got[0][1],
                      "%s: want %s with %s, server has %s" % (name, folder, sorted(flags), got))
    return check.report()


if __name__ == "__main__":
    sys.exit(main())

"""Preview policy (--preview on|newest|off) against a real Dovecot.

RFC 8970 PREVIEW costs about 200 bytes a message and makes Dovecot read
every body the first time.  With 300 messages in INBOX and 100-message
windows, an initial sync must store:
- on: a preview for every message that has one (the reference);
- newest (the default): previews for the newest window only (the 100
  highest UIDs), nothing for the rest;
- off: no preview at all;
and the bytes received must order off < newest < on.  A resync keeps what
was stored.  Each store is then compared with the server through imaplib
(UIDs), and every other field listed must equal the --preview on run's.
"""
import os
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import satchel_test as st  # noqa: E402

check = st.Checks()


def main():
    with tempfile.TemporaryDirectory(prefix="satchel-test-preview-") as work, \
            st.Dovecot(profile="full") as dc:
        dc.add_messages("alice", "INBOX", st.synth_messages(300, st.load_mailset()["INBOX"]))
        server = dc.server_state("alice", "INBOX")
        top = sorted(server)[-100:]
        got, size, rest = {}, {}, {}
        for policy in ("on", "newest", "off", None):
            db = os.path.join(work, "db-%s" % policy)
            extra = ["--fetch-window", "100"] + (["--preview", policy] if policy else [])
            r = st.run_sim(dc, db, ["sync"], extra=extra)
            size[policy] = r.json[0]["bytes_in"]
            r = st.run_sim_offline(db, ["list INBOX 0 1000"])
            msgs = r.json[0]["messages"]
            got[policy] = {m["uid"]: m.get("preview") or "" for m in msgs}
            rest[policy] = [{k: v for k, v in m.items() if k != "preview"} for m in msgs]
            check(sorted(got[policy]) == sorted(server),
                  "--preview %s: every message the server has" % policy)
            check(rest[policy] == rest["on"],
                  "--preview %s: everything but the preview as with previews" % policy)
        have = {u for u, p in got["on"].items() if p}
        print("previews: on %d, newest %d, off %d; bytes in: on %d, newest %d, off %d" % (
            len(have), sum(1 for p in got["newest"].values() if p),
            sum(1 for p in got["off"].values() if p), size["on"], size["newest"], size["off"]))
        check(len(have) > 250, "--preview on: previews for most messages (%d)" % len(have))
        check({u for u, p in got["newest"].items() if p} == have & set(top),
              "--preview newest: previews for the newest window only")
        check(got[None] == got["newest"], "the default is newest")
        check(not any(got["off"].values()), "--preview off: no previews")
        check(size["off"] < size["newest"] < size["on"],
              "bytes: off < newest < on (%d, %d, %d)" % (size["off"], size["newest"], size["on"]))
        r = st.run_sim(dc, os.path.join(work, "db-newest"), ["sync", "list INBOX 0 1000"],
                       extra=["--fetch-window", "100", "--preview", "newest"])
        check({m["uid"]: m.get("preview") or "" for m in r.json[1]["messages"]} == got["newest"],
              "a resync keeps the stored previews")
        bad = st.run_sim(dc, os.path.join(work, "db-bad"), ["sync"],
                         extra=["--preview", "sometimes"], check=False)
        check(bad.returncode == 2 and "--preview" in bad.stderr,
              "an unknown policy is refused: %r" % bad.stderr[-200:])
    return check.report()


if __name__ == "__main__":
    sys.exit(main())

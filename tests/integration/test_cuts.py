"""Cut anywhere: the connection to a real Dovecot is cut at many points of
a header sync and of a body download (during the TLS handshake, in the
middle of literals, every few KB) and the client must reconnect, resume
and end with exactly the store an uncut run gives; nothing duplicated, no
crash, no hang.  Also: every connection cut after 60 KB, so progress
depends on resuming (header windows and body chunks) rather than
restarting.

The cuts come from a TCP relay in front of Dovecot's TLS port (so they
fall inside TLS records too).  SATCHEL_STACK=lwip runs the same through the
lwIP stack (the relay still cuts on the host side).
SATCHEL_LONG=1 cuts at every 1 KB instead of every 9 KB.
"""
import os
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import satchel_test as st  # noqa: E402



check = st.Checks()


def dump(db, folders):
    r = st.run_sim_offline(db, ["folders"] + ["list %s 0 100000" % st.imap_quote(f)
                                              for f in folders])
    fl = {f["name"]: (f["messages"], f["unseen"], f["uidvalidity"], f["uidnext"],
                      f["highestmodseq"]) for f in r.json[0]["folders"]}
    msgs = {x["folder"]: x["messages"] for x in r.json[1:]}
    return fl, msgs


def extra_args():
    # (run_sim adds --stack from SATCHEL_STACK.)  Previews for every message:
    # with the default (newest window only), a cut that leaves part of the
    # newest window to the resumed, UID-keyed fetch leaves that part
    # without one, which is the policy, not the resume under test.
    return ["--preview", "on"]


def main():
    long_mode = os.environ.get("SATCHEL_LONG") == "1"
    step = 1024 if long_mode else 9 * 1024
    with tempfile.TemporaryDirectory(prefix="satchel-test-cuts-") as work, \
            st.Dovecot(profile="full") as dc:
        ms = st.load_mailset()
        dc.load_mailset()
        dc.add_messages("alice", "INBOX", st.synth_messages(400, ms["INBOX"]))
        folders = [f for f, a in dc.folders("alice", all_attrs=True).items()
                   if "\\noselect" not in [x.lower() for x in a]]
        ref_db = os.path.join(work, "ref")
        r = st.run_sim(dc, ref_db, ["sync"], extra=extra_args())
        total = r.json[0]["bytes_in"]
        ref = dump(ref_db, folders)
        print("reference sync: %d bytes in, %d messages" % (
            total, sum(len(v) for v in ref[1].values())))

        # 1. One cut per run, at many points of the sync.
        points = [0, 100, 400, 1200, 2500] + list(range(4000, total, step))
        bad = []
        for i, cut in enumerate(points):
            db = os.path.join(work, "cut-%d" % i)
            relay = st.CutRelay(dc.imaps_port, cut)
            r = st.run_sim(dc, db, ["sync"], port=relay.port, check=False, timeout=120,
                           extra=extra_args() + ["--retries", "3", "--timeout", "10000"])
            relay.close()
            got = dump(db, folders) if r.returncode == 0 else None
            if r.returncode != 0 or got != ref:
                detail = r.stdout[-200:]
                if got:
                    detail = {k: (got[0].get(k), v) for k, v in ref[0].items()
                              if got[0].get(k) != v}
                    for f in folders:
                        a_ = {m["uid"]: m for m in got[1].get(f, [])}
                        b_ = {m["uid"]: m for m in ref[1].get(f, [])}
                        if a_ != b_:
                            detail[f] = ("missing", sorted(set(b_) - set(a_))[:5], "extra",
                                         sorted(set(a_) - set(b_))[:5], "differ",
                                         [(a_[u], b_[u]) for u in set(a_) & set(b_)
                                          if a_[u] != b_[u]][:1])
                bad.append((cut, r.returncode, detail))
        check(not bad, "sync cut once at %d points ends equal to the uncut store; "
              "differing: %s" % (len(points), bad[:3]))
        print("sync cut once at %d points (step %d bytes)" % (len(points), step))

        # 2. Every connection cut after 60 KB: only resuming makes progress.
        db = os.path.join(work, "cut-every")
        relay = st.CutRelay(dc.imaps_port, 60_000, times=None)
        r = st.run_sim(dc, db, ["sync"], port=relay.port, check=False, timeout=300,
                       extra=extra_args() + ["--retries", "60", "--timeout", "10000"])
        conns = relay.conns
        relay.close()
        check(r.returncode == 0 and dump(db, folders) == ref,
              "sync with every connection cut at 60 KB completes equal (%d connections): %s"
              % (conns, r.stdout[-200:]))

        # 3. A body download cut once at many points, then cut every 200 KB.
        big = (b"From: Big <big@example.org>\r\nSubject: big body\r\n"
               b"Message-ID: <cut-body@example.org>\r\n\r\n" +
               b"".join(b"line %07d of the body, some text to fill it\r\n" % i
                        for i in range(20000)))
        dc.create_folder("alice", "Big")
        dc.add_messages("alice", "Big", [big])
        st.run_sim(dc, ref_db, ["sync Big"], extra=extra_args())
        c = dc.client("alice")
        c.select("Big", readonly=True)
        typ, data = c.uid("FETCH", "1", "(BODY.PEEK[1])")
        c.logout()
        ref_body = [d for d in data if isinstance(d, tuple)][0][1]
        bad = []
        bpoints = [300, 2000] + list(range(5000, len(ref_body) + 5000, max(step * 8, 40000)))
        for i, cut in enumerate(bpoints):
            db = os.path.join(work, "body-%d" % i)
            st.run_sim(dc, db, ["sync Big"], extra=extra_args())
            relay = st.CutRelay(dc.imaps_port, cut)
            r = st.run_sim(dc, db, ["body Big 1 --raw"], json=False, port=relay.port,
                           check=False, timeout=120,
                           extra=extra_args() + ["--retries", "3", "--timeout", "10000"])
            relay.close()
            if r.returncode != 0 or r.stdout_bytes != ref_body:
                bad.append((cut, r.returncode, len(r.stdout_bytes)))
        check(not bad, "body cut once at %d points is byte-identical; differing: %s" % (
            len(bpoints), bad[:3]))
        db = os.path.join(work, "body-every")
        st.run_sim(dc, db, ["sync Big"], extra=extra_args())
        relay = st.CutRelay(dc.imaps_port, 200_000, times=None)
        r = st.run_sim(dc, db, ["body Big 1 --raw"], json=False, port=relay.port, check=False,
                       timeout=300, extra=extra_args() + ["--retries", "30"])
        conns = relay.conns
        relay.close()
        check(r.returncode == 0 and r.stdout_bytes == ref_body and conns > 3,
              "body with every connection cut at 200 KB resumes to the end (%d connections)"
              % conns)
    return check.report()


if __name__ == "__main__":
    sys.exit(main())

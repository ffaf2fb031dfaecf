"""The offline change queue against a real Dovecot.

- Offline flag, move, delete and mkdir; replayed on the next sync; the
  server checked message by message (by Message-ID) with imaplib against a
  model of the expected state, in three capability profiles: MOVE,
  UIDPLUS without MOVE (COPY + STORE + UID EXPUNGE), and neither (COPY +
  STORE \\Deleted, expunge left for later).  The client masks the
  capabilities it may use with --disable-caps; the server is the same.
- Coalescing: +\\Seen then -\\Seen sends nothing.
- Conflicts: a message expunged by another client meanwhile, a destination
  folder deleted meanwhile: each lands in the failed list with a reason,
  its local effect is rolled back, and every later change still replays.
- Two devices (two stores), one offline, converge after both sync.
- Kill test: SIGKILL satchel-sim at random points while recording and
  while replaying; after each restart the store opens, no acknowledged
  change is lost, and no message is duplicated or lost on the server.
  A handful of runs by default, 50 with SATCHEL_LONG=1.
"""
import collections
import os
import random
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import satchel_test as st  # noqa: E402

CAP_MOVE = 1 << 11
CAP_UIDPLUS = 1 << 12


check = st.Checks()


def by_mid(state):
    """{message_id: [flags...]} of a FolderState (a list per id: duplicates
    show up as more than one entry)."""
    out = collections.defaultdict(list)
    for m in state.values():
        out[m["message_id"]].append(sorted(m["flags"]))
    return out


def local_by_uid(db, folder):
    r = st.run_sim_offline(db, ["list %s 0 100000" % st.imap_quote(folder)])
    return {m["uid"]: m for m in r.json[0]["messages"]}


def compare_local(dc, db, folder, label, hide_deleted=False):
    server = dc.server_state("alice", folder)
    if hide_deleted:
        server = {u: m for u, m in server.items() if "\\Deleted" not in m["flags"]}
    local = local_by_uid(db, folder)
    ok = check(sorted(local) == sorted(server), "%s %s: local UIDs %s != server %s" % (
        label, folder, sorted(set(local) - set(server))[:5], sorted(set(server) - set(local))[:5]))
    bad = [u for u in set(local) & set(server)
           if sorted(local[u]["flags"]) != sorted(server[u]["flags"])]
    return ok and check(not bad, "%s %s: flags differ for %s" % (label, folder, bad[:5]))


def scenario(profile, mask, work):
    label = "[%s]" % profile
    db = os.path.join(work, "db-" + profile)
    extra = ["--disable-caps", str(mask)] if mask else []
    uidplus = not (mask & CAP_UIDPLUS)
    with st.Dovecot(profile="full") as dc:
        dc.load_mailset()
        dc.create_folder("alice", "Gone")
        st.run_sim(dc, db, ["sync"], extra=extra)
        inbox = dc.server_state("alice", "INBOX")
        uids = sorted(inbox)
        # uids[3] must carry \Seen for the "-\Seen" change to mean something.
        seen = [u for u in uids[12:] if "\\Seen" in inbox[u]["flags"]]
        uids[3] = seen[0]
        mid = {u: inbox[u]["message_id"] for u in uids}
        arch0 = by_mid(dc.server_state("alice", "Archive"))
        trash0 = by_mid(dc.server_state("alice", "Trash"))

        # Offline: record changes.
        ops = [
            "flag INBOX %d +\\Flagged +$Forwarded" % uids[0],
            "flag INBOX %d -\\Seen" % uids[3],          # a seen one (every 3rd)
            "flag INBOX %d +\\Seen" % uids[1],
            "flag INBOX %d -\\Seen" % uids[1],          # cancels out
            "move INBOX %d Archive" % uids[4],
            "move INBOX %d Archive" % uids[5],
            "delete INBOX %d" % uids[7],                # to Trash
            "mkdir Projects",
            "move INBOX %d Projects" % uids[8],
            "move INBOX %d Gone" % uids[9],             # Gone is deleted meanwhile
            "flag INBOX %d +$Conflict" % uids[10],      # expunged meanwhile
            "flag INBOX %d +\\Flagged" % uids[11],      # replays after failures
        ]
        r = st.run_sim_offline(db, ops)
        check(all(x.get("ok") for x in r.json), "%s offline ops acknowledged" % label)
        moved4 = r.json[4]["new_uid"]
        r = st.run_sim_offline(db, ["flag Archive %d +\\Flagged" % moved4, "queue"])
        q = r.json[1]
        check(q["pending"] == 11, "%s queue holds 11 (one cancelled): %s" % (label, q["pending"]))
        # Meanwhile another client deletes a folder and expunges a message.
        dc.delete_folder("alice", "Gone")
        dc.expunge("alice", "INBOX", [uids[10]])

        r = st.run_sim(dc, db, ["sync", "queue"], extra=extra)
        out, q = r.json[0], r.json[1]
        check(out["ok"] and out["replayed"] >= 9, "%s replay: %s" % (label, {
            k: out[k] for k in ("replayed", "replay_failed", "round_trips")}))
        failed = {e["uid"]: e for e in q["entries"] if e["state"] == "failed"}
        check(set(failed) == {uids[9], uids[10]} and q["pending"] == 0,
              "%s exactly the two conflicts failed: %s" % (label, q["entries"]))
        check(all(e.get("reason") for e in failed.values()) and
              "no longer" in failed.get(uids[10], {}).get("reason", ""),
              "%s reasons given: %s" % (label, [e.get("reason") for e in failed.values()]))

        # The server, message by message.
        s_inbox = dc.server_state("alice", "INBOX")
        s_arch = by_mid(dc.server_state("alice", "Archive"))
        s_trash = by_mid(dc.server_state("alice", "Trash"))
        s_proj = by_mid(dc.server_state("alice", "Projects"))
        byid = {m["message_id"]: (u, m) for u, m in s_inbox.items()}
        exp_flags = {
            uids[0]: sorted(set(inbox[uids[0]]["flags"]) | {"\\Flagged", "$Forwarded"}),
            uids[3]: sorted(set(inbox[uids[3]]["flags"]) - {"\\Seen"}),
            uids[1]: sorted(inbox[uids[1]]["flags"]),
            uids[11]: sorted(set(inbox[uids[11]]["flags"]) | {"\\Flagged"}),
        }
        for u, fl in exp_flags.items():
            check(s_inbox.get(u, {}).get("flags") == fl, "%s INBOX %d flags %s, want %s" % (
                label, u, s_inbox.get(u, {}).get("flags"), fl))
        for u, dest in ((uids[4], s_arch), (uids[5], s_arch), (uids[7], s_trash),
                        (uids[8], s_proj)):
            check(len(dest.get(mid[u], [])) == 1, "%s %d arrived once in its folder" % (label, u))
            gone = mid[u] not in byid or (not uidplus and "\\Deleted" in byid[mid[u]][1]["flags"])
            check(gone, "%s %d left INBOX%s" % (label, u, "" if uidplus else " (\\Deleted)"))
        check("\\Flagged" in s_arch.get(mid[uids[4]], [[]])[0],
              "%s flag on a moved message followed it" % label)
        check(mid[uids[9]] in byid, "%s failed move rolled back: still in INBOX on server" % label)
        check(len(s_arch) == len(arch0) + 2 and len(s_trash) == len(trash0) + 1,
              "%s no duplicates in Archive/Trash" % label)
        # The store equals the server, \Deleted originals of moves on a server
        # without MOVE or UIDPLUS included: every device shows what the
        # server has until someone expunges them (issue 10).
        for f in ("INBOX", "Archive", "Trash", "Projects"):
            compare_local(dc, db, f, label)
        local = local_by_uid(db, "INBOX")
        check(uids[9] in local, "%s failed move rolled back locally" % label)

        # queue retry / drop.
        fid = [e["id"] for e in q["entries"] if e["state"] == "failed"]
        r = st.run_sim_offline(db, ["queue drop %d" % fid[0], "queue retry %d" % fid[1], "queue"])
        check(r.json[0]["ok"] and r.json[1]["ok"] and r.json[2]["pending"] == 1 and
              r.json[2]["failed"] == 0, "%s queue drop/retry: %s" % (label, r.json[2]))
        st.run_sim(dc, db, ["sync"], extra=extra)

        # Delete in Trash expunges.
        tr = sorted(dc.server_state("alice", "Trash"))
        r = st.run_sim_offline(db, ["delete Trash %d" % tr[0]])
        check(r.json[0]["to_trash"] is False, "%s delete in Trash expunges" % label)
        st.run_sim(dc, db, ["sync"], extra=extra)
        t2 = dc.server_state("alice", "Trash")
        check(tr[0] not in t2 or (not uidplus and "\\Deleted" in t2[tr[0]]["flags"]),
              "%s expunged from Trash on the server" % label)


def two_devices(work):
    label = "[two devices]"
    with st.Dovecot(profile="full") as dc:
        dc.load_mailset()
        a, b = os.path.join(work, "dev-a"), os.path.join(work, "dev-b")
        st.run_sim(dc, a, ["sync"])
        st.run_sim(dc, b, ["sync"])
        uids = sorted(dc.server_state("alice", "INBOX"))
        # A is offline and changes things; B is online and changes others
        # (and one flag that A also changes: A's newer change wins).
        st.run_sim_offline(a, ["flag INBOX %d +\\Flagged" % uids[0],
                               "move INBOX %d Archive" % uids[1],
                               "flag INBOX %d +\\Seen" % uids[2]])
        st.run_sim_offline(b, ["flag INBOX %d +\\Answered" % uids[3],
                               "flag INBOX %d -\\Seen" % uids[2],
                               "delete INBOX %d" % uids[4]])
        st.run_sim(dc, b, ["sync"])
        st.run_sim(dc, a, ["sync"])
        st.run_sim(dc, b, ["sync"])
        for f in ("INBOX", "Archive", "Trash"):
            compare_local(dc, a, f, label + " A")
            compare_local(dc, b, f, label + " B")
        s = dc.server_state("alice", "INBOX")
        check("\\Seen" in s[uids[2]]["flags"], "%s later change to the same flag wins" % label)
        check("\\Answered" in s[uids[3]]["flags"] and "\\Flagged" in s[uids[0]]["flags"],
              "%s both devices' changes on the server" % label)


def refused_create(work):
    """A CREATE the server refuses without [ALREADYEXISTS] (Courier answers
    so even for a folder that exists) must fail only itself.  Its reason
    used to stay behind and read as the next batch's UIDVALIDITY failure:
    the changes of that batch failed as "no longer on the server" without
    being checked, and their messages were deleted from the store (found by
    the convergence harness, seed 411424800352 on Courier)."""
    label = "[refused CREATE]"
    with st.Dovecot(profile="full") as dc:
        dc.load_mailset()
        db = os.path.join(work, "refused-create")
        st.run_sim(dc, db, ["sync"])
        s = dc.server_state("alice", "INBOX")
        u = [x for x in sorted(s) if "\\Flagged" not in s[x]["flags"]][0]
        # Dovecot refuses names that begin with '~' (no ALREADYEXISTS code)
        st.run_sim_offline(db, ['mkdir "~/refused"', "flag INBOX %d +\\Flagged" % u])
        st.run_sim(dc, db, ["sync"])
        q = st.run_sim_offline(db, ["queue"]).json[0]
        failed = {e["op"]: e for e in q["entries"] if e["state"] == "failed"}
        check("mkdir" in failed and "refused" in failed["mkdir"]["reason"],
              "%s the CREATE fails with the server's reason: %s" % (label, failed.get("mkdir")))
        check("flag" not in failed and q["pending"] == 0,
              "%s the flag change in the same sync is not failed: %s" % (label, q["entries"]))
        check("\\Flagged" in dc.server_state("alice", "INBOX")[u]["flags"],
              "%s the flag change reached the server" % label)
        compare_local(dc, db, "INBOX", label)


def deleted_rule(work):
    """A server with neither MOVE nor UIDPLUS (Dovecot told so by
    imap_capability): a move is a COPY and a \\Deleted mark.  When UID SEARCH
    DELETED then lists only this batch's marks, one EXPUNGE removes them and
    the folder is the same everywhere; when another client has marked a
    message too, nothing is expunged (that is its choice to make) and every
    device shows the marked messages as the server has them."""
    label = "[\\Deleted rule]"
    with st.Dovecot(profile="plain") as dc:
        dc.load_mailset()
        db, db2 = os.path.join(work, "deleted-rule"), os.path.join(work, "deleted-rule-2")
        st.run_sim(dc, db, ["sync"])
        st.run_sim(dc, db2, ["sync"])
        inbox = dc.server_state("alice", "INBOX")
        u = sorted(inbox)
        mid = {x: inbox[x]["message_id"] for x in u}
        r = st.run_sim_offline(db, ["move INBOX %d Archive" % u[0], "delete INBOX %d" % u[1]])
        check(all(x.get("ok") for x in r.json), "%s offline move and delete" % label)
        st.run_sim(dc, db, ["sync"])
        s_inbox = dc.server_state("alice", "INBOX")
        check(u[0] not in s_inbox and u[1] not in s_inbox,
              "%s only this batch's marks: expunged from INBOX on the server (%s)" % (
                  label, [s_inbox.get(x, {}).get("flags") for x in u[:2]]))
        check(len(by_mid(dc.server_state("alice", "Archive")).get(mid[u[0]], [])) == 1 and
              len(by_mid(dc.server_state("alice", "Trash")).get(mid[u[1]], [])) == 1,
              "%s each arrived once in its folder" % label)
        for f in ("INBOX", "Archive", "Trash"):
            compare_local(dc, db, f, label + " first device")

        # Another client marks one message \Deleted and leaves it.
        c = dc.client("alice")
        c.select("INBOX")
        c.uid("STORE", str(u[2]), "+FLAGS", "(\\Deleted)")
        c.logout()
        r = st.run_sim_offline(db, ["move INBOX %d Archive" % u[3]])
        st.run_sim(dc, db, ["sync"])
        s_inbox = dc.server_state("alice", "INBOX")
        check("\\Deleted" in s_inbox.get(u[2], {}).get("flags", []) and
              "\\Deleted" in s_inbox.get(u[3], {}).get("flags", []),
              "%s another client's mark: nothing expunged, both stay marked (%s, %s)" % (
                  label, s_inbox.get(u[2], {}).get("flags"), s_inbox.get(u[3], {}).get("flags")))
        check(len(by_mid(dc.server_state("alice", "Archive")).get(mid[u[3]], [])) == 1,
              "%s the move's copy is in Archive once" % label)
        st.run_sim(dc, db2, ["sync"])
        for f in ("INBOX", "Archive", "Trash"):
            compare_local(dc, db, f, label + " first device")
            compare_local(dc, db2, f, label + " second device")
        local = local_by_uid(db2, "INBOX")
        check("\\Deleted" in local.get(u[3], {}).get("flags", []),
              "%s the second device shows the marked original as marked" % label)


def courier_repeated_create(work):
    """Courier answers a CREATE of a folder that exists (one a killed
    session already sent) with a plain NO, no [ALREADYEXISTS]: the mkdir
    is judged by what the server then lists, so it is done, not failed.
    Skipped when scripts/fetch-imapd has not unpacked Courier."""
    import imap_servers
    from fake_imap import run_sim_at
    label = "[Courier repeated CREATE]"
    try:
        srv = imap_servers.Courier()
    except imap_servers.ServerUnavailable as e:
        print("SKIP %s: %s" % (label, e))
        return
    with srv:
        db = os.path.join(work, "courier-create")
        r = run_sim_at(srv.host, srv.port, db, ["sync"], password=srv.password,
                       timeout_ms=10000)
        check(r.returncode == 0, "%s first sync: %s" % (label, r.stderr[-300:]))
        name = srv.folder("Projects")
        st.run_sim_offline(db, ['mkdir "%s"' % name])
        c = srv.client()   # the CREATE the killed session had sent
        c.create(name)
        c.logout()
        r = run_sim_at(srv.host, srv.port, db, ["sync", "queue"], password=srv.password,
                       timeout_ms=10000)
        q = r.json[1] if r.json and len(r.json) == 2 else {}
        check(q.get("pending") == 0 and q.get("failed") == 0,
              "%s the mkdir is done, not failed: %s" % (label, q.get("entries")))
        c = srv.client()
        typ, data = c.list('""', name)
        c.logout()
        check(typ == "OK" and data and data[0] and name.encode() in data[0],
              "%s the folder is on the server once: %s" % (label, data))
        r = st.run_sim_offline(db, ["folders"])
        names = [f.get("name") for f in (r.json[0].get("folders", []) if r.json else [])]
        check(name in names, "%s and in the store: %s" % (label, names))


def kill_test(work, runs):
    label = "[kill]"
    rnd = random.Random(int(os.environ.get("SATCHEL_SEED", "1234")))
    print("kill test: %d runs, seed %s" % (runs, os.environ.get("SATCHEL_SEED", "1234")))
    with st.Dovecot(profile="full") as dc:
        dc.load_mailset()
        total0 = sum(len(dc.server_state("alice", f)) for f in ("INBOX", "Archive", "Trash"))
        mids0 = set()
        for f in ("INBOX", "Archive", "Trash"):
            mids0 |= {m["message_id"] for m in dc.server_state("alice", f).values()}
        pw = os.path.join(dc.tmp, "secrets", "kill.pw")
        os.makedirs(os.path.dirname(pw), mode=0o700, exist_ok=True)
        with open(os.open(pw, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as fh:
            fh.write(dc.users["alice"])
        base = [st.satchel_sim_path(), "--server", "127.0.0.1:%d" % dc.imaps_port,
                "--ca", dc.ca_file, "--user", "alice", "--password-file", pw, "--json"]
        for run in range(runs):
            db = os.path.join(work, "kill-%d" % run)
            subprocess.run(base + ["--db", db, "-c", "sync"], check=True,
                           stdout=subprocess.DEVNULL)
            inbox = sorted(local_by_uid(db, "INBOX"))
            cmds = []
            for i in range(40):
                u = inbox[(run * 7 + i * 3) % len(inbox)]
                cmds.append(rnd.choice([
                    "flag INBOX %d +\\Flagged" % u, "flag INBOX %d +$Label%d" % (u, run),
                    "move INBOX %d Archive" % u, "delete INBOX %d" % u]))
            # Record, killed at a random moment.
            p = subprocess.Popen(base + ["--db", db, "--offline", "-c", "; ".join(cmds)],
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            time.sleep(rnd.uniform(0, 0.05))
            p.send_signal(signal.SIGKILL)
            outp, _ = p.communicate()
            acked = [c for c, line in zip(cmds, outp.decode().splitlines())
                     if '"ok":true' in line]
            # The store opens, and every acknowledged change is there.
            r = st.run_sim_offline(db, ["queue", "folders"], check=False)
            check(r.returncode == 0, "%s run %d: store opens after kill" % (label, run))
            flagged_local = {m["uid"] for m in local_by_uid(db, "INBOX").values()
                             if "\\Flagged" in m["flags"]}
            lost = [c for c in acked if c.startswith("flag INBOX") and "\\Flagged" in c and
                    int(c.split()[2]) not in flagged_local and
                    not any(x.split()[2] == c.split()[2] and x.split()[0] in ("move", "delete")
                            for x in acked)]
            check(not lost, "%s run %d: acknowledged changes lost: %s" % (label, run, lost[:3]))
            # Replay, killed at a random moment, then replay to the end.
            p = subprocess.Popen(base + ["--db", db, "-c", "sync"], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
            time.sleep(rnd.uniform(0, 0.25))
            p.send_signal(signal.SIGKILL)
            p.wait()
            r = subprocess.run(base + ["--db", db, "-c", "sync; queue"], capture_output=True)
            check(r.returncode == 0, "%s run %d: replay after kill: %s" % (
                label, run, r.stdout[-300:]))
            # No message duplicated or lost on the server.
            counts = collections.Counter()
            total = 0
            for f in ("INBOX", "Archive", "Trash"):
                s = dc.server_state("alice", f)
                total += len(s)
                counts.update(m["message_id"] for m in s.values())
            dups = [k for k, v in counts.items() if v > 1]
            check(not dups and total == total0 and set(counts) == mids0,
                  "%s run %d: server has %d messages (want %d), duplicates %s" % (
                      label, run, total, total0, dups[:3]))
            srv_flagged = {m["message_id"] for f in ("INBOX", "Archive", "Trash")
                           for m in dc.server_state("alice", f).values()
                           if "\\Flagged" in m["flags"]}
            inbox_mid = {m["uid"]: m for m in local_by_uid(db, "INBOX").values()}
            del inbox_mid
            want = [c for c in acked if c.startswith("flag INBOX") and "\\Flagged" in c]
            srv_inbox = dc.server_state("alice", "INBOX")
            mids_by_uid = {u: m["message_id"] for u, m in srv_inbox.items()}
            missing = [c for c in want if int(c.split()[2]) in mids_by_uid and
                       mids_by_uid[int(c.split()[2])] not in srv_flagged]
            check(not missing, "%s run %d: acknowledged flags missing on server: %s" % (
                label, run, missing[:3]))
            # Put the mailbox back for the next run: everything into INBOX.
            for f in ("Archive", "Trash"):
                s = dc.server_state("alice", f)
                if s:
                    dc.move("alice", f, sorted(s), "INBOX")
            s = dc.server_state("alice", "INBOX")
            dc.store_flags("alice", "INBOX", sorted(s), "-", ["\\Flagged", "\\Deleted"])
            total0 = sum(len(dc.server_state("alice", f)) for f in ("INBOX", "Archive", "Trash"))


def main():
    long_mode = os.environ.get("SATCHEL_LONG") == "1"
    with tempfile.TemporaryDirectory(prefix="satchel-test-queue-") as work:
        scenario("move", 0, work)
        scenario("uidplus-no-move", CAP_MOVE, work)
        scenario("neither", CAP_MOVE | CAP_UIDPLUS, work)
        two_devices(work)
        refused_create(work)
        deleted_rule(work)
        courier_repeated_create(work)
        kill_test(work, 50 if long_mode else 5)
    return check.report()


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""firmware_kill: QEMU is SIGKILLed at random moments while the device
syncs, and while it replays offline changes.  After every kill the store
must open; at the end one sync must converge on the server (imaplib), with
every offline change applied exactly once: nothing lost, nothing invented.

Kills: 5 during syncs (each with new mail to fetch) and 5 during replays
(each of three new offline changes); 20 of each with SATCHEL_LONG=1.
The seed is printed; SATCHEL_SEED=N repeats a run."""
import os
import random
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fwlib  # noqa: E402

st = fwlib.st
check = st.Checks()
LONG = os.environ.get("SATCHEL_LONG") == "1"
KILLS = 20 if LONG else 5


def boot_ok(work, label):
    dev = fwlib.Device(work)
    check(b"cannot open" not in dev.boot_log, "%s: the store opens: %r" % (
        label, dev.boot_log[-200:]))
    return dev


def kill_during(work, cmd, rng, label, max_s):
    dev = boot_ok(work, label)
    dev.send(cmd.encode() + b"\r")
    deadline = time.time() + rng.uniform(0.05, max_s)
    while time.time() < deadline:
        dev._read_some(max(0.0, deadline - time.time()))
    done = b"\r\n" + fwlib.PROMPT in dev.out
    dev.kill()
    return done


def everything(dc):
    """{Message-ID: (folder, flags)} over every folder, and the count of
    messages (a duplicate would show as count > len)."""
    out, n = {}, 0
    for folder in fwlib.server_folders(dc):
        for uid, m in dc.server_state("alice", folder).items():
            out[m["message_id"]] = (folder, sorted(m["flags"]))
            n += 1
    return out, n


def main():
    seed = int(os.environ.get("SATCHEL_SEED") or random.randrange(1, 1 << 31))
    print("seed %d (SATCHEL_SEED=%d repeats this run), %d kills per phase" % (
        seed, seed, KILLS))
    rng = random.Random(seed)
    tmp = tempfile.mkdtemp(prefix="satchel-fw-kill-")
    with st.Dovecot() as dc:
        dc.load_mailset("alice")
        base = st.load_mailset()["INBOX"]
        dc.add_messages("alice", "INBOX", st.synth_messages(500, base))
        work = os.path.join(tmp, "dev")
        fwlib.write_config(work, dc)

        # Phase 1: kills during the initial sync, then during syncs that
        # each have 60 new messages to fetch.
        finished = 0
        for i in range(KILLS):
            if i > 0:
                dc.add_messages("alice", "INBOX", st.synth_messages(
                    60, base, domain="round%d.satchel.test" % i))
            finished += kill_during(work, "sync", rng, "sync kill %d" % i,
                                    4.0 if i == 0 else 1.5)
        print("sync kills: %d, %d of them after the sync had finished" % (KILLS, finished))
        with boot_ok(work, "after sync kills") as dev:
            r = dev.jcmd("sync", timeout=600)
            check(r.get("ok") is True, "sync after kills: %s" % str(r)[:300])
            for folder in fwlib.server_folders(dc):
                fwlib.compare_folder(check, dc, dev, folder, "after sync kills")

            before, count = everything(dc)
        inbox = dc.server_state("alice", "INBOX")
        pool = rng.sample(sorted(inbox), 3 * KILLS)
        model = dict(before)

        # Phase 2: each round records three offline changes (a model of what
        # the server must show follows them), then a sync replays the queue
        # and is killed at a random moment.
        finished = k = 0
        for i in range(KILLS):
            with boot_ok(work, "recording %d" % i) as dev:
                dev.jcmd("offline")
                for uid in pool[3 * i:3 * i + 3]:
                    mid = inbox[uid]["message_id"]
                    folder, flags = model[mid]
                    if k % 3 != 1:
                        r = dev.jcmd("flag INBOX %d +\\Flagged" % uid)
                        check(r.get("ok") is not False, "flag: %s" % r)
                        flags = sorted(set(flags) | {"\\Flagged"})
                    if k % 3 != 0:
                        dest = "Archive" if k % 2 else "Lists/Dev"
                        r = dev.jcmd("move INBOX %d %s" % (uid, dest))
                        check(r.get("ok") is not False, "move: %s" % r)
                        folder = dest
                    model[mid] = (folder, flags)
                    k += 1
                q = dev.jcmd("queue")
                check(q.get("pending", 0) > 0, "changes queued: %s" % str(q)[:200])
            finished += kill_during(work, "sync", rng, "replay kill %d" % i, 1.5)
        print("replay kills: %d, %d of them after the sync had finished" % (KILLS, finished))
        with boot_ok(work, "after replay kills") as dev:
            r = dev.jcmd("sync", timeout=600)
            check(r.get("ok") is True, "sync after replay kills: %s" % str(r)[:300])
            q = dev.jcmd("queue")
            after, n = everything(dc)
            check(q.get("pending") == 0, "queue replayed: %s" % str(q)[:300])
            # A kill after the server applied a flag change and the move
            # queued after it, but before the device recorded either, makes
            # the retried flag change find its message gone ("no longer on
            # the server") although the server shows it applied.  That is
            # the replay engine's (the change should follow its own move);
            # here it must at least never be a change that did not land.
            inbox_ids = {v["message_id"]: k for k, v in inbox.items()}
            spurious = 0
            for e in q.get("entries", []):
                if e.get("state") != "failed":
                    continue
                mid = next((m for m, u in inbox_ids.items() if u == e.get("uid")), None)
                landed = (e.get("op") == "flag" and mid is not None and
                          after.get(mid) == model.get(mid))
                check(landed, "failed queue entry whose change did not land: %s" % e)
                spurious += landed
            if spurious:
                print("note: %d flag changes reported failed although the server "
                      "shows them applied (replay after a kill; see the comment)" % spurious)
            check(n == count, "no message lost or duplicated: %d vs %d" % (n, count))
            wrong = [(mid, after.get(mid), want) for mid, want in model.items()
                     if after.get(mid) != want]
            check(not wrong, "server equals the model: %d differ, e.g. %s" % (
                len(wrong), wrong[:3]))
            for folder in fwlib.server_folders(dc):
                fwlib.compare_folder(check, dc, dev, folder, "after replay kills")
    return check.report()


if __name__ == "__main__":
    sys.exit(main())

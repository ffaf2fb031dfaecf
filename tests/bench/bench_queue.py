"""Offline queue benchmark: 1,000 mixed offline operations over several
folders, replayed in one sync.  Prints the round trips, commands and bytes
of the replaying session against the number of operations, and checks the
server state against a model, message by message (by Message-ID: folder
and flags).  Exit status 1 if the server state differs.

Usage: python3 tests/bench/bench_queue.py [--ops 1000] [--seed 7]
"""
import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import satchel_test as st  # noqa: E402

FOLDERS = ["INBOX", "Archive", "Lists/Dev", "Junk", "Sent"]
FLAGS = ["\\Seen", "\\Flagged", "\\Answered", "$Label1", "$Label2"]


class Sim:
    """satchel-sim driven over stdin, one JSON line per command."""

    def __init__(self, args):
        self.p = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, bufsize=1)

    def cmd(self, line):
        self.last = line
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()
        return json.loads(self.p.stdout.readline())

    def close(self):
        self.p.stdin.close()
        self.p.wait(timeout=60)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ops", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    rnd = random.Random(a.seed)
    with tempfile.TemporaryDirectory(prefix="satchel-bench-queue-") as work, \
            st.Dovecot(profile="full") as dc:
        dc.load_mailset()
        db = os.path.join(work, "db")
        st.run_sim(dc, db, ["sync"])
        # The model: message-id -> [folder, local uid, set(flags)]
        model = {}
        for f in FOLDERS + ["Trash"]:
            for u, m in dc.server_state("alice", f).items():
                model[m["message_id"]] = [f, u, set(m["flags"])]
        folders = list(FOLDERS) + ["Trash"]
        sim = Sim([st.satchel_sim_path(), "--db", db, "--offline", "--json"])
        counts = {"flag": 0, "move": 0, "delete": 0, "mkdir": 0}
        t0 = time.monotonic()
        for i in range(a.ops):
            kind = rnd.choices(["flag", "move", "delete", "mkdir"], [70, 20, 9, 1])[0]
            if kind == "mkdir":
                name = "Project%d" % (len(folders) - len(FOLDERS))
                r = sim.cmd("mkdir %s" % name)
                assert r["ok"], (sim.last, r)
                folders.append(name)
                counts[kind] += 1
                continue
            live = [k for k, v in model.items() if v is not None]
            mid = rnd.choice(live)
            folder, uid, flags = model[mid]
            q = st.imap_quote(folder)
            if kind == "flag":
                fl = rnd.choice(FLAGS)
                sign = "-" if fl in flags and rnd.random() < 0.6 else "+"
                r = sim.cmd("flag %s %d %s%s" % (q, uid, sign, fl))
                assert r["ok"], (sim.last, r)
                (flags.add if sign == "+" else flags.discard)(fl)
            elif kind == "move":
                dest = rnd.choice([f for f in folders if f != folder])
                r = sim.cmd("move %s %d %s" % (q, uid, st.imap_quote(dest)))
                assert r["ok"], (sim.last, r)
                model[mid] = [dest, r["new_uid"], flags]
            else:
                r = sim.cmd("delete %s %d" % (q, uid))
                assert r["ok"], (sim.last, r)
                model[mid] = ["Trash", r["new_uid"], flags] if r["to_trash"] else None
            counts[kind] += 1
        record_s = time.monotonic() - t0
        q = sim.cmd("queue")
        sim.close()
        print("recorded %d operations offline in %.2f s (%s); the queue holds %d "
              "entries after coalescing" % (a.ops, record_s, ", ".join(
                  "%d %s" % (v, k) for k, v in counts.items()), q["pending"]))

        t0 = time.monotonic()
        r = st.run_sim(dc, db, ["sync", "queue", "stats"], timeout=600)
        wall = time.monotonic() - t0
        sync, queue = r.json[0], r.json[1]
        print("replay + sync: %d replayed, %d failed, %d round trips, %d commands, "
              "%d bytes out, %d bytes in, %.2f s" % (
                  sync["replayed"], sync["replay_failed"], sync["round_trips"],
                  sync["commands"], sync["bytes_out"], sync["bytes_in"], wall))
        # Round trips of the replay alone: a sync with nothing queued costs
        # the rest.
        r2 = st.run_sim(dc, db, ["sync"])
        base = r2.json[0]["round_trips"]
        print("  a sync with an empty queue takes %d round trips: the replay of %d "
              "operations took %d" % (base, a.ops, sync["round_trips"] - base))

        # The server, message by message.
        bad = 0
        server = {}
        for f in folders:
            try:
                s = dc.server_state("alice", f)
            except Exception:
                s = {}
            for m in s.values():
                if m["message_id"] in server:
                    bad += 1
                    print("  duplicate on server:", m["message_id"])
                server[m["message_id"]] = (f, set(m["flags"]))
        for mid, v in model.items():
            want = None if v is None else (v[0], v[2])
            got = server.get(mid)
            if want != got:
                bad += 1
                if bad <= 5:
                    print("  differs: %s want %s got %s" % (mid, want, got))
        print("server state vs model: %d messages checked, %d differ; failed queue "
              "entries: %d, still pending: %d" % (len(model), bad, queue["failed"],
                                                  queue["pending"]))
        if queue["pending"]:
            print("  pending:", queue["entries"][:5])
        return 1 if bad or queue["failed"] or queue["pending"] else 0


if __name__ == "__main__":
    sys.exit(main())

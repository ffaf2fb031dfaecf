"""Two processes on one store.

Race 1, a change recorded while its message's queued change is in flight:
process A replays a queued keyword change for a message through a relay
that holds the server's answers back (a varied delay); process B records a
\\Flagged change for the same message offline, at a varied moment.  The
entry A sent is never modified, so B's change survives A's OK and reaches
the server on the next sync: the server ends with both.

Race 2, two syncs started together: moves are queued offline, then two
processes sync at once (varied offsets).  At most one syncs at a time (the
other says "store busy: another session is syncing (pid N)", or waits with
--sync-wait); every moved message lands in its destination exactly once.

Each race runs RACES times (50 by default); the seed is printed.
"""
import os
import random
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import satchel_test as st  # noqa: E402

check = st.Checks()
RACES = int(os.environ.get("SATCHEL_RACES", "50"))


class DelayRelay(st.Relay):
    """Relay to port that holds every server->client chunk back by
    self.delay seconds (changed between runs)."""

    chunk = 65536

    def __init__(self, port):
        self.delay = 0.0
        super().__init__(port)

    def shaper(self, n, to_client):
        delay = self.delay if to_client else 0.0
        if not delay:
            return None

        def shape(d):
            time.sleep(delay)
            return d, True
        return shape


def message(tag, i):
    return ("From: Race <race@example.org>\r\nSubject: race %s %d\r\n"
            "Message-ID: <race-%s-%d@example.org>\r\n\r\nbody %d\r\n" % (tag, i, tag, i, i)).encode()


def uid_of(dc, folder, mid):
    for uid, m in dc.server_state("alice", folder).items():
        if m["message_id"] == mid:
            return uid, m
    return None, None


def sim_args(dc, db, port, commands, extra=()):
    pw = os.path.join(dc.tmp, "secrets", "alice.pw")
    return [st.satchel_sim_path(), "--db", db, "--server", "127.0.0.1:%d" % port,
            "--security", "tls", "--ca", str(dc.ca_file), "--user", "alice",
            "--password-file", pw, "--json"] + list(extra) + ["-c", commands]


def race_inflight(dc, db, rnd):
    relay = DelayRelay(dc.imaps_port)
    lost = 0
    try:
        for i in range(RACES):
            mid = "<race-a-%d@example.org>" % i
            dc.append("alice", "RaceIn", message("a", i))
            st.run_sim(dc, db, ["sync RaceIn"])
            uid, _ = uid_of(dc, "RaceIn", mid)
            st.run_sim_offline(db, ["flag RaceIn %d +$RaceA" % uid])
            relay.delay = rnd.uniform(0.01, 0.08)
            a = subprocess.Popen(sim_args(dc, db, relay.port, "sync RaceIn"),
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            time.sleep(rnd.uniform(0, 8 * relay.delay))
            b = st.run_sim_offline(db, ["flag RaceIn %d +\\Flagged" % uid], check=False)
            a.communicate(timeout=60)
            check(b.returncode == 0, "race 1 #%d: offline change while a sync runs: %s" % (
                i, b.describe()[-300:]))
            st.run_sim(dc, db, ["sync RaceIn"])
            _, m = uid_of(dc, "RaceIn", mid)
            ok = m is not None and "$RaceA" in m["flags"] and "\\Flagged" in m["flags"]
            lost += not ok
            check(ok, "race 1 #%d (delay %.0f ms): server has both changes: %s" % (
                i, relay.delay * 1000, m and m["flags"]))
    finally:
        relay.close()
    q = st.run_sim_offline(db, ["queue"]).json[0]
    check(q["pending"] == 0 and q["failed"] == 0, "race 1: queue empty at the end: %s" % q)
    print("race 1: %d runs, %d lost changes" % (RACES, lost))


def race_two_syncs(dc, db, rnd):
    busy = dup = 0
    for i in range(RACES):
        mids = ["<race-b-%d@example.org>" % (2 * i + k) for k in range(2)]
        for k in range(2):
            dc.append("alice", "RaceIn", message("b", 2 * i + k))
        st.run_sim(dc, db, ["sync RaceIn"])
        for mid in mids:
            uid, _ = uid_of(dc, "RaceIn", mid)
            st.run_sim_offline(db, ["move RaceIn %d RaceOut" % uid])
        wait = ["--sync-wait", "20s"] if i % 2 else []
        procs = []
        for k in range(2):
            procs.append(subprocess.Popen(sim_args(dc, db, dc.imaps_port, "sync", wait),
                                          stdout=subprocess.PIPE, stderr=subprocess.PIPE))
            time.sleep(rnd.uniform(0, 0.03))
        outs = [p.communicate(timeout=60) for p in procs]
        for p, (out, err) in zip(procs, outs):
            text = out.decode(errors="replace")
            if p.returncode != 0:
                busy += 1
                check(not wait and "store busy: another session is syncing (pid " in text,
                      "race 2 #%d: a failed sync says the store is busy: %s" % (i, text[-300:]))
        st.run_sim(dc, db, ["sync"])
        out_state = dc.server_state("alice", "RaceOut")
        in_state = dc.server_state("alice", "RaceIn")
        for mid in mids:
            n_out = sum(1 for m in out_state.values() if m["message_id"] == mid)
            n_in = sum(1 for m in in_state.values() if m["message_id"] == mid)
            dup += n_out > 1
            check(n_out == 1 and n_in == 0, "race 2 #%d: %s once in RaceOut (%d) and gone "
                  "from RaceIn (%d)" % (i, mid, n_out, n_in))
    print("race 2: %d runs, %d syncs told the store was busy, %d duplicates" % (
        RACES, busy, dup))


def main():
    seed = int(os.environ.get("SATCHEL_SEED", random.randrange(1 << 30)))
    print("test_races: seed %d (SATCHEL_SEED=%d repeats this run)" % (seed, seed))
    rnd = random.Random(seed)
    work = tempfile.mkdtemp(prefix="satchel-races-")
    with st.Dovecot(profile="full") as dc:
        dc.create_folder("alice", "RaceIn")
        dc.create_folder("alice", "RaceOut")
        db = os.path.join(work, "db")
        st.run_sim(dc, db, ["sync"])
        race_inflight(dc, db, rnd)
        race_two_syncs(dc, db, rnd)
    return check.report()


if __name__ == "__main__":
    sys.exit(main())

"""Convergence: random schedules against real servers through a perturbing
proxy; after each, one quiet sync must leave the store equal to the server.

Servers: Dovecot in its three profiles (QRESYNC, CONDSTORE only, neither),
Cyrus IMAP 3.6 and Courier IMAP (tests/lib/imap_servers.py; Cyrus and
Courier are skipped with a message when scripts/fetch-imapd has not
unpacked them).  satchel-sim talks plain IMAP (--security none) to
tests/lib/imap_proxy.py, which talks TLS (Dovecot) or plain (Cyrus,
Courier) to the server and reorders, interleaves, injects, splits, delays
and cuts as RFC 9051 / RFC 7162 allow.

A schedule (all choices from random.Random(seed)):
  1. a fresh account state: INBOX, A, B and Trash with a few messages each
     (unique Message-IDs, random flags);
  2. device 1 syncs through the proxy (maybe cut, maybe killed);
  3. offline changes on device 1: flags, moves, deletes, a new folder;
  4. another client changes flags, expunges, delivers and moves -- some of
     it on the messages device 1 changed (those changes must then fail
     with a reason);
  5. sometimes a second device syncs, changes other messages offline, and
     replays;
  6. device 1 reconnects 1-3 times through the proxy, with cuts, SIGKILLs
     at random moments (after a random number of bytes sent to the device,
     200 B to 40 KB, so that they land inside syncs however fast) and
     restarts, sometimes while the other client
     expunges and delivers meanwhile (then injection is off, and EXPUNGE /
     VANISHED come from the server itself);
  7. one quiet sync of every device.
Then: every folder, UID, flag and size in each store equals what imaplib
reads from the server; no device was refused at login (every server has
its own password, so that is how a device that reached another lane's
server shows); the server holds no Message-ID twice; nothing is
left pending; every acknowledged offline change is applied, or on the
failed list with a reason when another client removed its message.

Every schedule prints nothing unless it fails; the run prints its base
seed, and every failure prints its seed.  Replay one schedule with
  python3 tests/integration/test_converge.py --seed N
(the server is SERVERS[N % 6]; --server NAME overrides).  Count: 300 by
default, 10,000 with SATCHEL_LONG=1, or SATCHEL_CONVERGE_COUNT=N.
"""
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import satchel_test as st  # noqa: E402
import imap_servers  # noqa: E402
import imap_proxy  # noqa: E402
from imap_proxy import PerturbingProxy  # noqa: E402

check = st.Checks()
# Seeds that diverged once, replayed first in every default run: (seed,
# server, what it found).  Replays follow the same choices; thread timing
# may move a kill or a cut a little.
REGRESSIONS = (
    (38749000003, "courier",
     "reconcile deleted stored UIDs listed out of order (fault 1)"),
    (90477200005, "dovecot-full",
     "move of a message another client moved away counted as done (fault 9)"),
    (46296100000, "dovecot-none",
     "move of an expunged message counted as done after a kill (fault 9)"),
    (216271200107, "dovecot-plain",
     "without MOVE and UIDPLUS, a delete only marked \\Deleted left the store "
     "without the server's original"),
    (401213000656, "dovecot-condstore",
     "CONDSTORE resume skipped the expunge count below U (a replayed move "
     "landed above U)"),
    (411424800352, "courier",
     "a refused CREATE's reason, left over, read as the next batch's "
     "UIDVALIDITY failure: its changes failed unchecked and their messages "
     "were deleted from the store"),
)
SERVER_INDEX = {n: i for i, n in enumerate(imap_servers.SERVERS)}
FLAGS = ("\\Seen", "\\Flagged", "\\Answered", "$Label1")
OURS = ("A", "B")


def q(name):
    return st.imap_quote(st.imap_utf7_encode(name))


def make_message(seed, k, size_hint=0):
    body = "Body of message %d of schedule %d.\r\n" % (k, seed)
    body += "x" * size_hint
    return ("From: Sender %d <s%d@converge.test>\r\n"
            "To: alice@converge.test\r\n"
            "Subject: schedule %d message %d\r\n"
            "Date: Mon, 2 Nov 2026 10:%02d:00 +0000\r\n"
            "Message-ID: <s%d-m%d@converge.test>\r\n\r\n%s" % (
                k, k, seed, k, k % 60, seed, k, body)).encode()


class Account:
    """The test account on one server, driven through imaplib."""

    def __init__(self, server):
        self.server = server

    def reset(self, rng, seed):
        """Empty the account and fill INBOX, A, B, Trash afresh."""
        sv = self.server
        c = sv.client()
        try:
            typ, data = c.list('""', '"*"')
            names = []
            for item in data:
                if not item:
                    continue
                m = re.match(rb'\(([^)]*)\) (NIL|"[^"]*") (.*)$', item)
                if m:
                    n = m.group(3)
                    names.append(st.imap_utf7_decode(n.strip(b'"')))
            keep = {sv.folder("INBOX"), sv.folder("Trash")}
            # deepest first, so that children go before parents
            for n in sorted(names, key=lambda x: -len(x)):
                if n in keep or n.upper() == "INBOX" or n in (sv.folder("A"), sv.folder("B")):
                    continue
                if n.split(sv.sep)[0] in ("Drafts", "Sent", "Junk", "Archive"):
                    keep.add(n)   # Dovecot's auto-created special-use folders
                    continue
                sv.delete_folder(c, n)
            for n in (sv.folder("Trash"), sv.folder("A"), sv.folder("B")):
                if n not in names:
                    c.create(q(n))
            self.next_k = 0
            self.seed = seed
            extra = [n for n in keep if n not in (sv.folder("INBOX"), sv.folder("Trash"))]
            for name in ["INBOX", "Trash", "A", "B"] + extra:
                f = sv.folder(name) if name not in extra else name
                typ, _ = c.select(q(f))
                if typ != "OK":
                    raise RuntimeError("cannot select %s" % f)
                typ, data = c.uid("SEARCH", "ALL")
                if data and data[0]:
                    c.uid("STORE", b",".join(data[0].split()).decode(), "+FLAGS.SILENT",
                          "(\\Deleted)")
                    c.expunge()
                c.close()
                n = {"INBOX": rng.randint(2, 18), "A": rng.randint(0, 12),
                     "B": rng.randint(0, 5), "Trash": rng.randint(0, 3)}.get(name, 0)
                for _ in range(n):
                    self.deliver(c, f, rng)
        finally:
            c.logout()

    def deliver(self, c, folder, rng):
        k = self.next_k
        self.next_k += 1
        fl = [x for x in FLAGS if rng.random() < 0.3]
        typ, data = c.append(q(folder), "(" + " ".join(fl) + ")" if fl else None, None,
                             make_message(self.seed, k, rng.choice((0, 0, 200, 3000))))
        if typ != "OK":
            raise RuntimeError("APPEND to %s: %r" % (folder, data))
        return "<s%d-m%d@converge.test>" % (self.seed, k)

    def folders(self, c):
        typ, data = c.list('""', '"*"')
        out = []
        for item in data:
            m = re.match(rb'\(([^)]*)\) (NIL|"[^"]*") (.*)$', item or b"")
            if m and b"\\noselect" not in m.group(1).lower():
                out.append(st.imap_utf7_decode(m.group(3).strip(b'"')))
        return out

    def state(self):
        """{folder: {uid: (flags tuple, size, message-id)}}"""
        c = self.server.client()
        out = {}
        try:
            for f in self.folders(c):
                typ, data = c.select(q(f), readonly=True)
                if typ != "OK":
                    continue
                msgs = {}
                if int(data[0]):
                    typ, data = c.uid("FETCH", "1:*",
                                      "(UID FLAGS RFC822.SIZE BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
                    for item in data:
                        if not isinstance(item, tuple):
                            continue
                        head = item[0]
                        uid = int(re.search(rb"UID (\d+)", head).group(1))
                        fm = re.search(rb"FLAGS \(([^)]*)\)", head)
                        flags = tuple(sorted(x for x in fm.group(1).decode().split()
                                             if x != "\\Recent"))
                        size = int(re.search(rb"RFC822\.SIZE (\d+)", head).group(1))
                        mid = st.header_value(item[1] or b"", "Message-ID")
                        msgs[uid] = (flags, size, mid.decode() if mid else None)
                out[f] = msgs
        finally:
            c.logout()
        return out

    def locate(self, state):
        """{message-id: [(folder, uid, flags)]}"""
        where = {}
        for f, msgs in state.items():
            for uid, (flags, _, mid) in msgs.items():
                where.setdefault(mid, []).append((f, uid, flags))
        return where

    def other_changes(self, rng, state, protect, log, allow_protected=True):
        """Another client: flags, expunges, deliveries and moves.  Returns
        the Message-IDs it removed from their folder."""
        sv = self.server
        removed = set()
        c = sv.client()
        try:
            for f, msgs in state.items():
                if f not in [sv.folder(x) for x in ("INBOX", "A", "B", "Trash")]:
                    continue
                if c.select(q(f))[0] != "OK":
                    continue
                for uid, (flags, _, mid) in sorted(msgs.items()):
                    if mid in protect and not allow_protected:
                        continue
                    x = rng.random()
                    if x < 0.12:
                        fl = rng.choice(FLAGS)
                        op = rng.choice("+-")
                        c.uid("STORE", str(uid), op + "FLAGS.SILENT", "(%s)" % fl)
                        log.append("other: %s %d %sFLAGS %s" % (f, uid, op, fl))
                    elif x < 0.17:
                        c.uid("STORE", str(uid), "+FLAGS.SILENT", "(\\Deleted)")
                        if "UIDPLUS" in sv_caps(c):
                            c.uid("EXPUNGE", str(uid))
                        else:
                            c.expunge()
                        removed.add(mid)
                        log.append("other: %s %d expunged" % (f, uid))
                    elif x < 0.21:
                        dest = sv.folder(rng.choice(("INBOX", "A", "B")))
                        if dest != f:
                            c.uid("COPY", str(uid), q(dest))
                            c.uid("STORE", str(uid), "+FLAGS.SILENT", "(\\Deleted)")
                            if "UIDPLUS" in sv_caps(c):
                                c.uid("EXPUNGE", str(uid))
                            else:
                                c.expunge()
                            removed.add(mid)
                            log.append("other: %s %d moved to %s" % (f, uid, dest))
                c.close()
            for _ in range(rng.randint(0, 4)):
                f = sv.folder(rng.choice(("INBOX", "INBOX", "A", "B")))
                mid = self.deliver(c, f, rng)
                log.append("other: delivered %s to %s" % (mid, f))
        finally:
            c.logout()
        return removed


def sv_caps(c):
    return {x.upper() for x in c.capabilities}


class Device:
    """One satchel-sim store, reaching the server through the proxy."""

    def __init__(self, work, name, server, proxy, quiet_proxy):
        self.db = os.path.join(work, name)
        self.server, self.proxy, self.quiet = server, proxy, quiet_proxy
        self.refused = []
        self.kills = [0, 0]          # planned, landed before the run ended
        # one file per server: each has its own password
        self.pwfile = os.path.join(work, "pw-" + server.name)
        if not os.path.exists(self.pwfile):
            fd = os.open(self.pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(server.password)

    def args(self, port, retries, timeout_ms):
        return [st.satchel_sim_path(), "--db", self.db,
                "--server", "127.0.0.1:%d" % port, "--security", "none",
                "--user", self.server.user, "--password-file", self.pwfile,
                "--json", "--retries", str(retries), "--timeout", str(timeout_ms),
                # the back-off logic is not under test here: keep cuts cheap
                "--backoff", "20"] + (
                    ["--disable-caps", str(self.server.client_disable_caps)]
                    if self.server.client_disable_caps else []) + (
                    ["--stack", os.environ["SATCHEL_STACK"]]
                    if os.environ.get("SATCHEL_STACK") else [])

    def run(self, commands, quiet=False, kill_after=None, kill_bytes=None, retries=2):
        """Run satchel-sim once.  kill_after: SIGKILL after that many
        seconds; kill_bytes: SIGKILL once the proxy has sent it that many
        bytes (a moment inside the sync on any machine).  Returns (rc, out,
        err), rc None when a kill landed before the run ended."""
        proxy = self.quiet if quiet else self.proxy
        a = self.args(proxy.port, 4 if quiet else retries, 20000 if quiet else 3000)
        a += ["-c", "; ".join(commands)]
        p = subprocess.Popen(a, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        planned = kill_after is not None or kill_bytes is not None
        if planned:
            self.kills[0] += 1
        if kill_bytes is not None:
            proxy.arm_kill(kill_bytes, lambda: p.send_signal(signal.SIGKILL))
        try:
            out, err = p.communicate(timeout=kill_after if kill_after is not None else 120)
            rc = p.returncode
        except subprocess.TimeoutExpired:
            p.send_signal(signal.SIGKILL)
            out, err = p.communicate()
            rc = p.returncode if kill_after is not None else -999
        finally:
            if kill_bytes is not None:
                proxy.disarm_kill()
        if planned and rc == -signal.SIGKILL:
            self.kills[1] += 1
            rc = None
        # Every lane's server has its own password: a refused login means
        # this device reached a server that is not its own.
        if b"login refused" in out or b"authentication failed" in out:
            self.refused.append(out.decode(errors="replace")[-300:])
        if os.environ.get("SATCHEL_CONVERGE_DEBUG"):
            print("   %.2f run %s%s: rc=%s %s %s" % (
                time.time() % 100, os.path.basename(self.db), " (quiet)" if quiet else "",
                "killed" if rc is None else rc,
                out.decode()[-int(os.environ.get("SATCHEL_CONVERGE_DEBUG")):],
                err.decode()[-300:]))
        return rc, out, err

    def offline(self, commands):
        r = st.run_sim_offline(self.db, commands, check=False)
        return r

    def dump(self):
        r = st.run_sim_offline(self.db, ["folders"], check=False)
        if r.returncode != 0 or not r.json:
            return None
        names = [f["name"] for f in r.json[0]["folders"] if f.get("selectable", True)]
        r2 = st.run_sim_offline(self.db, ["list %s 0 100000" % q(n) for n in names]
                                + ["queue"], check=False)
        out = {}
        for n, j in zip(names, r2.json):
            out[n] = {m["uid"]: (tuple(sorted(x for x in m["flags"] if x != "\\Recent")),
                                 m["size"]) for m in j.get("messages", [])}
        queue = r2.json[-1] if len(r2.json) == len(names) + 1 else None
        return out, queue


def compare_device(d, final):
    """Differences between a device's store and the server's state."""
    problems = []
    dump = d.dump()
    if dump is None:
        return ["%s: store unreadable" % d.db]
    local, queue = dump
    if sorted(local) != sorted(final):
        problems.append("%s folders %s != server %s" % (d.db, sorted(local), sorted(final)))
    for f in final:
        lm = local.get(f, {})
        sm = {u: (v[0], v[1]) for u, v in final[f].items()}
        if lm != sm:
            miss = sorted(set(sm) - set(lm))
            extra = sorted(set(lm) - set(sm))
            diff = [(u, lm[u], sm[u]) for u in set(lm) & set(sm) if lm[u] != sm[u]]
            problems.append("%s %s: missing %d %s extra %s differ %s" % (
                d.db, f, len(miss), miss[:8], extra[:8], diff[:4]))
    if queue is None or queue.get("pending"):
        problems.append("%s: queue not drained: %s" % (d.db, queue))
    return problems


def harness_faults(devs, proxies):
    """What the harness itself got wrong: a device refused at login (it
    reached another lane's server: every server has its own password), or a
    proxy thread that failed."""
    out = []
    for d in devs:
        for r in d.refused:
            out.append("WRONG SERVER: %s was refused at login, so it reached a server "
                       "other than %s: %s" % (d.db, d.server.name, r))
    for p in proxies:
        for r in p.refused:
            out.append("WRONG SERVER: proxy %d -> %s:%d saw a login refused: %s" % (
                p.port, p.up_host, p.up_port, r))
        for e in p.errors:
            out.append("proxy %d thread failed: %s" % (p.port, e))
    return out


def wrong_server_canary(a, b, work):
    """The harness's own check that a device reaching another lane's server
    is caught: a device of server a sent through a proxy to server b must
    be refused at login and named by harness_faults."""
    up_ctx = b.ssl_context if b.upstream_tls else None
    proxy = PerturbingProxy(b.host, b.port, 1, ssl_context=up_ctx, perturb=False)
    try:
        d = Device(work, "canary", a, proxy, proxy)
        rc, out, _ = d.run(["sync"], quiet=True)
    finally:
        proxy.close()
    faults = harness_faults([d], (proxy,))
    # the canary's refusal is expected: take it back out of the run's record
    del imap_proxy.REFUSED[:]
    subprocess.run(["rm", "-rf", d.db])
    print("wrong-server canary: a %s device through a proxy to %s: rc=%s, %d faults named" % (
        a.name, b.name, rc, len(faults)))
    return rc != 0 and any(f.startswith("WRONG SERVER") for f in faults)


BIG_MODES = ("cut", "kill", "disk")
BIG_SERVERS = ("dovecot-full", "dovecot-condstore", "dovecot-none", "dovecot-plain")


def big_mode(seed):
    """A big first sync's mode; its server is BIG_SERVERS[seed % 4], so any
    twelve consecutive seeds cover every Dovecot way in every mode."""
    return BIG_MODES[(seed // len(BIG_SERVERS)) % len(BIG_MODES)]


def big_first_sync(seed, server, work, nmsg, stats):
    """Cut anywhere: the first sync of a folder of nmsg messages, through
    the perturbing proxy, that is cut once at a random byte offset (150 KB
    to about what the sync sends), SIGKILLed once a random number of bytes (same
    range) has reached the device, or runs on a disk that fills up (a small
    tmpfs, filled but for 16 KB to about the store's size); after a full
    disk the store must check clean (while still full, it may instead say
    it cannot open for a full disk).  Then, space freed, one quiet sync,
    and the store must equal the server."""
    rng = random.Random(seed)
    up_ctx = server.ssl_context if server.upstream_tls else None
    mode = big_mode(seed)
    # the folder's first sync sends about 520 bytes a message to the device
    point = rng.randrange(150000, max(150001, nmsg * 500))
    leave = rng.randrange(16 << 10, nmsg * 400)
    problems = []
    fs = None
    if mode == "disk":
        if not st.Tmpfs.usable():
            print("seed %d %s big first sync on a full disk: SKIPPED (needs root to "
                  "mount a small tmpfs)" % (seed, server.name))
            return True
        fs = st.Tmpfs(os.path.join(work, "tmpfs-%d" % seed), 16 << 20)
        work = fs.path
    proxy = PerturbingProxy(server.host, server.port, seed, ssl_context=up_ctx,
                            cut_once=point if mode == "cut" else None)
    quiet = PerturbingProxy(server.host, server.port, seed, ssl_context=up_ctx,
                            perturb=False)
    d = None
    try:
        d = Device(work, "big-%d" % seed, server, proxy, quiet)
        if fs:
            fs.fill(leave=leave)
        rc0, out0, err0 = d.run(["sync"], kill_bytes=point if mode == "kill" else None,
                                retries=0 if mode == "cut" else 2)
        if mode == "cut":
            landed = proxy.cuts > 0
            what = "cut at %d bytes" % point
        elif mode == "kill":
            landed = rc0 is None
            what = "killed after %d bytes" % point
        else:
            text = (out0 + err0).lower()
            landed = rc0 != 0 and b"disk full" in text
            what = "disk full with %d KB left" % (leave >> 10)
            if rc0 != 0 and not landed:
                problems.append("the sync on a full disk failed without saying disk full: "
                                "rc=%s %s" % (rc0, (out0 + err0)[-300:]))
            if os.path.exists(os.path.join(d.db, "data.mdb")):
                # Still full: the store opens and checks clean, or says it
                # cannot for a full disk (a store whose first transaction
                # never committed has tables to create: seed 920490044,
                # 22 KB left).  Freed: it checks clean before any new sync.
                r = st.run_sim_offline(d.db, ["store check"], check=False)
                if r.returncode != 0 and "disk full" not in (r.stdout + r.stderr).lower():
                    problems.append("on the full disk the store neither checks clean nor "
                                    "says disk full: %s" % r.describe()[-400:])
                fs.free()
                r = st.run_sim_offline(d.db, ["store check"], check=False)
                if r.returncode != 0:
                    problems.append("after the disk filled and space was freed the store does "
                                    "not check clean: %s" % r.describe()[-400:])
            fs.free()
        if not landed:
            what += " (the sync ended first)"
        stats["big_" + mode] = stats.get("big_" + mode, 0) + 1
        stats["big_" + mode + "_landed"] = stats.get("big_" + mode + "_landed", 0) + landed
        rc, out, err = d.run(["sync"], quiet=True)
        if rc != 0:
            problems.append("quiet sync failed rc=%s: %s" % (rc, out[-300:]))
        problems += compare_device(d, Account(server).state())
    finally:
        proxy.close()
        quiet.close()
        if d is not None:
            subprocess.run(["rm", "-rf", d.db])
        if fs:
            fs.close()
    problems += harness_faults([d] if d else [], (proxy, quiet))
    if problems:
        print("DIVERGED: big first sync, seed %d on %s, %s (replay: --big --seed %d "
              "--server %s)" % (seed, server.name, what, seed, server.name))
        for p in problems[:8]:
            print("  !", p)
    print("seed %d %s big first sync (%d messages, %s) %s" % (
        seed, server.name, nmsg, what, "DIVERGED" if problems else "ok"), flush=True)
    return not problems


def kill_point(rng):
    """Where a kill lands: after 200 B to 40 KB sent to the device (log-
    uniform), so that it falls inside syncs of every size.  (A kill after a
    random time, as before, missed almost every sync once syncs took 20 ms.)
    One draw from rng, as the time it replaces."""
    return int(10 ** rng.uniform(2.3, 4.6))


def killed(kill, rc):
    if kill is None:
        return ""
    return " killed after %d bytes" % kill if rc is None else (
        " (kill at %d bytes: the run ended first, rc=%s)" % (kill, rc))


def offline_ops(rng, dev, server, dstate, taken):
    """Random offline changes on messages of the device's store not in
    `taken`.  Returns [(op dict)], acknowledged ones only."""
    cands = []
    for f, msgs in dstate.items():
        for uid in msgs:
            cands.append((f, uid))
    rng.shuffle(cands)
    ops, cmds = [], []
    n = rng.randint(0, 7)
    for f, uid in cands:
        if len(ops) >= n:
            break
        if (f, uid) in taken:
            continue
        taken.add((f, uid))
        x = rng.random()
        if x < 0.55:
            fl = rng.choice(FLAGS)
            # a change, never a no-op (those queue nothing, so cannot fail)
            sign = "-" if fl in dstate[f][uid][0] else "+"
            ops.append({"op": "flag", "folder": f, "uid": uid, "flag": fl, "sign": sign})
            cmds.append("flag %s %d %s%s" % (q(f), uid, sign, fl))
        elif x < 0.85:
            dests = [d for d in dstate if d != f]
            if not dests:
                continue
            d = rng.choice(dests)
            ops.append({"op": "move", "folder": f, "uid": uid, "dest": d})
            cmds.append("move %s %d %s" % (q(f), uid, q(d)))
        else:
            ops.append({"op": "delete", "folder": f, "uid": uid})
            cmds.append("delete %s %d" % (q(f), uid))
    if rng.random() < 0.1:
        name = server.folder("New%d" % rng.randint(0, 99))
        ops.append({"op": "mkdir", "folder": name})
        cmds.append("mkdir %s" % q(name))
    if not cmds:
        return []
    r = dev.offline(cmds)
    acked = []
    for o, j in zip(ops, r.json):
        if j.get("ok", True) and "error" not in j:
            acked.append(o)
    return acked


def run_schedule(seed, server, acct, work, stats):
    rng = random.Random(seed)
    log = ["seed %d on %s" % (seed, server.name)]
    acct.reset(rng, seed)
    up_ctx = server.ssl_context if server.upstream_tls else None
    proxy = PerturbingProxy(server.host, server.port, seed, ssl_context=up_ctx,
                            cut_prob=rng.choice((0, 0.2, 0.5)),
                            cut_max=rng.choice((3000, 20000, 80000)))
    quiet = PerturbingProxy(server.host, server.port, seed, ssl_context=up_ctx,
                            perturb=False)
    devs = []
    problems = []
    try:
        d1 = Device(work, "dev1-%d" % seed, server, proxy, quiet)
        devs.append(d1)
        # 2. first sync, perturbed, maybe killed
        kill = kill_point(rng) if rng.random() < 0.2 else None
        rc, _, _ = d1.run(["sync"], kill_bytes=kill)
        log.append("dev1 first sync%s" % (killed(kill, rc)))
        if rng.random() < 0.5:
            d1.run(["sync"])
        dump = d1.dump()
        if dump is None:
            # a kill before the store existed: start it properly
            d1.run(["sync"], quiet=True)
            dump = d1.dump()
        dstate = dump[0] if dump else {}
        # map the device's view to Message-IDs through the server's UIDs
        before = acct.state()
        taken = set()
        ops1 = offline_ops(rng, d1, server, dstate, taken)
        for o in ops1:
            o["mid"] = before.get(o["folder"], {}).get(o.get("uid"), (None, None, None))[2]
        log.append("dev1 offline: %s" % ops1)
        # 4. the other client, before device 1 comes back
        removed = set()
        if rng.random() < 0.7:
            removed = acct.other_changes(rng, before, {o.get("mid") for o in ops1}, log)
        # 5. a second device
        d2 = ops2 = None
        if rng.random() < 0.3:
            d2 = Device(work, "dev2-%d" % seed, server, proxy, quiet)
            devs.append(d2)
            d2.run(["sync"], quiet=True)
            dump2 = d2.dump()
            mids1 = {o.get("mid") for o in ops1}
            st2 = acct.state()
            t2 = {(f, u) for f, msgs in st2.items() for u, v in msgs.items()
                  if v[2] in mids1 or v[2] in removed}
            ops2 = offline_ops(rng, d2, server, dump2[0] if dump2 else {}, t2)
            for o in ops2:
                o["mid"] = st2.get(o["folder"], {}).get(o.get("uid"), (None, None, None))[2]
            log.append("dev2 offline: %s" % ops2)
            kill = kill_point(rng) if rng.random() < 0.2 else None
            rc, _, _ = d2.run(["sync"], kill_bytes=kill)
            log.append("dev2 sync%s" % killed(kill, rc))
        # 6. device 1 reconnects
        protect = {o.get("mid") for o in ops1 + (ops2 or [])}
        for i in range(rng.randint(1, 3)):
            concurrent = rng.random() < 0.25
            proxy.configure(inject=not concurrent)
            kill = kill_point(rng) if rng.random() < 0.3 else None
            t = None
            if concurrent:
                cur = acct.state()
                crng = random.Random(rng.random())
                t = threading.Thread(target=lambda: acct.other_changes(
                    crng, cur, protect, log, allow_protected=False))
                t.start()
            rc, _, _ = d1.run(["sync"], kill_bytes=kill)
            if t:
                t.join()
            log.append("dev1 sync %d%s%s" % (i, killed(kill, rc),
                                             " with concurrent changes" if concurrent else ""))
        proxy.configure(inject=True)
        # 7. one quiet sync of every device, then compare.  A device whose
        # queue a kill left unreplayed changes the server in its quiet sync,
        # so the others sync after it (d2, d1, then d2 again).
        for d in devs[:0:-1] + devs[:1] + devs[1:]:
            rc, out, err = d.run(["sync"], quiet=True)
            if rc != 0:
                problems.append("%s quiet sync failed rc=%s: %s %s" % (
                    d.db, rc, out[-300:], err[-300:]))
        final = acct.state()
        where = acct.locate(final)
        for mid, places in where.items():
            # a \Deleted original left by a move on a server without MOVE
            # or UIDPLUS is not a duplicate: it waits for an expunge
            places = [p for p in places if "\\Deleted" not in p[2]]
            if len(places) > 1:
                problems.append("server holds %s %d times: %s" % (mid, len(places), places))
        for d in devs:
            problems += compare_device(d, final)
        # acknowledged offline changes: applied, or failed with a reason
        for d, ops in ((d1, ops1), (d2, ops2 or [])):
            if d is None:
                continue
            dump = d.dump()
            failed = {}
            for e in (dump[1] or {}).get("entries", []) if dump else []:
                if e.get("state") == "failed":
                    failed[(e.get("folder"), e.get("uid"))] = e.get("reason")
            for o in ops:
                key = (o["folder"], o.get("uid"))
                if o["op"] == "mkdir":
                    if o["folder"] not in final and key not in failed:
                        problems.append("mkdir %s neither applied nor failed" % o["folder"])
                    continue
                mid = o.get("mid")
                gone = mid in removed
                places = [p for p in where.get(mid, []) if "\\Deleted" not in p[2]]
                in_src = [p for p in places if p[0] == o["folder"]]
                if key in failed:
                    if not failed[key]:
                        problems.append("%s failed without a reason" % o)
                    elif not gone:
                        problems.append("%s failed (%s) though its message was there" % (
                            o, failed[key]))
                    continue
                if (gone and o["op"] == "move" and len(places) == 1
                        and places[0][0] == o["dest"]):
                    # Another client moved it where this move was going: a
                    # retry after a kill cannot tell that from its own move
                    # sent before the kill, and the end is the one wanted.
                    continue
                if gone and o["op"] != "delete":
                    problems.append("%s: message removed by another client, but the change "
                                    "is not on the failed list: %s" % (
                                        o, (dump[1] or {}).get("entries") if dump else None))
                    continue
                if o["op"] == "delete":
                    # Deleting what another client removed reaches the same
                    # end: applied, or failed with a reason, are both right.
                    ok = not in_src
                elif o["op"] == "flag":
                    ok = in_src and ((o["flag"] in in_src[0][2]) == (o["sign"] == "+"))
                elif o["op"] == "move":
                    ok = not in_src and any(p[0] == o["dest"] for p in places)
                else:
                    ok = not in_src
                if not ok:
                    problems.append("%s not applied: server has %s" % (o, places))
        stats["cuts"] += proxy.cuts
        stats["reordered"] += proxy.reordered
        stats["injected"] += proxy.injected
        for d in devs:
            stats["kills"] += d.kills[0]
            stats["killed"] += d.kills[1]
    finally:
        proxy.close()
        quiet.close()
    problems += harness_faults(devs, (proxy, quiet))
    if problems:
        print("DIVERGED: seed %d on %s (replay: --seed %d --server %s)" % (
            seed, server.name, seed, server.name))
        for line in log:
            print("   ", line)
        for p in problems[:12]:
            print("  !", p)
    return not problems


def main():
    argv = sys.argv[1:]
    one_seed = None
    only = None
    if "--seed" in argv:
        one_seed = int(argv[argv.index("--seed") + 1])
    if "--server" in argv:
        only = argv[argv.index("--server") + 1]
    long_mode = os.environ.get("SATCHEL_LONG") == "1"
    count = int(os.environ.get("SATCHEL_CONVERGE_COUNT",
                               10000 if long_mode else 300))
    if os.environ.get("SATCHEL_STACK") == "lwip":
        # The engine under test is the same: the lwIP variant only checks
        # that the harness runs there too.
        count = min(count, 25)
    base = int(os.environ.get("SATCHEL_CONVERGE_SEED", random.randrange(1, 10**6))) * 100000
    names = list(imap_servers.SERVERS)
    if one_seed is not None:
        seeds = [one_seed]
        names = [only or (BIG_SERVERS[one_seed % len(BIG_SERVERS)] if "--big" in argv
                          else names[one_seed % len(names)])]
    else:
        seeds = [base + i for i in range(count)]
        if only:
            names = [only]
        print("base seed %d: %d schedules over %s" % (base, count, ", ".join(names)))
    servers = {}
    for n in names:
        try:
            servers[n] = imap_servers.make(n)
        except imap_servers.ServerUnavailable as e:
            print("SKIP %s: %s" % (n, e))
    if not servers:
        check(False, "no server could be started")
        return check.report()
    stats = {"cuts": 0, "reordered": 0, "injected": 0, "kills": 0, "killed": 0}
    per = {n: [0, 0] for n in servers}
    t0 = time.time()
    lock = threading.Lock()
    if "--big" in argv:
        seeds = []   # a big first sync replays alone
    lanes_of = {n: list(seeds[i::len(servers)]) for i, n in enumerate(servers)}
    threads_before = threading.active_count()

    def lane(n):
        """One server's schedules, one after another (its one account);
        the servers run side by side, each with an equal share."""
        sv = servers[n]
        k = SERVER_INDEX[n]
        todo = lanes_of[n]
        while True:
            with lock:
                if not todo:
                    return
                seed = todo.pop(0)
            if one_seed is None:
                seed = seed * len(imap_servers.SERVERS) + k  # seed % 6 names the server
            try:
                ok = run_schedule(seed, sv, Account(sv), work, stats)
            except Exception as e:   # the harness itself, or a server, broke
                print("ERROR: seed %d on %s: %r" % (seed, n, e))
                ok = False
            with lock:
                per[n][0] += 1
                per[n][1] += 0 if ok else 1
                print("seed %d %s %s" % (seed, n, "ok" if ok else "DIVERGED"), flush=True)
            for d in ("dev1-%d" % seed, "dev2-%d" % seed):
                subprocess.run(["rm", "-rf", os.path.join(work, d)])

    big = "--big" in argv
    big_runs = 0 if one_seed is not None and not big else (
        60 if long_mode else 12)
    big_step = 1
    if os.environ.get("SATCHEL_STACK") == "lwip":
        # one of each mode: seeds four apart keep the server, change the mode
        big_runs, big_step = min(big_runs, 3), len(BIG_SERVERS)
    try:
        # devices' stores on tmpfs too: a kill here is SIGKILL, never a power
        # loss, so fsync buys the test nothing
        with tempfile.TemporaryDirectory(prefix="satchel-converge-",
                                         dir=imap_servers.fast_tmp()) as work:
            if one_seed is None and len(servers) > 1:
                a, b = list(servers.values())[:2]
                check(wrong_server_canary(a, b, work),
                      "a device sent to another lane's server was not caught")
            if one_seed is None:
                for seed, n, what in REGRESSIONS:
                    if n not in servers:
                        continue
                    ok = run_schedule(seed, servers[n], Account(servers[n]), work, stats)
                    per[n][0] += 1
                    per[n][1] += 0 if ok else 1
                    print("seed %d %s %s (regression: %s)" % (
                        seed, n, "ok" if ok else "DIVERGED", what), flush=True)
            lanes = [threading.Thread(target=lane, args=(n,)) for n in servers]
            for t in lanes:
                t.start()
            for t in lanes:
                t.join()
            # every proxy's threads ended with its close(): none is left
            # to act on a descriptor number the process has reused since
            left = threading.active_count() - threads_before
            check(left <= 0, "%d harness threads outlived their schedules" % left)
            # Cut anywhere in the first sync of a big folder (Dovecot only:
            # its fixture writes 1,396 messages straight into the maildir).
            bigs = [n for n in servers if n in BIG_SERVERS]
            if big_runs and bigs:
                msgs = st.synth_messages(1396, st.load_mailset()["INBOX"])
                for n in bigs:
                    servers[n].dc.add_messages(servers[n].user, "Big", msgs)
                for i in range(big_runs):
                    seed = (one_seed if big and one_seed is not None
                            else base + 90000 + i * big_step)
                    n = BIG_SERVERS[seed % len(BIG_SERVERS)]
                    n = n if n in bigs else bigs[seed % len(bigs)]
                    ok = big_first_sync(seed, servers[n], work, len(msgs), stats)
                    per[n][0] += 1
                    per[n][1] += 0 if ok else 1
                    if big and one_seed is not None:
                        break
    finally:
        for sv in servers.values():
            sv.stop()
    el = time.time() - t0
    # A login refused anywhere, even through a proxy already closed, means
    # some device reached a server not its own.
    for port, up, text in imap_proxy.REFUSED:
        print("WRONG SERVER: proxy %d -> server port %d: login refused: %s" % (port, up, text))
    check(not imap_proxy.REFUSED, "%d logins refused: a device reached another lane's "
          "server" % len(imap_proxy.REFUSED))
    for n, (runs, bad) in per.items():
        print("%-18s %5d schedules, %d diverged" % (n, runs, bad))
        check(bad == 0, "%s: %d of %d schedules diverged" % (n, bad, runs))
    print("%d schedules in %.0f s; proxy: %d cuts, %d reordered batches, %d injected "
          "responses; %d of %d kills landed before the run ended" % (
              sum(r for r, _ in per.values()), el, stats["cuts"], stats["reordered"],
              stats["injected"], stats["killed"], stats["kills"]))
    if big_runs:
        print("big first syncs: %s" % ", ".join(
            "%s %d (%d landed before the sync ended)" % (
                m, stats.get("big_" + m, 0), stats.get("big_" + m + "_landed", 0))
            for m in BIG_MODES))
    return check.report()


if __name__ == "__main__":
    sys.exit(main())

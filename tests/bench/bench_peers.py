"""Satchel side by side with mbsync, offlineimap3 and NeoMutt (prints figures).

Every tool is Debian's package (`scripts/setup bench` installs them) and
talks TLS to the same private Dovecot 2.3 on loopback, with the same CA:

- satchel   satchel-sim from this tree (headers only; bodies on demand)
- mbsync    isync, whole messages into a Maildir
- offlineimap  offlineimap3, whole messages into a Maildir, one connection
- neomutt   NeoMutt with a header cache (tokyocabinet) and no body cache,
            driven headless on a pseudo-terminal; mark_old=no, or leaving a
            folder would write \\Old to every unread message

Scenarios on the shared corpus account (4,650 messages in INBOX): initial
sync; no-change resync; 1% of the messages' flags changed by another client
(seeded, the seed is printed); 100 new messages; opening one message (the
Maildir tools already hold it: no network).  Then initial syncs of 1k, 10k
and 50k synthesized folders, for the plot.

Figures, per tool and scenario:
- server bytes in/out: Dovecot's own log (in=/out=, after login)
- wall time: median of interleaved runs (the tools take turns, in a rotated
  order each round, so drift in the machine's load spreads over all)
- peak RSS: /usr/bin/time -v
- disk: bytes under the tool's local state (store, Maildir, caches)
- round trips on the wire, after login: from Dovecot's rawlog (a flight
  starts when a command arrives while every earlier one is answered;
  see tests/lib/rawlog.py)

Writes a table (Markdown, also to OUT/peers.md) and OUT/peers.png (gnuplot):
bytes and round trips against folder size, per tool.

Usage: python3 tests/bench/bench_peers.py [--reps 3] [--sizes 1000,10000,50000]
         [--out DIR] [--tools satchel,mbsync,offlineimap,neomutt] [--quick]
--quick: 400 corpus messages and sizes 500,2000, one round (for development).
Opt-in: not part of scripts/test.
"""
import argparse
import imaplib
import os
import pty
import random
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import satchel_test as st  # noqa: E402
import rawlog  # noqa: E402

USER = "alice"


def du(path):
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(root, f)).st_size
            except OSError:
                pass
    return total


class Peer:
    """One tool: its local state lives under self.dir."""

    name = ""
    pty = False

    def __init__(self, dc, work):
        self.dc = dc
        self.dir = os.path.join(work, self.name)
        self.pwfile = os.path.join(work, "secrets", "pw")
        os.makedirs(os.path.dirname(self.pwfile), mode=0o700, exist_ok=True)
        with open(os.open(self.pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
                          0o600), "w") as f:
            f.write(dc.users[USER])

    def reset(self):
        shutil.rmtree(self.dir, ignore_errors=True)
        os.makedirs(self.dir)
        self.configure()

    def configure(self):
        pass

    def state(self):
        """What counts as the tool's disk use."""
        return self.dir

    def open_one(self, uid):
        return None


class Satchel(Peer):
    name = "satchel"

    def base(self):
        return [st.satchel_sim_path(), "--db", os.path.join(self.dir, "db"),
                "--server", "127.0.0.1:%d" % self.dc.imaps_port, "--ca",
                self.dc.ca_file, "--user", USER, "--password-file", self.pwfile,
                "--json"]

    def sync(self):
        return self.base() + ["-c", "sync"]

    def open_one(self, uid):
        # Evict first, so every round fetches the part from the server.
        return self.base() + ["-c", "cache evict INBOX %d; body INBOX %d" % (uid, uid)]


class Mbsync(Peer):
    name = "mbsync"

    def configure(self):
        mail = os.path.join(self.dir, "mail")
        os.makedirs(mail)
        self.rc = os.path.join(self.dir, "mbsyncrc")
        with open(self.rc, "w") as f:
            f.write("""IMAPAccount bench
Host localhost
Port %d
User %s
PassCmd "cat %s"
SSLType IMAPS
CertificateFile %s

IMAPStore far
Account bench

MaildirStore near
Path %s/
Inbox %s/INBOX
SubFolders Verbatim

Channel bench
Far :far:
Near :near:
Patterns *
Create Near
SyncState *
""" % (self.dc.imaps_port, USER, self.pwfile, self.dc.ca_file, mail, mail))

    def sync(self):
        return ["mbsync", "-q", "-c", self.rc, "-a"]


class OfflineImap(Peer):
    name = "offlineimap"

    def configure(self):
        self.rc = os.path.join(self.dir, "offlineimaprc")
        with open(self.rc, "w") as f:
            f.write("""[general]
accounts = bench
metadata = %s/meta
ui = quiet

[Account bench]
localrepository = near
remoterepository = far

[Repository near]
type = Maildir
localfolders = %s/mail

[Repository far]
type = IMAP
remotehost = localhost
remoteport = %d
ssl = yes
sslcacertfile = %s
remoteuser = %s
remotepassfile = %s
maxconnections = 1
""" % (self.dir, self.dir, self.dc.imaps_port, self.dc.ca_file, USER,
                self.pwfile))

    def sync(self):
        return ["offlineimap", "-c", self.rc, "-o", "-u", "quiet"]


class NeoMutt(Peer):
    name = "neomutt"
    pty = True

    def configure(self):
        self.rc = os.path.join(self.dir, "neomuttrc")
        with open(self.rc, "w") as f:
            f.write("""set folder = "imaps://%s@127.0.0.1:%d/"
set spoolfile = "+INBOX"
set imap_pass = "%s"
set ssl_ca_certificates_file = "%s"
set ssl_verify_host = yes
set header_cache = "%s/hcache"
set mark_old = no
set quit = yes
set move = no
set sort = date
set imap_check_subscribed = no
set timeout = 1
set wait_key = no
set beep = no
set sleep_time = 0
""" % (USER, self.dc.imaps_port, self.dc.users[USER], self.dc.ca_file, self.dir))

    def cmd(self, keys):
        return ["neomutt", "-n", "-F", self.rc, "-f", "+INBOX", "-e",
                "push '%s'" % keys]

    def sync(self):
        return self.cmd("<quit>")

    def open_one(self, uid):
        # The message under the cursor after opening (newest, sort=date).
        return self.cmd("<last-entry><display-message><exit><quit>")


PEERS = {p.name: p for p in (Satchel, Mbsync, OfflineImap, NeoMutt)}


def run_tool(argv, use_pty, timeout=3600):
    """Run argv under /usr/bin/time -v; return (rc, wall s, max RSS bytes,
    output tail)."""
    with tempfile.NamedTemporaryFile(prefix="bench-time-", delete=False) as tf:
        tpath = tf.name
    full = ["/usr/bin/time", "-v", "-o", tpath] + argv
    env = dict(os.environ, TERM="xterm", LC_ALL="C.UTF-8", HOME=os.path.dirname(tpath))
    t0 = time.monotonic()
    if use_pty:
        pid, fd = pty.fork()
        if pid == 0:
            try:
                os.execvpe(full[0], full, env)
            finally:
                os._exit(127)
        import fcntl
        import struct
        import termios
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        out = b""
        deadline = time.monotonic() + timeout
        while True:
            r, _, _ = select.select([fd], [], [], 1.0)
            if r:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                out = (out + chunk)[-4000:]
            if time.monotonic() > deadline:
                os.kill(pid, 9)
                break
        _, status = os.waitpid(pid, 0)
        os.close(fd)
        rc = os.waitstatus_to_exitcode(status)
    else:
        p = subprocess.run(full, stdin=subprocess.DEVNULL, capture_output=True,
                           env=env, timeout=timeout)
        rc = p.returncode
        out = (p.stdout + p.stderr)[-4000:]
    wall = time.monotonic() - t0
    rss = 0
    with open(tpath) as f:
        for line in f:
            if "Maximum resident set size" in line:
                rss = int(line.split(":")[1]) * 1024
    os.unlink(tpath)
    return rc, wall, rss, out.decode("utf-8", "replace")


def measure(dc, peer, argv):
    """One run: figures from the server's log and rawlog, and the process."""
    if argv is None:
        return None
    mark = dc.log_mark()
    before = set(rawlog.sessions(dc, USER))
    rc, wall, rss, out = run_tool(argv, peer.pty)
    if rc != 0:
        sys.exit("%s failed (exit %d): %s" % (peer.name, rc, out[-1500:]))
    dc.wait_sessions_logged(timeout=10)
    sess = dc.session_bytes(USER, since=mark)
    after = [s for s in rawlog.sessions(dc, USER) if s not in before]
    return {"wall": wall, "rss": rss, "in": sum(s["in"] for s in sess),
            "out": sum(s["out"] for s in sess), "sessions": len(sess),
            "rt": sum(rawlog.flights(s) for s in after),
            "disk": du(peer.state())}


def interleaved(dc, peers, reps, argv_of, before_round=None, reset=False):
    """Run every peer `reps` times, taking turns; returns {name: [runs]}."""
    runs = {p.name: [] for p in peers}
    for r in range(reps):
        if before_round:
            before_round(r)
        order = peers[r % len(peers):] + peers[:r % len(peers)]
        for p in order:
            if reset:
                p.reset()
            runs[p.name].append(measure(dc, p, argv_of(p)))
    return runs


def summary(runs):
    """Median wall; the other figures from the last run (they repeat)."""
    runs = [x for x in runs if x]
    if not runs:
        return None
    s = dict(runs[-1])
    s["wall"] = statistics.median(x["wall"] for x in runs)
    s["rss"] = max(x["rss"] for x in runs)
    return s


def change_flags(dc, fraction, rng):
    """Another client toggles \\Flagged or \\Seen on a random `fraction`."""
    c = dc.client(USER)
    try:
        c.select("INBOX")
        typ, data = c.uid("SEARCH", None, "ALL")
        uids = data[0].split()
        pick = rng.sample(uids, max(1, int(len(uids) * fraction)))
        for u in pick:
            flag = rng.choice(["\\Flagged", "\\Seen"])
            typ, d = c.uid("FETCH", u, "(FLAGS)")
            op = "-FLAGS" if flag.encode() in (d[0] or b"") else "+FLAGS"
            c.uid("STORE", u, op, flag)
        return len(pick)
    finally:
        c.logout()


def fmt_bytes(n):
    return "{:,}".format(n)


def table(rows, tools):
    lines = ["| scenario | tool | bytes down / up | round trips | wall (median) | peak RSS | disk |",
             "|---|---|---|---|---|---|---|"]
    for label, res in rows:
        for t in tools:
            s = res.get(t)
            if s is None:
                lines.append("| %s | %s | local copy: no network | 0 | | | |" % (label, t))
                continue
            lines.append("| %s | %s | %s / %s | %d | %.2f s | %.1f MB | %s |" % (
                label, t, fmt_bytes(s["out"]), fmt_bytes(s["in"]), s["rt"], s["wall"],
                s["rss"] / 1e6, fmt_bytes(s["disk"])))
    return "\n".join(lines)


def plot(out_dir, sizes, sweep, tools):
    dat = os.path.join(out_dir, "peers.dat")
    with open(dat, "w") as f:
        for i, t in enumerate(tools):
            f.write("# %s\n" % t)
            for n in sizes:
                s = sweep[n].get(t)
                if s:
                    f.write("%d %d %d\n" % (n, s["out"] + s["in"], s["rt"]))
            f.write("\n\n")
    png = os.path.join(out_dir, "peers.png")
    script = ["set terminal pngcairo size 1100,480 font 'sans,10'"
              if "pngcairo" in subprocess.run(["gnuplot", "-e", "set terminal"],
                                              capture_output=True, text=True).stderr
              else "set terminal png size 1100,480",
              "set output '%s'" % png, "set multiplot layout 1,2",
              "set logscale xy", "set key top left", "set grid",
              "set xlabel 'messages in the folder'",
              "set title 'Initial sync: server bytes (in + out)'",
              "set ylabel 'bytes'",
              "plot " + ", ".join("'%s' index %d using 1:2 with linespoints title '%s'"
                                  % (dat, i, t) for i, t in enumerate(tools)),
              "set title 'Initial sync: round trips on the wire after login (rawlog)'",
              "set ylabel 'round trips'",
              "plot " + ", ".join("'%s' index %d using 1:3 with linespoints title '%s'"
                                  % (dat, i, t) for i, t in enumerate(tools)),
              "unset multiplot"]
    subprocess.run(["gnuplot"], input="\n".join(script), text=True, check=True)
    return png


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--sizes", default="1000,10000,50000")
    ap.add_argument("--messages", type=int, default=0,
                    help="corpus messages (default: all)")
    ap.add_argument("--tools", default="satchel,mbsync,offlineimap,neomutt")
    ap.add_argument("--out", default="build/bench-peers")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seed", type=int, default=int(time.time()) % 100000)
    a = ap.parse_args()
    if a.quick:
        a.reps, a.sizes, a.messages = 1, "500,2000", a.messages or 400
    tools = a.tools.split(",")
    missing = [t for t in tools if t != "satchel" and not shutil.which(t)]
    if missing or not shutil.which("gnuplot") or not os.path.exists("/usr/bin/time"):
        print("bench_peers: needs %s, gnuplot and /usr/bin/time: run scripts/setup bench"
              % ", ".join(missing or ["the peer clients"]))
        return 1
    if not st.corpus_available():
        print("bench_peers: corpus not found (%s); skipped" % st.CORPUS)
        return 0
    sizes = [int(x) for x in a.sizes.split(",") if x]
    rng = random.Random(a.seed)
    print("seed %d" % a.seed)
    os.makedirs(a.out, exist_ok=True)
    corpus = list(st.load_corpus(limit=a.messages or None))
    rows, notes, per = [], [], {}
    with tempfile.TemporaryDirectory(prefix="satchel-bench-peers-") as work:
        with st.Dovecot(profile="full", extra_conf=rawlog.CONF) as dc:
            rawlog.enable(dc, USER)
            dc.add_messages(USER, "INBOX", corpus)
            dc.server_state(USER, "INBOX")  # Dovecot indexes once, for everyone
            peers = [PEERS[t](dc, work) for t in tools]
            n = len(corpus)
            print("corpus account: %d messages in INBOX, %d rounds" % (n, a.reps))

            def step(label, res):
                rows.append((label, {k: summary(v) for k, v in res.items()}))
                print(table([rows[-1]], tools), flush=True)

            step("initial sync, %d messages" % n,
                 interleaved(dc, peers, a.reps, lambda p: p.sync(), reset=True))
            first = rows[-1][1]
            for t in tools:
                if first.get(t):
                    f = first[t]
                    per[t] = ((f["out"] + f["in"]) / n, f["disk"] / n)
            if "satchel" in per and "neomutt" in per:
                notes.append("initial sync of the corpus account: Satchel %.0f B/message on "
                             "the wire, %.2fx NeoMutt's %.0f; disk %.0f B/message (NeoMutt's "
                             "header cache %.0f)" % (
                                 per["satchel"][0], per["satchel"][0] / per["neomutt"][0],
                                 per["neomutt"][0], per["satchel"][1], per["neomutt"][1]))
                print(notes[-1], flush=True)
            step("no-change resync",
                 interleaved(dc, peers, a.reps, lambda p: p.sync()))
            nflag = max(1, n // 100)
            step("%d flags changed (1%%) by another client" % nflag,
                 interleaved(dc, peers, a.reps, lambda p: p.sync(),
                             before_round=lambda r: change_flags(dc, 0.01, rng)))
            fresh = st.synth_messages(100 * a.reps, corpus[:200],
                                      domain="new.satchel.test")

            def deliver(r):
                dc.add_messages(USER, "INBOX", fresh[100 * r:100 * (r + 1)])
            step("100 new messages", interleaved(dc, peers, a.reps, lambda p: p.sync(),
                                                 before_round=deliver))
            uid = dc.server_state(USER, "INBOX")
            uid = max(uid) if isinstance(uid, dict) and uid else n
            step("open one message (UID %d)" % uid,
                 interleaved(dc, peers, a.reps, lambda p: p.open_one(uid)))
        sweep = {}
        for size in sizes:
            with st.Dovecot(profile="full", extra_conf=rawlog.CONF) as dc:
                rawlog.enable(dc, USER)
                dc.add_messages(USER, "INBOX", st.synth_messages(size, corpus[:500]))
                dc.server_state(USER, "INBOX")
                peers = [PEERS[t](dc, work) for t in tools]
                res = interleaved(dc, peers, 1, lambda p: p.sync(), reset=True)
                sweep[size] = {k: summary(v) for k, v in res.items()}
                rows.append(("initial sync, %d synthesized" % size, sweep[size]))
                print(table([rows[-1]], tools), flush=True)
        md = table(rows, tools) + "".join("\n\n" + x for x in notes)
        with open(os.path.join(a.out, "peers.md"), "w") as f:
            f.write(md + "\n")
        png = plot(a.out, sizes, sweep, tools)
        print("\n" + md)
        print("\nplot: %s" % png)
    return 0


if __name__ == "__main__":
    sys.exit(main())

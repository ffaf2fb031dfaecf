"""imap_proxy -- a seeded IMAP proxy that perturbs a real server's answers
only in ways RFC 9051 and RFC 7162 allow, for the convergence tests.

The client (satchel-sim --security none) talks plain IMAP to the proxy;
the proxy talks plain or TLS (with the test CA) to the server.  It parses
both directions into whole commands and responses (literals included), so
it knows which commands are outstanding, and it may:

* split the bytes it forwards at random points and delay them;
* reorder untagged FETCH responses, and interleave them across the tagged
  completions of pipelined FETCH/STORE/SEARCH commands: a response may be
  sent earlier than the server sent it, as long as every command whose
  completion it crosses was already sent by the client, and it still comes
  before the completion that followed it from the server.  It never moves
  anything across EXISTS, EXPUNGE, VANISHED, or the completion of any other
  command (SELECT, ENABLE, COPY, MOVE, ...), and keeps the order of two
  responses about the same message;
* inject unilateral responses a server may send at any time: a FETCH with
  the UID, FLAGS (and MODSEQ once CONDSTORE is on) this session last saw
  for a message -- the server's real values, never invented; with the UID
  left out only while QRESYNC is not enabled (RFC 7162 3.2.4); and an
  EXISTS that repeats the last count.  What it has seen is forgotten when
  the client changes flags or the mailbox, and on any expunge.  Runs in
  which another client changes the mailbox meanwhile should switch
  injection off (`inject=0`), because the last seen flags may be stale;
  EXPUNGE and VANISHED are then the server's own;
* cut the connection after a random number of bytes in either direction.

For the test it also calls a kill function once a set number of bytes has
reached the client (arm_kill: a SIGKILL inside a sync, however fast the
machine), and records every login the server refused (refused, and the
process-wide REFUSED): each test server has its own password, so a
refused login means a client reached a server that is not its own.

SATCHEL_PROXY_OFF=reorder,inject,split,cut switches kinds off, to find
which one a failing seed needs.  Each connection draws its perturbation from random.Random("seed:n"), so a
seed replays the same choices (thread timing can still shift where a held
response is released).
"""

import os
import random
import re
import socket
import ssl
import threading
import time
import traceback

# Logins refused by any proxy's server, over the whole process, as
# (proxy port, server port, response): a proxy already closed still records
# here.  The convergence run fails when this is not empty.
REFUSED = []

_LIT_RE = re.compile(rb"~?\{(\d+)\+?\}\r\n$")
_MOVABLE = {"FETCH", "UID FETCH", "STORE", "UID STORE", "UID SEARCH", "SEARCH",
            "NOOP", "CHECK"}
# Commands after which what the proxy saw of flags or sequence numbers may
# be stale.
_FORGET = {"SELECT", "EXAMINE", "CLOSE", "UNSELECT", "STORE", "UID STORE",
           "EXPUNGE", "UID EXPUNGE", "MOVE", "UID MOVE", "ENABLE", "LOGOUT"}


class _Reader:
    """Split a byte stream into IMAP lines with their literals."""

    def __init__(self):
        self.buf = bytearray()
        self.need = 0          # literal bytes still to take into `cur`
        self.cur = bytearray()

    def feed(self, data):
        self.buf += data

    def next(self):
        while True:
            if self.need:
                if len(self.buf) < self.need:
                    return None
                self.cur += self.buf[:self.need]
                del self.buf[:self.need]
                self.need = 0
            i = self.buf.find(b"\r\n")
            if i < 0:
                return None
            line = bytes(self.buf[:i + 2])
            del self.buf[:i + 2]
            self.cur += line
            m = _LIT_RE.search(line)
            if m:
                self.need = int(m.group(1))
                continue
            out = bytes(self.cur)
            self.cur = bytearray()
            return out


def _strip_literals(unit):
    """The unit with literal contents removed (for looking at its items)."""
    out, i = bytearray(), 0
    while True:
        m = re.compile(rb"~?\{(\d+)\+?\}\r\n").search(unit, i)
        if not m:
            out += unit[i:]
            return bytes(out)
        out += unit[i:m.start()] + b'""'
        i = m.end() + int(m.group(1))


class _Session:
    def __init__(self, proxy, client, index):
        self.proxy = proxy
        self.client = client
        self.index = index
        self.rng = random.Random("%s:%d" % (proxy.seed, index))
        r = self.rng
        self.lock = threading.Lock()
        self.outstanding = {}        # tag -> command name, in send order
        self.sent_order = []
        self.authenticating = False
        self.selected = False
        self.exists = None
        self.seen = {}               # seq -> (uid, flags bytes, modseq bytes or None)
        self.condstore = False
        self.qresync = False
        self.closed = False
        p = proxy.perturb
        off = os.environ.get("SATCHEL_PROXY_OFF", "").split(",")
        self.split = p and r.random() < 0.7 and "split" not in off
        self.reorder = p and r.random() < 0.8 and "reorder" not in off
        self.inject = (p and proxy.inject and r.random() < 0.8
                       and "inject" not in off)
        self.cut_s2c = self.cut_c2s = None
        if p and proxy.cut_prob and r.random() < proxy.cut_prob and "cut" not in off:
            if r.random() < 0.8:
                self.cut_s2c = r.randrange(0, proxy.cut_max)
            else:
                self.cut_c2s = r.randrange(0, 4000)
        if proxy.cut_once is not None and index == 1:
            self.cut_s2c = proxy.cut_once
        self.s2c_bytes = self.c2s_bytes = 0
        self.events = []
        self.up = None
        self.threads = []
        self.live = 0                # threads still using the sockets

    # -- plumbing --------------------------------------------------------

    # A socket is shut down (which wakes every thread blocked on it) as
    # soon as the session ends, but its descriptor is closed only when no
    # thread of this session can touch it again.  Closing it earlier let a
    # thread still on its way into recv/send/SSL_write act on whatever
    # socket the process opened next under the same number: another lane's
    # connection, so a device could end up talking to another server.

    def begin(self):
        """Run the session: called in its own thread (the s2c side)."""
        with self.lock:
            self.live += 1
        try:
            try:
                s = socket.create_connection((self.proxy.up_host, self.proxy.up_port),
                                             timeout=10)
            except OSError:
                return
            self.up = s
            try:
                if self.proxy.ssl_context is not None:
                    self.up = self.proxy.ssl_context.wrap_socket(
                        s, server_hostname="localhost")
                self.up.settimeout(None)
            except (OSError, ssl.SSLError):
                return
            for x in (self.client, self.up):
                try:
                    x.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                except OSError:
                    pass
            with self.lock:
                if self.closed:
                    return
                self.live += 1
                t = threading.Thread(target=self._run_c2s, daemon=True)
                self.threads.append(t)
            t.start()
            self.s2c()
        except Exception:           # a harness bug: end the session, loudly
            self.proxy.errors.append(traceback.format_exc())
        finally:
            self._leave()

    def _run_c2s(self):
        try:
            self.c2s()
        except Exception:
            self.proxy.errors.append(traceback.format_exc())
        finally:
            self._leave()

    def _leave(self):
        self.close()
        with self.lock:
            self.live -= 1
            last = self.live == 0
        if last:
            for x in (self.client, self.up):
                if x is not None:
                    try:
                        x.close()
                    except OSError:
                        pass

    def close(self):
        """End the session: shut both sockets down (threads blocked on them
        wake up and leave); the last thread out closes them."""
        with self.lock:
            if self.closed:
                return
            self.closed = True
        for x in (self.client, self.up):
            if x is None:
                continue
            try:
                # the plain socket's shutdown: SSLSocket.shutdown would drop
                # its SSL object under a thread still inside SSL_write
                socket.socket.shutdown(x, socket.SHUT_RDWR)
            except OSError:
                pass

    def send(self, sock, data):
        if self.split and len(data) > 1:
            i = 0
            while i < len(data):
                n = self.rng.choice((1, 7, 64, 600, 4096, 65536))
                sock.sendall(data[i:i + n])
                i += n
                if self.rng.random() < 0.02:
                    time.sleep(0.002)
        elif data:
            sock.sendall(data)

    def write(self, sock, data, direction):
        """Send with random splits and delays; False once the cut point is
        reached (the connection is then closed)."""
        if direction == "s2c":
            limit, done = self.cut_s2c, self.s2c_bytes
        else:
            limit, done = self.cut_c2s, self.c2s_bytes
        cut = False
        if limit is not None and done + len(data) >= limit:
            data = data[:max(0, limit - done)]
            cut = True
        try:
            if direction == "s2c":
                # a kill armed by the test lands once the client has been
                # sent its byte count (over all of this proxy's connections)
                k = self.proxy.kill_due(len(data))
                if k is not None:
                    self.send(sock, data[:k])
                    self.proxy.fire_kill()
                    data_rest = data[k:]
                else:
                    data_rest = data
                self.send(sock, data_rest)
            else:
                self.send(sock, data)
        except OSError:
            self.close()
            return False
        if direction == "s2c":
            self.s2c_bytes += len(data)
        else:
            self.c2s_bytes += len(data)
        if cut:
            self.proxy.cuts += 1
            self.close()
            return False
        return True

    # -- client to server --------------------------------------------------

    def c2s(self):
        rd = _Reader()
        while True:
            try:
                data = self.client.recv(65536)
            except OSError:
                data = b""
            if not data:
                self.close()
                return
            rd.feed(data)
            while True:
                unit = rd.next()
                if unit is None:
                    break
                self.note_command(unit)
            # A synchronizing literal's line comes before its data: forward
            # as it arrives, the parse above only follows along.
            if not self.write(self.up, data, "c2s"):
                return

    def note_command(self, unit):
        with self.lock:
            if self.authenticating:
                return           # a SASL response line, not a command
            parts = _strip_literals(unit).split(None, 3)
            if len(parts) < 2:
                return
            tag = parts[0]
            name = parts[1].upper().decode("ascii", "replace")
            if name == "UID" and len(parts) > 2:
                name = "UID " + parts[2].upper().decode("ascii", "replace")
            self.outstanding[tag] = name
            self.sent_order.append(tag)
            up = unit.upper()
            if name == "AUTHENTICATE" and len(unit.split()) <= 3:
                self.authenticating = True
            if name in _FORGET:
                self.seen.clear()
            if name in ("SELECT", "EXAMINE", "CLOSE", "UNSELECT"):
                self.selected = False
                self.exists = None
            if (b"CHANGEDSINCE" in up or b"CONDSTORE" in up or b"QRESYNC" in up
                    or b" MODSEQ" in up) and not self.condstore:
                self.condstore = True
                self.seen.clear()

    # -- server to client --------------------------------------------------

    def s2c(self):
        rd = _Reader()
        pending = []
        while True:
            try:
                self.up.settimeout(0.03 if pending else None)
                data = self.up.recv(65536)
                # Servers that leave Nagle on (Cyrus) hold a small response
                # until its predecessor is ACKed; without delayed ACKs here
                # that costs no 40 ms per round trip.
                self.up.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
            except socket.timeout:
                if not self.flush(pending):
                    return
                continue
            except (OSError, ssl.SSLError):
                data = b""
            if not data:
                self.flush(pending)
                self.close()
                return
            rd.feed(data)
            while True:
                unit = rd.next()
                if unit is None:
                    break
                if not self.handle(unit, pending):
                    return

    def handle(self, unit, pending):
        head = _strip_literals(unit)
        words = head.split(None, 3)
        name = None
        with self.lock:
            kind, movable = "other", False
            if head.startswith(b"* "):
                if len(words) > 2 and words[2].upper() == b"FETCH":
                    kind = "fetch"
                    self.note_fetch(head, words)
                    movable = self.reorder
                elif len(words) > 2 and words[2].upper() == b"EXISTS":
                    self.exists = int(words[1])
                    self.selected = self.selected or True
                elif len(words) > 2 and words[2].upper() == b"EXPUNGE":
                    self.seen.clear()
                    if self.exists:
                        self.exists -= 1
                elif len(words) > 1 and words[1].upper() == b"VANISHED":
                    self.seen.clear()
                    if not (len(words) > 2 and words[2].upper() == b"(EARLIER)"):
                        self.exists = None
                elif len(words) > 1 and words[1].upper() == b"ENABLED":
                    up = head.upper()
                    if b"QRESYNC" in up:
                        self.qresync = True
                    if b"QRESYNC" in up or b"CONDSTORE" in up:
                        if not self.condstore:
                            self.seen.clear()
                        self.condstore = True
            elif head.startswith(b"+"):
                kind = "cont"
            else:
                kind = "tagged"
                tag = words[0] if words else b""
                name = self.outstanding.pop(tag, None)
                if tag in self.sent_order:
                    self.sent_order.remove(tag)
                if name == "AUTHENTICATE" or name == "LOGIN":
                    self.authenticating = False
                    if len(words) > 1 and words[1].upper() != b"OK":
                        # Every lane's account has its own password: a
                        # refused login means a device reached a server
                        # that is not its own (see PerturbingProxy.refused).
                        self.proxy.refused.append(head.decode("ascii", "replace"))
                        REFUSED.append((self.proxy.port, self.proxy.up_port,
                                        head.decode("ascii", "replace")))
                if name in ("SELECT", "EXAMINE"):
                    self.selected = len(words) > 1 and words[1].upper() == b"OK"
                # Hold a completion only while a later pipelined command of
                # the same harmless kind is already on its way.
                later = [self.outstanding.get(t) for t in self.sent_order]
                movable = (self.reorder and name in _MOVABLE and later
                           and all(n in _MOVABLE for n in later)
                           and self.rng.random() < 0.6)
        if movable:
            pending.append((kind, unit))
            if len(pending) > 400:
                return self.flush(pending)
            return True
        # Nothing is injected into the answer of a command that changes
        # state (SELECT, ENABLE, ...): only between units that may move.
        if not self.flush(pending, inject=kind != "tagged" or name in _MOVABLE):
            return False
        return self.write(self.client, unit, "s2c")

    def note_fetch(self, head, words):
        try:
            seq = int(words[1])
        except ValueError:
            return
        u = re.search(rb"\bUID (\d+)", head)
        f = re.search(rb"\bFLAGS (\([^)]*\))", head)
        m = re.search(rb"\bMODSEQ \((\d+)\)", head)
        if u and f:
            self.seen[seq] = (int(u.group(1)), f.group(1), m.group(1) if m else None)
        elif f:
            old = self.seen.get(seq)
            if old:
                self.seen[seq] = (old[0], f.group(1), m.group(1) if m else old[2])

    def flush(self, pending, inject=True):
        if pending:
            units = self.order(pending)
            pending.clear()
            for u in units:
                if not self.write(self.client, u, "s2c"):
                    return False
        extra = self.injection() if inject else None
        if extra:
            return self.write(self.client, extra, "s2c")
        return True

    def order(self, pending):
        """A legal random order of held responses (see the module doc)."""
        r = self.rng
        tagged = [i for i, (k, _) in enumerate(pending) if k == "tagged"]
        gaps = {}        # gap k (before tagged[k]; len(tagged) = the end)
        seqkey = {}
        for i, (k, u) in enumerate(pending):
            if k == "tagged":
                continue
            bound = next((g for g, t in enumerate(tagged) if t > i), len(tagged))
            g = r.randint(0, bound)
            seq = u.split(None, 2)[1]
            # two responses about one message keep their order: the later
            # one never goes to an earlier gap than the earlier one
            g = max(g, seqkey.get(seq, 0))
            g = min(g, bound) if g <= bound else bound
            seqkey[seq] = g
            gaps.setdefault(g, []).append(u)
        out = []
        for g in range(len(tagged) + 1):
            items = gaps.get(g, [])
            # shuffle, keeping per-message order
            keyed = {}
            for u in items:
                keyed.setdefault(u.split(None, 2)[1], []).append(u)
            slots = [s for s, lst in keyed.items() for _ in lst]
            r.shuffle(slots)
            for s in slots:
                out.append(keyed[s].pop(0))
            if g < len(tagged):
                out.append(pending[tagged[g]][1])
        self.proxy.reordered += 1
        return out

    def injection(self):
        if not self.inject or self.rng.random() > 0.3:
            return None
        with self.lock:
            if (not self.selected or self.authenticating
                    or any(n in ("SELECT", "EXAMINE", "CLOSE", "UNSELECT", "IDLE",
                                 "APPEND", "AUTHENTICATE")
                           for n in self.outstanding.values())):
                return None
            choices = []
            for seq, (uid, flags, modseq) in self.seen.items():
                if self.exists is not None and seq > self.exists:
                    continue
                if self.condstore and modseq is None:
                    continue
                choices.append((seq, uid, flags, modseq))
            if choices and self.rng.random() < 0.8:
                seq, uid, flags, modseq = self.rng.choice(sorted(choices))
                items = []
                if self.qresync or self.rng.random() < 0.5:
                    items.append(b"UID %d" % uid)
                items.append(b"FLAGS " + flags)
                if modseq is not None and self.condstore:
                    items.append(b"MODSEQ (" + modseq + b")")
                self.rng.shuffle(items)
                self.proxy.injected += 1
                return b"* %d FETCH (%s)\r\n" % (seq, b" ".join(items))
            if self.exists is not None:
                self.proxy.injected += 1
                return b"* %d EXISTS\r\n" % self.exists
        return None


class PerturbingProxy:
    """Listen on 127.0.0.1 (port attribute) and relay each connection to
    up_host:up_port, perturbed as the module doc says.

    seed:      the schedule's seed (every connection derives its own)
    perturb:   False = plain relay
    inject:    allow injected unilateral responses
    cut_prob:  chance that a connection is cut; cut_max bounds where
    cut_once:  cut the first connection after this many bytes to the client
    ssl_context: TLS to the server (None = plain)

    close() stops it for good: it returns once none of its threads is left
    (RuntimeError if one hangs), so none can act on a descriptor number
    the process reuses afterwards.  errors lists tracebacks of threads that
    failed; refused lists the logins its server refused.
    """

    def __init__(self, up_host, up_port, seed, ssl_context=None, perturb=True,
                 inject=True, cut_prob=0.0, cut_max=60000, cut_once=None):
        self.up_host, self.up_port = up_host, up_port
        self.seed = seed
        self.ssl_context = ssl_context
        self.perturb, self.inject = perturb, inject
        self.cut_prob, self.cut_max = cut_prob, cut_max
        self.cut_once = cut_once
        self.cuts = self.reordered = self.injected = self.conns = 0
        self.errors = []
        self.refused = []
        self.kill_lock = threading.Lock()
        self.kill_left, self.kill_fn = 0, None
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.sessions = []
        self.closing = False
        self._acceptor = threading.Thread(target=self._accept, daemon=True)
        self._acceptor.start()

    def arm_kill(self, nbytes, fn):
        """Call fn (which kills the client) once nbytes more have been sent
        to clients: a kill at a random moment of a sync, wherever the
        machine's speed puts that moment in time."""
        with self.kill_lock:
            self.kill_left, self.kill_fn = nbytes, fn

    def disarm_kill(self):
        with self.kill_lock:
            self.kill_fn = None

    def kill_due(self, n):
        """How many of the next n bytes go out before the kill, or None."""
        with self.kill_lock:
            if self.kill_fn is None:
                return None
            if n < self.kill_left:
                self.kill_left -= n
                return None
            return self.kill_left

    def fire_kill(self):
        with self.kill_lock:
            fn, self.kill_fn = self.kill_fn, None
        if fn is not None:
            fn()

    def configure(self, **kw):
        for k, v in kw.items():
            setattr(self, k, v)

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            if self.closing:
                c.close()
                return
            self.conns += 1
            s = _Session(self, c, self.conns)
            t = threading.Thread(target=s.begin, daemon=True)
            s.threads.append(t)
            self.sessions.append(s)
            t.start()

    def close(self):
        """Stop listening and end every session; returns once no thread of
        this proxy is left (RuntimeError if one hangs), so nothing of it can
        touch a descriptor the process reuses afterwards."""
        self.closing = True
        try:
            # Linux wakes a thread blocked in accept() on shutdown, not on
            # close(): a closed listener would stay open, and listening,
            # for as long as that thread waits.
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._acceptor.join(10)
        if self._acceptor.is_alive():
            raise RuntimeError("proxy on port %d: accept thread did not stop" % self.port)
        self.sock.close()
        for s in self.sessions:
            s.close()
        for s in self.sessions:
            for t in list(s.threads):
                t.join(10)
                if t.is_alive():
                    raise RuntimeError("proxy on port %d: session %d did not stop" % (
                        self.port, s.index))

"""fake_imap -- a small scripted IMAP server for Satchel tests.

Python 3 standard library only.  Listens on 127.0.0.1 (a free port), one
thread per connection, and never talks to anything else.

    with FakeImap(security="plain") as srv:            # or "tls" (implicit)
        r = srv.run_sim(db, "sync", security="none")
        assert not srv.saw(b"secret-pass-1", tls=False)

Behaviour
---------
By default it is a minimal, well-behaved IMAP4rev1 server: greeting,
CAPABILITY, STARTTLS (plain listener only), AUTHENTICATE PLAIN (with or
without SASL-IR), LOGIN, ENABLE, LIST, SELECT/EXAMINE (EXISTS, UIDVALIDITY,
UIDNEXT, optional CONDSTORE/QRESYNC with HIGHESTMODSEQ and VANISHED
(EARLIER)), FETCH and UID FETCH (sequence sets, windows of simple headers,
CHANGEDSINCE), NOOP and LOGOUT.  Mail is a dict {folder: [message dict]};
see make_messages().

Scripting
---------
``hooks`` maps a command key to a replacement for the default handler.
Keys: "greeting", or the upper-cased command name ("CAPABILITY",
"STARTTLS", "AUTHENTICATE", "LOGIN", "ENABLE", "LIST", "SELECT", "FETCH",
"UID FETCH", "LOGOUT", ...).  A value is one of

* a callable ``hook(conn, tag, args)`` (``hook(conn)`` for "greeting"):
  it does everything itself through the FakeConn API: ``conn.send(raw)``,
  ``conn.tagged(tag, "OK", text)``, ``conn.default(tag, key, args)`` (run
  the default handler, e.g. after injecting something), ``conn.close()``,
  ``conn.stall()`` (never answer again; returns only when the server
  stops), ``conn.fetch_response(seq, msg, full)`` (the default bytes of one
  FETCH response, to mangle);
* bytes/str: sent verbatim, with every "{tag}" replaced by the tag (a
  greeting starting "* PREAUTH" also puts the session in authenticated
  state);
* FakeImap.STALL or FakeImap.CLOSE.

Subclasses may also override the default handlers ``do_<KEY>`` (spaces as
underscores: ``do_UID_FETCH``) or ``greeting``.  A message dict may carry
``"raw"``: bytes sent instead of its default full (header) FETCH response;
"{seq}" in it is replaced by the message's sequence number.

Recording
---------
Every byte a client sent is kept per connection with a flag telling whether
it arrived before or after TLS: ``conn.received`` [(tls, bytes)], and the
command lines in ``conn.commands`` [(tls, line bytes)].  ``srv.conns`` lists
the connections in accept order; ``srv.received(tls=...)``,
``srv.saw(needle, tls=...)``, ``srv.command_names(tls=...)`` and
``srv.auth_seen(tls=...)`` search across all of them.
``conn.plain_after_starttls`` holds plaintext that followed the STARTTLS
command before the handshake (a client must send none);
``conn.tls_error`` says why a handshake failed.

Running the client: ``srv.run_sim(db, "sync; list INBOX", security=...,
password=..., pwmode=0o600, timeout_ms=3000)`` (or ``run_sim_at(host,
port, ...)``) runs satchel-sim and never raises: the result has
.returncode (None if it had to be killed), .timed_out, .json, .stdout,
.stderr and .elapsed; ``sim_crashed(r)`` tells a signal/abort/segfault.

Everything is bounded in time: sockets poll with short timeouts, sends give
up after ``send_timeout`` seconds, and the whole server stops itself
``lifetime`` seconds after it started (also on ``stop()``/context exit).
"""

import base64
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import satchel_test as st  # noqa: E402

__all__ = ["FakeImap", "FakeConn", "make_messages", "header_block",
           "run_sim_at", "sim_crashed", "PASSWORD", "USER"]

USER = "alice"
PASSWORD = "secret-pass-1"

_DEFAULT_BS = (b'("TEXT" "PLAIN" ("CHARSET" "UTF-8") NIL NIL "7BIT" %d 1 '
               b'NIL NIL NIL NIL)')


def make_messages(n, start_uid=1, subject="Message %d", modseq_base=1):
    """n simple messages with consecutive UIDs."""
    out = []
    for i in range(n):
        uid = start_uid + i
        out.append({
            "uid": uid,
            "flags": ["\\Seen"] if uid % 2 else [],
            "subject": subject % uid,
            "from": "Sender %d <sender%d@example.org>" % (uid, uid),
            "date": "Mon, 01 Jan 2024 %02d:%02d:00 +0000" % (uid // 60 % 24,
                                                              uid % 60),
            "internaldate": "01-Jan-2024 %02d:%02d:00 +0000" % (uid // 60 % 24,
                                                                uid % 60),
            "message_id": "<msg-%d@fake.satchel.test>" % uid,
            "size": 200 + uid,
            "modseq": modseq_base + i,
        })
    return out


def header_block(msg):
    """The header bytes the server returns for BODY[HEADER.FIELDS (...)]."""
    if "header" in msg:
        h = msg["header"]
        return h if isinstance(h, bytes) else h.encode("utf-8")
    lines = []
    for name, key in (("Date", "date"), ("From", "from"),
                      ("Subject", "subject"), ("Message-ID", "message_id")):
        v = msg.get(key)
        if v is None:
            continue
        if isinstance(v, str):
            v = v.encode("utf-8")
        lines.append(name.encode() + b": " + v + b"\r\n")
    return b"".join(lines) + b"\r\n"


def _b(x):
    if isinstance(x, bytes):
        return x
    return x.encode("utf-8")


def seqset_ranges(s, star):
    """IMAP sequence set -> list of (lo, hi) ranges, '*' = star.  A range
    a:* with a > star is star:star (RFC 3501 6.4.8).  Never expands ranges
    (a UID set may span 2^32)."""
    out = []
    for part in s.split(","):
        if not part:
            raise ValueError("empty element in sequence set")
        if ":" in part:
            a, b = part.split(":", 1)
        else:
            a = b = part
        a = star if a == "*" else int(a)
        b = star if b == "*" else int(b)
        out.append((min(a, b), max(a, b)))
    return out


def in_ranges(n, ranges):
    return any(lo <= n <= hi for lo, hi in ranges)


def parse_seqset(s, star):
    """Sequence set -> sorted list of numbers in 1..star (for sequence
    numbers, where star is the message count: small)."""
    out = set()
    for lo, hi in seqset_ranges(s, star):
        if lo > star:
            continue
        out.update(range(max(lo, 1), min(hi, star) + 1))
    return sorted(out)


class _Sentinel:
    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return self.name


class FakeConn:
    """One client connection (server side)."""

    def __init__(self, server, sock, addr, index):
        self.server = server
        self.sock = sock
        self.addr = addr
        self.index = index
        self.tls = False
        self.received = []        # [(tls, bytes)]
        self.sent = []            # [(tls, bytes)]
        self.commands = []        # [(tls, line bytes)]
        self.buf = bytearray()
        self.closed = False
        self.eof = False
        self.state = "nonauth"    # nonauth | auth | selected | logout
        self.selected = None
        self.qresync = False
        self.user = None
        self.auth_initial_response = None
        self.tls_error = None
        self.handshake_ok = None
        self.plain_after_starttls = b""
        self.starttls_at = None   # index into commands of the STARTTLS line
        self.notes = []

    # -- output -------------------------------------------------------------

    def send(self, data):
        """Send raw bytes (str is UTF-8 encoded).  False if the peer is gone."""
        if self.closed:
            return False
        data = _b(data)
        self.sent.append((self.tls, data))
        try:
            self.sock.settimeout(self.server.send_timeout)
            self.sock.sendall(data)
            return True
        except (OSError, ValueError) as e:
            self.notes.append("send failed: %r" % (e,))
            self.close()
            return False
        finally:
            if not self.closed:
                try:
                    self.sock.settimeout(self.server.poll_interval)
                except OSError:
                    pass

    def line(self, text):
        return self.send(_b(text) + b"\r\n")

    def untagged(self, text):
        return self.line(b"* " + _b(text))

    def tagged(self, tag, status="OK", text="done"):
        t = _b(tag) + b" " + _b(status)
        if not self.server.tagged_text:
            text = None   # "A1 OK" with nothing after it
        if text is not None and text != "":
            t += b" " + _b(text)
        return self.line(t)

    def close(self):
        if self.closed:
            return
        self.closed = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except (OSError, ValueError):
            pass
        try:
            self.sock.close()
        except OSError:
            pass

    def stall(self, seconds=None):
        """Stop answering (keep the connection open) until the server stops
        or `seconds` passed."""
        self.notes.append("stalled")
        remaining = self.server.deadline - time.time()
        if seconds is not None:
            remaining = min(remaining, seconds)
        if remaining > 0:
            self.server._stopping.wait(remaining)

    # -- input --------------------------------------------------------------

    def _fill(self):
        """Read more bytes into buf; False on EOF, stop or error."""
        while not self.closed:
            if self.server._stopping.is_set() or time.time() > self.server.deadline:
                return False
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except ssl.SSLWantReadError:
                time.sleep(0.01)
                continue
            except (OSError, ValueError) as e:
                self.notes.append("recv failed: %r" % (e,))
                self.eof = True
                return False
            if not data:
                self.eof = True
                return False
            self.received.append((self.tls, data))
            self.buf += data
            return True
        return False

    def read_raw_line(self):
        """One CRLF-terminated line (without CRLF), or None."""
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                line = bytes(self.buf[:i])
                del self.buf[:i + 1]
                return line[:-1] if line.endswith(b"\r") else line
            if len(self.buf) > self.server.max_client_line:
                self.notes.append("client line too long")
                return None
            if not self._fill():
                return None

    def read_exact(self, n):
        while len(self.buf) < n:
            if not self._fill():
                return None
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    def read_command(self):
        """A command line with client literals inlined, or None."""
        parts = []
        while True:
            line = self.read_raw_line()
            if line is None:
                return None
            m = re.search(rb"\{(\d+)(\+?)\}$", line)
            if not m:
                parts.append(line)
                return b"".join(parts)
            n = int(m.group(1))
            if n > self.server.max_client_line:
                return None
            if not m.group(2):
                self.line("+ go ahead")
            data = self.read_exact(n)
            if data is None:
                return None
            parts.append(line + b"\r\n" + data)

    # -- TLS ----------------------------------------------------------------

    def start_tls(self):
        """Server-side TLS handshake on the current socket."""
        if self.buf:
            self.plain_after_starttls += bytes(self.buf)
            del self.buf[:]
        try:
            self.sock.settimeout(self.server.send_timeout)
            ss = self.server.ssl_context.wrap_socket(
                self.sock, server_side=True, do_handshake_on_connect=False)
            self.sock = ss
            ss.do_handshake()
        except (OSError, ssl.SSLError, ValueError) as e:
            self.tls_error = str(e) or repr(e)
            self.handshake_ok = False
            self.close()
            return False
        self.tls = True
        self.handshake_ok = True
        try:
            self.sock.settimeout(self.server.poll_interval)
        except OSError:
            pass
        return True

    # -- helpers for hooks ----------------------------------------------------

    def default(self, tag, key, args):
        return self.server._default(self, tag, key, args)

    def capabilities(self):
        return self.server.capabilities(self)

    def folder(self, name=None):
        return self.server.mail.get(name or self.selected, [])

    def fetch_response(self, seq, msg, full=True, uid=True, flags=True,
                       modseq=None):
        return self.server.fetch_response(self, seq, msg, full, uid, flags,
                                          modseq)

    @property
    def plain_bytes(self):
        return b"".join(d for t, d in self.received if not t)

    @property
    def tls_bytes(self):
        return b"".join(d for t, d in self.received if t)

    def command_names(self, tls=None):
        out = []
        for t, line in self.commands:
            if tls is not None and t != tls:
                continue
            w = line.split(b" ")
            name = w[1].upper() if len(w) > 1 else b""
            if name == b"UID" and len(w) > 2:
                name += b" " + w[2].upper()
            out.append(name.decode("latin-1"))
        return out


class FakeImap:
    """Scripted IMAP server (context manager).  See the module docstring.

    Parameters:
      security         "plain" (STARTTLS available) or "tls" (implicit TLS)
      starttls         offer STARTTLS on a plain listener (default True)
      cert, key_type   server certificate variant from satchel_test
                       (_gen_tls: "good", "wronghost", "untrusted",
                       "selfsigned", "expired"; "rsa" or "ec")
      cert_file, key_file, ca_file   use these PEM files instead
      ssl_context      a ready server-side ssl.SSLContext (e.g. TLS 1.1 only)
      users            {user: password} (default alice / secret-pass-1)
      mail             {folder: [message dict]} (default INBOX with 5)
      uidvalidity      reported for every folder
      condstore, qresync   advertise and implement them (HIGHESTMODSEQ,
                       MODSEQ, CHANGEDSINCE, ENABLE QRESYNC, SELECT
                       (QRESYNC ...) with VANISHED (EARLIER) from .expunged,
                       {folder: [(uid, modseq)]})
      sasl_ir, auth_plain  advertise SASL-IR / AUTH=PLAIN
      allow_plaintext  False: LOGINDISABLED and no AUTH= before TLS
      greeting_caps    put [CAPABILITY ...] in the greeting
      extra_caps, drop_caps   adjust every CAPABILITY list
      tagged_text      False: tagged replies carry no text ("S3 OK")
      folder_attrs     {folder: "LIST attributes"}
      hooks            see the module docstring
      lifetime         seconds until the server stops itself (default 60)
      send_timeout     seconds a single send may take
      host             "127.0.0.1" (default) or "::1"
    Attributes: port, address, ca_file, cert_file, key_file, conns, errors
    (exceptions raised inside hooks), tmp (a private temp dir).
    """

    STALL = _Sentinel("STALL")
    CLOSE = _Sentinel("CLOSE")

    def __init__(self, security="plain", starttls=True, cert="good",
                 key_type="rsa", users=None, mail=None, uidvalidity=1234,
                 qresync=False, condstore=False, sasl_ir=True,
                 auth_plain=True, allow_plaintext=True, greeting_caps=False,
                 extra_caps=(), drop_caps=(), hooks=None, lifetime=60.0,
                 send_timeout=10.0, folder_attrs=None, host="127.0.0.1",
                 tagged_text=True, cert_file=None, key_file=None,
                 ca_file=None, ssl_context=None):
        if security not in ("plain", "tls"):
            raise ValueError("security must be 'plain' or 'tls'")
        self.security = security
        self.starttls = starttls and security == "plain"
        self.users = dict(users if users is not None else {USER: PASSWORD})
        if mail is None:
            mail = {"INBOX": make_messages(5)}
        self.mail = mail
        self.uidvalidity = uidvalidity
        self.qresync = qresync
        self.condstore = condstore or qresync
        self.sasl_ir = sasl_ir
        self.auth_plain = auth_plain
        self.allow_plaintext = allow_plaintext
        self.greeting_caps = greeting_caps
        self.extra_caps = list(extra_caps)
        self.drop_caps = {c.upper() for c in drop_caps}
        self.hooks = dict(hooks or {})
        self.folder_attrs = dict(folder_attrs or {})
        self.tagged_text = tagged_text
        self.expunged = {}          # folder -> [(uid, modseq)]
        self.lifetime = lifetime
        self.send_timeout = send_timeout
        self.poll_interval = 0.1
        self.max_client_line = 1 << 20
        self.host = host
        self.conns = []
        self.errors = []            # exceptions raised in handlers
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._threads = []
        self.tmp = tempfile.mkdtemp(prefix="satchel-fake-imap-")
        tls = st._gen_tls(key_type, cert)
        self.ca_file = ca_file or tls["ca"]
        self.untrusted_ca_file = tls["untrusted_ca"]
        self.cert_file = cert_file or tls["cert"]
        self.key_file = key_file or tls["key"]
        if ssl_context is None:
            ssl_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ssl_context.minimum_version = ssl.TLSVersion.TLSv1_2
            ssl_context.load_cert_chain(self.cert_file, self.key_file)
        self.ssl_context = ssl_context
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(fam, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.sock.listen(16)
        self.sock.settimeout(self.poll_interval)
        self.port = self.sock.getsockname()[1]
        self.started = time.time()
        self.deadline = self.started + lifetime
        t = threading.Thread(target=self._accept_loop, daemon=True,
                             name="fake-imap-%d" % self.port)
        t.start()
        self._accept_thread = t

    # -- lifecycle ------------------------------------------------------------

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    @property
    def address(self):
        if ":" in self.host:
            return "[%s]:%d" % (self.host, self.port)
        return "%s:%d" % (self.host, self.port)

    def stop(self):
        self._stopping.set()
        try:
            self.sock.close()
        except OSError:
            pass
        with self._lock:
            conns = list(self.conns)
        for c in conns:
            c.close()
        self._accept_thread.join(timeout=2)
        for t in list(self._threads):
            t.join(timeout=2)
        if self.tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None

    def _accept_loop(self):
        while not self._stopping.is_set():
            if time.time() > self.deadline:
                self._stopping.set()
                break
            try:
                s, addr = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                break
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            s.settimeout(self.poll_interval)
            with self._lock:
                conn = FakeConn(self, s, addr, len(self.conns))
                self.conns.append(conn)
            t = threading.Thread(target=self._serve, args=(conn,), daemon=True,
                                 name="fake-imap-conn-%d" % conn.index)
            self._threads.append(t)
            t.start()
        # The server stops itself: close whatever is still open.
        with self._lock:
            conns = list(self.conns)
        if self._stopping.is_set():
            for c in conns:
                c.close()

    def wait_idle(self, timeout=5.0):
        """Wait until every connection handler has finished."""
        deadline = time.time() + timeout
        for t in list(self._threads):
            t.join(timeout=max(0.0, deadline - time.time()))
        return all(not t.is_alive() for t in self._threads)

    # -- recording queries ------------------------------------------------------

    def received(self, tls=None):
        out = []
        for c in list(self.conns):
            for t, d in c.received:
                if tls is None or t == tls:
                    out.append(d)
        return b"".join(out)

    def saw(self, needle, tls=None):
        return _b(needle) in self.received(tls)

    def command_names(self, tls=None):
        out = []
        for c in list(self.conns):
            out += c.command_names(tls)
        return out

    def auth_seen(self, tls=None):
        """Did any client send AUTHENTICATE or LOGIN (with the given TLS
        state)?  Also checks raw bytes, not just parsed commands."""
        names = self.command_names(tls)
        if any(n in ("AUTHENTICATE", "LOGIN") for n in names):
            return True
        raw = self.received(tls).upper()
        return b" AUTHENTICATE " in raw or b" LOGIN " in raw

    def secret_forms(self, user=USER, password=PASSWORD):
        """Byte strings whose presence would reveal the password."""
        pw = _b(password)
        blob = base64.b64encode(b"\0" + _b(user) + b"\0" + pw)
        return [pw, blob, base64.b64encode(pw).rstrip(b"=")]

    def secret_seen(self, tls=None, user=USER, password=PASSWORD):
        data = self.received(tls)
        return any(f in data for f in self.secret_forms(user, password))

    # -- capabilities -----------------------------------------------------------

    def capabilities(self, conn):
        caps = ["IMAP4rev1"]
        if conn.state == "nonauth":
            plain = not conn.tls and self.security == "plain"
            if self.starttls and plain:
                caps.append("STARTTLS")
            if plain and not self.allow_plaintext:
                caps.append("LOGINDISABLED")
            elif self.auth_plain:
                caps.append("AUTH=PLAIN")
                if self.sasl_ir:
                    caps.append("SASL-IR")
        caps += ["ENABLE", "LITERAL+", "UIDPLUS", "ID"]
        if self.condstore:
            caps.append("CONDSTORE")
        if self.qresync:
            caps.append("QRESYNC")
        caps += self.extra_caps
        return [c for c in caps if c.upper() not in self.drop_caps]

    def cap_string(self, conn):
        return " ".join(self.capabilities(conn))

    # -- connection handling ----------------------------------------------------

    def _serve(self, conn):
        try:
            if self.security == "tls":
                if not conn.start_tls():
                    return
            hook = self.hooks.get("greeting")
            if hook is not None:
                self._run_hook(hook, conn, None, None, greeting=True)
            else:
                self.greeting(conn)
            while not conn.closed and not self._stopping.is_set():
                line = conn.read_command()
                if line is None:
                    break
                conn.commands.append((conn.tls, line))
                self._dispatch(conn, line)
        except Exception as e:  # a bug in a hook: record, do not hang
            self.errors.append(repr(e))
        finally:
            conn.close()

    def greeting(self, conn):
        if self.greeting_caps:
            conn.untagged("OK [CAPABILITY %s] Fake IMAP ready"
                          % self.cap_string(conn))
        else:
            conn.untagged("OK Fake IMAP ready")

    def _dispatch(self, conn, line):
        m = re.match(rb"(\S+) +(\S+) ?(.*)$", line, re.S)
        if not m:
            conn.line(b"* BAD could not parse command")
            return
        tag = m.group(1).decode("latin-1")
        name = m.group(2).decode("latin-1").upper()
        args = m.group(3).decode("latin-1")
        key = name
        if name == "UID":
            m2 = re.match(r"(\S+) ?(.*)$", args, re.S)
            if m2:
                key = "UID " + m2.group(1).upper()
                args = m2.group(2)
        if name == "STARTTLS":
            conn.starttls_at = len(conn.commands) - 1
        hook = self.hooks.get(key)
        if hook is not None:
            self._run_hook(hook, conn, tag, args)
        else:
            self._default(conn, tag, key, args)

    def _run_hook(self, hook, conn, tag, args, greeting=False):
        if hook is FakeImap.STALL:
            conn.stall()
            conn.close()
        elif hook is FakeImap.CLOSE:
            conn.close()
        elif isinstance(hook, (bytes, str)):
            data = _b(hook)
            if tag is not None:
                data = data.replace(b"{tag}", _b(tag))
            elif greeting and data.startswith(b"* PREAUTH"):
                conn.state = "auth"   # a PREAUTH greeting authenticates
            conn.send(data)
        elif greeting:
            hook(conn)
        else:
            hook(conn, tag, args)

    def _default(self, conn, tag, key, args):
        fn = getattr(self, "do_" + key.replace(" ", "_"), None)
        if fn is None:
            conn.tagged(tag, "BAD", "unknown command")
            return
        fn(conn, tag, args)

    # -- default command handlers ------------------------------------------------

    def do_CAPABILITY(self, conn, tag, args):
        conn.untagged("CAPABILITY " + self.cap_string(conn))
        conn.tagged(tag, "OK", "CAPABILITY completed")

    def do_NOOP(self, conn, tag, args):
        conn.tagged(tag, "OK", "NOOP completed")

    def do_ID(self, conn, tag, args):
        conn.untagged('ID ("name" "fake_imap")')
        conn.tagged(tag, "OK", "ID completed")

    def do_STARTTLS(self, conn, tag, args):
        if not self.starttls or conn.tls:
            conn.tagged(tag, "BAD", "STARTTLS not available")
            return
        if conn.tagged(tag, "OK", "Begin TLS negotiation now"):
            conn.start_tls()

    def _login_ok(self, conn, user, password):
        if self.users.get(user) == password:
            conn.state = "auth"
            conn.user = user
            return True
        return False

    def do_AUTHENTICATE(self, conn, tag, args):
        parts = args.split()
        if not parts or parts[0].upper() != "PLAIN" or not self.auth_plain:
            conn.tagged(tag, "NO", "unsupported mechanism")
            return
        if len(parts) > 1:
            conn.auth_initial_response = True
            resp = parts[1].encode("latin-1")
        else:
            conn.auth_initial_response = False
            conn.line("+ ")
            resp = conn.read_raw_line()
            if resp is None:
                return
            conn.commands.append((conn.tls, b"(continuation) " + resp))
        if resp == b"*":
            conn.tagged(tag, "BAD", "authentication aborted")
            return
        try:
            raw = base64.b64decode(resp, validate=True)
            _authz, user, pw = raw.split(b"\0", 2)
            user, pw = user.decode("utf-8"), pw.decode("utf-8")
        except Exception:
            conn.tagged(tag, "BAD", "bad SASL response")
            return
        if self._login_ok(conn, user, pw):
            conn.tagged(tag, "OK", "[CAPABILITY %s] Logged in"
                        % self.cap_string(conn))
        else:
            conn.tagged(tag, "NO", "[AUTHENTICATIONFAILED] Authentication failed.")

    def do_LOGIN(self, conn, tag, args):
        words = re.findall(r'"((?:[^"\\]|\\.)*)"|(\S+)', args)
        vals = [re.sub(r'\\(.)', r'\1', q) if q else a for q, a in words]
        if len(vals) != 2:
            conn.tagged(tag, "BAD", "LOGIN wants user and password")
            return
        if (not conn.tls and self.security == "plain"
                and not self.allow_plaintext):
            conn.tagged(tag, "NO", "[PRIVACYREQUIRED] Plaintext login disabled")
            return
        if self._login_ok(conn, vals[0], vals[1]):
            conn.tagged(tag, "OK", "[CAPABILITY %s] Logged in"
                        % self.cap_string(conn))
        else:
            conn.tagged(tag, "NO", "[AUTHENTICATIONFAILED] Authentication failed.")

    def _need_auth(self, conn, tag):
        if conn.state == "nonauth":
            conn.tagged(tag, "BAD", "not authenticated")
            return False
        return True

    def do_ENABLE(self, conn, tag, args):
        if not self._need_auth(conn, tag):
            return
        if "QRESYNC" in args.upper() and self.qresync:
            conn.qresync = True
            conn.untagged("ENABLED QRESYNC")
        conn.tagged(tag, "OK", "ENABLE completed")

    def do_LIST(self, conn, tag, args):
        if not self._need_auth(conn, tag):
            return
        for name in self.mail:
            attrs = self.folder_attrs.get(name, "\\HasNoChildren")
            conn.untagged('LIST (%s) "/" %s' % (attrs, st.imap_quote(name)))
        conn.tagged(tag, "OK", "LIST completed")

    def do_LSUB(self, conn, tag, args):
        self.do_LIST(conn, tag, args)

    def highestmodseq(self, folder):
        ms = [m.get("modseq", 1) for m in self.mail.get(folder, [])]
        ms += [q for _, q in self.expunged.get(folder, [])]
        return max(ms) if ms else 1

    def uidnext(self, folder):
        uids = [m["uid"] for m in self.mail.get(folder, [])]
        uids += [u for u, _ in self.expunged.get(folder, [])]
        return (max(uids) + 1) if uids else 1

    def _folder_arg(self, args):
        m = re.match(r'\s*(?:"((?:[^"\\]|\\.)*)"|(\S+))\s*(.*)$', args, re.S)
        if not m:
            return None, ""
        name = re.sub(r'\\(.)', r'\1', m.group(1)) if m.group(1) is not None \
            else m.group(2)
        return name, m.group(3)

    def do_SELECT(self, conn, tag, args, examine=False):
        if not self._need_auth(conn, tag):
            return
        name, rest = self._folder_arg(args)
        if name is not None and name.upper() == "INBOX":
            name = next((f for f in self.mail if f.upper() == "INBOX"), name)
        if name not in self.mail:
            conn.state = "auth"
            conn.selected = None
            conn.tagged(tag, "NO", "Mailbox doesn't exist: %s" % name)
            return
        msgs = self.mail[name]
        conn.selected = name
        conn.state = "selected"
        conn.untagged("FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)")
        conn.untagged("OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted "
                      "\\Seen \\Draft \\*)] Flags permitted.")
        conn.untagged("%d EXISTS" % len(msgs))
        conn.untagged("0 RECENT")
        conn.untagged("OK [UIDVALIDITY %d] UIDs valid" % self.uidvalidity)
        conn.untagged("OK [UIDNEXT %d] Predicted next UID" % self.uidnext(name))
        if self.condstore:
            conn.untagged("OK [HIGHESTMODSEQ %d] Highest"
                          % self.highestmodseq(name))
        m = re.search(r"QRESYNC \((\d+) (\d+)", rest, re.I)
        if m and conn.qresync and int(m.group(1)) == self.uidvalidity:
            since = int(m.group(2))
            gone = sorted(u for u, q in self.expunged.get(name, []) if q > since)
            if gone:
                conn.untagged("VANISHED (EARLIER) %s" % ",".join(map(str, gone)))
            for seq, msg in enumerate(msgs, 1):
                if msg.get("modseq", 1) > since:
                    conn.send(self.fetch_response(conn, seq, msg, False, True,
                                                  True, True))
        conn.tagged(tag, "OK", "[%s] %s completed" % (
            "READ-ONLY" if examine else "READ-WRITE",
            "EXAMINE" if examine else "SELECT"))

    def do_EXAMINE(self, conn, tag, args):
        self.do_SELECT(conn, tag, args, examine=True)

    def do_CLOSE(self, conn, tag, args):
        conn.state = "auth"
        conn.selected = None
        conn.tagged(tag, "OK", "CLOSE completed")

    do_UNSELECT = do_CLOSE

    def fetch_response(self, conn, seq, msg, full=True, uid=True, flags=True,
                       modseq=None):
        """Bytes of one untagged FETCH response for msg."""
        if modseq is None:
            modseq = self.condstore
        if full and "raw" in msg:
            return _b(msg["raw"]).replace(b"{seq}", str(seq).encode())
        items = []
        if uid:
            items.append(b"UID %d" % msg["uid"])
        if flags:
            items.append(b"FLAGS (" + " ".join(msg.get("flags", [])).encode()
                         + b")")
        if modseq:
            items.append(b"MODSEQ (%d)" % msg.get("modseq", 1))
        if full:
            hdr = header_block(msg)
            items.append(b"RFC822.SIZE %d" % msg.get("size", len(hdr) + 10))
            items.append(b'INTERNALDATE "' + _b(msg.get(
                "internaldate", "01-Jan-2024 00:00:00 +0000")) + b'"')
            items.append(b"BODYSTRUCTURE " + _b(msg.get(
                "bodystructure", _DEFAULT_BS % 10)))
            items.append(b"BODY[HEADER.FIELDS (DATE FROM SUBJECT MESSAGE-ID)] "
                         b"{%d}\r\n" % len(hdr) + hdr)
        return b"* %d FETCH (" % seq + b" ".join(items) + b")\r\n"

    def _fetch(self, conn, tag, args, by_uid):
        if conn.state != "selected":
            conn.tagged(tag, "BAD", "no mailbox selected")
            return
        msgs = self.mail.get(conn.selected, [])
        m = re.match(r"(\S+)\s+(.*)$", args, re.S)
        if not m:
            conn.tagged(tag, "BAD", "FETCH syntax")
            return
        setspec, items = m.group(1), m.group(2).upper()
        full = "HEADER" in items or "BODYSTRUCTURE" in items
        want_flags = "FLAGS" in items
        cs = re.search(r"CHANGEDSINCE (\d+)", items)
        changedsince = int(cs.group(1)) if cs else None
        want_modseq = self.condstore and ("MODSEQ" in items or cs is not None)
        try:
            if by_uid:
                star = max((x["uid"] for x in msgs), default=0)
                ranges = seqset_ranges(setspec, star)
                sel = [(i, x) for i, x in enumerate(msgs, 1)
                       if in_ranges(x["uid"], ranges)]
                # "n:*" always includes the highest UID (RFC 3501 6.4.8)
                if msgs and any(":" in p and "*" in p for p in setspec.split(",")):
                    last = (len(msgs), msgs[-1])
                    if last not in sel:
                        sel.append(last)
            else:
                ranges = seqset_ranges(setspec, len(msgs))
                if any(hi > len(msgs) or lo < 1 for lo, hi in ranges):
                    raise ValueError("sequence out of range")
                wanted = parse_seqset(setspec, len(msgs))
                sel = [(i, msgs[i - 1]) for i in wanted]
        except ValueError:
            conn.tagged(tag, "BAD", "invalid sequence set")
            return
        for seq, x in sel:
            if changedsince is not None and x.get("modseq", 1) <= changedsince:
                continue
            if not conn.send(self.fetch_response(
                    conn, seq, x, full, True, want_flags or full,
                    want_modseq)):
                return
        conn.tagged(tag, "OK", "%sFETCH completed" % ("UID " if by_uid else ""))

    def do_FETCH(self, conn, tag, args):
        self._fetch(conn, tag, args, False)

    def do_UID_FETCH(self, conn, tag, args):
        self._fetch(conn, tag, args, True)

    def do_LOGOUT(self, conn, tag, args):
        conn.state = "logout"
        conn.untagged("BYE Logging out")
        conn.tagged(tag, "OK", "LOGOUT completed")
        conn.close()

    # -- running the client -----------------------------------------------------

    def run_sim(self, db, commands, security=None, **kw):
        """run_sim_at() against this server.  security defaults to "tls"
        for an implicit-TLS server and "none" for a plain one; the CA
        defaults to this server's CA."""
        if security is None:
            security = "tls" if self.security == "tls" else "none"
        kw.setdefault("ca", self.ca_file)
        kw.setdefault("pwdir", self.tmp)
        return run_sim_at(self.host, self.port, db, commands,
                          security=security, **kw)


class SimRun(st.SimResult):
    """SimResult plus timed_out (the subprocess timeout hit)."""

    def __init__(self, *a, **kw):
        self.timed_out = kw.pop("timed_out", False)
        super().__init__(*a, **kw)


def sim_crashed(r):
    """True if satchel-sim died from a signal (or abort/segv exit codes)."""
    return r.returncode is None or r.returncode < 0 or r.returncode in (134, 139)


def run_sim_at(host, port, db, commands, security="none", ca=None,
               user=USER, password=PASSWORD, pwfile=None, pwmode=0o600,
               pwdir=None, json=True, timeout_ms=3000, extra=(),
               timeout=30):
    """Run satchel-sim against host:port; never raises on failure or
    timeout (check .returncode / .timed_out).  The password goes into a
    file of mode `pwmode` (unless pwfile is given)."""
    if pwfile is None:
        d = pwdir or tempfile.gettempdir()
        fd, pwfile = tempfile.mkstemp(prefix="pw-", dir=d)
        with os.fdopen(fd, "w") as f:
            f.write(password)
        os.chmod(pwfile, pwmode)
    args = [st.satchel_sim_path(), "--db", str(db),
            "--server", ("[%s]:%d" if ":" in host else "%s:%d") % (host, port),
            "--security", security]
    if ca:
        args += ["--ca", str(ca)]
    if user is not None:
        args += ["--user", user]
    args += ["--password-file", pwfile]
    if timeout_ms is not None:
        args += ["--timeout", str(timeout_ms)]
    stack = os.environ.get("SATCHEL_STACK")
    if stack and not any(str(x) == "--stack" for x in extra):
        args += ["--stack", stack]
    if not any(str(x) == "--retries" for x in extra):
        # One attempt: these tests time single connections; reconnection
        # has tests of its own.
        args += ["--retries", "0"]
    if json:
        args.append("--json")
    args += [str(a) for a in extra]
    args += ["-c", commands if isinstance(commands, str) else "; ".join(commands)]
    t0 = time.time()
    timed_out = False
    p = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        p.kill()
        out, err = p.communicate()
    return SimRun(args, None if timed_out else p.returncode,
                  out.decode("utf-8", "replace"), err.decode("utf-8", "replace"),
                  time.time() - t0, json, timed_out=timed_out)

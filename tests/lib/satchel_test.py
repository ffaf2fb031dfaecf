"""satchel_test -- reusable fixtures for Satchel integration tests.

Python 3 standard library only.  Main pieces:

* ``Dovecot``: a private, throwaway Dovecot 2.3 instance (context manager)
  running from a temporary directory with its own config, TLS CA and
  certificates, maildir storage, and IMAP/IMAPS/POP3 listeners on free
  127.0.0.1 ports.  It never touches the system Dovecot install or config.
* ``run_sim`` / ``run_sim_offline``: run the ``satchel-sim`` binary against
  such an instance and parse its ``--json`` output.
* Corpus helpers: ``load_corpus``, ``synth_messages``, ``load_mailset``.

Network: everything listens on, and only talks to, 127.0.0.1.

Environment variables:
  SATCHEL_KEEP_TMP=1   keep the Dovecot temp dir on stop (path is printed)
  SATCHEL_SIM=PATH     satchel-sim binary (default <repo>/build/boards/host/satchel-sim)
  SATCHEL_CORPUS=PATH  spamassassin.tar.xz (default <repo>/../shared/corpus/...)
  SATCHEL_DOVECOT=PATH dovecot binary (default: found on PATH or /usr/sbin)

Why the plain IMAP port goes through a relay
--------------------------------------------
Dovecot treats a connection whose remote IP equals its local IP (that is,
any 127.0.0.1 -> 127.0.0.1 connection) as "secured", so it would accept
plaintext LOGIN on the plain port without STARTTLS.  To get real-world
behaviour (``LOGINDISABLED`` until STARTTLS), ``imap_port`` and ``pop3_port``
are small in-process TCP relays that forward to a Dovecot ``haproxy = yes``
listener and prepend a PROXY v1 header naming the client as 192.0.2.10
(TEST-NET-1; the address is only a label, nothing ever connects to it).
The direct, trusted ports are still available as ``imap_direct_port`` and
``pop3_direct_port``.  The ``imaps`` port is a direct Dovecot listener.

Dovecot 2.3.19 behaviour worth knowing (checked by
tests/integration/selftest_dovecot.py)
------------------------------------------------------------------------
* Capability profiles are made with ``imap_capability``.  Once it is set,
  Dovecot no longer appends LITERAL+ / NOTIFY / SPECIAL-USE itself (the
  profile strings include them), and imap-login then also advertises the
  profile list in the pre-login greeting, so in "condstore"/"none" the
  greeting shows the long list while "full" shows the short banner list.
  Post-login CAPABILITY (and the ``[CAPABILITY ...]`` code in the LOGIN OK)
  is exactly ``profile_capability(profile)``.
* Not advertising an extension does not disable it: ENABLE QRESYNC,
  SELECT ... (QRESYNC ...) and SELECT ... (CONDSTORE) all still succeed in
  the "condstore"/"none" profiles.  The profiles only test clients that
  honour the advertised capabilities.
* add_messages() writes maildir files; Dovecot assigns UIDs to new files
  sorted by the time stamp in the file name (seconds, then M<usecs>), so
  the file names carry a strictly increasing synthetic clock and UIDs follow
  list order.  INTERNALDATE is the file mtime (set from the Date: header).
* session_bytes(): ``in=``/``out=`` are counted by the imap (or pop3)
  process only: post-login, after TLS decryption.  The greeting, pre-login
  CAPABILITY, STARTTLS, the LOGIN command and the TLS overhead are not
  included; the tagged "OK [CAPABILITY ...] Logged in" reply (~430 bytes,
  sent by the imap process) and any commands pipelined after LOGIN are.
* Dovecot's per-IP auth-failure penalty (2..15 s extra per failed login) is
  disabled by default (auth_penalty=False) to keep wrong-password tests fast.
"""

import atexit
import base64
import ctypes
import email.header
import email.utils
import imaplib
import json as _json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import weakref
from pathlib import Path

__all__ = [
    "REPO_ROOT", "CORPUS", "MAILSET", "DOVECOT_DEFAULT_CAPABILITY",
    "DOVECOT_CAPABILITY_STRING", "PROFILES", "SPECIAL_USE",
    "PROXY_FAKE_CLIENT_IP", "Dovecot", "DovecotError", "FolderState",
    "SimResult", "SimError", "free_port", "satchel_sim_path", "run_sim",
    "run_sim_offline", "load_corpus", "corpus_available", "corpus_members",
    "synth_messages", "load_mailset", "load_mailset_flags",
    "load_mailset_manifest", "profile_capability", "expected_capabilities",
    "imap_utf7_encode", "imap_utf7_decode", "imap_quote", "decode_header_str",
    "header_value", "strip_mbox_from", "dovecot_version",
    "leftover_processes",
]

REPO_ROOT = Path(__file__).resolve().parents[2]
CORPUS = Path(os.environ.get(
    "SATCHEL_CORPUS",
    str(REPO_ROOT.parent / "shared" / "corpus" / "spamassassin.tar.xz")))
MAILSET = REPO_ROOT / "tests" / "data" / "mailset.tar.xz"

# Dovecot 2.3.19's built-in post-login CAPABILITY_STRING (src/imap/imap-common.h).
DOVECOT_CAPABILITY_STRING = (
    "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE SORT SORT=DISPLAY "
    "THREAD=REFERENCES THREAD=REFS THREAD=ORDEREDSUBJECT MULTIAPPEND "
    "URL-PARTIAL CATENATE UNSELECT CHILDREN NAMESPACE UIDPLUS LIST-EXTENDED "
    "I18NLEVEL=1 CONDSTORE QRESYNC ESEARCH ESORT SEARCHRES WITHIN "
    "CONTEXT=SEARCH LIST-STATUS BINARY MOVE SNIPPET=FUZZY PREVIEW=FUZZY "
    "PREVIEW STATUS=SIZE SAVEDATE")
# When imap_capability is empty (Dovecot's default) the imap process appends
# " LITERAL+" (imap_literal_minus=no), " NOTIFY" (mailbox_list_index=yes)
# and " SPECIAL-USE" (special_use mailboxes configured).  When
# imap_capability is set explicitly NOTHING is appended, so the profile
# strings below include these three themselves.
DOVECOT_RUNTIME_CAPABILITIES = ("LITERAL+", "NOTIFY", "SPECIAL-USE")
# Exact post-login CAPABILITY of an unmodified Dovecot 2.3.19 with this
# fixture's config (== the "full" profile).
DOVECOT_DEFAULT_CAPABILITY = (DOVECOT_CAPABILITY_STRING + " "
                              + " ".join(DOVECOT_RUNTIME_CAPABILITIES))

# profile name -> capabilities removed from the default list
PROFILES = {
    "full": (),
    "condstore": ("QRESYNC",),
    "none": ("CONDSTORE", "QRESYNC"),
    # Literals only as RFC 3501 has them: synchronizing, after a "+".
    "noliteral": ("LITERAL+",),
    # Neither MOVE nor UIDPLUS, as GNU imap4d or a plain IMAP4rev1 server.
    "plain": ("MOVE", "UIDPLUS"),
    # Folder state only by STATUS, one command per folder.
    "nolist-status": ("LIST-STATUS",),
}

# Special-use folders created (auto = subscribe) in every instance.
SPECIAL_USE = (
    ("Drafts", "\\Drafts"),
    ("Sent", "\\Sent"),
    ("Trash", "\\Trash"),
    ("Junk", "\\Junk"),
    ("Archive", "\\Archive"),
)

PROXY_FAKE_CLIENT_IP = "192.0.2.10"   # TEST-NET-1 label, never contacted

_MAILDIR_FLAG_LETTERS = {
    "\\draft": "D", "\\flagged": "F", "\\answered": "R",
    "\\seen": "S", "\\deleted": "T",
}


class DovecotError(RuntimeError):
    pass


# ---------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------

_ports_handed_out = set()
_ports_lock = threading.Lock()


def free_port(host="127.0.0.1"):
    """Return a TCP port that was free on `host` a moment ago, and that this
    process has never handed out before.

    A port is closed again before its server binds it, and the kernel may
    give the same free port to the next bind(0): two servers started one
    after another (Cyrus's master binds late) could then be told the same
    port, and a client meant for one would reach the other. Remembering
    every port handed out rules that out within a process; a clash with
    another process still shows as "Address already in use" at start."""
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    for _ in range(200):
        with socket.socket(fam, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
        with _ports_lock:
            if port not in _ports_handed_out:
                _ports_handed_out.add(port)
                return port
    raise RuntimeError("no fresh free port on %s after 200 tries" % host)


def satchel_sim_path():
    """Path to the satchel-sim binary: $SATCHEL_SIM or the default build dir."""
    env = os.environ.get("SATCHEL_SIM")
    if env:
        return env
    return str(REPO_ROOT / "build" / "boards" / "host" / "satchel-sim")


def _find_prog(name, env=None):
    if env and os.environ.get(env):
        return os.environ[env]
    p = shutil.which(name)
    if p:
        return p
    for d in ("/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"):
        if os.path.exists(os.path.join(d, name)):
            return os.path.join(d, name)
    raise DovecotError("%s not found (install dovecot-imapd)" % name)


_dovecot_version = None


def dovecot_version():
    """Version string of the dovecot binary, e.g. "2.3.19.1"."""
    global _dovecot_version
    if _dovecot_version is None:
        out = subprocess.run([_find_prog("dovecot", "SATCHEL_DOVECOT"),
                              "--version"], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT).stdout
        _dovecot_version = out.decode(errors="replace").split()[0] if out else "?"
    return _dovecot_version


def strip_mbox_from(msg):
    """Drop a leading mbox 'From ' separator line, if any."""
    if msg.startswith(b"From "):
        nl = msg.find(b"\n")
        return b"" if nl < 0 else msg[nl + 1:]
    return msg


def profile_capability(profile):
    """Exact post-login CAPABILITY string (without the "CAPABILITY" word)
    that `profile` is expected to advertise."""
    if profile not in PROFILES:
        raise ValueError("unknown profile %r (want one of %s)"
                         % (profile, ", ".join(PROFILES)))
    drop = PROFILES[profile]
    return " ".join(c for c in DOVECOT_DEFAULT_CAPABILITY.split()
                    if c not in drop)


def _imap_capability_setting(profile):
    """Value for dovecot.conf imap_capability ("" = Dovecot default)."""
    return "" if not PROFILES[profile] else profile_capability(profile)


def expected_capabilities(profile):
    """Set of upper-cased post-login capabilities expected for `profile`."""
    return {c.upper() for c in profile_capability(profile).split()}


# --- modified UTF-7 (RFC 3501 5.1.3) --------------------------------------

def imap_utf7_encode(s):
    """Unicode folder name -> IMAP modified UTF-7 (str)."""
    out, buf = [], []

    def flush():
        if buf:
            b = "".join(buf).encode("utf-16-be")
            enc = base64.b64encode(b).decode("ascii").rstrip("=")
            out.append("&" + enc.replace("/", ",") + "-")
            buf.clear()

    for ch in s:
        if 0x20 <= ord(ch) <= 0x7e:
            flush()
            out.append("&-" if ch == "&" else ch)
        else:
            buf.append(ch)
    flush()
    return "".join(out)


def imap_utf7_decode(s):
    """IMAP modified UTF-7 folder name (str or bytes) -> unicode str."""
    if isinstance(s, bytes):
        s = s.decode("ascii", "replace")
    out, i = [], 0
    while i < len(s):
        ch = s[i]
        if ch != "&":
            out.append(ch)
            i += 1
            continue
        j = s.find("-", i)
        if j < 0:
            out.append(s[i:])
            break
        chunk = s[i + 1:j]
        if chunk == "":
            out.append("&")
        else:
            b64 = chunk.replace(",", "/")
            b64 += "=" * (-len(b64) % 4)
            out.append(base64.b64decode(b64).decode("utf-16-be"))
        i = j + 1
    return "".join(out)


def decode_header_str(value):
    """Decode an RFC 2047 header value (str, possibly folded) to unicode."""
    if value is None:
        return None
    if isinstance(value, email.header.Header):
        value = value.encode()   # back to RFC 2047 / raw form
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            value = value.decode("latin-1")   # raw 8-bit header
    elif not isinstance(value, str):
        value = str(value)
    value = re.sub(r"\r?\n[ \t]", " ", value).strip()
    try:
        return str(email.header.make_header(email.header.decode_header(value)))
    except Exception:
        parts = []
        try:
            for data, cs in email.header.decode_header(value):
                if isinstance(data, str):
                    parts.append(data)
                    continue
                try:
                    parts.append(data.decode(cs or "ascii", "replace"))
                except LookupError:
                    parts.append(data.decode("latin-1"))
            return "".join(parts)
        except Exception:
            return value


def header_value(msg, name):
    """Raw (bytes) value of the first `name` header in a message or header
    block, unfolded; None if absent."""
    end = re.search(rb"\r?\n\r?\n", msg)
    hdr = msg[:end.start() + 1] if end else msg
    m = re.search(rb"(?im)^" + re.escape(name.encode("ascii")) +
                  rb"[ \t]*:[ \t]*([^\n]*(?:\n[ \t][^\n]*)*)", hdr)
    if not m:
        return None
    return re.sub(rb"\r?\n(?=[ \t])", b"", m.group(1)).rstrip(b"\r").strip()


def imap_quote(s):
    """Quote a string for an IMAP command (folder names etc.)."""
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _check(typ, data, what):
    if typ != "OK":
        raise DovecotError("%s failed: %s %r" % (what, typ, data))
    return data


# ---------------------------------------------------------------------------
# TLS material (generated once per process with the openssl CLI, then copied)
# ---------------------------------------------------------------------------

_tls_cache = {}
_tls_cache_lock = threading.Lock()
_tls_cache_dir = None


def _openssl(*args, cwd=None):
    p = subprocess.run(["openssl"] + list(args), cwd=cwd,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if p.returncode != 0:
        raise DovecotError("openssl %s failed: %s" % (
            " ".join(args), p.stderr.decode(errors="replace")))
    return p.stdout


def _tls_dir(key_type):
    global _tls_cache_dir
    if _tls_cache_dir is None:
        _tls_cache_dir = tempfile.mkdtemp(prefix="satchel-tls-")
        atexit.register(shutil.rmtree, _tls_cache_dir, True)
    d = os.path.join(_tls_cache_dir, key_type)
    os.makedirs(d, exist_ok=True)
    return d


def _genkey(d, name, key_type):
    if key_type == "rsa":
        _openssl("genpkey", "-algorithm", "RSA", "-pkeyopt",
                 "rsa_keygen_bits:2048", "-out", name, cwd=d)
    elif key_type == "ec":
        _openssl("genpkey", "-algorithm", "EC", "-pkeyopt",
                 "ec_paramgen_curve:P-256", "-out", name, cwd=d)
    else:
        raise ValueError("key_type must be 'rsa' or 'ec'")


_SAN_OK = "DNS:localhost,IP:127.0.0.1,IP:::1"
# server cert variants: name -> (signing CA or None=self-signed, CN, SAN, dates)
_CERT_VARIANTS = {
    "good": ("ca", "localhost", _SAN_OK, None),
    "wronghost": ("ca", "wrong.invalid", "DNS:wrong.invalid", None),
    "untrusted": ("untrusted-ca", "localhost", _SAN_OK, None),
    "selfsigned": (None, "localhost", _SAN_OK, None),
    "expired": ("ca", "localhost", _SAN_OK, ("20200101000000Z", "20200201000000Z")),
}


def _gen_tls(key_type, variant="good"):
    """Return dict with paths: ca, untrusted_ca, cert, key (server cert
    `variant`).  The two CAs and the server key are created once per
    process and key type; cert variants lazily."""
    if variant not in _CERT_VARIANTS:
        raise ValueError("server_cert must be one of %s" % ", ".join(_CERT_VARIANTS))
    with _tls_cache_lock:
        ck = (key_type, variant)
        if ck in _tls_cache:
            return _tls_cache[ck]
        d = _tls_dir(key_type)
        if not os.path.exists(os.path.join(d, "ca.pem")):
            _genkey(d, "server.key", key_type)
            for ca, label in (("ca", "Test CA"), ("untrusted-ca", "Untrusted CA")):
                _genkey(d, ca + ".key", key_type)
                _openssl("req", "-x509", "-new", "-key", ca + ".key", "-sha256",
                         "-days", "3650", "-subj",
                         "/O=Satchel Test/CN=Satchel %s %d" % (label, os.getpid()),
                         "-addext", "basicConstraints=critical,CA:TRUE",
                         "-addext", "keyUsage=critical,keyCertSign,cRLSign",
                         "-out", ca + ".pem", cwd=d)
        ca, cn, san, dates = _CERT_VARIANTS[variant]
        out = "server-%s.pem" % variant
        ext = "server-%s.ext" % variant
        with open(os.path.join(d, ext), "w") as f:
            f.write("basicConstraints=CA:FALSE\n"
                    "keyUsage=critical,digitalSignature,keyEncipherment\n"
                    "extendedKeyUsage=serverAuth\n"
                    "subjectAltName=%s\n" % san)
        subj = "/O=Satchel Test/CN=%s" % cn
        if ca is None:
            _openssl("req", "-x509", "-new", "-key", "server.key", "-sha256",
                     "-days", "825", "-subj", subj,
                     "-addext", "subjectAltName=" + san, "-out", out, cwd=d)
        elif dates is None:
            _openssl("req", "-new", "-key", "server.key", "-subj", subj,
                     "-out", out + ".csr", cwd=d)
            _openssl("x509", "-req", "-in", out + ".csr", "-CA", ca + ".pem",
                     "-CAkey", ca + ".key", "-set_serial",
                     str(int.from_bytes(os.urandom(8), "big")),
                     "-days", "825", "-sha256", "-extfile", ext, "-out", out,
                     cwd=d)
        else:
            # explicit (past) validity needs `openssl ca`
            _openssl("req", "-new", "-key", "server.key", "-subj", subj,
                     "-out", out + ".csr", cwd=d)
            cadir = os.path.join(d, "ca-db")
            os.makedirs(cadir, exist_ok=True)
            open(os.path.join(cadir, "index.txt"), "w").close()
            with open(os.path.join(cadir, "serial"), "w") as f:
                f.write("1000\n")
            cnf = os.path.join(d, "ca.cnf")
            with open(cnf, "w") as f:
                f.write("[ca]\ndefault_ca=CA_default\n[CA_default]\n"
                        "dir=%s\ndatabase=$dir/index.txt\nserial=$dir/serial\n"
                        "new_certs_dir=$dir\ndefault_md=sha256\npolicy=pol\n"
                        "unique_subject=no\n"
                        "[pol]\norganizationName=optional\ncommonName=supplied\n"
                        % cadir)
            _openssl("ca", "-batch", "-config", cnf, "-in", out + ".csr",
                     "-cert", ca + ".pem", "-keyfile", ca + ".key",
                     "-startdate", dates[0], "-enddate", dates[1],
                     "-extfile", ext, "-notext", "-out", out, cwd=d)
        paths = {"ca": os.path.join(d, "ca.pem"),
                 "untrusted_ca": os.path.join(d, "untrusted-ca.pem"),
                 "cert": os.path.join(d, out),
                 "key": os.path.join(d, "server.key")}
        _tls_cache[ck] = paths
        return paths


# ---------------------------------------------------------------------------
# PROXY-protocol relay for the plain ports (see module docstring)
# ---------------------------------------------------------------------------

class _ProxyRelay:
    """Listen on 127.0.0.1:port; forward each connection to 127.0.0.1:target
    with a PROXY v1 header so that Dovecot sees a non-local client IP."""

    def __init__(self, target_port, port=0, fake_ip=PROXY_FAKE_CLIENT_IP):
        self.target_port = target_port
        self.fake_ip = fake_ip
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self._conns = set()
        self._lock = threading.Lock()
        self._stopped = False
        self._thread = threading.Thread(target=self._accept_loop,
                                        name="satchel-relay-%d" % self.port,
                                        daemon=True)
        self._thread.start()

    def _accept_loop(self):
        while not self._stopped:
            try:
                c, addr = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c, addr),
                             daemon=True).start()

    def _serve(self, c, addr):
        try:
            u = socket.create_connection(("127.0.0.1", self.target_port),
                                         timeout=10)
            u.settimeout(None)
        except OSError:
            c.close()
            return
        for s in (c, u):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._lock:
            if self._stopped:
                c.close()
                u.close()
                return
            self._conns.add(c)
            self._conns.add(u)
        try:
            u.sendall(("PROXY TCP4 %s 127.0.0.1 %d %d\r\n" % (
                self.fake_ip, addr[1], self.port)).encode("ascii"))
        except OSError:
            self._finish(c, u)
            return
        # one thread per direction, so a peer that is busy writing never
        # blocks the other direction (no relay-induced deadlock)
        done = threading.Event()
        t = threading.Thread(target=self._pump, args=(u, c, done), daemon=True)
        t.start()
        self._pump(c, u, None)
        done.wait(timeout=None if not self._stopped else 1)
        self._finish(c, u)

    @staticmethod
    def _pump(src, dst, done):
        try:
            while True:
                try:
                    data = src.recv(262144)
                except OSError:
                    data = b""
                if not data:
                    try:
                        dst.shutdown(socket.SHUT_WR)
                    except OSError:
                        pass
                    return
                try:
                    dst.sendall(data)
                except OSError:
                    try:
                        src.shutdown(socket.SHUT_RD)
                    except OSError:
                        pass
                    return
        finally:
            if done is not None:
                done.set()

    def _finish(self, c, u):
        with self._lock:
            self._conns.discard(c)
            self._conns.discard(u)
        for s in (c, u):
            try:
                s.close()
            except OSError:
                pass

    def close(self):
        self._stopped = True
        try:
            self.sock.close()
        except OSError:
            pass
        with self._lock:
            conns = list(self._conns)
        for s in conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


# ---------------------------------------------------------------------------
# Dovecot fixture
# ---------------------------------------------------------------------------

_live_instances = weakref.WeakSet()
_started_pgids = []   # process groups of every dovecot master started here


def leftover_processes():
    """Process-group ids of Dovecot instances started by this process that
    still have live processes (should be [] after every stop())."""
    alive = []
    for pgid in _started_pgids:
        try:
            os.killpg(pgid, 0)
            alive.append(pgid)
        except ProcessLookupError:
            pass
        except PermissionError:
            alive.append(pgid)
    return alive


def _atexit_stop_all():
    for d in list(_live_instances):
        try:
            d.stop()
        except Exception:
            pass


atexit.register(_atexit_stop_all)
_sigterm_installed = False


def _install_sigterm():
    """Turn SIGTERM into SystemExit so atexit cleanup runs (only if the
    process still has the default handler and we are on the main thread)."""
    global _sigterm_installed
    if _sigterm_installed:
        return
    if threading.current_thread() is not threading.main_thread():
        return
    try:
        if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
            def _h(signum, frame):
                raise SystemExit(128 + signum)
            signal.signal(signal.SIGTERM, _h)
    except (ValueError, OSError):
        return
    _sigterm_installed = True


def _pdeathsig_preexec():
    # Kill dovecot if the Python process dies without cleaning up.
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)   # PR_SET_PDEATHSIG
    except Exception:
        pass


class FolderState(dict):
    """{uid: {"flags", "size", "subject", "from", "internaldate", ...}} with
    extra attributes: uidvalidity, uidnext, exists, highestmodseq."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.folder = None
        self.uidvalidity = None
        self.uidnext = None
        self.exists = None
        self.highestmodseq = None

    def __repr__(self):
        return "FolderState(%r, uidvalidity=%r, uidnext=%r, %d msgs)" % (
            self.folder, self.uidvalidity, self.uidnext, len(self))


class Dovecot:
    """Private throwaway Dovecot instance.

        with Dovecot(profile="condstore") as dc:
            dc.add_messages("alice", "INBOX", msgs)
            r = run_sim(dc, db, ["sync"])

    Parameters:
      profile          "full" | "condstore" | "none" (see PROFILES)
      users            {username: password}
      tmpdir           parent dir for the instance temp dir (default $TMPDIR)
      allow_plaintext  True -> disable_plaintext_auth = no (LOGIN accepted on
                       the plain port without STARTTLS, for --security none)
      server_cert      "good" (CN/SAN localhost+127.0.0.1, signed by ca_file),
                       "wronghost", "untrusted" (signed by untrusted_ca_file),
                       "selfsigned", "expired"
      key_type         "rsa" (2048) | "ec" (P-256)
      extra_conf       text appended to dovecot.conf
      auth_failure_delay  seconds (Dovecot default 2; default here 0, Dovecot
                       still answers a failed login after ~0.5 s)
      auth_penalty     False (default) disables Dovecot's per-IP exponential
                       auth-failure penalty (2..15 s per further failed login)
      mail_max_userip_connections  (Dovecot default 10; here 50)
      start            start immediately (default True)

    Attributes: host, imap_port, imaps_port, pop3_port, imap_direct_port,
    pop3_direct_port, ca_file, untrusted_ca_file, log_path, tmp, conf_path,
    profile, users.
    """

    def __init__(self, profile="full", users=None, tmpdir=None,
                 allow_plaintext=False, server_cert="good", key_type="rsa",
                 extra_conf="", auth_failure_delay=0, auth_penalty=False,
                 mail_max_userip_connections=50, start=True):
        if profile not in PROFILES:
            raise ValueError("unknown profile %r" % profile)
        self.profile = profile
        self.users = dict(users if users is not None
                          else {"alice": "secret-pass-1"})
        self.allow_plaintext = allow_plaintext
        self.server_cert = server_cert
        self.key_type = key_type
        self.extra_conf = extra_conf
        self.auth_failure_delay = auth_failure_delay
        self.auth_penalty = auth_penalty
        self.mail_max_userip_connections = mail_max_userip_connections
        self.host = "127.0.0.1"
        self.tmp = None
        self._tmpdir_parent = tmpdir
        self.proc = None
        self._relays = []
        self._fname_clock = [0, 0]
        self._fname_seq = 0
        self._lock = threading.Lock()
        self.imap_port = self.imaps_port = self.pop3_port = None
        self.imap_direct_port = self.pop3_direct_port = None
        import pwd
        import grp
        if os.geteuid() == 0:
            # mail owned by nobody:nogroup, login processes as dovenull
            pw = pwd.getpwnam("nobody")
            self.mail_uid = pw.pw_uid
            for gname in ("nogroup", "nobody"):
                try:
                    self.mail_gid = grp.getgrnam(gname).gr_gid
                    break
                except KeyError:
                    continue
            else:
                self.mail_gid = pw.pw_gid
            try:
                pwd.getpwnam("dovenull")
                self._login_user = "dovenull"
            except KeyError:
                self._login_user = "nobody"
        else:
            # unprivileged: everything runs as the current user
            self.mail_uid, self.mail_gid = os.getuid(), os.getgid()
            self._login_user = pwd.getpwuid(self.mail_uid).pw_name
        self._mail_user = pwd.getpwuid(self.mail_uid).pw_name
        self._mail_group = grp.getgrgid(self.mail_gid).gr_name
        if start:
            self.start()

    # -- lifecycle ---------------------------------------------------------

    def __enter__(self):
        if self.proc is None:
            self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def start(self):
        if self.proc is not None:
            raise DovecotError("already started")
        v = dovecot_version()
        if not v.startswith("2.3."):
            raise DovecotError("this fixture needs Dovecot 2.3.x (found %r): "
                               "its config syntax and capability strings "
                               "are 2.3-specific" % v)
        _install_sigterm()
        self.tmp = tempfile.mkdtemp(prefix="satchel-dovecot-",
                                    dir=self._tmpdir_parent)
        _live_instances.add(self)
        try:
            self._prepare_tree()
            last_err = None
            for attempt in range(4):
                try:
                    self._start_once()
                    return self
                except _PortClash as e:
                    last_err = e
                    self._kill_proc()
            raise DovecotError("could not start dovecot: %s" % last_err)
        except BaseException:
            self.stop()
            raise

    def _prepare_tree(self):
        t = self.tmp
        os.chmod(t, 0o755)   # login/auth/mail processes must traverse it
        for sub in ("run", "state", "home", "tls", "secrets", "etc"):
            os.makedirs(os.path.join(t, sub), exist_ok=True)
        os.chmod(os.path.join(t, "secrets"), 0o700)
        tls = _gen_tls(self.key_type, self.server_cert)
        for src, dst in (("ca", "ca.pem"), ("untrusted_ca", "untrusted-ca.pem"),
                         ("cert", "server.pem"), ("key", "server.key")):
            shutil.copyfile(tls[src], os.path.join(t, "tls", dst))
        os.chmod(os.path.join(t, "tls", "server.key"), 0o600)
        self.ca_file = os.path.join(t, "tls", "ca.pem")
        self.untrusted_ca_file = os.path.join(t, "tls", "untrusted-ca.pem")
        # self-signed server cert: its own cert is the only trust anchor
        self.server_cert_file = os.path.join(t, "tls", "server.pem")
        self.log_path = os.path.join(t, "dovecot.log")
        self.conf_path = os.path.join(t, "etc", "dovecot.conf")
        self.passwd_path = os.path.join(t, "etc", "passwd")
        self._write_passwd()
        for u in self.users:
            self._ensure_home(u)

    def _write_passwd(self):
        lines = []
        for u, pw in self.users.items():
            if not u or re.search(r"[:\s\x00-\x1f]", u):
                raise ValueError("bad user name %r" % u)
            if re.fullmatch(r"[\x21-\x7e]*", pw) and ":" not in pw:
                enc = "{PLAIN}" + pw
            else:
                # any other password (':', spaces, non-ASCII): base64 form
                enc = "{PLAIN.b64}" + base64.b64encode(
                    pw.encode("utf-8")).decode("ascii")
            lines.append("%s:%s::::::\n" % (u, enc))
        tmp = self.passwd_path + ".tmp"
        with open(tmp, "w") as f:
            f.writelines(lines)
        os.chmod(tmp, 0o644)   # read by the auth process (runs as nobody)
        os.rename(tmp, self.passwd_path)

    def add_user(self, user, password):
        """Add (or change) a user; takes effect for new logins.  (Dovecot
        stats the passwd-file at most once per second, so this waits for
        the next wall-clock second when the server is running.)"""
        self.users[user] = password
        self._write_passwd()
        self._ensure_home(user)
        if self.proc is not None:
            time.sleep(1.0 - (time.time() % 1.0) + 0.02)
        # Dovecot re-reads the passwd-file when its mtime changes (1 s
        # resolution): give every rewrite a strictly increasing mtime.
        m = max(int(time.time()), getattr(self, "_passwd_mtime", 0) + 1)
        self._passwd_mtime = m
        os.utime(self.passwd_path, (m, m))

    def _ensure_home(self, user):
        home = os.path.join(self.tmp, "home", user)
        self._ensure_dirs(home, os.path.join(home, "Maildir"))

    def _ensure_dirs(self, *paths):
        """Each of paths, in order, then a maildir's cur, new and tmp in the
        last: made where missing, mode 0700, owned by the mail user."""
        last = paths[-1]
        for d in paths + tuple(os.path.join(last, sub) for sub in ("cur", "new", "tmp")):
            if not os.path.isdir(d):
                os.mkdir(d, 0o700)
                self._chown(d)

    def _chown(self, path):
        if os.geteuid() == 0:
            os.chown(path, self.mail_uid, self.mail_gid)

    def _config_text(self):
        t = self.tmp
        cap = _imap_capability_setting(self.profile)
        lines = [
            "# generated by tests/lib/satchel_test.py -- private test instance",
            "protocols = imap pop3",
            "listen = 127.0.0.1",
            "base_dir = %s/run" % t,
            "state_dir = %s/state" % t,
            "instance_name = satchel-%s" % os.path.basename(t),
            "log_path = %s" % self.log_path,
            "info_log_path = ",
            "debug_log_path = ",
            'log_timestamp = "%Y-%m-%d %H:%M:%S "',
            "default_login_user = %s" % self._login_user,
            "default_internal_user = %s" % self._mail_user,
            "default_internal_group = %s" % self._mail_group,
            "first_valid_uid = 1",
            "ssl = yes",
            "ssl_cert = <%s/tls/server.pem" % t,
            "ssl_key = <%s/tls/server.key" % t,
            "ssl_min_protocol = TLSv1.2",
            "disable_plaintext_auth = %s" % ("no" if self.allow_plaintext else "yes"),
            "auth_mechanisms = plain login",
            "auth_failure_delay = %d secs" % self.auth_failure_delay,
            "haproxy_trusted_networks = 127.0.0.1",
            "mail_location = maildir:~/Maildir",
            "mail_fsync = never",
            "mail_max_userip_connections = %d" % self.mail_max_userip_connections,
            "imap_capability = %s" % cap,
            "pop3_logout_format = in=%i out=%o top=%t/%p retr=%r/%b del=%d/%m size=%s",
            "passdb {",
            "  driver = passwd-file",
            "  args = scheme=PLAIN %s" % self.passwd_path,
            "}",
            "userdb {",
            "  driver = static",
            "  args = uid=%s gid=%s home=%s/home/%%u" % (
                self._mail_user, self._mail_group, t),
            "}",
            "namespace inbox {",
            "  inbox = yes",
            "  separator = /",
            "  prefix = ",
        ]
        for name, flag in SPECIAL_USE:
            lines += ["  mailbox %s {" % name,
                      "    special_use = %s" % flag,
                      "    auto = subscribe",
                      "  }"]
        lines += [
            "}",
            "service imap-login {",
            "  chroot = ",
            # One long-lived login process (Dovecot's "performance mode")
            # keeps one TLS ticket key, so clients can resume sessions.
            "  service_count = 0",
            "  inet_listener imap {",
            "    address = 127.0.0.1",
            "    port = %d" % self.imap_direct_port,
            "  }",
            "  inet_listener imap_haproxy {",
            "    address = 127.0.0.1",
            "    port = %d" % self._imap_haproxy_port,
            "    haproxy = yes",
            "  }",
            "  inet_listener imaps {",
            "    address = 127.0.0.1",
            "    port = %d" % self.imaps_port,
            "    ssl = yes",
            "  }",
            "}",
            "service pop3-login {",
            "  chroot = ",
            "  inet_listener pop3 {",
            "    address = 127.0.0.1",
            "    port = %d" % self.pop3_direct_port,
            "  }",
            "  inet_listener pop3_haproxy {",
            "    address = 127.0.0.1",
            "    port = %d" % self._pop3_haproxy_port,
            "    haproxy = yes",
            "  }",
            "  inet_listener pop3s {",
            "    port = 0",
            "  }",
            "}",
            "service submission-login {",
            "  chroot = ",
            "  inet_listener submission {",
            "    port = 0",
            "  }",
            "}",
        ]
        for svc in ("ipc", "old-stats", "aggregator", "director",
                    "imap-urlauth-login"):
            lines += ["service %s {" % svc, "  chroot = ", "}"]
        lines += ["service anvil {", "  chroot = "]
        if not self.auth_penalty:
            # The auth process disables the penalty when it cannot connect
            # to this socket (no error is logged).
            lines += ["  unix_listener anvil-auth-penalty {", "    mode = 0",
                      "  }"]
        lines += ["}"]
        if self.extra_conf:
            lines.append(self.extra_conf)
        return "\n".join(lines) + "\n"

    def _start_once(self, keep_ports=False):
        if not keep_ports:
            self.imaps_port = free_port()
            self.imap_direct_port = free_port()
            self.pop3_direct_port = free_port()
            self._imap_haproxy_port = free_port()
            self._pop3_haproxy_port = free_port()
        with open(self.conf_path, "w") as f:
            f.write(self._config_text())
        open(self.log_path, "a").close()
        self._log_start = os.path.getsize(self.log_path)
        dovecot = _find_prog("dovecot", "SATCHEL_DOVECOT")
        self._stdout_path = os.path.join(self.tmp, "dovecot.stdout")
        out = open(self._stdout_path, "ab")
        self._stdout_start = out.tell()
        preexec = (_pdeathsig_preexec
                   if threading.current_thread() is threading.main_thread()
                   else None)
        self.proc = subprocess.Popen(
            [dovecot, "-F", "-c", self.conf_path],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True, preexec_fn=preexec, close_fds=True)
        _started_pgids.append(self.proc.pid)
        out.close()
        deadline = time.time() + 20
        while True:
            if self.proc.poll() is not None:
                msg = self._startup_error_text()
                rc = self.proc.returncode
                self._kill_proc()
                if (("Address already in use" in msg or
                     "duplicate listener" in msg) and not keep_ports):
                    raise _PortClash(msg)
                raise DovecotError("dovecot exited (%s):\n%s" % (rc, msg))
            if self._greeting_ok(self.imap_direct_port):
                break
            if time.time() > deadline:
                msg = self._startup_error_text()
                self._kill_proc()
                raise DovecotError("dovecot did not come up:\n%s" % msg)
            time.sleep(0.05)
        if not self._relays:
            self._relays = [_ProxyRelay(self._imap_haproxy_port),
                            _ProxyRelay(self._pop3_haproxy_port)]
            self.imap_port = self._relays[0].port
            self.pop3_port = self._relays[1].port

    def _startup_error_text(self):
        parts = []
        for p, off in ((self._stdout_path, self._stdout_start),
                       (self.log_path, self._log_start)):
            try:
                with open(p, "rb") as f:
                    f.seek(off)
                    parts.append(f.read()[-4000:].decode("utf-8", "replace"))
            except OSError:
                pass
        return "\n".join(parts)

    def server_down(self):
        """Stop only the Dovecot processes (mail, config and ports are kept):
        imaps connections are then refused, and the plain-port relays
        accept and immediately close.  Bring it back with restart()."""
        self._kill_proc(graceful=True)

    def restart(self, profile=None, allow_plaintext=None, server_cert=None):
        """(Re)start Dovecot on the same ports with the same mail store,
        optionally switching the capability profile, plaintext policy or
        server certificate (e.g. to test a server "upgrade" between syncs)."""
        if self.tmp is None:
            raise DovecotError("instance was stopped; create a new one")
        if profile is not None:
            if profile not in PROFILES:
                raise ValueError("unknown profile %r" % profile)
            self.profile = profile
        if allow_plaintext is not None:
            self.allow_plaintext = allow_plaintext
        if server_cert is not None and server_cert != self.server_cert:
            self.server_cert = server_cert
            tls = _gen_tls(self.key_type, self.server_cert)
            for src, dst in (("cert", "server.pem"), ("key", "server.key")):
                shutil.copyfile(tls[src], os.path.join(self.tmp, "tls", dst))
        self._kill_proc(graceful=True)
        self._start_once(keep_ports=True)
        return self

    def _greeting_ok(self, port):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.settimeout(2)
                data = b""
                while b"\n" not in data:
                    chunk = s.recv(1024)
                    if not chunk:
                        return False
                    data += chunk
                if not data.startswith(b"* OK"):
                    return False
                s.sendall(b"x LOGOUT\r\n")
                return True
        except OSError:
            return False

    def _kill_proc(self, graceful=False):
        p = self.proc
        self.proc = None
        if p is None:
            return
        if graceful and p.poll() is None:
            # SIGTERM to the master only: it stops its children and exits
            # cleanly (~1 s) without "Killed with signal" log warnings.
            try:
                p.terminate()
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        # The master runs in its own session/process group (pgid == pid) and
        # its children stay in that group: SIGTERM the whole group at once
        # (a plain SIGTERM to the master alone takes ~1 s to shut down), then
        # SIGKILL whatever is left.
        for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 5)):
            try:
                os.killpg(p.pid, sig)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                p.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                continue
            if sig == signal.SIGTERM:
                # give the group's other members a moment, then make sure
                deadline = time.time() + 2
                while time.time() < deadline and self._group_alive(p.pid):
                    time.sleep(0.02)
                if self._group_alive(p.pid):
                    continue
            break

    @staticmethod
    def _group_alive(pgid):
        try:
            os.killpg(pgid, 0)
            return True
        except (ProcessLookupError, PermissionError):
            return False

    def stop(self):
        """Stop dovecot, the relays, and remove the temp dir (unless
        SATCHEL_KEEP_TMP=1).  Safe to call more than once."""
        for r in self._relays:
            r.close()
        self._relays = []
        self._kill_proc()
        _live_instances.discard(self)
        if self.tmp and os.path.isdir(self.tmp):
            if os.environ.get("SATCHEL_KEEP_TMP") == "1":
                sys.stderr.write("satchel_test: keeping %s\n" % self.tmp)
            else:
                shutil.rmtree(self.tmp, ignore_errors=True)
                self.tmp = None

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    # -- maildir delivery --------------------------------------------------

    def maildir_path(self, user, folder="INBOX"):
        """On-disk maildir for folder (maildir++: INBOX is ~/Maildir itself,
        'Lists/Dev' is ~/Maildir/.Lists.Dev, names in modified UTF-7)."""
        base = os.path.join(self.tmp, "home", user, "Maildir")
        if folder.upper() == "INBOX":
            return base
        parts = folder.split("/")
        for p in parts:
            if not p or "." in p or p in ("..",):
                raise ValueError("folder name %r not usable with maildir++ "
                                 "layout ('.' and empty levels not allowed)"
                                 % folder)
        return os.path.join(base, "." + ".".join(imap_utf7_encode(p)
                                                 for p in parts))

    def _ensure_maildir(self, user, folder):
        if user not in self.users:
            raise KeyError("unknown user %r" % user)
        self._ensure_home(user)
        path = self.maildir_path(user, folder)
        self._ensure_dirs(path)
        if folder.upper() != "INBOX":
            mf = os.path.join(path, "maildirfolder")
            if not os.path.exists(mf):
                open(mf, "w").close()
                self._chown(mf)
        return path

    def _next_fname_time(self):
        # Dovecot assigns UIDs to new maildir files sorted by the timestamp
        # in the file name (secs, then the M<usecs> part), so a strictly
        # increasing (secs, usecs) keeps UID order == delivery order.
        now = int(time.time())
        secs, usecs = self._fname_clock
        if now > secs:
            secs, usecs = now, 0
        else:
            usecs += 1
            if usecs >= 1000000:
                secs, usecs = secs + 1, 0
        self._fname_clock = [secs, usecs]
        return secs, usecs

    def _keyword_letters(self, path, keywords):
        """Map keywords to maildir letters a..z via dovecot-keywords."""
        if not keywords:
            return ""
        kwfile = os.path.join(path, "dovecot-keywords")
        existing = {}
        if os.path.exists(kwfile):
            with open(kwfile, errors="replace") as f:
                for line in f:
                    idx, _, name = line.rstrip("\n").partition(" ")
                    if idx.isdigit():
                        existing[name] = int(idx)
        changed = False
        letters = []
        for kw in keywords:
            if kw not in existing:
                used = set(existing.values())
                free = [i for i in range(26) if i not in used]
                if not free:
                    raise ValueError("more than 26 keywords in %s" % path)
                existing[kw] = free[0]
                changed = True
            letters.append(chr(ord("a") + existing[kw]))
        if changed:
            tmp = kwfile + ".satchel-tmp"
            with open(tmp, "w") as f:
                for name, idx in sorted(existing.items(), key=lambda x: x[1]):
                    f.write("%d %s\n" % (idx, name))
            self._chown(tmp)
            os.rename(tmp, kwfile)
        return "".join(sorted(letters))

    def _flag_suffix(self, path, flags):
        letters, keywords = set(), []
        for fl in flags or ():
            low = fl.lower()
            if low == "\\recent":
                continue
            if low in _MAILDIR_FLAG_LETTERS and _MAILDIR_FLAG_LETTERS[low]:
                letters.add(_MAILDIR_FLAG_LETTERS[low])
            elif fl.startswith("\\"):
                raise ValueError("unsupported system flag %r" % fl)
            else:
                keywords.append(fl)
        return "".join(sorted(letters)) + self._keyword_letters(path, keywords)

    def add_messages(self, user, folder, messages, flags=None,
                     internaldate=None, subscribe=False):
        """Deliver raw RFC 5322 messages straight into the maildir (fast:
        ~10k messages per second or two).  Dovecot picks them up on its
        next sync of the folder; UIDs are assigned in list order.

        messages:     iterable of bytes (a leading mbox "From " line is
                      stripped, CRLF is stored as LF like Dovecot does).
        flags:        None, or a list parallel to messages, each an iterable
                      of IMAP flags ("\\Seen", "\\Flagged", "\\Answered",
                      "\\Draft", "\\Deleted", or keywords like "$Junk").
        internaldate: None -> from the Date: header (fallback: now); or a
                      number (epoch secs) for all; or a list parallel to
                      messages of numbers/None.
        subscribe:    also SUBSCRIBE the folder (over IMAP, one extra
                      logged session) -- new folders are otherwise LISTed
                      but not subscribed (special-use ones are auto-subscribed).
        Returns the list of maildir file paths written.
        """
        path = self._ensure_maildir(user, folder)
        if subscribe and folder.upper() != "INBOX":
            self.subscribe(user, folder)
        tmpdir = os.path.join(path, "tmp")
        curdir = os.path.join(path, "cur")
        host = "satchel"
        written = []
        pid = os.getpid()
        root = os.geteuid() == 0
        if flags is not None:
            flags = list(flags)
        if isinstance(internaldate, (list, tuple)):
            idates = list(internaldate)
        else:
            idates = None
        with self._lock:
            for i, msg in enumerate(messages):
                if isinstance(msg, str):
                    msg = msg.encode("utf-8")
                msg = strip_mbox_from(msg).replace(b"\r\n", b"\n")
                fl = flags[i] if flags is not None and i < len(flags) else ()
                suffix = self._flag_suffix(path, fl)
                secs, usecs = self._next_fname_time()
                self._fname_seq += 1
                base = "%d.M%dP%dQ%d.%s,S=%d" % (secs, usecs, pid,
                                                 self._fname_seq, host, len(msg))
                tpath = os.path.join(tmpdir, base)
                if idates is not None:
                    when = idates[i] if i < len(idates) else None
                else:
                    when = internaldate
                if when is None:
                    when = self._date_from_header(msg)
                fd = os.open(tpath, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                try:
                    view = memoryview(msg)
                    while view:
                        view = view[os.write(fd, view):]
                    if root:
                        os.fchown(fd, self.mail_uid, self.mail_gid)
                    if when is not None:
                        os.utime(fd, (when, when))
                finally:
                    os.close(fd)
                dst = os.path.join(curdir, base + ":2," + suffix)
                os.rename(tpath, dst)
                written.append(dst)
        return written

    _DATE_RE = re.compile(rb"(?im)^date:[ \t]*([^\n]*(?:\n[ \t][^\n]*)*)")

    @classmethod
    def _date_from_header(cls, msg):
        try:
            hdr_end = msg.find(b"\n\n")
            m = cls._DATE_RE.search(msg, 0, hdr_end if hdr_end >= 0 else len(msg))
            if not m:
                return None
            d = re.sub(r"\s+", " ", m.group(1).decode("latin-1")).strip()
            t = email.utils.parsedate_to_datetime(d)
            ts = t.timestamp()
            if 0 < ts < 4102444800:   # sane range (before 2100)
                return ts
        except Exception:
            pass
        return None

    def load_mailset(self, user="alice", mailset=None, subscribe=True):
        """add_messages() the committed sample mail set (with its suggested
        flags) for `user`; returns {folder: count}.  With subscribe=True the
        non-special folders (Lists/Dev) are SUBSCRIBEd over IMAP (one logged
        session; use log_mark() afterwards when counting sessions)."""
        full = _load_mailset_full(mailset)
        counts = {}
        special = {n for n, _ in SPECIAL_USE}
        for folder, items in full.items():
            self.add_messages(user, folder, [m for m, _, _ in items],
                              flags=[fl for _, fl, _ in items])
            counts[folder] = len(items)
        extra = [f for f in full if f != "INBOX" and f not in special]
        if subscribe and extra:
            def fn(c):
                for f in extra:
                    _check(*c.subscribe(imap_quote(imap_utf7_encode(f))),
                           what="SUBSCRIBE")
            self._with_client(user, fn)
        return counts

    # -- IMAP helpers (independent client connections) ----------------------

    def ssl_context(self, cafile=None):
        ctx = ssl.create_default_context(cafile=cafile or self.ca_file)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        return ctx

    def client(self, user="alice", password=None, login=True):
        """imaplib.IMAP4_SSL on imaps_port (trusting ca_file), logged in."""
        c = imaplib.IMAP4_SSL(self.host, self.imaps_port,
                              ssl_context=self.ssl_context(), timeout=30)
        if login:
            self._login(c, user, password)
        return c

    def _login(self, c, user, password):
        pw = self.users[user] if password is None else password
        if pw.isascii() and user.isascii():
            c.login(user, pw)
        else:   # imaplib's LOGIN is ASCII-only: use AUTHENTICATE PLAIN
            blob = b"\0" + user.encode("utf-8") + b"\0" + pw.encode("utf-8")
            c.authenticate("PLAIN", lambda _challenge: blob)

    def starttls_client(self, user="alice", password=None, login=True):
        """imaplib.IMAP4 on imap_port, upgraded with STARTTLS, logged in."""
        c = imaplib.IMAP4(self.host, self.imap_port, timeout=30)
        c.starttls(self.ssl_context())
        if login:
            self._login(c, user, password)
        return c

    def _with_client(self, user, fn):
        c = self.client(user)
        try:
            return fn(c)
        finally:
            try:
                c.logout()
            except Exception:
                pass

    def append(self, user, folder, msg, flags=(), date_time=None):
        """Deliver one message via IMAP APPEND (live delivery).  Returns the
        new UID (from APPENDUID) or None."""
        if isinstance(msg, str):
            msg = msg.encode("utf-8")
        msg = strip_mbox_from(msg)
        msg = re.sub(rb"\r?\n", b"\r\n", msg)
        fl = "(" + " ".join(flags) + ")" if flags else None
        if date_time is None:
            date_time = imaplib.Time2Internaldate(time.time())
        elif isinstance(date_time, (int, float)):
            date_time = imaplib.Time2Internaldate(date_time)

        def fn(c):
            typ, data = c.append(imap_quote(imap_utf7_encode(folder)), fl,
                                 date_time, msg)
            _check(typ, data, "APPEND")
            m = re.search(rb"\[APPENDUID (\d+) (\d+)\]", data[0] or b"")
            return int(m.group(2)) if m else None
        return self._with_client(user, fn)

    def create_folder(self, user, folder, subscribe=True):
        def fn(c):
            name = imap_quote(imap_utf7_encode(folder))
            _check(*c.create(name), what="CREATE")
            if subscribe:
                _check(*c.subscribe(name), what="SUBSCRIBE")
        return self._with_client(user, fn)

    def subscribe(self, user, folder):
        return self._with_client(user, lambda c: _check(
            *c.subscribe(imap_quote(imap_utf7_encode(folder))), what="SUBSCRIBE"))

    def subscribed(self, user="alice"):
        """Set of subscribed folder names (LSUB)."""
        def fn(c):
            typ, data = c.lsub('""', '"*"')
            _check(typ, data, "LSUB")
            out = set()
            for item in data:
                if isinstance(item, tuple):
                    out.add(imap_utf7_decode(item[1]))
                elif item:
                    m = re.match(rb'\(([^)]*)\) (NIL|"(?:[^"\\]|\\.)*") (.*)$', item)
                    if m:
                        n = m.group(3)
                        if n.startswith(b'"'):
                            n = re.sub(rb'\\(.)', rb'\1', n[1:-1])
                        out.add(imap_utf7_decode(n))
            return out
        return self._with_client(user, fn)

    def delete_folder(self, user, folder):
        return self._with_client(user, lambda c: _check(
            *c.delete(imap_quote(imap_utf7_encode(folder))), what="DELETE"))

    def rename_folder(self, user, old, new):
        return self._with_client(user, lambda c: _check(
            *c.rename(imap_quote(imap_utf7_encode(old)),
                      imap_quote(imap_utf7_encode(new))), what="RENAME"))

    def store_flags(self, user, folder, uids, op, flags):
        """UID STORE from an independent client.  op: "+", "-" or "" (replace)."""
        def fn(c):
            _check(*c.select(imap_quote(imap_utf7_encode(folder))), what="SELECT")
            uidset = ",".join(str(u) for u in uids)
            _check(*c.uid("STORE", uidset, op + "FLAGS.SILENT",
                          "(" + " ".join(flags) + ")"), what="STORE")
        return self._with_client(user, fn)

    def expunge(self, user, folder, uids):
        """Mark uids \\Deleted and UID EXPUNGE them from an independent client."""
        def fn(c):
            _check(*c.select(imap_quote(imap_utf7_encode(folder))), what="SELECT")
            uidset = ",".join(str(u) for u in uids)
            _check(*c.uid("STORE", uidset, "+FLAGS.SILENT", "(\\Deleted)"),
                   what="STORE")
            _check(*c.uid("EXPUNGE", uidset), what="UID EXPUNGE")
        return self._with_client(user, fn)

    def move(self, user, folder, uids, dest):
        def fn(c):
            _check(*c.select(imap_quote(imap_utf7_encode(folder))), what="SELECT")
            uidset = ",".join(str(u) for u in uids)
            _check(*c.uid("MOVE", uidset, imap_quote(imap_utf7_encode(dest))),
                   what="UID MOVE")
        return self._with_client(user, fn)

    def folders(self, user="alice", all_attrs=False):
        """{folder name (unicode): [special-use flags]} via LIST "" "*".
        With all_attrs=True the lists hold every LIST attribute."""
        def fn(c):
            typ, data = c.list('""', '"*"')
            _check(typ, data, "LIST")
            return data
        data = self._with_client(user, fn)
        out = {}
        i = 0
        while i < len(data):
            item = data[i]
            i += 1
            if item is None:
                continue
            if isinstance(item, tuple):   # literal name
                head, lit = item
                m = re.match(rb'\(([^)]*)\) (NIL|"(?:[^"\\]|\\.)*") ', head)
                attrs = m.group(1).decode().split() if m else []
                name = lit
            else:
                m = re.match(rb'\(([^)]*)\) (NIL|"(?:[^"\\]|\\.)*") (.*)$', item)
                if not m:
                    continue
                attrs = m.group(1).decode().split()
                name = m.group(3)
                if name.startswith(b'"'):
                    name = re.sub(rb'\\(.)', rb'\1', name[1:-1])
            name = imap_utf7_decode(name)
            if not all_attrs:
                attrs = [a for a in attrs
                         if a.lower() in ("\\drafts", "\\sent", "\\trash",
                                          "\\junk", "\\archive", "\\all",
                                          "\\flagged", "\\important")]
            out[name] = attrs
        return out

    def server_state(self, user="alice", folder="INBOX"):
        """Snapshot of a folder through a fresh independent connection
        (EXAMINE, read-only).  Returns FolderState: {uid: {"flags": sorted
        flags without \\Recent, "size": RFC822.SIZE, "subject": unicode,
        "from": unicode, "internaldate": str, "message_id": str,
        "modseq": int or None}} with .uidvalidity .uidnext .exists
        .highestmodseq (modseq values only when CONDSTORE is advertised)."""
        def fn(c):
            st = FolderState()
            st.folder = folder
            name = imap_quote(imap_utf7_encode(folder))
            typ, data = c.capability()
            condstore = b"CONDSTORE" in (data[0] or b"").upper().split()
            if condstore:
                typ, data = c.status(name, "(HIGHESTMODSEQ)")
                _check(typ, data, "STATUS %s" % folder)
                m = re.search(rb"HIGHESTMODSEQ (\d+)", data[0] or b"")
                st.highestmodseq = int(m.group(1)) if m else None
            typ, data = c.select(name, readonly=True)
            _check(typ, data, "EXAMINE %s" % folder)
            st.exists = int(data[0])
            for key, attr in (("UIDVALIDITY", "uidvalidity"),
                              ("UIDNEXT", "uidnext")):
                val = c.untagged_responses.get(key)
                if val:
                    try:
                        setattr(st, attr, int(val[-1]))
                    except (TypeError, ValueError):
                        pass
            if st.exists == 0:
                return st
            typ, data = c.uid(
                "FETCH", "1:*",
                "(UID FLAGS RFC822.SIZE INTERNALDATE%s "
                "BODY.PEEK[HEADER.FIELDS (SUBJECT FROM MESSAGE-ID)])"
                % (" MODSEQ" if condstore else ""))
            _check(typ, data, "UID FETCH")
            for item in data:
                if not isinstance(item, tuple):
                    continue
                head, hdrs = item
                m = re.search(rb"UID (\d+)", head)
                if not m:
                    continue
                uid = int(m.group(1))
                fm = re.search(rb"FLAGS \(([^)]*)\)", head)
                flags = sorted(f for f in (fm.group(1).decode().split()
                                           if fm else [])
                               if f != "\\Recent")
                sm = re.search(rb"RFC822\.SIZE (\d+)", head)
                dm = re.search(rb'INTERNALDATE "([^"]*)"', head)
                mm = re.search(rb"MODSEQ \((\d+)\)", head)
                mid = header_value(hdrs or b"", "Message-ID")
                st[uid] = {
                    "modseq": int(mm.group(1)) if mm else None,
                    "flags": flags,
                    "size": int(sm.group(1)) if sm else None,
                    "subject": decode_header_str(header_value(hdrs or b"", "Subject")),
                    "from": decode_header_str(header_value(hdrs or b"", "From")),
                    "message_id": (mid.decode("latin-1").strip()
                                   if mid is not None else None),
                    "internaldate": dm.group(1).decode() if dm else None,
                }
            return st
        return self._with_client(user, fn)

    def fetch_raw(self, user, folder, uid):
        """BODY.PEEK[] of one message (bytes, CRLF line endings)."""
        def fn(c):
            _check(*c.select(imap_quote(imap_utf7_encode(folder)), readonly=True),
                   what="EXAMINE")
            typ, data = c.uid("FETCH", str(uid), "(BODY.PEEK[])")
            _check(typ, data, "UID FETCH")
            for item in data:
                if isinstance(item, tuple):
                    return item[1]
            return None
        return self._with_client(user, fn)

    # -- log parsing -------------------------------------------------------

    _SESSION_RE = re.compile(
        r"^(?P<ts>\S+ \S+) (?P<proto>imap|pop3)\((?P<user>[^)]*)\)"
        r"<(?P<pid>\d+)><(?P<session>[^>]*)>: Info: (?P<reason>.*?) ?"
        r"in=(?P<in>\d+) out=(?P<out>\d+)")
    _LOGIN_RE = re.compile(
        r"^(?P<ts>\S+ \S+) (?P<proto>imap|pop3)-login: Info: Login: "
        r"user=<(?P<user>[^>]*)>, method=(?P<method>[^,]*), rip=(?P<rip>[^,]*),"
        r" lip=(?P<lip>[^,]*), mpid=(?P<mpid>\d+)(?P<rest>.*?)"
        r"session=<(?P<session>[^>]*)>")

    def log_text(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def log_mark(self, settle=2.0):
        """Current end of the log, to pass to session_bytes(since=...).

        Dovecot writes a session's "Disconnected ... in= out=" line
        asynchronously, shortly after the client saw the LOGOUT reply; so
        first wait (up to `settle` seconds) until every logged-in session
        has its disconnect line, otherwise an earlier session could be
        counted after the mark.  (Sessions still open, e.g. an IDLEing
        client, just make this wait the full `settle` time.)"""
        if settle:
            self.wait_sessions_logged(timeout=settle)
        try:
            return os.path.getsize(self.log_path)
        except OSError:
            return 0

    def open_sessions(self, since=0):
        """Session ids that logged in but have no disconnect line yet."""
        text = self._read_log(since)
        opened = set(m.group("session") for m in
                     (self._LOGIN_RE.match(l) for l in text.splitlines()) if m)
        closed = set(m.group("session") for m in
                     (self._SESSION_RE.match(l) for l in text.splitlines()) if m)
        return opened - closed

    def wait_sessions_logged(self, timeout=5.0):
        """Wait until open_sessions() is empty; returns True if it is."""
        deadline = time.time() + timeout
        while True:
            if not self.open_sessions():
                return True
            if time.time() > deadline:
                return False
            time.sleep(0.02)

    def _read_log(self, since):
        with open(self.log_path, "rb") as f:
            f.seek(since or 0)
            return f.read().decode("utf-8", "replace")

    def session_bytes(self, user=None, since=0, protocol="imap",
                      wait_for=None, timeout=5.0):
        """Finished sessions from the log, oldest first: list of
        {"user", "in", "out", "reason", "session", "pid", "protocol",
         "tls", "rip"}.  in/out are the bytes the imap (or pop3) process
        read/wrote after login (plaintext, i.e. after TLS decryption; the
        pre-login greeting/CAPABILITY/STARTTLS/LOGIN exchange is not
        included).  Filter by `user` and `protocol` (None = any); only log
        text after byte offset `since` (see log_mark()).  If wait_for=N,
        poll up to `timeout` seconds until at least N sessions match
        (Dovecot writes the line asynchronously after disconnect)."""
        deadline = time.time() + timeout
        while True:
            text = self._read_log(since)
            logins = {}
            out = []
            for line in text.splitlines():
                m = self._LOGIN_RE.match(line)
                if m:
                    logins[m.group("session")] = m
                    continue
                m = self._SESSION_RE.match(line)
                if not m:
                    continue
                if user is not None and m.group("user") != user:
                    continue
                if protocol is not None and m.group("proto") != protocol:
                    continue
                lg = logins.get(m.group("session"))
                reason = m.group("reason")
                if reason.startswith("Disconnected: "):
                    reason = reason[len("Disconnected: "):]
                out.append({
                    "user": m.group("user"),
                    "in": int(m.group("in")),
                    "out": int(m.group("out")),
                    "reason": reason,
                    "session": m.group("session"),
                    "pid": int(m.group("pid")),
                    "protocol": m.group("proto"),
                    "tls": (", TLS" in lg.group("rest")) if lg else None,
                    "rip": lg.group("rip") if lg else None,
                })
            if wait_for is None or len(out) >= wait_for or time.time() > deadline:
                return out
            time.sleep(0.05)

    # Warnings that are just our own shutdown (server_down()/restart()).
    _EXPECTED_WARNINGS = (
        r"Warning: Killed with signal 15 ",
        r"Warning: Shutting down logging for ",
    )

    def log_errors(self, since=0, ignore=_EXPECTED_WARNINGS):
        """Log lines at Warning/Error/Fatal/Panic level (minus the shutdown
        notices caused by server_down()/restart(), unless ignore=())."""
        return [l for l in self._read_log(since).splitlines()
                if re.search(r": (Warning|Error|Fatal|Panic): ", l)
                and not any(re.search(p, l) for p in ignore)]


class _PortClash(DovecotError):
    pass


# ---------------------------------------------------------------------------
# satchel-sim runner
# ---------------------------------------------------------------------------

class SimError(AssertionError):
    pass


class SimResult:
    def __init__(self, args, returncode, stdout, stderr, elapsed, parse_json):
        self.args = args
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        self.elapsed = elapsed
        self.json = []
        self.nonjson = []
        if parse_json:
            for line in stdout.splitlines():
                if not line.strip():
                    continue
                try:
                    self.json.append(_json.loads(line))
                except ValueError:
                    self.nonjson.append(line)

    @property
    def last(self):
        return self.json[-1] if self.json else None

    def __repr__(self):
        return "SimResult(rc=%r, %d json lines, %.2fs)" % (
            self.returncode, len(self.json), self.elapsed)

    def describe(self):
        return ("command: %s\nreturncode: %s\n--- stdout ---\n%s\n"
                "--- stderr ---\n%s" % (
                    " ".join(_shquote(a) for a in self.args), self.returncode,
                    self.stdout[-8000:], self.stderr[-8000:]))


def _shquote(a):
    import shlex
    return shlex.quote(str(a))


def _run(args, check, timeout, parse_json, env=None):
    t0 = time.time()
    try:
        p = subprocess.run(args, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=timeout, env=env)
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode("utf-8", "replace")
        err = (e.stderr or b"").decode("utf-8", "replace")
        raise SimError("satchel-sim timed out after %ss\ncommand: %s\n"
                       "--- stdout ---\n%s\n--- stderr ---\n%s" % (
                           timeout, " ".join(_shquote(a) for a in args),
                           out[-8000:], err[-8000:]))
    except FileNotFoundError:
        raise SimError("satchel-sim not found at %s (build it, or set "
                       "SATCHEL_SIM)" % args[0])
    res = SimResult(args, p.returncode,
                    p.stdout.decode("utf-8", "replace"),
                    p.stderr.decode("utf-8", "replace"),
                    time.time() - t0, parse_json)
    res.stdout_bytes = p.stdout  # exact bytes, for --raw output
    if check and p.returncode != 0:
        raise SimError("satchel-sim failed\n" + res.describe())
    if check and parse_json and res.nonjson:
        raise SimError("satchel-sim printed non-JSON lines with --json: %r\n%s"
                       % (res.nonjson[:5], res.describe()))
    return res


def _commands_arg(commands):
    if isinstance(commands, str):
        return commands
    return "; ".join(commands)


def run_sim(dovecot, db, commands, user="alice", password="secret-pass-1",
            security="tls", json=True, extra=(), check=True, timeout=120,
            ca=None, port=None, env=None):
    """Run satchel-sim against `dovecot`.

    commands: "cmd; cmd" string or list of commands.
    security: "tls" (imaps_port), "starttls" or "none" (imap_port).
    password: written to a 0600 file passed as --password-file; None means
              dovecot.users[user].
    ca:       CA file for --ca (default dovecot.ca_file; pass False to omit).
    port:     override the port (default chosen from `security`).
    Returns SimResult(.returncode .stdout .stderr .json .elapsed)."""
    if security not in ("tls", "starttls", "none"):
        raise ValueError("security must be tls|starttls|none")
    if port is None:
        port = dovecot.imaps_port if security == "tls" else dovecot.imap_port
    if password is None:
        password = dovecot.users.get(user, "")
    pwdir = os.path.join(dovecot.tmp, "secrets")
    os.makedirs(pwdir, mode=0o700, exist_ok=True)
    pwfile = os.path.join(pwdir, "%s.pw" % re.sub(r"[^A-Za-z0-9_.-]", "_", user))
    fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(password)
    os.chmod(pwfile, 0o600)
    args = [satchel_sim_path(), "--db", str(db),
            "--server", "%s:%d" % (dovecot.host, port),
            "--security", security]
    if ca is None:
        ca = dovecot.ca_file
    if ca:
        args += ["--ca", str(ca)]
    args += ["--user", user, "--password-file", pwfile]
    if json:
        args.append("--json")
    stack = os.environ.get("SATCHEL_STACK")
    if stack and "--stack" not in [str(x) for x in extra]:
        args += ["--stack", stack]
    args += [str(a) for a in extra]
    args += ["-c", _commands_arg(commands)]
    return _run(args, check, timeout, json, env)


def run_sim_offline(db, commands, json=True, extra=(), check=True,
                    timeout=120, env=None):
    """Run satchel-sim --offline (no server) on `db`."""
    args = [satchel_sim_path(), "--db", str(db), "--offline"]
    if json:
        args.append("--json")
    args += [str(a) for a in extra]
    args += ["-c", _commands_arg(commands)]
    return _run(args, check, timeout, json, env)


# ---------------------------------------------------------------------------
# corpus and mail set
# ---------------------------------------------------------------------------

def corpus_available(path=None):
    return Path(path or CORPUS).is_file()


def load_corpus(path=None, limit=None, folders=None, strip_from=True):
    """Iterator over message bytes from the spamassassin tar.xz, in sorted
    member-name order (deterministic).  Returns None if the corpus file is
    absent (callers should skip).  folders: optional iterable of corpus
    folder names (easy-ham-1, easy-ham-2, hard-ham-1, spam-1)."""
    path = Path(path or CORPUS)
    if not path.is_file():
        return None
    want = set(folders) if folders else None

    def gen():
        # Read sequentially (random access into an .xz stream re-decompresses
        # from the start), then sort by member name.
        items = []
        with tarfile.open(str(path), "r|xz") as tf:
            for m in tf:
                if not (m.isfile() and m.name.endswith(".eml")):
                    continue
                if want is not None and m.name.split("/")[-2] not in want:
                    continue
                items.append((m.name, tf.extractfile(m).read()))
        items.sort(key=lambda x: x[0])
        if limit is not None:
            items = items[:limit]
        for _, data in items:
            yield strip_mbox_from(data) if strip_from else data
    return gen()


def corpus_members(path=None):
    """[(member name, bytes)] of the whole corpus, sorted by name, or None
    if the corpus is absent.  (Raw bytes: mbox "From " line kept.)"""
    path = Path(path or CORPUS)
    if not path.is_file():
        return None
    items = []
    with tarfile.open(str(path), "r|xz") as tf:
        for m in tf:
            if m.isfile() and m.name.endswith(".eml"):
                items.append((m.name, tf.extractfile(m).read()))
    items.sort(key=lambda x: x[0])
    return items


_HDR_SPLIT_RE = re.compile(rb"\r?\n\r?\n")


def _split_headers(msg):
    m = _HDR_SPLIT_RE.search(msg)
    if not m:
        return msg, b""
    return msg[:m.start()], msg[m.start():]


def _replace_header(headers, name, value, nl):
    """Replace (all folded lines of) header `name`, or append it."""
    pat = re.compile(rb"(?im)^" + re.escape(name) + rb":[^\n]*\n?(?:[ \t][^\n]*\n?)*")
    new = name + b": " + value
    if pat.search(headers + b"\n"):
        out = pat.sub(lambda _m: new + nl, headers + b"\n", count=1)
        return out[:-1] if out.endswith(b"\n") else out
    return headers + nl + new


def synth_messages(n, base, domain="synth.satchel.test"):
    """n distinct messages made by cycling through `base` (list of bytes):
    each gets a fresh Message-ID and " [#i]" appended to its Subject."""
    base = [strip_mbox_from(b) for b in base]
    if not base:
        raise ValueError("synth_messages needs at least one base message")
    out = []
    for i in range(n):
        msg = base[i % len(base)]
        headers, body = _split_headers(msg)
        nl = b"\r\n" if b"\r\n" in headers else b"\n"
        mid = ("<synth-%d-%d@%s>" % (i, i % len(base), domain)).encode()
        headers = _replace_header(headers, b"Message-ID", mid, nl)
        m = re.search(rb"(?im)^subject:([^\n]*(?:\n[ \t][^\n]*)*)", headers)
        if m:
            subj = m.group(1).rstrip(b"\r").strip()
            headers = _replace_header(headers, b"Subject",
                                      subj + (" [#%d]" % i).encode(), nl)
        else:
            headers = headers + nl + ("Subject: synthetic [#%d]" % i).encode()
        out.append(headers + body)
    return out


def load_mailset_manifest(path=None):
    """The mail set's manifest: list of dicts {folder, file, source, flags}
    in delivery order."""
    path = Path(path or MAILSET)
    with tarfile.open(str(path), "r:xz") as tf:
        return _json.loads(tf.extractfile("mailset/manifest.json").read())["messages"]


def _load_mailset_full(path=None):
    path = Path(path or MAILSET)
    out = {}
    with tarfile.open(str(path), "r:xz") as tf:
        manifest = _json.loads(tf.extractfile("mailset/manifest.json").read())
        for ent in manifest["messages"]:
            data = tf.extractfile("mailset/" + ent["file"]).read()
            out.setdefault(ent["folder"], []).append((data, ent["flags"], ent))
    return out


def load_mailset(path=None):
    """The committed sample mail set: {folder: [message bytes, ...]}.
    Folders: INBOX, Archive, Junk, Lists/Dev, Sent."""
    return {f: [m for m, _, _ in v] for f, v in _load_mailset_full(path).items()}


def load_mailset_flags(path=None):
    """Suggested initial flags, parallel to load_mailset():
    {folder: [[flag, ...], ...]}."""
    return {f: [list(fl) for _, fl, _ in v]
            for f, v in _load_mailset_full(path).items()}


def run_on_pty(args, timeout=30):
    """Run args with stdout on a pseudo-terminal, as a user's terminal would
    be; returns (returncode, the bytes shown)."""
    import pty
    import select
    master, slave = pty.openpty()
    p = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=slave,
                         stderr=subprocess.PIPE)
    os.close(slave)
    out = b""
    while True:
        r, _, _ = select.select([master], [], [], timeout)
        if not r:
            break
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    p.wait(timeout=timeout)
    return p.returncode, out


class Checks:
    """Counts checks; report() prints the closing "N passed, M failed" line
    CI reads, and gives the exit status."""

    def __init__(self):
        self.passed = self.failed = 0

    def __call__(self, cond, what):
        if cond:
            self.passed += 1
        else:
            self.failed += 1
            print("FAIL:", what)
        return cond

    def report(self):
        print("%d passed, %d failed" % (self.passed, self.failed))
        return 1 if self.failed else 0


# Charsets the engine converts (core/mime_charset.c); encoded-words in
# others are kept as they are, by design: a device ships no CJK tables.
CONVERTED_CHARSETS = ("utf-8", "us-ascii", "iso-8859-1", "iso-8859-15",
                      "windows-1252", "latin1", "cp1252")


def norm_space(s):
    """s with every run of white space one space, and none at the ends."""
    return re.sub(r"\s+", " ", s or "").strip()


def norm_server_text(s):
    """A header as imaplib gives it, read the way the engine reads it: raw
    8-bit bytes are Latin-1 to Python, UTF-8 or else Windows-1252 (what
    mailers meant) to the engine."""
    if re.search("[\x80-\x9f]", s or ""):
        try:
            s = s.encode("latin-1").decode("cp1252")
        except (UnicodeEncodeError, UnicodeDecodeError):
            pass
    return norm_space(s)


def unconverted_charset(stored_subject):
    """True when the stored subject keeps an encoded-word of a charset the
    engine does not convert."""
    return any(cs.lower() not in CONVERTED_CHARSETS
               for cs in re.findall(r"=\?([^?*]+)[^?]*\?[bBqQ]\?", stored_subject))


def compare_messages(check, server, local, total, folder, label):
    """A store's view of folder must equal the server's, message by message:
    UIDs, flags, sizes, subjects, senders.  server: Dovecot.server_state();
    local: UID -> message of the `list` command's JSON; total: its "total".
    Returns whether everything matched."""
    ok = check(sorted(local) == sorted(server),
               "%s %s: UIDs differ: store-only %s server-only %s" % (
                   label, folder, sorted(set(local) - set(server))[:10],
                   sorted(set(server) - set(local))[:10]))
    ok &= check(total == len(server), "%s %s: total %d vs %d" % (
        label, folder, total, len(server)))
    bad = []
    for uid in sorted(set(local) & set(server)):
        l, s = local[uid], server[uid]
        if sorted(l["flags"]) != sorted(s["flags"]):
            bad.append((uid, "flags", l["flags"], s["flags"]))
        if l["size"] != s["size"]:
            bad.append((uid, "size", l["size"], s["size"]))
        ls, ss = norm_space(l["subject"]), norm_server_text(s["subject"])
        # Stored fields are capped (SATCHEL_OPT_MAX_FIELD): compare a prefix.
        if not (ls == ss or (len(ls.encode()) >= 200 and ss.startswith(ls[:100]))
                or unconverted_charset(ls)):
            bad.append((uid, "subject", ls, ss))
        addr = email.utils.parseaddr(s["from"] or "")[1].lower()
        if addr and addr not in l["from"].lower():
            bad.append((uid, "from", l["from"], s["from"]))
    ok &= check(not bad, "%s %s: %d messages differ, e.g. %s" % (
        label, folder, len(bad), bad[:3]))
    return ok


class Tmpfs:
    """A small tmpfs mounted at path (root only: Tmpfs.usable() says), to
    fill up: a full disk for the store (ENOSPC), not LMDB's map limit."""

    @staticmethod
    def usable():
        return os.geteuid() == 0 and shutil.which("mount") is not None

    def __init__(self, path, size):
        self.path = path
        os.makedirs(path, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%d" % size, "tmpfs", path],
                       check=True)
        self.filler = os.path.join(path, "filler")

    def fill(self, leave=0):
        """Fill the file system, then free `leave` bytes."""
        fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        for chunk in (1 << 16, 4096, 512):
            try:
                while True:
                    os.write(fd, b"\0" * chunk)
            except OSError:
                pass
        os.close(fd)
        if leave:
            size = os.path.getsize(self.filler)
            os.truncate(self.filler, max(0, size - leave))

    def free(self):
        if os.path.exists(self.filler):
            os.unlink(self.filler)

    def close(self):
        subprocess.run(["umount", "-l", self.path], check=False)


class Relay:
    """A TCP relay from a free loopback port (self.port) to `port` on
    127.0.0.1.  self.conns counts the connections accepted; drop_all() ends
    every open one at once, as a server or a NAT dropping a session would.
    A subclass shapes the bytes of one direction with shaper().

    A connection's sockets are shut down when it ends (which wakes both of
    its pump threads) and closed only by the last pump out: a descriptor
    closed under a thread still on its way into recv/send could be reused
    by the next socket the process opens, and that thread would then act on
    it.  close() returns once no thread of the relay is left."""

    chunk = 16384

    def __init__(self, port):
        self.to = port
        self.srv = socket.socket()
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(8)
        self.port = self.srv.getsockname()[1]
        self.conns = 0
        self.live = []               # [client, server, pumps still running]
        self.threads = []
        self.lock = threading.Lock()
        self._acceptor = threading.Thread(target=self._loop, daemon=True)
        self._acceptor.start()

    def shaper(self, n, to_client):
        """For the n-th connection (from 1) and one direction: None to pass
        bytes as they come, or a function of a chunk that returns (bytes to
        send, whether to go on)."""
        return None

    def _loop(self):
        while True:
            try:
                c, _ = self.srv.accept()
            except OSError:
                return
            with self.lock:
                self.conns += 1
                n = self.conns
            up, down = self.shaper(n, False), self.shaper(n, True)
            try:
                s = socket.create_connection(("127.0.0.1", self.to))
            except OSError:
                c.close()
                continue
            conn = [c, s, 2]
            pumps = [threading.Thread(target=self._pump, args=(conn, a, b, f), daemon=True)
                     for a, b, f in ((c, s, up), (s, c, down))]
            with self.lock:
                self.live.append(conn)
                self.threads += pumps
            for t in pumps:
                t.start()

    def _pump(self, conn, a, b, shape):
        try:
            while True:
                d = a.recv(self.chunk)
                if not d:
                    break
                more = True
                if shape:
                    d, more = shape(d)
                if d:
                    b.sendall(d)
                if not more:
                    break
        except OSError:
            pass
        self._shut(conn)
        with self.lock:
            conn[2] -= 1
            last = conn[2] == 0
            if last:
                self.live.remove(conn)
        if last:
            conn[0].close()
            conn[1].close()

    @staticmethod
    def _shut(conn):
        for x in conn[:2]:
            try:
                x.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def drop_all(self):
        with self.lock:
            live = list(self.live)
        for conn in live:
            self._shut(conn)

    def close(self):
        # Linux wakes a thread blocked in accept() on shutdown, not on
        # close(): a closed listener would stay open while it waits.
        try:
            self.srv.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._acceptor.join(10)
        self.srv.close()
        self.drop_all()
        with self.lock:
            threads = list(self.threads)
        for t in threads:
            t.join(10)
        if self._acceptor.is_alive() or any(t.is_alive() for t in threads):
            raise RuntimeError("relay on port %d: a thread did not stop" % self.port)


class CutRelay(Relay):
    """Relay to port; cuts server->client after `cut` bytes on the first
    `times` connections (times=None: every connection)."""

    def __init__(self, port, cut, times=1):
        self.cut, self.times = cut, times
        self.cuts = 0
        super().__init__(port)

    def shaper(self, n, to_client):
        if not to_client or (self.times is not None and n > self.times):
            return None
        sent = [0]

        def shape(d):
            if sent[0] + len(d) >= self.cut:
                self.cuts += 1
                return d[:max(self.cut - sent[0], 0)], False
            sent[0] += len(d)
            return d, True
        return shape

"""Transport security and credential handling of satchel-sim.

Against a real Dovecot (tests/lib/satchel_test.py):
  * implicit TLS with the right CA works; an untrusted CA, a certificate for
    another host name (checked as "localhost" and as "127.0.0.1"), an
    expired and a self-signed certificate are refused before any login;
  * STARTTLS on the plain port works and Dovecot logs the session as TLS;
  * --security none works only where plaintext is allowed (explicit
    opt-in) and STARTTLS stays TLS even then;
  * a wrong password gives a clear "login refused" and a non-zero exit.

Against the scripted fake server (tests/lib/fake_imap.py), which records
every byte the client sent and whether it was inside TLS:
  * STARTTLS missing, refused (NO/BAD), stripped from CAPABILITY, "OK" but
    no handshake, or with a bad certificate: the client stops and never
    sends AUTHENTICATE/LOGIN or the password in the clear;
  * bytes injected after "OK Begin TLS" (same write, or a later write before
    the handshake) are never acted on;
  * PREAUTH on a plaintext connection is refused unless --security none;
  * untagged FETCH/EXISTS/LIST/CAPABILITY/[ALERT] before TLS or before
    login leave no trace in the store;
  * a world-readable --password-file is refused before connecting, a
    group-readable one only warns;
  * the password appears in no stdout/stderr of any run and in no file of
    any --db store.
"""
import os
import re
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
import warnings

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import satchel_test as st  # noqa: E402
from fake_imap import (FakeImap, run_sim_at, sim_crashed, make_messages,  # noqa: E402
                       PASSWORD, USER)

check = st.Checks()
RUNS = []        # every SimRun, scanned for the password at the end
DBS = []         # every --db directory, scanned for the password at the end
SECRETS = [PASSWORD]


def brief(r):
    return "rc=%s out=%r err=%r" % (r.returncode, r.stdout[-600:], r.stderr[-400:])


def sync_obj(r):
    """The JSON object printed by the first command (sync)."""
    return r.json[0] if r.json else {}


def failed_cleanly(r):
    return (not r.timed_out and not sim_crashed(r) and r.returncode != 0
            and sync_obj(r).get("ok") is False)


class Work:
    def __init__(self, root):
        self.root = root
        self.n = 0

    def db(self, label):
        self.n += 1
        d = os.path.join(self.root, "db-%02d-%s" % (self.n, re.sub(r"\W", "_", label)))
        DBS.append(d)
        return d


def run(*a, **kw):
    r = run_sim_at(*a, **kw)
    RUNS.append(r)
    return r


def fake_run(srv, db, commands="sync", **kw):
    r = srv.run_sim(db, commands, **kw)
    RUNS.append(r)
    return r


def offline(db, commands):
    r = st.run_sim_offline(db, commands, check=False, timeout=30)
    RUNS.append(r)
    return r


def store_view(db):
    """(folder names, {folder: [uids]}) of a store, read offline."""
    r = offline(db, ["folders"])
    if r.returncode != 0 or not r.json:
        return None, {}
    names = [f["name"] for f in r.json[0]["folders"]]
    out = {}
    for n in names:
        lr = offline(db, ["list %s 0 100000" % st.imap_quote(n)])
        out[n] = sorted(m["uid"] for m in lr.json[0]["messages"]) if lr.json else None
    return names, out


def logins_since(dc, mark):
    return re.findall(r"imap-login: Info: Login: user=<([^>]*)>",
                      dc._read_log(mark))


# ---------------------------------------------------------------------------
# real Dovecot
# ---------------------------------------------------------------------------

def dovecot_tests(w):
    msgs = [("From: Alice <a@example.org>\r\nSubject: sec test %d\r\n"
             "Message-ID: <sec-%d@example.org>\r\n"
             "Date: Mon, 01 Jan 2024 10:00:00 +0000\r\n\r\nbody\r\n" % (i, i)
             ).encode() for i in range(3)]
    with st.Dovecot() as dc:
        dc.add_messages("alice", "INBOX", msgs)
        pwdir = os.path.join(dc.tmp, "secrets")

        def dv(db, security="tls", port=None, host=None, **kw):
            if port is None:
                port = dc.imaps_port if security == "tls" else dc.imap_port
            kw.setdefault("ca", dc.ca_file)
            kw.setdefault("pwdir", pwdir)
            kw.setdefault("timeout_ms", 10000)
            return run(host or dc.host, port, db, "sync", security=security, **kw)

        # Implicit TLS with the right CA.
        db = w.db("tls-ok")
        r = dv(db)
        check(r.returncode == 0 and sync_obj(r).get("ok") is True,
              "implicit TLS with the right CA syncs: " + brief(r))
        _, view = store_view(db)
        check(len(view.get("INBOX") or []) == 3, "TLS sync stored INBOX: %s" % view)
        rs = offline(db, ["status"])
        check(rs.json and rs.json[0].get("security") == "tls",
              "status reports security tls: " + brief(rs))

        # Untrusted CA: refused before any login.
        mark = dc.log_mark()
        db = w.db("untrusted-ca")
        r = dv(db, ca=dc.untrusted_ca_file)
        err = sync_obj(r).get("error", "")
        check(failed_cleanly(r) and "certificate" in err.lower(),
              "untrusted CA refused with a certificate error: " + brief(r))
        time.sleep(0.3)
        check(logins_since(dc, mark) == [],
              "untrusted CA: Dovecot logged no login: %s" % logins_since(dc, mark))
        names, _ = store_view(db)
        check(names == [], "untrusted CA: nothing stored: %s" % names)

        # STARTTLS on the plain (relayed, non-local) port.
        mark = dc.log_mark()
        db = w.db("starttls")
        r = dv(db, security="starttls")
        check(r.returncode == 0 and sync_obj(r).get("ok") is True,
              "STARTTLS on the plain port syncs: " + brief(r))
        sess = dc.session_bytes("alice", since=mark, wait_for=1)
        check(len(sess) == 1 and sess[0]["tls"] is True
              and sess[0]["rip"] == st.PROXY_FAKE_CLIENT_IP,
              "STARTTLS session is TLS in Dovecot's log: %s" % sess)

        # --security none where Dovecot forbids plaintext: refused, no login.
        mark = dc.log_mark()
        db = w.db("none-refused")
        r = dv(db, security="none")
        check(failed_cleanly(r),
              "--security none against a TLS-only plain port fails: " + brief(r))
        time.sleep(0.3)
        check(logins_since(dc, mark) == [],
              "--security none: no plaintext login happened: %s"
              % logins_since(dc, mark))

        # --security tls against the plain port: a handshake error, no login.
        mark = dc.log_mark()
        db = w.db("tls-on-plain-port")
        r = dv(db, security="tls", port=dc.imap_port)
        check(failed_cleanly(r), "implicit TLS against a plain port fails: " + brief(r))

        # Wrong password: clear error, non-zero exit.
        db = w.db("wrong-password")
        r = dv(db, password="not-the-password-42")
        SECRETS.append("not-the-password-42")
        err = sync_obj(r).get("error", "")
        check(failed_cleanly(r) and "login refused" in err.lower(),
              "wrong password: 'login refused' and non-zero exit: " + brief(r))

        # Group-readable password file: a warning, but it works.
        db = w.db("group-readable")
        r = dv(db, pwmode=0o640)
        check(r.returncode == 0 and "warning" in r.stderr.lower()
              and "group" in r.stderr.lower(),
              "group-readable password file warns and works: " + brief(r))

        # Certificate variants, on the same ports.
        for variant, words in (("wronghost", ("cn", "name", "match")),
                               ("expired", ("expired",)),
                               ("selfsigned", ("signed", "trusted", "ca"))):
            dc.restart(server_cert=variant)
            for host in ("127.0.0.1", "localhost"):
                mark = dc.log_mark(settle=0)
                db = w.db("%s-%s" % (variant, host))
                r = dv(db, host=host)
                err = sync_obj(r).get("error", "").lower()
                check(failed_cleanly(r) and "certificate" in err
                      and any(x in err for x in words),
                      "%s certificate refused (server given as %s): %s"
                      % (variant, host, brief(r)))
                time.sleep(0.2)
                check(logins_since(dc, mark) == [],
                      "%s/%s: no login in Dovecot's log" % (variant, host))
                names, _ = store_view(db)
                check(names == [], "%s/%s: nothing stored: %s" % (variant, host, names))
            if variant == "wronghost":
                # STARTTLS checks the name too.
                db = w.db("wronghost-starttls")
                r = dv(db, security="starttls")
                check(failed_cleanly(r) and "certificate" in
                      sync_obj(r).get("error", "").lower(),
                      "wronghost refused over STARTTLS too: " + brief(r))
        dc.restart(server_cert="good")
        # The good certificate also matches when the server is "localhost".
        db = w.db("tls-localhost")
        r = dv(db, host="localhost")
        check(r.returncode == 0 and sync_obj(r).get("ok") is True,
              "good certificate accepted for host name localhost: " + brief(r))

    # Plaintext allowed by the server: --security none is an explicit opt-in;
    # STARTTLS still encrypts.
    with st.Dovecot(allow_plaintext=True) as dc:
        dc.add_messages("alice", "INBOX", msgs[:2])
        pwdir = os.path.join(dc.tmp, "secrets")
        mark = dc.log_mark()
        db = w.db("none-allowed")
        r = run(dc.host, dc.imap_port, db, "sync", security="none",
                ca=dc.ca_file, pwdir=pwdir, timeout_ms=10000)
        check(r.returncode == 0 and sync_obj(r).get("ok") is True,
              "--security none works when the server allows plaintext: " + brief(r))
        sess = dc.session_bytes("alice", since=mark, wait_for=1)
        check(len(sess) == 1 and sess[0]["tls"] is False,
              "--security none session is plaintext in the log: %s" % sess)
        mark = dc.log_mark()
        db = w.db("starttls-plain-allowed")
        r = run(dc.host, dc.imap_port, db, "sync", security="starttls",
                ca=dc.ca_file, pwdir=pwdir, timeout_ms=10000)
        check(r.returncode == 0 and sync_obj(r).get("ok") is True,
              "STARTTLS works on a plaintext-allowing server: " + brief(r))
        sess = dc.session_bytes("alice", since=mark, wait_for=1)
        check(len(sess) == 1 and sess[0]["tls"] is True,
              "STARTTLS is used even when plaintext would be accepted: %s" % sess)


# ---------------------------------------------------------------------------
# fake server
# ---------------------------------------------------------------------------

def no_secret_leak(srv, label, tls=False):
    """The server never received AUTHENTICATE/LOGIN or the password with
    the given TLS state (tls=None: at all)."""
    check(not srv.auth_seen(tls=tls),
          "%s: no AUTHENTICATE/LOGIN sent %s: %s" % (
              label, {False: "in plaintext", None: "at all", True: "in TLS"}[tls],
              srv.command_names()))
    check(not srv.secret_seen(tls=tls),
          "%s: the password never reached the server %s" % (
              label, {False: "in plaintext", None: "at all", True: "in TLS"}[tls]))


def starttls_refusals(w):
    def caps_without_starttls(conn, tag, args):
        if conn.tls:
            return conn.default(tag, "CAPABILITY", args)
        conn.untagged("CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR ENABLE")
        conn.tagged(tag, "OK", "CAPABILITY completed")

    def ok_no_handshake(conn, tag, args):
        # "OK" but the connection stays plaintext (a stripping attacker).
        conn.send(tag + " OK Begin TLS negotiation now\r\n")
        time.sleep(0.2)
        conn.send("* OK still plaintext, go ahead and log in\r\n")

    cases = [
        ("STARTTLS not advertised", dict(starttls=False)),
        ("STARTTLS answered NO", dict(hooks={"STARTTLS": "{tag} NO not today\r\n"})),
        ("STARTTLS answered BAD", dict(hooks={"STARTTLS": "{tag} BAD what?\r\n"})),
        ("STARTTLS stripped from CAPABILITY",
         dict(hooks={"CAPABILITY": caps_without_starttls})),
        ("STARTTLS OK without a handshake", dict(hooks={"STARTTLS": ok_no_handshake})),
        ("STARTTLS with a wrong-host certificate", dict(cert="wronghost")),
        ("STARTTLS with an untrusted certificate", dict(cert="untrusted")),
        ("no login method without TLS (LOGINDISABLED)",
         dict(starttls=False, allow_plaintext=False)),
    ]
    for label, opts in cases:
        security = "none" if "LOGINDISABLED" in label else "starttls"
        with FakeImap(**opts) as srv:
            db = w.db(label)
            r = fake_run(srv, db, security=security, timeout=20)
            srv.wait_idle(3)
            check(failed_cleanly(r), "%s: client stops with an error: %s" % (label, brief(r)))
            no_secret_leak(srv, label, tls=False)
            if "certificate" in label:
                check("certificate" in sync_obj(r).get("error", "").lower(),
                      "%s: error names the certificate: %s" % (label, brief(r)))
                no_secret_leak(srv, label + " (any)", tls=None)
            if label == "STARTTLS not advertised":
                check("starttls" in sync_obj(r).get("error", "").lower(),
                      "%s: error mentions STARTTLS: %s" % (label, brief(r)))
            names, _ = store_view(db)
            check(not names, "%s: nothing stored: %s" % (label, names))

    # STARTTLS advertised in the greeting, stripped from the CAPABILITY
    # reply: whatever the client does, nothing secret goes out in clear.
    with FakeImap(greeting_caps=True,
                  hooks={"CAPABILITY": caps_without_starttls}) as srv:
        db = w.db("greeting-starttls")
        r = fake_run(srv, db, security="starttls", timeout=20)
        srv.wait_idle(3)
        label = "STARTTLS in greeting, stripped in CAPABILITY"
        check(not r.timed_out and not sim_crashed(r), "%s: no crash/hang: %s" % (label, brief(r)))
        no_secret_leak(srv, label, tls=False)
        if r.returncode == 0:
            check(all(c.tls for c in srv.conns if c.user),
                  "%s: logged in only over TLS" % label)


def starttls_success(w):
    with FakeImap() as srv:
        db = w.db("fake-starttls-ok")
        r = fake_run(srv, db, security="starttls")
        srv.wait_idle(3)
        check(r.returncode == 0 and sync_obj(r).get("ok") is True,
              "fake STARTTLS sync works: " + brief(r))
        c = srv.conns[0] if srv.conns else None
        check(c is not None and c.handshake_ok, "fake STARTTLS handshake done")
        no_secret_leak(srv, "fake STARTTLS", tls=False)
        check(srv.secret_seen(tls=True), "fake STARTTLS: credentials went inside TLS")
        if c is not None:
            plain = c.command_names(tls=False)
            check(plain == ["CAPABILITY", "STARTTLS"],
                  "only CAPABILITY and STARTTLS in plaintext: %s" % plain)
            check(c.plain_after_starttls == b"",
                  "nothing sent between STARTTLS and the handshake: %r"
                  % c.plain_after_starttls[:80])
            tls_cmds = c.command_names(tls=True)
            check(tls_cmds[:1] == ["CAPABILITY"],
                  "CAPABILITY re-issued first after TLS: %s" % tls_cmds)


def injection(w):
    injected = (b"* CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR ENABLE\r\n"
                b"S3 OK [CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR ENABLE] injected\r\n"
                b"S4 OK [CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR ENABLE] injected\r\n"
                b'* LIST () "/" Injected\r\n'
                b"* 9 EXISTS\r\n"
                b"* OK [ALERT] INJECTEDALERT\r\n")

    def same_write(conn, tag, args):
        if conn.send(tag.encode() + b" OK Begin TLS negotiation now\r\n" + injected):
            conn.start_tls()

    def later_write(conn, tag, args):
        conn.send(tag + " OK Begin TLS negotiation now\r\n")
        time.sleep(0.15)
        conn.send(injected)
        conn.start_tls()

    for label, hook in (("injection in the STARTTLS write", same_write),
                        ("injection after the STARTTLS reply", later_write)):
        # Post-TLS capabilities lack SASL-IR: a client acting on the
        # injected ones would send an initial response.
        with FakeImap(sasl_ir=False, hooks={"STARTTLS": hook}) as srv:
            db = w.db(label)
            r = fake_run(srv, db, "sync; folders", security="starttls", json=True)
            srv.wait_idle(3)
            check(not r.timed_out and not sim_crashed(r), "%s: no crash/hang: %s" % (label, brief(r)))
            no_secret_leak(srv, label, tls=False)
            c = srv.conns[0] if srv.conns else None
            if r.returncode == 0:
                tls_cmds = c.command_names(tls=True)
                check(tls_cmds[:1] == ["CAPABILITY"],
                      "%s: client re-issued CAPABILITY after TLS: %s" % (label, tls_cmds))
                check(c.auth_initial_response is False,
                      "%s: AUTHENTICATE followed the post-TLS capabilities "
                      "(no SASL-IR), not the injected ones" % label)
                names, view = store_view(db)
                check(names == ["INBOX"] and view.get("INBOX") == [1, 2, 3, 4, 5],
                      "%s: store holds only post-TLS data: %s %s" % (label, names, view))
                check("INJECTEDALERT" not in r.stdout, "%s: injected alert not shown" % label)
            else:
                check(failed_cleanly(r), "%s: handshake aborted cleanly: %s" % (label, brief(r)))
                no_secret_leak(srv, label + " (any)", tls=None)
                names, _ = store_view(db)
                check(not names, "%s: nothing stored: %s" % (label, names))


def preauth(w):
    pre = "* PREAUTH [CAPABILITY IMAP4rev1 ENABLE LITERAL+] logged in already\r\n"
    for security in ("starttls", "tls"):
        label = "PREAUTH on plaintext with --security %s" % security
        with FakeImap(hooks={"greeting": pre}) as srv:
            db = w.db(label)
            r = fake_run(srv, db, security=security, timeout=20)
            srv.wait_idle(3)
            check(failed_cleanly(r), "%s: refused: %s" % (label, brief(r)))
            cmds = srv.command_names()
            check(not any(c in ("LIST", "SELECT", "FETCH", "UID FETCH") for c in cmds),
                  "%s: no mailbox commands sent: %s" % (label, cmds))
            names, _ = store_view(db)
            check(not names, "%s: nothing synced: %s" % (label, names))
            no_secret_leak(srv, label, tls=None)
    # Controls: PREAUTH is fine inside implicit TLS, and with --security none
    # (explicitly unprotected) the session proceeds.
    with FakeImap(security="tls", hooks={"greeting": pre}) as srv:
        db = w.db("preauth-tls")
        r = fake_run(srv, db, security="tls")
        check(r.returncode == 0 and sync_obj(r).get("ok") is True,
              "PREAUTH inside implicit TLS syncs: " + brief(r))
        no_secret_leak(srv, "PREAUTH inside TLS", tls=None)
    with FakeImap(hooks={"greeting": pre}) as srv:
        db = w.db("preauth-none")
        r = fake_run(srv, db, security="none")
        check(r.returncode == 0 and sync_obj(r).get("ok") is True,
              "PREAUTH with --security none (explicit opt-in) syncs: " + brief(r))


def untagged_before_auth(w):
    evil_hdr = (b"Date: Mon, 01 Jan 2024 00:00:00 +0000\r\nFrom: evil@example.org\r\n"
                b"Subject: EVILSUBJECT\r\n\r\n")

    def junk(marker):
        return (b"* 1 EXISTS\r\n* 3 RECENT\r\n"
                b'* LIST () "/" ' + marker + b"Folder\r\n"
                b'* LIST (\\HasNoChildren) "/" INBOX\r\n'
                b"* 1 FETCH (UID 77 FLAGS (\\Flagged) RFC822.SIZE 9 "
                b'INTERNALDATE "01-Jan-2024 00:00:00 +0000" '
                b"BODY[HEADER.FIELDS (DATE FROM SUBJECT MESSAGE-ID)] {%d}\r\n"
                % len(evil_hdr) + evil_hdr + b")\r\n"
                b"* 2 EXPUNGE\r\n* VANISHED 1:5\r\n"
                b"* OK [UIDVALIDITY 999] evil\r\n* OK [UIDNEXT 500] evil\r\n"
                b"* OK [ALERT] " + marker + b"ALERT\r\n"
                b"* CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR\r\n")

    def cap_hook(conn, tag, args):
        conn.send(junk(b"PRETLS" if not conn.tls else b"PRELOGIN"))
        conn.default(tag, "CAPABILITY", args)

    def greet(conn):
        conn.send(b"* OK Fake ready\r\n")

    for security in ("starttls", "none"):
        label = "untagged data before %s" % ("TLS and login" if security == "starttls"
                                             else "login")
        with FakeImap(hooks={"CAPABILITY": cap_hook, "greeting": greet},
                      mail={"INBOX": make_messages(5)}) as srv:
            db = w.db(label)
            r = fake_run(srv, db, security=security, json=False)
            srv.wait_idle(3)
            check(r.returncode == 0, "%s: sync works: %s" % (label, brief(r)))
            check("PRETLSALERT" not in r.stdout,
                  "%s: pre-TLS [ALERT] not shown to the user: %r" % (label, r.stdout[-300:]))
            names, view = store_view(db)
            check(names == ["INBOX"], "%s: only the real folders stored: %s" % (label, names))
            check(view.get("INBOX") == [1, 2, 3, 4, 5],
                  "%s: only the real messages stored: %s" % (label, view))
            rs = offline(db, ["folders"])
            inbox = [f for f in (rs.json[0]["folders"] if rs.json else [])
                     if f["name"] == "INBOX"]
            check(inbox and inbox[0]["uidvalidity"] == 1234 and inbox[0]["uidnext"] == 6,
                  "%s: UIDVALIDITY/UIDNEXT from the real SELECT: %s" % (label, inbox))
            lr = offline(db, ["list INBOX 0 100"])
            check("EVILSUBJECT" not in lr.stdout, "%s: injected FETCH not stored" % label)


def password_file(w):
    with FakeImap() as srv:
        # World-readable: refused before any connection.
        for mode in (0o644, 0o604):
            db = w.db("pw-%o" % mode)
            r = fake_run(srv, db, security="none", pwmode=mode)
            check(r.returncode not in (0, None) and not sim_crashed(r),
                  "password file mode %o refused: %s" % (mode, brief(r)))
            check("password" in r.stderr.lower(),
                  "password file mode %o: error says why: %r" % (mode, r.stderr))
        time.sleep(0.2)
        check(len(srv.conns) == 0,
              "world-readable password file: no connection attempted (%d)" % len(srv.conns))
        # Group-readable: a warning, then it works.
        db = w.db("pw-640")
        r = fake_run(srv, db, security="none", pwmode=0o640)
        check(r.returncode == 0 and "warning" in r.stderr.lower(),
              "group-readable password file warns but works: " + brief(r))
        # Owner-only: no warning.
        db = w.db("pw-600")
        r = fake_run(srv, db, security="none", pwmode=0o600)
        check(r.returncode == 0 and "warning" not in r.stderr.lower(),
              "0600 password file: no warning: " + brief(r))


def make_pki(d):
    """Own CA (EC P-256) and server certificates with odd properties."""
    def ossl(*args):
        p = subprocess.run(["openssl"] + list(args), cwd=d,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if p.returncode != 0:
            raise RuntimeError("openssl %s: %s" % (args[0], p.stderr.decode()))

    def key(name):
        ossl("genpkey", "-algorithm", "EC", "-pkeyopt",
             "ec_paramgen_curve:P-256", "-out", name)

    key("ca.key")
    ossl("req", "-x509", "-new", "-key", "ca.key", "-sha256", "-days", "3650",
         "-subj", "/O=Satchel Odd/CN=Satchel Odd CA",
         "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-out", "ca.pem")
    key("server.key")
    key("int.key")
    serial = [100]

    def leaf(name, cn, ext, ca="ca", keyname="server.key"):
        with open(os.path.join(d, name + ".ext"), "w") as f:
            f.write(ext)
        ossl("req", "-new", "-key", keyname, "-subj", "/O=Satchel Odd/CN=" + cn,
             "-out", name + ".csr")
        serial[0] += 1
        ossl("x509", "-req", "-in", name + ".csr", "-CA", ca + ".pem",
             "-CAkey", ca + ".key", "-set_serial", str(serial[0]), "-days", "30",
             "-sha256", "-extfile", name + ".ext", "-out", name + ".pem")
        return os.path.join(d, name + ".pem")

    base = ("basicConstraints=CA:FALSE\n"
            "keyUsage=critical,digitalSignature,keyEncipherment\n")
    eku = "extendedKeyUsage=serverAuth\n"
    out = {"ca": os.path.join(d, "ca.pem"), "key": os.path.join(d, "server.key")}
    out["cn_ip_no_san"] = leaf("cn_ip_no_san", "127.0.0.1", base + eku)
    out["dns_san_ip_string"] = leaf("dns_san_ip_string", "127.0.0.1",
                                    base + eku + "subjectAltName=DNS:127.0.0.1\n")
    out["ip_san_only"] = leaf("ip_san_only", "localhost",
                              base + eku + "subjectAltName=IP:127.0.0.1\n")
    out["client_eku"] = leaf("client_eku", "localhost", base +
                             "extendedKeyUsage=clientAuth\n"
                             "subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    # A leaf (CA:FALSE) used as an intermediate CA.
    leaf("int", "Not A CA", base + eku, keyname="int.key")
    shutil.copyfile(os.path.join(d, "int.key"), os.path.join(d, "int.key2"))
    srv = leaf("by_leaf", "localhost", base + eku +
               "subjectAltName=DNS:localhost,IP:127.0.0.1\n", ca="int")
    chain = os.path.join(d, "by_leaf_chain.pem")
    with open(chain, "wb") as f:
        for p in (srv, os.path.join(d, "int.pem")):
            with open(p, "rb") as g:
                f.write(g.read())
    out["by_leaf"] = chain
    return out


def odd_certificates(w):
    d = tempfile.mkdtemp(prefix="satchel-odd-pki-")
    try:
        pki = make_pki(d)
    except Exception as e:
        check(False, "cannot make test certificates: %r" % e)
        shutil.rmtree(d, ignore_errors=True)
        return
    try:
        cases = [
            ("CN=127.0.0.1 without SAN, server 127.0.0.1", "cn_ip_no_san", "127.0.0.1", False),
            ("DNS SAN '127.0.0.1', server 127.0.0.1", "dns_san_ip_string", "127.0.0.1", False),
            ("IP SAN only, server localhost", "ip_san_only", "localhost", False),
            ("IP SAN only, server 127.0.0.1 (control)", "ip_san_only", "127.0.0.1", True),
            ("clientAuth-only certificate", "client_eku", "127.0.0.1", False),
            ("chain through a non-CA certificate", "by_leaf", "localhost", False),
        ]
        for label, cert, host, good in cases:
            with FakeImap(security="tls", cert_file=pki[cert], key_file=pki["key"],
                          ca_file=pki["ca"]) as srv:
                db = w.db(label)
                r = run(host, srv.port, db, "sync", security="tls", ca=pki["ca"],
                        pwdir=srv.tmp)
                srv.wait_idle(3)
                if good:
                    check(r.returncode == 0 and sync_obj(r).get("ok") is True,
                          "%s: accepted: %s" % (label, brief(r)))
                    continue
                err = sync_obj(r).get("error", "").lower()
                check(failed_cleanly(r) and ("certificate" in err or "tls" in err),
                      "%s: refused: %s" % (label, brief(r)))
                no_secret_leak(srv, label, tls=None)
                names, _ = store_view(db)
                check(not names, "%s: nothing stored: %s" % (label, names))
        # IPv6 literal with the fixture's good certificate (SAN IP:::1).
        try:
            srv6 = FakeImap(security="tls", host="::1")
        except OSError:
            srv6 = None
        if srv6 is not None:
            with srv6:
                db = w.db("ipv6")
                r = fake_run(srv6, db, security="tls")
                check(r.returncode == 0 and sync_obj(r).get("ok") is True,
                      "IPv6 literal [::1] matched against its iPAddress SAN: " + brief(r))
        # A server that only speaks TLS 1.1.
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                ctx.minimum_version = ssl.TLSVersion.TLSv1
                ctx.maximum_version = ssl.TLSVersion.TLSv1_1
            ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
            ok = True
        except (ssl.SSLError, ValueError):
            ok = False
        if ok:
            with FakeImap(security="tls", ssl_context=ctx) as srv:
                ctx.load_cert_chain(srv.cert_file, srv.key_file)
                db = w.db("tls11")
                r = fake_run(srv, db, security="tls")
                srv.wait_idle(3)
                check(failed_cleanly(r), "TLS 1.1-only server refused: " + brief(r))
                no_secret_leak(srv, "TLS 1.1-only server", tls=None)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def login_fallback(w):
    """Without AUTH=PLAIN the client falls back to LOGIN: only inside TLS,
    with quoting that survives odd passwords."""
    odd = 'p"a\\ss w0rd{3}'
    SECRETS.append(odd)
    with FakeImap(auth_plain=False, users={USER: odd}) as srv:
        db = w.db("login-fallback")
        r = fake_run(srv, db, security="starttls", password=odd)
        srv.wait_idle(3)
        check(r.returncode == 0 and sync_obj(r).get("ok") is True,
              "LOGIN fallback over STARTTLS with an odd password: " + brief(r))
        check("LOGIN" in srv.command_names(tls=True)
              and "LOGIN" not in srv.command_names(tls=False),
              "LOGIN sent only inside TLS: %s" % srv.command_names())
        check(odd.encode() not in srv.received(tls=False),
              "odd password never in plaintext")


def scan_for_password():
    forms = []
    for s in SECRETS:
        forms.append(s.encode())
    printed = [" ".join(r.args[-2:]) for r in RUNS
               if any(s in r.stdout or s in r.stderr for s in SECRETS)]
    check(not printed, "password printed on stdout/stderr by: %s" % printed[:5])
    check(len(RUNS) > 30, "scanned the output of %d runs" % len(RUNS))
    leaked = []
    for d in DBS:
        if not os.path.isdir(d):
            continue
        for root, _, files in os.walk(d):
            for f in files:
                p = os.path.join(root, f)
                try:
                    with open(p, "rb") as fh:
                        data = fh.read()
                except OSError:
                    continue
                if any(x in data for x in forms):
                    leaked.append(p)
    check(not leaked, "password bytes found in store files: %s" % leaked[:5])
    check(len(DBS) > 10, "scanned %d store directories" % len(DBS))


def main():
    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix="satchel-test-security-") as root:
        w = Work(root)
        steps = (dovecot_tests, starttls_refusals, starttls_success, injection,
                 preauth, untagged_before_auth, password_file, odd_certificates,
                 login_fallback)
        for step in steps:
            try:
                step(w)
            except Exception as e:  # keep going: report and count
                import traceback
                traceback.print_exc()
                check(False, "%s raised %r" % (step.__name__, e))
        hung = [r.args[-1] for r in RUNS if getattr(r, "timed_out", False)]
        check(not hung, "no satchel-sim run hung: %s" % hung)
        check(not any(sim_crashed(r) for r in RUNS
                      if not getattr(r, "timed_out", False)),
              "no satchel-sim run crashed: %s" % [(r.returncode, r.args[-1]) for r in RUNS
                  if not getattr(r, "timed_out", False) and sim_crashed(r)])
        scan_for_password()
    if os.environ.get("SATCHEL_TEST_VERBOSE"):
        print("elapsed %.1fs, %d runs" % (time.time() - t0, len(RUNS)))
    return check.report()


if __name__ == "__main__":
    sys.exit(main())

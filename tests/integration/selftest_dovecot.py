#!/usr/bin/env python3
"""Self-test of the Dovecot test fixture (tests/lib/satchel_test.py).

    python3 tests/integration/selftest_dovecot.py [-v]

For each capability profile (full, condstore, none) it starts a private
Dovecot, loads the committed mail set and checks, with Python's imaplib:
TLS logins (imaps and STARTTLS) against the generated CA, refusal of
plaintext LOGIN on the plain port, the exact post-login CAPABILITY, the
special-use LIST flags, per-folder message counts/flags/UID order, live
APPEND, POP3 reachability and the in=/out= session accounting from the log.
Also exercises allow_plaintext=True, run_sim() (with a stand-in binary),
synth_messages()/load_corpus(), and cleanup.

Exit status 0 when everything passed; the last line is "N passed, M failed".
Needs: dovecot-imapd, dovecot-pop3d, openssl.  Runs as root or not.
"""

import imaplib
import os
import poplib
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))

import satchel_test as st  # noqa: E402

VERBOSE = "-v" in sys.argv
PASSED = 0
FAILED = 0
NOTES = []


def check(name, cond, detail=""):
    global PASSED, FAILED
    if cond:
        PASSED += 1
        if VERBOSE:
            print("ok   - %s" % name)
    else:
        FAILED += 1
        print("FAIL - %s%s" % (name, (": " + str(detail)) if detail else ""))
    return cond


def note(msg):
    NOTES.append(msg)
    print("note - " + msg)


def raises(fn, exc=Exception):
    try:
        fn()
    except exc as e:
        return e
    return None


def section(name, fn, *args):
    """Run a group of checks; an unexpected exception counts as a failure."""
    t0 = time.time()
    try:
        fn(*args)
    except Exception:
        check("%s (unexpected exception)" % name, False,
              traceback.format_exc())
    print("--- %s done in %.1fs" % (name, time.time() - t0))


# ---------------------------------------------------------------------------

def raw_capability_after_login(dc, user, password):
    """CAPABILITY via a raw TLS socket, plus the LOGIN response code."""
    ctx = dc.ssl_context()
    with socket.create_connection((dc.host, dc.imaps_port), timeout=10) as s:
        with ctx.wrap_socket(s, server_hostname="localhost") as t:
            f = t.makefile("rwb")
            greeting = f.readline()
            f.write(b'a LOGIN "%s" "%s"\r\n' % (user.encode(), password.encode()))
            f.flush()
            login_lines = []
            while True:
                line = f.readline()
                login_lines.append(line)
                if line.startswith(b"a ") or not line:
                    break
            f.write(b"b CAPABILITY\r\n")
            f.flush()
            cap_lines = []
            while True:
                line = f.readline()
                cap_lines.append(line)
                if line.startswith(b"b ") or not line:
                    break
            f.write(b"c LOGOUT\r\n")
            f.flush()
            while True:
                line = f.readline()
                if line.startswith(b"c ") or not line:
                    break
    return greeting, login_lines, cap_lines


def tagged_command(c, *args):
    """Send an arbitrary command through imaplib, return (typ, data)."""
    try:
        return c._simple_command(*args)
    except imaplib.IMAP4.error as e:
        return "BAD", [str(e).encode()]


def profile_checks(profile):
    users = {"alice": "secret-pass-1", "bob": "other-pass-2"}
    ms = st.load_mailset()
    with st.Dovecot(profile=profile, users=users) as dc:
        P = "[%s] " % profile
        check(P + "dovecot running", dc.running)
        for attr in ("imap_port", "imaps_port", "pop3_port"):
            check(P + attr + " is an int port", isinstance(getattr(dc, attr), int))
        check(P + "ca_file exists", os.path.isfile(dc.ca_file))
        check(P + "untrusted_ca_file exists", os.path.isfile(dc.untrusted_ca_file))
        check(P + "tmp dir exists", os.path.isdir(dc.tmp))

        t0 = time.time()
        counts = dc.load_mailset("alice")
        check(P + "mail set delivered", counts == {k: len(v) for k, v in ms.items()},
              counts)
        if VERBOSE:
            print("     mail set delivered in %.2fs" % (time.time() - t0))

        mark = dc.log_mark()
        nsessions = 0

        # --- imaps with the CA ----------------------------------------------
        c = dc.client("alice")
        nsessions += 1
        check(P + "imaps login", c.state == "AUTH")
        typ, data = c.capability()
        caps_str = data[0].decode()
        want = st.profile_capability(profile)
        check(P + "post-login CAPABILITY string exact", caps_str == want,
              "\n  got:  %s\n  want: %s" % (caps_str, want))
        caps = set(caps_str.upper().split())
        has_q = "QRESYNC" in caps
        has_c = "CONDSTORE" in caps
        check(P + "QRESYNC advertised iff full", has_q == (profile == "full"))
        check(P + "CONDSTORE advertised iff full/condstore",
              has_c == (profile in ("full", "condstore")))
        for cap in ("IDLE", "UIDPLUS", "MOVE", "SPECIAL-USE", "LITERAL+",
                    "ENABLE", "ESEARCH", "LIST-STATUS"):
            check(P + "post-login has " + cap, cap in caps)

        # Does Dovecot still honour the unadvertised extensions?
        if profile != "full":
            typ, data = tagged_command(c, "ENABLE", "QRESYNC")
            enabled = typ == "OK" and any(
                b"QRESYNC" in (x or b"") for x in c.untagged_responses.get("ENABLED", []))
            note("%s: ENABLE QRESYNC while not advertised -> %s %r (ENABLED "
                 "QRESYNC %s)" % (profile, typ, data[0] if data else None,
                                  "sent" if enabled else "not sent"))
            typ2, data2 = tagged_command(c, "SELECT", "INBOX", "(QRESYNC (1 1))")
            note("%s: SELECT INBOX (QRESYNC (1 1)) while not advertised -> %s"
                 % (profile, typ2))
            if profile == "none":
                typ3, data3 = tagged_command(c, "SELECT", "INBOX", "(CONDSTORE)")
                hm = c.untagged_responses.get("HIGHESTMODSEQ")
                note("none: SELECT INBOX (CONDSTORE) while not advertised -> %s, "
                     "HIGHESTMODSEQ %s" % (typ3, "returned" if hm else "absent"))
        c.logout()

        g, login_lines, cap_lines = raw_capability_after_login(
            dc, "alice", users["alice"])
        nsessions += 1
        login_code = login_lines[-1].decode(errors="replace")
        check(P + "LOGIN OK carries [CAPABILITY ...] == profile",
              login_code.startswith("a OK [CAPABILITY %s]" % want), login_code)
        pre = g.decode(errors="replace")
        if VERBOSE:
            print("     imaps greeting: %s" % pre.strip())
        if profile == "full":
            check(P + "pre-login greeting has no CONDSTORE (banner caps)",
                  "CONDSTORE" not in pre)
        else:
            # explicit imap_capability is also used by imap-login pre-login
            check(P + "pre-login greeting uses profile caps",
                  ("CONDSTORE" in pre) == (profile == "condstore") and
                  "QRESYNC" not in pre)

        # --- wrong CA / hostname must fail ---------------------------------
        bad = ssl.create_default_context(cafile=dc.untrusted_ca_file)
        e = raises(lambda: imaplib.IMAP4_SSL(dc.host, dc.imaps_port,
                                             ssl_context=bad, timeout=10),
                   ssl.SSLError)
        check(P + "imaps with untrusted CA fails verification",
              isinstance(e, ssl.SSLCertVerificationError), e)
        ctx = dc.ssl_context()
        with socket.create_connection((dc.host, dc.imaps_port), timeout=10) as s:
            with ctx.wrap_socket(s, server_hostname="localhost") as t:
                check(P + "TLS >= 1.2 negotiated",
                      t.version() in ("TLSv1.2", "TLSv1.3"), t.version())
                cert = t.getpeercert()
                sans = cert.get("subjectAltName", ())
                check(P + "server cert SAN has localhost and 127.0.0.1",
                      ("DNS", "localhost") in sans and
                      ("IP Address", "127.0.0.1") in sans, sans)
        ctx_ip = dc.ssl_context()
        with socket.create_connection((dc.host, dc.imaps_port), timeout=10) as s:
            with ctx_ip.wrap_socket(s, server_hostname="127.0.0.1") as t:
                check(P + "cert verifies for IP 127.0.0.1", t.getpeercert() is not None)
        e = raises(lambda: ctx.wrap_socket(
            socket.create_connection((dc.host, dc.imaps_port), timeout=10),
            server_hostname="not-localhost.invalid"), ssl.SSLError)
        check(P + "cert rejected for another host name",
              isinstance(e, ssl.SSLCertVerificationError), e)

        # --- STARTTLS on the plain port ----------------------------------------
        p = imaplib.IMAP4(dc.host, dc.imap_port, timeout=10)
        check(P + "plain port advertises STARTTLS", "STARTTLS" in p.capabilities,
              p.capabilities)
        check(P + "plain port advertises LOGINDISABLED",
              "LOGINDISABLED" in p.capabilities, p.capabilities)
        e = raises(lambda: p.login("alice", users["alice"]), imaplib.IMAP4.error)
        check(P + "plaintext LOGIN without STARTTLS refused", e is not None)
        check(P + "refusal is [PRIVACYREQUIRED]",
              e is not None and "PRIVACYREQUIRED" in str(e), e)
        typ, data = tagged_command(p, "AUTHENTICATE", "PLAIN",
                                   "AGFsaWNlAHNlY3JldC1wYXNzLTE=")
        check(P + "AUTHENTICATE PLAIN without STARTTLS refused", typ != "OK",
              (typ, data))
        p.logout()
        p = imaplib.IMAP4(dc.host, dc.imap_port, timeout=10)
        p.starttls(dc.ssl_context())
        typ, _ = p.login("alice", users["alice"])
        nsessions += 1
        check(P + "STARTTLS + LOGIN", typ == "OK")
        typ, data = p.capability()
        check(P + "STARTTLS post-login CAPABILITY exact", data[0].decode() == want)
        p.logout()
        e = raises(lambda: imaplib.IMAP4(dc.host, dc.imap_port, timeout=10)
                   .starttls(ssl.create_default_context(cafile=dc.untrusted_ca_file)),
                   ssl.SSLError)
        check(P + "STARTTLS with untrusted CA fails", e is not None, e)
        c = dc.client("alice", login=False)
        e = raises(lambda: c.login("alice", "wrong-password"), imaplib.IMAP4.error)
        check(P + "wrong password refused", e is not None)
        c.shutdown()

        # --- LIST / special-use ------------------------------------------------
        fl = dc.folders("alice")
        nsessions += 1
        for name, flag in st.SPECIAL_USE:
            check(P + "LIST %s has %s" % (name, flag), fl.get(name) == [flag],
                  fl.get(name))
        check(P + "LIST has INBOX and Lists/Dev",
              "INBOX" in fl and "Lists/Dev" in fl, sorted(fl))
        sub = dc.subscribed("alice")
        nsessions += 1
        check(P + "LSUB: special-use folders and Lists/Dev subscribed",
              {"Lists/Dev", "Drafts", "Sent", "Trash", "Junk", "Archive"} <= sub,
              sorted(sub))
        fb = dc.folders("bob")   # (bob's session is not counted for alice)
        check(P + "second user gets auto-created special-use folders",
              all(fb.get(n) == [f] for n, f in st.SPECIAL_USE), fb)

        # --- counts / flags / order ----------------------------------------------
        mflags = st.load_mailset_flags()
        manifest = st.load_mailset_manifest()
        for folder, msgs in ms.items():
            s = dc.server_state("alice", folder)
            nsessions += 1
            check(P + "%s message count %d" % (folder, len(msgs)),
                  len(s) == len(msgs) == s.exists, (len(s), s.exists))
            check(P + "%s UIDs 1..N, UIDNEXT N+1" % folder,
                  sorted(s) == list(range(1, len(msgs) + 1)) and
                  s.uidnext == len(msgs) + 1, (sorted(s)[:3], s.uidnext))
            want_flags = [sorted(f) for f in mflags[folder]]
            got_flags = [s[u]["flags"] for u in sorted(s)]
            check(P + "%s flags match mail set" % folder, got_flags == want_flags,
                  [(i, a, b) for i, (a, b) in enumerate(zip(got_flags, want_flags))
                   if a != b][:3])
            sizes_ok = all(s[u]["size"] and s[u]["size"] >= len(m)
                           for u, m in zip(sorted(s), msgs))
            check(P + "%s RFC822.SIZE plausible (CRLF size >= stored)" % folder,
                  sizes_ok)
            ents = [e for e in manifest if e["folder"] == folder]
            import hashlib
            order_ok = all(hashlib.sha1(m).hexdigest() == e["sha1"]
                           for m, e in zip(msgs, ents))
            check(P + "%s load_mailset order == manifest order" % folder, order_ok)
            if profile in ("full", "condstore"):
                check(P + "%s HIGHESTMODSEQ/MODSEQ reported" % folder,
                      s.highestmodseq is not None and
                      all(v["modseq"] for v in s.values()))
            else:
                check(P + "%s no MODSEQ requested without CONDSTORE" % folder,
                      s.highestmodseq is None and
                      all(v["modseq"] is None for v in s.values()))
            if folder == "INBOX":
                # UID order follows delivery (list) order
                want_subj = [st.decode_header_str(st.header_value(m, "Subject"))
                             for m in msgs]
                got_subj = [s[u]["subject"] for u in sorted(s)]
                check(P + "INBOX subjects in UID order == delivery order",
                      got_subj == want_subj,
                      [(i, a, b) for i, (a, b) in enumerate(zip(got_subj, want_subj))
                       if a != b][:3])
                enc = [s[u]["subject"] for u, e in zip(sorted(s), ents)
                       if "rfc2047-subject" in e["features"]]
                check(P + "RFC 2047 subjects decoded",
                      enc and all("=?" not in (x or "") for x in enc), enc[:3])
                raw = dc.fetch_raw("alice", "INBOX", 1)
                nsessions += 1
                check(P + "fetch_raw returns the message (CRLF)",
                      raw is not None and raw.replace(b"\r\n", b"\n") ==
                      msgs[0].replace(b"\r\n", b"\n"))
        # STATUS (as a sync client would use it)
        c = dc.client("alice")
        nsessions += 1
        for folder, msgs in ms.items():
            typ, data = c.status(st.imap_quote(folder), "(MESSAGES UIDNEXT UIDVALIDITY)")
            check(P + "STATUS %s MESSAGES %d" % (folder, len(msgs)),
                  typ == "OK" and (b"MESSAGES %d " % len(msgs)) in data[0], data)
        c.logout()

        # --- live APPEND and later direct delivery ---------------------------------
        uid = dc.append("alice", "INBOX", ms["Sent"][0], flags=("\\Seen",))
        nsessions += 1
        check(P + "append() returns APPENDUID uid", uid == len(ms["INBOX"]) + 1, uid)
        dc.add_messages("alice", "INBOX", [ms["Junk"][0]], flags=[["\\Flagged"]])
        s = dc.server_state("alice", "INBOX")
        nsessions += 1
        n = len(ms["INBOX"])
        check(P + "direct delivery after indexing gets next UID",
              sorted(s)[-2:] == [n + 1, n + 2] and s[n + 2]["flags"] == ["\\Flagged"]
              and s[n + 1]["flags"] == ["\\Seen"], sorted(s)[-2:])
        dc.store_flags("alice", "INBOX", [1], "+", ["\\Deleted"])
        dc.expunge("alice", "INBOX", [2])
        dc.move("alice", "INBOX", [3], "Archive")
        s = dc.server_state("alice", "INBOX")
        nsessions += 4
        check(P + "store/expunge/move helpers", 1 in s and
              "\\Deleted" in s[1]["flags"] and 2 not in s and 3 not in s)

        # --- POP3 ---------------------------------------------------------------
        pp = poplib.POP3(dc.host, dc.pop3_port, timeout=10)
        capa = pp.capa()
        check(P + "POP3 port answers with STLS", "STLS" in capa, capa)
        pp.stls(dc.ssl_context())
        pp.user("alice")
        pp.pass_(users["alice"])
        cnt, _size = pp.stat()
        check(P + "POP3 STAT sees INBOX", cnt == len(s), (cnt, len(s)))
        pp.quit()

        # --- session accounting ----------------------------------------------------
        sess = dc.session_bytes(user="alice", since=mark, wait_for=nsessions)
        check(P + "session_bytes() has all %d IMAP sessions" % nsessions,
              len(sess) == nsessions, "%d: %r" % (len(sess), sess[-3:]))
        check(P + "session_bytes() in/out > 0 for logged-out sessions",
              all(x["in"] > 0 and x["out"] > 0 for x in sess
                  if x["reason"] == "Logged out"), sess)
        check(P + "session_bytes() all TLS", all(x["tls"] for x in sess), sess)
        check(P + "relayed STARTTLS session has non-local rip",
              any(x["rip"] == st.PROXY_FAKE_CLIENT_IP for x in sess))
        pop = dc.session_bytes(user="alice", since=mark, protocol="pop3",
                               wait_for=1)
        check(P + "pop3 session_bytes()", len(pop) == 1 and pop[0]["out"] > 0, pop)
        bob = dc.session_bytes(user="bob", since=mark)
        check(P + "session_bytes(user=bob) filter", len(bob) == 1, bob)
        errs = dc.log_errors()
        check(P + "no warnings/errors in dovecot log", not errs, errs[:5])
        tmp = dc.tmp
        proc = dc.proc
    check(P + "stopped: process gone", proc.poll() is not None)
    check(P + "stopped: temp dir removed",
          os.environ.get("SATCHEL_KEEP_TMP") == "1" or not os.path.exists(tmp))


def plaintext_checks():
    with st.Dovecot(profile="none", allow_plaintext=True) as dc:
        mark = dc.log_mark()
        p = imaplib.IMAP4(dc.host, dc.imap_port, timeout=10)
        check("[plaintext] no LOGINDISABLED", "LOGINDISABLED" not in p.capabilities,
              p.capabilities)
        typ, _ = p.login("alice", "secret-pass-1")
        check("[plaintext] LOGIN without TLS accepted", typ == "OK")
        typ, data = p.capability()
        check("[plaintext] post-login CAPABILITY == none profile",
              data[0].decode() == st.profile_capability("none"))
        p.logout()
        sess = dc.session_bytes(since=mark, wait_for=1)
        check("[plaintext] session logged as non-TLS",
              len(sess) == 1 and sess[0]["tls"] is False, sess)


def restart_checks():
    with st.Dovecot(profile="none") as dc:
        dc.add_messages("alice", "INBOX", st.load_mailset()["Sent"])
        before = dc.server_state("alice", "INBOX")
        ports = (dc.imap_port, dc.imaps_port, dc.pop3_port)
        dc.server_down()
        e = raises(lambda: dc.client(), OSError)
        check("[restart] server_down(): imaps refused", e is not None, e)
        e = raises(lambda: imaplib.IMAP4(dc.host, dc.imap_port, timeout=5),
                   (OSError, imaplib.IMAP4.abort, imaplib.IMAP4.error))
        check("[restart] server_down(): plain port gives no greeting",
              e is not None, e)
        dc.restart(profile="full")
        check("[restart] same ports after restart",
              ports == (dc.imap_port, dc.imaps_port, dc.pop3_port))
        c = dc.client()
        typ, data = c.capability()
        c.logout()
        check("[restart] restart(profile=full) advertises QRESYNC",
              data[0].decode() == st.profile_capability("full"))
        after = dc.server_state("alice", "INBOX")
        check("[restart] mail store and UIDVALIDITY survive restart",
              after.uidvalidity == before.uidvalidity and
              sorted(after) == sorted(before))
        check("[restart] no warnings/errors in log", not dc.log_errors(),
              dc.log_errors()[:3])


def sim_checks():
    """run_sim()/run_sim_offline() argument plumbing, with a stand-in binary."""
    d = tempfile.mkdtemp(prefix="satchel-fakesim-")
    fake = os.path.join(d, "fake-sim")
    with open(fake, "w") as f:
        f.write("#!%s\n" % sys.executable + r'''
import json, sys
a = sys.argv[1:]
opts = {}
i = 0
while i < len(a):
    if a[i] in ("--json", "--offline"):
        opts[a[i]] = True; i += 1
    else:
        opts[a[i]] = a[i + 1]; i += 2
pw = None
if "--password-file" in opts:
    import os, stat
    st = os.stat(opts["--password-file"])
    pw = [open(opts["--password-file"]).read(), oct(st.st_mode & 0o777)]
for cmd in opts.get("-c", "").split(";"):
    print(json.dumps({"cmd": cmd.strip(), "opts": opts, "pw": pw}))
sys.exit(3 if "fail" in opts.get("-c", "") else 0)
''')
    os.chmod(fake, 0o755)
    old = os.environ.get("SATCHEL_SIM")
    os.environ["SATCHEL_SIM"] = fake
    try:
        check("[sim] satchel_sim_path honours $SATCHEL_SIM", st.satchel_sim_path() == fake)
        with st.Dovecot() as dc:
            r = st.run_sim(dc, os.path.join(d, "db"), ["sync", "status INBOX"])
            check("[sim] one JSON object per command", [j["cmd"] for j in r.json] ==
                  ["sync", "status INBOX"], r.stdout)
            o = r.json[0]["opts"]
            check("[sim] tls -> imaps port, --ca, --json",
                  o["--server"] == "127.0.0.1:%d" % dc.imaps_port and
                  o["--security"] == "tls" and o["--ca"] == dc.ca_file and
                  o.get("--json") is True and o["--user"] == "alice", o)
            check("[sim] password file content and mode 0600",
                  r.json[0]["pw"] == ["secret-pass-1", "0o600"], r.json[0]["pw"])
            r = st.run_sim(dc, os.path.join(d, "db"), "sync", security="starttls")
            check("[sim] starttls -> plain port",
                  r.json[0]["opts"]["--server"] == "127.0.0.1:%d" % dc.imap_port)
            r = st.run_sim(dc, os.path.join(d, "db"), "fail", check=False)
            check("[sim] check=False returns rc", r.returncode == 3)
            e = raises(lambda: st.run_sim(dc, os.path.join(d, "db"), "fail"),
                       st.SimError)
            check("[sim] check=True raises SimError with output",
                  e is not None and "fail" in str(e))
        r = st.run_sim_offline(os.path.join(d, "db"), "list INBOX")
        check("[sim] offline mode", r.json[0]["opts"].get("--offline") is True and
              "--server" not in r.json[0]["opts"])
    finally:
        if old is None:
            os.environ.pop("SATCHEL_SIM", None)
        else:
            os.environ["SATCHEL_SIM"] = old
        import shutil
        shutil.rmtree(d, ignore_errors=True)


def corpus_checks():
    check("[corpus] utf7 round trip",
          st.imap_utf7_decode(st.imap_utf7_encode("Entwürfe & Ärger/日本")) ==
          "Entwürfe & Ärger/日本" and st.imap_utf7_encode("Entwürfe") == "Entw&APw-rfe")
    base = list(st.load_mailset()["INBOX"][:20])
    t0 = time.time()
    synth = st.synth_messages(3000, base)
    import re
    mids = {re.search(rb"(?im)^message-id:\s*(\S+)", m).group(1) for m in synth}
    check("[corpus] synth_messages distinct Message-IDs", len(mids) == 3000)
    check("[corpus] synth_messages subject counter",
          re.search(rb"(?im)^subject:.*\[#2999\]", synth[-1]) is not None)
    with st.Dovecot(profile="none") as dc:
        t1 = time.time()
        dc.add_messages("alice", "Bulk", synth)
        t_add = time.time() - t1
        s = dc.server_state("alice", "Bulk")
        check("[corpus] 3000 synthetic messages delivered and indexed",
              len(s) == 3000 and s[3000]["subject"].endswith("[#2999]"))
        if VERBOSE:
            print("     synth %.2fs, add_messages(3000) %.2fs, index+fetch %.2fs"
                  % (t1 - t0, t_add, time.time() - t1 - t_add))
        check("[corpus] add_messages(3000) fast (<20s)", t_add < 20, t_add)
        dc.add_messages("alice", "Entwürfe", base[:2])
        fl = dc.folders("alice")
        check("[corpus] non-ASCII folder name via mUTF-7", "Entwürfe" in fl, sorted(fl))
    if st.corpus_available():
        got = list(st.load_corpus(limit=50, folders=["spam-1"]))
        check("[corpus] load_corpus(limit=50, folders=[spam-1])", len(got) == 50)
        check("[corpus] load_corpus strips mbox From line",
              not any(m.startswith(b"From ") for m in got))
    else:
        note("corpus %s absent: load_corpus checks skipped" % st.CORPUS)
        check("[corpus] load_corpus returns None when absent",
              st.load_corpus() is None)


def tls_variant_checks():
    """server_cert variants for hostile-TLS tests: each must be rejected by a
    client trusting ca_file (selfsigned: unless it trusts the cert itself)."""
    want = {"wronghost": "mismatch", "untrusted": "unable to get local issuer",
            "selfsigned": "self-signed", "expired": "expired"}
    for variant, reason in want.items():
        with st.Dovecot(server_cert=variant) as dc:
            e = raises(lambda: imaplib.IMAP4_SSL(
                dc.host, dc.imaps_port, ssl_context=dc.ssl_context(), timeout=10),
                ssl.SSLError)
            check("[tls] server_cert=%s rejected (%s)" % (variant, reason),
                  isinstance(e, ssl.SSLCertVerificationError) and
                  reason.lower() in str(e).lower(), e)
            if variant == "selfsigned":
                c = imaplib.IMAP4_SSL(dc.host, dc.imaps_port, timeout=10,
                                      ssl_context=dc.ssl_context(dc.server_cert_file))
                check("[tls] selfsigned accepted when pinned", c.login(
                    "alice", "secret-pass-1")[0] == "OK")
                c.logout()
    with st.Dovecot(key_type="ec") as dc:
        c = dc.client()
        check("[tls] key_type=ec works", c.state == "AUTH")
        c.logout()


def main():
    t0 = time.time()
    try:
        dv = subprocess.run(["dovecot", "--version"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT).stdout.decode().strip()
    except OSError:
        dv = "?"
    print("dovecot %s, python %s, euid %d" % (dv, sys.version.split()[0],
                                              os.geteuid()))
    for profile in ("full", "condstore", "none"):
        section("profile " + profile, profile_checks, profile)
    section("allow_plaintext", plaintext_checks)
    section("restart", restart_checks)
    section("tls variants", tls_variant_checks)
    section("run_sim", sim_checks)
    section("corpus", corpus_checks)
    check("no dovecot processes left behind (ours)",
          not st.leftover_processes(), st.leftover_processes())
    print("elapsed %.1fs" % (time.time() - t0))
    print("%d passed, %d failed" % (PASSED, FAILED))
    return 0 if FAILED == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

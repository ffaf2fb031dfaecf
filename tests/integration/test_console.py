"""The console: input it must refuse, numeric options, and output a server
controls.

Input (stdin and -c, no server):
  * a line over LINE_MAX bytes (16,383: a move between two folders of the
    longest name, 4,096 bytes, quoted) is refused whole: a `mkdir` hidden
    after the padding never runs, and the next line still does; LINE_MAX
    bytes run;
  * `quit` and `exit` with trailing blanks, tabs or CRLF stop the console
    (nothing after them runs); CRLF lines run without the CR;
  * numeric options: negative, non-numeric and out-of-range values are
    refused with a message naming the option; sizes take k/M/G (powers of
    1024), durations ms/s/m/h.

Output (a hostile scripted server, tests/lib/fake_imap.py): a subject,
sender, body, server alert, NO text and folder name full of terminal
escapes (ESC sequences, BEL, raw C1 bytes and UTF-8 C1 controls), and a
MIME type with a quote:
  * in text mode on a pseudo-terminal, no control byte from the server
    reaches the terminal: they are shown as \\xNN;
  * in JSON mode every line parses and the strings come back exactly;
  * `body --raw` to a pipe is the exact stored bytes; to a terminal it is
    escaped too.
"""
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import satchel_test as st  # noqa: E402
from fake_imap import FakeImap, make_messages, parse_seqset  # noqa: E402

check = st.Checks()


def sim(db, args=(), stdin=None, script=None, json_mode=False, timeout=30):
    a = [st.satchel_sim_path(), "--db", db, "--offline"] + list(args)
    if json_mode:
        a.append("--json")
    if script is not None:
        a += ["-c", script]
    p = subprocess.run(a, input=stdin, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout)
    return p.returncode, p.stdout, p.stderr.decode("utf-8", "replace")


def queued(db):
    rc, out, _ = sim(db, script="queue", json_mode=True)
    return [e["folder"] for e in json.loads(out)["entries"]]


LINE_MAX = 16383   # firmware/console.h: 4 x SATCHEL_OPT_MAX_FOLDER_NAME - 1


def test_input(root):
    # A line over the limit, whose tail after the first LINE_MAX bytes is a
    # command of its own: nothing of it may run.
    db = os.path.join(root, "input")
    hidden = b"list INBOX" + b" " * (LINE_MAX - 3) + b"mkdir Hidden\n"
    rc, out, err = sim(db, stdin=hidden + b"mkdir Next\n")
    check(b"longer than %d bytes" % LINE_MAX in out, "overlong line refused: %r" % out[:200])
    check(rc != 0, "overlong line makes the exit status non-zero")
    check(queued(db) == ["Next"], "the hidden mkdir never ran, the next line did: %s"
          % queued(db))
    # The same in JSON mode: one error object.
    rc, out, err = sim(db, stdin=b"x" * (LINE_MAX + 5000) + b"\nqueue\n", json_mode=True)
    lines = [json.loads(x) for x in out.splitlines()]
    check(len(lines) == 2 and lines[0]["ok"] is False and lines[0]["code"] < 0
          and "pending" in lines[1], "JSON: overlong line is one error: %r" % lines)
    # An overlong last line without its newline is refused too.
    rc, out, err = sim(db, stdin=b"mkdir " + b"y" * (LINE_MAX + 1000))
    check(rc != 0 and b"longer than" in out, "overlong last line without newline")
    # Exactly LINE_MAX bytes run.
    line = b"mkdir Exact"
    line += b" " * (LINE_MAX - len(line))
    rc, out, err = sim(db, stdin=line + b"\n")
    check(rc == 0 and "Exact" in queued(db), "a %d-byte line runs: %r" % (LINE_MAX, out[:200]))
    line = b"mkdir Exact2"
    line += b" " * (LINE_MAX - len(line))
    rc, out, err = sim(db, stdin=line + b"\r\n")
    check(rc == 0 and "Exact2" in queued(db), "a %d-byte line with CRLF runs" % LINE_MAX)
    # The same limit for -c scripts.
    rc, out, err = sim(db, script="mkdir " + "z" * (LINE_MAX + 100) + "; queue")
    check(rc != 0 and b"too long" in out and "z" * 10 not in "".join(queued(db)),
          "-c: an overlong command is refused whole")

    # quit and exit, with trailing blanks and CRLF; nothing after runs.
    for i, q in enumerate([b"quit \n", b"quit\r\n", b"exit\t\r\n", b"  quit  \n",
                           b"exit\n"]):
        dbq = os.path.join(root, "quit-%d" % i)
        rc, out, err = sim(dbq, stdin=b"mkdir Before\r\n" + q + b"mkdir After\n")
        check(rc == 0 and queued(dbq) == ["Before"],
              "%r stops the console, CRLF line ran without CR: %s %r"
              % (q, queued(dbq), out))
    rc, out, err = sim(db, stdin=b"quitter\n")
    check(rc != 0 and b"unknown command" in out, "'quitter' is not quit")
    rc, out, err = sim(db, stdin=b'mkdir "unclosed\n')
    check(rc != 0 and b"unclosed quote" in out, "unclosed quote: %r" % out)
    rc, out, err = sim(db, stdin=b"mkdir \"bad\xff\"\n")
    check(rc != 0 and b"not valid UTF-8" in out, "mkdir of a non-UTF-8 name: %r" % out)


OPTIONS = [
    # (options, accepted, cache budget expected or None, words in the error)
    (["--retries", "-1"], False, None, "--retries"),
    (["--retries", "abc"], False, None, "--retries"),
    (["--retries", "99999999999"], False, None, "--retries"),
    (["--retries", "5x"], False, None, "--retries"),
    (["--retries", "0"], True, None, None),
    (["--retries", "7"], True, None, None),
    (["--cache-max", "1k"], True, 1024, None),
    (["--cache-max", "1K"], True, 1024, None),
    (["--cache-max", "3M"], True, 3 * 1024 * 1024, None),
    (["--cache-max", "2G"], True, None, None),  # the store may cap it to its map
    (["--cache-max", "64M"], True, 64 * 1024 * 1024, None),
    (["--cache-max", "65536"], True, 65536, None),
    (["--cache-max", "-1"], False, None, "--cache-max"),
    (["--cache-max", "1.5M"], False, None, "--cache-max"),
    (["--cache-max", "10Q"], False, None, "--cache-max"),
    (["--cache-max", "k"], False, None, "--cache-max"),
    (["--cache-max", "99999999999G"], False, None, "--cache-max"),
    (["--timeout", "30s"], True, None, None),
    (["--timeout", "5m"], True, None, None),
    (["--timeout", "1500"], True, None, None),
    (["--timeout", "250ms"], True, None, None),
    (["--timeout", "abc"], False, None, "--timeout"),
    (["--timeout", "0"], False, None, "--timeout"),
    (["--timeout", "-5s"], False, None, "--timeout"),
    (["--timeout", "10x"], False, None, "--timeout"),
    (["--timeout", "9999999h"], False, None, "--timeout"),
    (["--fetch-window", "-5"], False, None, "--fetch-window"),
    (["--prefetch", "x"], False, None, "--prefetch"),
    (["--prefetch-max-size", "64k"], True, None, None),
    (["--disable-caps", "zz"], False, None, "--disable-caps"),
]


def test_options(root):
    db = os.path.join(root, "options")
    for opts, ok, budget, word in OPTIONS:
        rc, out, err = sim(db, args=opts, script="cache", json_mode=True)
        if ok:
            check(rc == 0, "%s accepted: %s" % (opts, err))
            if budget is not None and rc == 0:
                got = json.loads(out)["budget"]
                check(got == budget, "%s: cache budget %s, want %s" % (opts, got, budget))
        else:
            check(rc == 2 and word in err and out == b"",
                  "%s refused with a clear error: rc=%s err=%r" % (opts, rc, err))


# ---- output a hostile server controls -------------------------------------

EVIL = b"\x1b]0;owned\x07\x1b[2J\x1b[31mred\x9b1m\xc2\x9b2J\x7f\x08end"
EVIL_SUBJECT = b"Subject: Hi " + EVIL + b"\r\n"
BODY = b"line one\r\n" + EVIL + b"\r\nline three\r\n"
BS_QUOTE = (b'("TEXT" "PL\\"AIN" ("CHARSET" "UTF-8") NIL NIL "8BIT" %d 3 '
            b'NIL NIL NIL NIL)' % len(BODY))


def evil_server():
    msgs = make_messages(2)
    msgs[0]["header"] = (b"Date: Mon, 01 Jan 2024 00:01:00 +0000\r\n"
                         b"From: Eve \x1b[5m<eve@example.org>\r\n" + EVIL_SUBJECT + b"\r\n")
    msgs[0]["bodystructure"] = BS_QUOTE
    msgs[1]["bodystructure"] = (b'("TEXT" "PLAIN" ("CHARSET" "UTF-8") NIL NIL '
                                b'"8BIT" %d 3 NIL NIL NIL NIL)' % len(BODY))

    def uid_fetch(conn, tag, args):
        if "BODY.PEEK[" not in args.upper():
            return conn.default(tag, "UID FETCH", args)
        msgs_ = conn.folder()
        spec = args.split()[0]
        for seq, m in enumerate(msgs_, 1):
            if m["uid"] in parse_seqset(spec, max(x["uid"] for x in msgs_)):
                conn.send(b"* %d FETCH (UID %d BODY[1]<0> {%d}\r\n" % (seq, m["uid"], len(BODY))
                          + BODY + b")\r\n")
        conn.tagged(tag, "OK", "UID FETCH completed")

    def select(conn, tag, args):
        conn.send(b"* OK [ALERT] Alert \x1b[2J\x07 from the server\r\n")
        conn.default(tag, "SELECT", args)

    # A folder whose modified UTF-7 name decodes to ESC [2J (screen clear).
    return FakeImap(mail={"INBOX": msgs, "Evil&ABs-[2J": make_messages(1)},
                    hooks={"UID FETCH": uid_fetch, "SELECT": select})


def raw_controls(b):
    """Control bytes that would reach a terminal: C0 except TAB, LF, CR (the
    pty adds CRs), DEL, raw C1 bytes, and UTF-8 encoded C1 controls."""
    bad = [c for c in b if (c < 0x20 and c not in (9, 10, 13)) or c == 0x7f]
    text = b.decode("utf-8", "replace")
    bad += [c for c in text if 0x80 <= ord(c) <= 0x9f]
    bad += [0xfffd] if "\ufffd" in text and b"\xef\xbf\xbd" not in b else []
    return bad


def sim_args(srv, db, pwfile, script, extra=()):
    return [st.satchel_sim_path(), "--db", db, "--server", "127.0.0.1:%d" % srv.port,
            "--security", "none", "--user", "alice", "--password-file", pwfile,
            "--timeout", "5s", "--retries", "0"] + (
                ["--stack", os.environ["SATCHEL_STACK"]] if os.environ.get("SATCHEL_STACK")
                else []) + list(extra) + ["-c", script]


def test_hostile_output(root):
    db = os.path.join(root, "evil")
    pwfile = os.path.join(root, "pw")
    with open(pwfile, "w") as f:
        f.write("secret-pass-1")
    os.chmod(pwfile, 0o600)
    with evil_server() as srv:
        script = ("sync; folders; list INBOX; show INBOX 1; parts INBOX 1; "
                  "body INBOX 1; body INBOX 2 --raw; status")
        rc, shown = st.run_on_pty(sim_args(srv, db, pwfile, script))
        check(rc == 0, "text session on a terminal: rc=%s %r" % (rc, shown[-300:]))
        bad = raw_controls(shown)
        check(not bad, "no raw control character reached the terminal: %r"
              % sorted(set(bad))[:10])
        check(b"\\x1B]0;owned\\x07" in shown, "escapes are shown escaped: %r"
              % shown[:600])
        check(b"line one" in shown and b"line three" in shown, "body text shown")
        check(b"Alert \\x1B[2J\\x07 from" in shown, "server alert shown escaped")
        check(b"Evil\\x1B[2J" in shown, "a folder name with ESC is shown escaped: %r"
              % shown[:300])

        # JSON: valid, and the strings exact.
        r = srv.run_sim(db, ["list INBOX", "parts INBOX 1", "body INBOX 1",
                             "show INBOX 1"])
        check(r.returncode == 0 and not r.nonjson, "JSON output parses: %r" % r.stdout[:300])
        if len(r.json) == 4:
            subj = [m["subject"] for m in r.json[0]["messages"] if m["uid"] == 1]
            # The header decoder already drops C0 controls from a subject.
            check(subj and subj[0].startswith("Hi ") and "owned" in subj[0] and
                  not any(ord(c) < 0x20 for c in subj[0]),
                  "JSON subject: text kept, no controls: %r" % subj)
            check(r.json[1]["parts"][0]["type"] == 'text/pl"ain',
                  "a MIME type with a quote is valid JSON: %r" % r.json[1]["parts"])
            check("\x1b[2J" in r.json[2]["text"] and "\r" not in r.json[2]["text"],
                  "JSON body text exact (without CR): %r" % r.json[2]["text"][:80])
            check(r.stdout.count("\\u001b") >= 3, "JSON escapes ESC as \\u001b")

        # --raw to a pipe: the exact bytes as stored.
        r = subprocess.run(
            sim_args(srv, db, pwfile, "body INBOX 2 --raw", ["--offline"]),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        check(r.returncode == 0 and r.stdout == BODY,
              "--raw to a pipe is the stored bytes: %r" % r.stdout[:100])
        srv.stop()


def main():
    root = tempfile.mkdtemp(prefix="satchel-test-console-")
    test_input(root)
    test_options(root)
    test_hostile_output(root)
    return check.report()


if __name__ == "__main__":
    sys.exit(main())

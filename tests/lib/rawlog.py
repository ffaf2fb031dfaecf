"""Round trips as the server saw them, from Dovecot's rawlog.

Dovecot writes every post-login byte of an IMAP session to
<rawlog_dir>/<date>-<time>.<pid>.<n>.in and .out, each line stamped with the
time (microseconds) the imap process read or wrote it.  A flight starts when
a command arrives while every command read before it has been answered
(its tagged OK/NO/BAD written, or a "+" continuation asked for more).
The login exchange happens before the imap process exists, so it is not in
the log: these counts start after login.

    with Dovecot(extra_conf=rawlog.CONF) as dc:
        rawlog.enable(dc, "alice")
        ...
        rawlog.flights(rawlog.sessions(dc, "alice")[-1])
"""
import glob
import os
import re

CONF = "protocol imap {\n  rawlog_dir = %h/rawlog\n}\n"

_STAMP = re.compile(rb"^(\d+)\.(\d{6}) ")
_CMD = re.compile(rb"^([A-Za-z0-9.]+) ([A-Za-z]+)")
_TAGGED = re.compile(rb"^([A-Za-z0-9.]+) (OK|NO|BAD)\b", re.I)


def enable(dc, user):
    """Create the user's rawlog directory (Dovecot logs only when it exists)."""
    d = rawlog_dir(dc, user)
    os.makedirs(d, exist_ok=True)
    dc._chown(d)
    return d


def rawlog_dir(dc, user):
    return os.path.join(dc.tmp, "home", user, "rawlog")


def sessions(dc, user):
    """[(in_path, out_path)] of the user's sessions, oldest first."""
    ins = sorted(glob.glob(os.path.join(rawlog_dir(dc, user), "*.in")),
                 key=os.path.getmtime)
    return [(p, p[:-3] + ".out") for p in ins if os.path.exists(p[:-3] + ".out")]


def _lines(path):
    """(time in microseconds, line without its stamp) for each stamped line.
    Lines without a stamp continue a line that was written in pieces."""
    out = []
    with open(path, "rb") as f:
        for line in f.read().split(b"\n"):
            m = _STAMP.match(line)
            if m:
                out.append((int(m.group(1)) * 1000000 + int(m.group(2)),
                            line[m.end():]))
    return out


def events(session):
    """Merged, time-ordered events: ("cmd", t, tag, verb), ("done", t, tag)
    and ("cont", t).  On equal stamps an answer sorts first: the server read
    that command after it had written the answer."""
    in_path, out_path = session
    ev = []
    for t, l in _lines(in_path):
        m = _CMD.match(l)
        if m:
            ev.append((t, 1, "cmd", m.group(1).decode(), m.group(2).decode().upper()))
    for t, l in _lines(out_path):
        if l.startswith(b"+"):
            ev.append((t, 0, "cont", None, None))
            continue
        m = _TAGGED.match(l)
        if m:
            ev.append((t, 0, "done", m.group(1).decode(), m.group(2).decode().upper()))
    ev.sort(key=lambda e: (e[0], e[1]))
    return ev


def flights(session, detail=None):
    """Number of flights after login.  With detail=list, appends
    (time, first command of the flight) for each."""
    sent = set()     # tags read, whose answer has not been written
    answered = set()
    n = 0
    for t, _, kind, tag, verb in events(session):
        if kind == "cmd":
            if tag in answered:
                continue  # literal text that looks like a command
            if not sent:
                n += 1
                if detail is not None:
                    detail.append((t, tag, verb))
            sent.add(tag)
        elif kind == "cont":
            sent.clear()
        elif tag in sent:
            sent.discard(tag)
            answered.add(tag)
    return n

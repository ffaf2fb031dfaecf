"""Long folder names: every legal name is stored (folders are keyed by id,
not by name), and queued moves that do not fit one output buffer.

Names of 1,000 and 3,000 bytes of ASCII and of 1,000 bytes of CJK
(modified UTF-7 on the wire), created on the server (a Dovecot with
LAYOUT=fs, so that each level of the name is one directory under the file
system's 255-byte limit), are synced and listed, their messages open, a
message is moved into each offline and replayed, and a 1,500-byte folder
is made offline with mkdir.  imaplib then sees the same: each moved
message in its folder once, the new folder there.  After a restart the
store still has every name (offline).

Then queued moves into many folders, against a Dovecot that offers no
LITERAL+.

60 messages are moved offline, each into its own folder with a 190-byte
name (spaces and parentheses, so every name goes out as a quoted string):
one replay batch is then more than 8 KB of commands, which used to fail
the whole sync with "command buffer overflow" on every retry.  The replay
runs once with MOVE and once with UID COPY + STORE + UID EXPUNGE (more
commands per batch).  Python's imaplib then checks every folder on the
server: each moved message is in its folder exactly once and gone from
INBOX; the local store agrees and the queue is empty.
"""
import os
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import satchel_test as st  # noqa: E402

CAP_MOVE = 1 << 11
N = 60

check = st.Checks()


def name_for(i):
    head = "Project (%02d) " % i
    body = "long folder name segment "
    s = head
    while len(s) < 190:
        s += body
    return s[:189] + chr(ord("a") + i % 26)


def scenario(label, mask, work):
    db = os.path.join(work, "db-" + label)
    extra = ["--disable-caps", str(mask)] if mask else []
    names = [name_for(i) for i in range(N)]
    check(all(len(n) == 190 for n in names), "names are 190 bytes")
    with st.Dovecot(profile="noliteral") as dc:
        caps = dc._with_client("alice", lambda c: c.capabilities)
        check("LITERAL+" not in caps and "LITERAL-" not in caps,
              "[%s] server offers neither LITERAL+ nor LITERAL-: %s" % (label, caps))
        dc.load_mailset()
        for n in names:
            dc.create_folder("alice", n)
        r = st.run_sim(dc, db, ["sync"], extra=extra, timeout=300)
        check(r.json[0]["ok"], "[%s] first sync: %s" % (label, r.json[0]))
        inbox = dc.server_state("alice", "INBOX")
        uids = sorted(inbox)[:N]
        mids = [inbox[u]["message_id"] for u in uids]
        ops = ["move INBOX %d %s" % (u, st.imap_quote(n)) for u, n in zip(uids, names)]
        r = st.run_sim_offline(db, ops + ["queue"])
        check(all(x.get("ok", True) for x in r.json[:N]), "[%s] moves recorded" % label)
        check(r.json[N]["pending"] == N, "[%s] %d queued: %s" % (label, N, r.json[N]["pending"]))

        r = st.run_sim(dc, db, ["sync", "queue"], extra=extra, timeout=300)
        out, q = r.json[0], r.json[1]
        check(out["ok"], "[%s] replaying sync ok: %s" % (label, out.get("error")))
        check(out.get("replayed") == N and not out.get("replay_failed"),
              "[%s] replayed %s, failed %s" % (label, out.get("replayed"), out.get("replay_failed")))
        check(q["pending"] == 0 and q["failed"] == 0, "[%s] queue empty: %s" % (label, q))
        print("[%s] replay: %s round trips, %s bytes out" % (
            label, out.get("round_trips"), out.get("bytes_out")))

        inbox_after = {m["message_id"] for m in dc.server_state("alice", "INBOX").values()
                       if "\\Deleted" not in m["flags"]}
        landed = 0
        for mid, n in zip(mids, names):
            there = [m for m in dc.server_state("alice", n).values()
                     if m["message_id"] == mid]
            landed += len(there) == 1
        check(landed == N, "[%s] every message is in its folder once: %d of %d"
              % (label, landed, N))
        check(not (set(mids) & inbox_after), "[%s] moved messages gone from INBOX: %d left"
              % (label, len(set(mids) & inbox_after)))
        r = st.run_sim_offline(db, ["list %s 0 10" % st.imap_quote(n) for n in names])
        local = sum(1 for x in r.json if x.get("total") == 1)
        check(local == N, "[%s] local store has each message in its folder: %d" % (label, local))


def long_name(nbytes, unit, tag):
    """A name of exactly nbytes of UTF-8: levels of at most 180 bytes joined
    by '/' (each level is a directory on Dovecot's side)."""
    parts, total = [], 0
    while total < nbytes:
        room = nbytes - total - (1 if parts else 0)
        level = tag + "%02d-" % len(parts)
        while len((level + unit).encode()) <= min(180, room):
            level += unit
        while len(level.encode()) < min(180, room):
            level += "x"
        level = level.encode()[:room].decode("utf-8", "ignore")
        parts.append(level)
        total = len("/".join(parts).encode())
    name = "/".join(parts)
    assert len(name.encode()) == nbytes, (len(name.encode()), nbytes)
    return name


def console_quote(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def server_names(work):
    names = [long_name(1000, "long ", "A"), long_name(3000, "name ", "B"),
             long_name(1000, "\u540d\u524d", "\u65e5")]
    new = long_name(1500, "made offline ", "C")
    with st.Dovecot(profile="full",
                    extra_conf="mail_location = maildir:~/Maildir:LAYOUT=fs") as dc:
        for i in range(6):
            dc.append("alice", "INBOX", MSG % ("Inbox %d" % i, "in%d" % i, "INBOX"))
        for i, n in enumerate(names):
            dc.create_folder("alice", n)
            dc.append("alice", n, MSG % ("Long %d" % i, "long%d" % i, "folder %d" % i))
        db = os.path.join(work, "db-server-names")
        r = st.run_sim(dc, db, ["sync", "folders"], check=False)
        check(r.returncode == 0, "sync of 1,000-, 3,000-byte and CJK names: %s" % r.describe())
        listed = {f["name"]: f for f in r.json[-1]["folders"]} if r.json else {}
        for n in names:
            f = listed.get(n)
            check(f is not None and f.get("messages") == 1 and "error" not in f,
                  "%d-byte name listed with its message: %s" % (
                      len(n.encode()), f and {k: v for k, v in f.items() if k != "name"}))
        # Messages open by the long name.
        for i, n in enumerate(names):
            r = st.run_sim(dc, db, ["list %s" % console_quote(n),
                                    "body %s 1" % console_quote(n)], check=False)
            ok = (r.returncode == 0 and len(r.json) == 2 and r.json[0]["messages"] and
                  r.json[0]["messages"][0]["subject"] == "Long %d" % i and
                  "Body of folder %d." % i in r.json[1].get("text", ""))
            check(ok, "%d-byte name: its message lists and opens: %s" % (
                len(n.encode()), r.describe()[:400]))
        # Offline: a move into each, and a new folder with a long name.
        inbox = dc.server_state("alice", "INBOX")
        uids = sorted(inbox)[:len(names)]
        ops = ["move INBOX %d %s" % (u, console_quote(n)) for u, n in zip(uids, names)]
        r = st.run_sim_offline(db, ops + ["mkdir %s" % console_quote(new), "queue"],
                               check=False)
        check(r.returncode == 0 and r.json[-1]["pending"] == len(names) + 1,
              "moves and mkdir recorded offline: %s" % r.describe()[:400])
        r = st.run_sim(dc, db, ["sync", "queue", "folders"], check=False)
        check(r.returncode == 0 and r.json[1]["pending"] == 0 and r.json[1]["failed"] == 0,
              "replay into long names: %s" % r.describe()[:400])
        # An independent client sees the same.
        for i, (u, n) in enumerate(zip(uids, names)):
            subj = sorted(m.get("subject", "") for m in dc.server_state("alice", n).values())
            check(subj == sorted(["Long %d" % i, inbox[u]["subject"]]),
                  "%d-byte name holds its message and the moved one: %s" % (
                      len(n.encode()), subj))
        left = {m["message_id"] for m in dc.server_state("alice", "INBOX").values()
                if "\\Deleted" not in m["flags"]}
        check(not left & {inbox[u]["message_id"] for u in uids},
              "the moved messages left INBOX")
        wire = dc._with_client("alice", lambda c: c.list('""', st.imap_quote(new))[1])
        check(any(x and new.encode() in (x[1] if isinstance(x, tuple) else x)
                  for x in wire), "the 1,500-byte mkdir landed on the server: %r"
              % [x if not isinstance(x, bytes) else x[:80] for x in wire])
        # The store agrees, after a restart, offline.
        r = st.run_sim_offline(db, ["folders"] + ["list %s" % console_quote(n)
                                                  for n in names], check=False)
        got = {f["name"] for f in r.json[0]["folders"]} if r.json else set()
        check(set(names) | {new} <= got, "every long name kept in the store")
        check(all(x.get("total") == 2 for x in r.json[1:]),
              "each long folder holds two messages offline: %s" % [
                  x.get("total") for x in r.json[1:]])
        r = st.run_sim_offline(db, ["store check"], check=False)
        check(r.returncode == 0, "store check clean: %s" % r.describe()[:300])


MSG = ("From: Ann <ann@example.org>\r\nTo: bob@example.org\r\n"
       "Subject: %s\r\nMessage-ID: <%s@long.test>\r\n"
       "Date: Mon, 01 Jan 2024 10:00:00 +0000\r\n\r\nBody of %s.\r\n")


def main():
    with tempfile.TemporaryDirectory(prefix="satchel-test-long-names-") as work:
        server_names(work)
        scenario("move", 0, work)
        scenario("copy", CAP_MOVE, work)
    return check.report()


if __name__ == "__main__":
    sys.exit(main())

"""Structures too large or too deep to keep say so, and every part the kept
prefix describes can still be fetched.

Against the test Dovecot:
  * a message with 2,000 parts: `parts` and `show` say the structure was
    cut; the parts listed are numbered 1..N as the server numbers them, and
    the last listed and a middle one open with exactly the server's bytes
    (checked with imaplib's BODY.PEEK[n]);
  * a message nested 200 deep: cut, and `body` still shows its text;
  * an ordinary message next to them is not marked cut.
"""
import os
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import satchel_test as st  # noqa: E402

check = st.Checks()

HEAD = (b"From: Ann <ann@example.org>\r\nTo: bob@example.org\r\nSubject: %s\r\n"
        b"Message-ID: <%s@structures.test>\r\nDate: Mon, 01 Jan 2024 10:00:00 +0000\r\n"
        b"MIME-Version: 1.0\r\n")


def many_parts(n):
    body = b"".join(b"--b\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
                    b"Part %d body\r\n" % i for i in range(1, n + 1))
    return (HEAD % (b"many parts", b"many") +
            b"Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n" + body + b"--b--\r\n")


def deep(depth):
    out = HEAD % (b"deep", b"deep")
    tail = b""
    for i in range(depth):
        out += b"Content-Type: multipart/mixed; boundary=\"d%d\"\r\n\r\n--d%d\r\n" % (i, i)
        tail = b"--d%d--\r\n" % i + tail
    out += b"Content-Type: text/plain\r\n\r\nThe deepest text.\r\n" + tail
    return out


def server_part(dc, uid, section):
    def fn(c):
        c.select("INBOX")
        typ, data = c.uid("FETCH", str(uid), "(BODY.PEEK[%s])" % section)
        return data[0][1] if data and isinstance(data[0], tuple) else b""
    return dc._with_client("alice", fn)


def main():
    root = tempfile.mkdtemp(prefix="satchel-test-structures-")
    with st.Dovecot(profile="full") as dc:
        u_many = dc.append("alice", "INBOX", many_parts(2000))
        u_deep = dc.append("alice", "INBOX", deep(200))
        u_plain = dc.append("alice", "INBOX", HEAD % (b"plain", b"plain") +
                            b"Content-Type: text/plain\r\n\r\nJust text.\r\n")
        db = os.path.join(root, "db")
        r = st.run_sim(dc, db, ["sync", "list INBOX"], check=False)
        check(r.returncode == 0, "sync: %s" % r.describe())
        subjects = {m["uid"]: m["subject"] for m in r.json[-1]["messages"]} if r.json else {}
        check(subjects.get(u_many) == "many parts" and subjects.get(u_deep) == "deep",
              "both messages keep their headers: %s" % subjects)

        r = st.run_sim_offline(db, ["parts INBOX %d" % u_many, "show INBOX %d" % u_many])
        parts = r.json[0]["parts"]
        n = len(parts)
        check(r.json[0]["structure_cut"] is True and r.json[1]["structure_cut"] is True,
              "2,000 parts: parts and show say the structure was cut")
        check(n >= 10 and [p["part"] for p in parts] == [str(i) for i in range(1, n + 1)],
              "the kept parts are 1..N as the server numbers them (N=%d)" % n)
        print("test_structures: 2,000 parts, %d described by the stored prefix" % n)
        for sec in (n, n // 2 + 1):
            r = st.run_sim(dc, db, ["body INBOX %d %d" % (u_many, sec),
                                    "body INBOX %d %d --raw" % (u_many, sec)])
            check(r.json[0]["text"] == "Part %d body\n" % sec or
                  r.json[0]["text"] == "Part %d body" % sec,
                  "part %d opens: %r" % (sec, r.json[0].get("text")))
            check(r.json[1]["raw"].encode() == server_part(dc, u_many, sec),
                  "part %d is the server's part %d, byte for byte" % (sec, sec))
            check(r.json[0].get("structure_cut") is True, "body says the structure was cut")

        r = st.run_sim(dc, db, ["parts INBOX %d" % u_deep, "body INBOX %d" % u_deep],
                       check=False)
        check(r.json and r.json[0]["structure_cut"] is True,
              "200 deep: cut: %s" % (r.json[0] if r.json else r.describe()))
        check(len(r.json) == 2 and "The deepest text." in r.json[1].get("text", ""),
              "200 deep: its text still shows: %s" % (r.json[1] if len(r.json) > 1 else ""))

        r = st.run_sim_offline(db, ["parts INBOX %d" % u_plain])
        check(r.json[0]["structure_cut"] is False and len(r.json[0]["parts"]) == 1,
              "an ordinary message is not marked cut")
    return check.report()


if __name__ == "__main__":
    sys.exit(main())

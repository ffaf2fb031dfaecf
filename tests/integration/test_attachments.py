"""Attachments are bytes: a part that is not text is decoded from its
transfer encoding only and written as it is, never converted to UTF-8.

Against the test Dovecot, one message with a Windows-1252 text part, a
base64 application/octet-stream part of random bytes (every byte value,
CRs and NULs included; the seed is printed) and a quoted-printable
application/x-thing part:
  * `body F U 2 --out FILE` writes exactly the attachment's bytes;
  * `body F U 2` to a pipe writes exactly those bytes, and in JSON they
    come as one base64 string;
  * on a terminal it refuses, naming --out (no bytes on a terminal);
  * the QP part decodes to its bytes;
  * `--raw --out` writes the stored (encoded) bytes;
  * the text part is still converted to UTF-8 with plain newlines.
"""
import base64
import os
import quopri
import random
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import satchel_test as st  # noqa: E402

check = st.Checks()


def message(blob, qp_bytes):
    b64 = base64.encodebytes(blob).replace(b"\n", b"\r\n")
    # A hard line break in QP is a CRLF of the decoded part (RFC 2045 6.7).
    qp = b"\r\n".join(quopri.encodestring(x) for x in qp_bytes.split(b"\r\n"))
    return (b"From: Ann <ann@example.org>\r\nTo: bob@example.org\r\n"
            b"Subject: attachments\r\nMessage-ID: <att@names.test>\r\n"
            b"Date: Mon, 01 Jan 2024 10:00:00 +0000\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n"
            b"--b1\r\nContent-Type: text/plain; charset=windows-1252\r\n"
            b"Content-Transfer-Encoding: 8bit\r\n\r\ncaf\xe9 \x80\r\nline two\r\n"
            b"--b1\r\nContent-Type: application/octet-stream; name=\"blob.bin\"\r\n"
            b"Content-Disposition: attachment; filename=\"blob.bin\"\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\n" + b64 +
            b"--b1\r\nContent-Type: application/x-thing\r\n"
            b"Content-Transfer-Encoding: quoted-printable\r\n\r\n" + qp + b"\r\n"
            b"--b1--\r\n")


def main():
    seed = int(os.environ.get("SATCHEL_SEED", time.time()))
    print("test_attachments: seed %d (SATCHEL_SEED=%d repeats it)" % (seed, seed))
    rnd = random.Random(seed)
    blob = bytes(range(256)) + b"\r\n\r\r\n\x00\x1b[2J" + bytes(
        rnd.getrandbits(8) for _ in range(200000))
    qp_bytes = b"\x00\x01 binary \xff\xfe = \r\n not text\x80\tend"
    root = tempfile.mkdtemp(prefix="satchel-test-attachments-")
    with st.Dovecot(profile="full") as dc:
        uid = dc.append("alice", "INBOX", message(blob, qp_bytes))
        db = os.path.join(root, "db")
        r = st.run_sim(dc, db, ["sync", "parts INBOX %d" % uid])
        parts = r.json[-1]["parts"] if r.json else []
        check([p["type"] for p in parts] ==
              ["text/plain", "application/octet-stream", "application/x-thing"],
              "three parts: %s" % parts)

        out = os.path.join(root, "blob.bin")
        r = st.run_sim(dc, db, ["body INBOX %d 2 --out %s" % (uid, st.imap_quote(out))])
        got = open(out, "rb").read() if os.path.exists(out) else b""
        check(got == blob, "--out writes the attachment's bytes: %d bytes, want %d"
              % (len(got), len(blob)))
        check(r.json and r.json[-1].get("bytes") == len(blob) and
              r.json[-1].get("file") == out, "--out reports bytes and file: %s"
              % (r.json[-1] if r.json else r.stdout[:200]))

        r = st.run_sim_offline(db, ["body INBOX %d 2" % uid], json=False)
        check(r.stdout_bytes == blob, "to a pipe: exactly the bytes (%d, want %d)"
              % (len(r.stdout_bytes), len(blob)))

        r = st.run_sim_offline(db, ["body INBOX %d 2" % uid])
        b = base64.b64decode(r.json[0]["base64"]) if r.json and "base64" in r.json[0] else b""
        check(b == blob and r.json[0]["bytes"] == len(blob),
              "JSON: one base64 string of the bytes")

        r = st.run_sim(dc, db, ["body INBOX %d 3" % uid], json=False)
        check(r.stdout_bytes == qp_bytes, "QP part decodes to its bytes: %r"
              % r.stdout_bytes[:60])

        raw = os.path.join(root, "raw.b64")
        r = st.run_sim_offline(db, ["body INBOX %d 2 --raw --out %s" % (uid, st.imap_quote(raw))])
        stored = open(raw, "rb").read() if os.path.exists(raw) else b""
        check(base64.b64decode(stored) == blob, "--raw --out: the stored base64")

        r = st.run_sim(dc, db, ["body INBOX %d" % uid])
        text = r.json[0].get("text", "") if r.json else ""
        check(text.startswith("caf\u00e9 \u20ac\nline two"),
              "text part still converted to UTF-8 with plain newlines: %r" % text[:40])

        # On a terminal: refused, with the way out named.
        rc, shown = st.run_on_pty([st.satchel_sim_path(), "--db", db, "--offline", "-c",
                                   "body INBOX %d 2" % uid])
        check(rc != 0 and b"--out FILE" in shown and len(shown) < 400,
              "a binary part is not written to a terminal: rc=%s %r" % (rc, shown[:200]))
        bad = os.path.join(root, "nodir", "x.bin")
        r = st.run_sim_offline(db, ["body INBOX %d 2 --out %s" % (uid, bad)], check=False)
        check(r.returncode != 0 and r.json and "cannot create" in r.json[0]["error"],
              "--out to an impossible path is a clear error")
    return check.report()


if __name__ == "__main__":
    sys.exit(main())

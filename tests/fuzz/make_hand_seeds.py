#!/usr/bin/env python3
"""Write the hand-made seeds (RFC 9051 / RFC 7162 examples, edge cases) into
tests/fuzz/corpus/.  Recorded sessions come from record_dovecot.py and from
`test_faults --write-seeds`; crash reproducers are added by hand as
crash-<what>.  Re-running this overwrites only the hand-* files."""

import re
import struct
import sys
from pathlib import Path

OUT = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent / "corpus"

RFC_SELECT = (
    b"* 172 EXISTS\r\n* OK [UIDVALIDITY 3857529045] UIDs valid\r\n"
    b"* OK [UIDNEXT 4392] Predicted next UID\r\n"
    b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n"
    b"* OK [PERMANENTFLAGS (\\Deleted \\Seen \\*)] Limited\r\n"
    b"* LIST () \"/\" INBOX\r\nA142 OK [READ-WRITE] SELECT completed\r\n")
RFC_FETCH = (
    b"* 12 FETCH (FLAGS (\\Seen) INTERNALDATE \"17-Jul-1996 02:44:25 -0700\" "
    b"RFC822.SIZE 4286 ENVELOPE (\"Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\" "
    b"\"IMAP4rev2 WG mtg summary and minutes\" "
    b"((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) "
    b"((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) "
    b"((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) "
    b"((NIL NIL \"imap\" \"cac.washington.edu\")) "
    b"((NIL NIL \"minutes\" \"CNRI.Reston.VA.US\")(\"John Klensin\" NIL \"KLENSIN\" \"MIT.EDU\")) "
    b"NIL NIL \"<B27397-0100000@cac.washington.edu>\") "
    b"BODY[HEADER.FIELDS (FROM SUBJECT)] {26}\r\nFrom: a@b\r\nSubject: hi\r\n\r\n)\r\n")
RFC_BS = (
    b"((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 1152 23)"
    b"(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\" \"NAME\" \"cc.diff\") "
    b"\"<960723163407.20117h@cac.washington.edu>\" \"Compiler diff\" \"BASE64\" 4554 73) \"MIXED\")")
RFC_QRESYNC = (
    b"* OK [CLOSED]\r\n* 100 EXISTS\r\n* 11 RECENT\r\n* OK [UIDVALIDITY 67890007] UIDVALIDITY\r\n"
    b"* OK [UIDNEXT 600] Predicted next UID\r\n* OK [HIGHESTMODSEQ 90060115205545359] Highest\r\n"
    b"* VANISHED (EARLIER) 41,43:116,118,120:211,214:540\r\n"
    b"* 49 FETCH (UID 117 FLAGS (\\Seen \\Answered) MODSEQ (90060115194045001))\r\n"
    b"* 50 FETCH (UID 119 FLAGS (\\Draft $MDNSent) MODSEQ (90060115194045308))\r\n"
    b"* 51 FETCH (UID 541 FLAGS (\\Seen $Forwarded) MODSEQ (90060115194045001))\r\n"
    b"A02 OK [READ-WRITE] Sorry, UIDVALIDITY mismatch\r\n")
EDGES = (
    b"* OK [CAPABILITY IMAP4rev1 SASL-IR LITERAL+ STARTTLS AUTH=PLAIN] Dovecot ready.\r\n"
    b"+ Ready for additional command text\r\n+\r\n+ \r\n"
    b"* LIST () \"\\\\\" \"a \\\"b\\\" c\"\r\n"
    b"* LIST (\\HasNoChildren) \"/\" {9}\r\nLists/Dev\r\n* LIST () NIL \"flat\"\r\n"
    b"* 1 FETCH (BODY[1] {0}\r\n BINARY[2] ~{3}\r\nabc UID 5)\r\n"
    b"* 2 FETCH (UID 9 BODY[]<0> {5}\r\nHello BODY[HEADER.FIELDS (FROM SUBJECT)]<0> {0}\r\n)\r\n"
    b"* 3 EXISTS\n* OK [UIDNEXT 5] x\nA1 OK done\n"
    b"* ESEARCH (TAG \"A282\") UID MIN 2 COUNT 3 ALL 1:3,5\r\n* ENABLED QRESYNC CONDSTORE\r\n"
    b"* ID (\"name\" \"Dovecot\" \"version\" NIL)\r\n"
    b"* NAMESPACE ((\"\" \"/\")) NIL ((\"#shared/\" \"/\" \"X-PARAM\" (\"FLAG1\" \"FLAG2\")))\r\n"
    b"* BYE Autologout; idle for too long\r\n* OK\r\nA1 NO\r\n"
    b"a1 BAD [PARSE] Error in IMAP command ((: unbalanced [ \"\r\n"
    b"* NO [ALERT] System shutdown in 10 minutes\r\n"
    b"* OK [BADCHARSET (UTF-8 \"ISO-8859-1\")] x\r\n"
    b"A3 OK [COPYUID 38505 304,319:320 3956:3958] Done\r\n"
    b"* 5 FETCH (UID 6 MODSEQ (18446744073709551615) RFC822.SIZE 4294967295)\r\n"
    b"* LIST () \"/\" \"Entw\xc3\xbcrfe\"\r\n")
ERRORS = (
    b"* OK hi\x00there\r\n* LIST ) x\r\n* LIST (a b\r\n"
    b"* 1 FETCH (BODY[] {99999999999999999999}\r\n* 1 FETCH (BODY[] {3}abc)\r\n"
    b"A1 FETCH\r\nA1\r\n*OK\r\n* OK x\ry\r\n* 1 FETCH (UID 5])\r\n(* OK\r\n"
    b"* 1 FETCH (UID 5 BODY[1 {3}\r\n* 2 EXISTS\r\n")
DEEP = b"* 1 FETCH (BODYSTRUCTURE " + b"(" * 60 + b"\"x\"" + b")" * 60 + b")\r\n* 2 EXISTS\r\n"
BIGLIT = b"* 1 FETCH (UID 3 BODY[1] {3000}\r\n" + b"a" * 2990 + b"\r\nline\r\n " + b" FLAGS (\\Seen))\r\n"
MANYFLAGS = b"* 1 FETCH (FLAGS (" + b" ".join(b"kw%d" % i for i in range(400)) + b"))\r\n* 2 EXISTS\r\n"


def w(harness, name, data):
    d = OUT / harness
    d.mkdir(parents=True, exist_ok=True)
    (d / ("hand-" + name)).write_bytes(data)


def imap_parser():
    # [config][chunk seed]: config bits 0-1 limits preset, 2 sink, 3 refuse
    w("fuzz_imap_parser", "rfc-select", b"\x04\x05" + RFC_SELECT)
    w("fuzz_imap_parser", "rfc-fetch", b"\x04\x00" + RFC_FETCH)
    w("fuzz_imap_parser", "rfc-fetch-tiny", b"\x05\x07" + RFC_FETCH)
    w("fuzz_imap_parser", "rfc-fetch-refuse", b"\x0c\x03" + RFC_FETCH + RFC_FETCH)
    w("fuzz_imap_parser", "rfc-qresync", b"\x02\x11" + RFC_QRESYNC)
    w("fuzz_imap_parser", "edges", b"\x04\x09" + EDGES)
    w("fuzz_imap_parser", "edges-small", b"\x06\x21" + EDGES)
    w("fuzz_imap_parser", "edges-tinylit", b"\x07\x02" + EDGES)
    w("fuzz_imap_parser", "errors", b"\x04\x01" + ERRORS)
    w("fuzz_imap_parser", "deep", b"\x02\x00" + DEEP)
    w("fuzz_imap_parser", "bigliteral", b"\x04\x80" + BIGLIT)
    w("fuzz_imap_parser", "manyflags-small", b"\x02\x40" + MANYFLAGS)


def bodystructure():
    # [mode] value [0xFF header block]; mode bit 0 ENVELOPE, bit 1 bytewise
    w("fuzz_bodystructure", "rfc-mixed", b"\x02" + RFC_BS)
    env = RFC_FETCH[RFC_FETCH.index(b"ENVELOPE ") + 9:RFC_FETCH.index(b" BODY[")]
    w("fuzz_bodystructure", "rfc-envelope", b"\x03" + env)
    w("fuzz_bodystructure", "rfc822-nested",
      b"\x00((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"quoted-printable\" 120 4 NIL NIL NIL NIL)"
      b"(\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 900 " + env +
      b" ((\"text\" \"plain\" NIL NIL NIL \"7bit\" 10 1)(\"text\" \"html\" NIL NIL NIL \"base64\" 300 5) \"alternative\") 20 NIL NIL NIL NIL)"
      b" \"mixed\" (\"boundary\" \"xyz\") (\"inline\" NIL) (\"en\" \"de\") \"loc\")")
    w("fuzz_bodystructure", "literal-in-bs",
      b"\x02(\"text\" \"plain\" (\"charset\" {5}\r\nutf-8 \"name\" {7}\r\na\r\nb\"\\c) NIL NIL \"7bit\" 10 1)")
    w("fuzz_bodystructure", "hostile-headers",
      b"\x00(\"text\" \"plain\" NIL NIL NIL \"8bit\" 10 1)\xff"
      b"Date: Mon, 2 Jan 2023 10:00:00 +9959\r\n"
      b"From: =?utf-8?q?J=C3=B6rg?= \"M\xc3\xbcller, J.\" <j@x.de> (comment)\r\n"
      b"Subject: =?utf-8?B?4oKs?=\x1b[2J =?iso-8859-1?q?caf=E9?=\r\n\t folded\xc2\x9b\r\n"
      b"Message-ID: <\x00id@x>\r\n\r\n")
    # The part after 0xFF is also decoded as each part's content.
    w("fuzz_bodystructure", "b64-part",
      b"\x00((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"base64\" 20 1 NIL NIL NIL NIL)"
      b"(\"text\" \"html\" (\"charset\" \"windows-1252\") NIL NIL \"quoted-printable\" 20 1)"
      b"(\"application\" \"pdf\" (\"name\" \"=?utf-8?q?r=C3=A9sum=C3=A9?=.pdf\") NIL NIL \"base64\" 9 NIL "
      b"(\"attachment\" (\"filename*\" \"utf-8''%E2%82%AC%20rate.pdf\")) NIL NIL) \"mixed\")"
      b"\xff4oKsIGNhZsOp\r\nIGV1cm8=\r\n=E2=82=AC caf=E9 =\r\nsoft\r\n")
    w("fuzz_bodystructure", "long-strings",
      b"\x00(\"text\" \"plain\" (\"name\" \"" + b"n" * 5000 + b"\") NIL NIL \"7bit\" 10 1)")
    w("fuzz_bodystructure", "many-parts",
      b"\x00(" + b"(\"application\" \"octet-stream\" (\"name\" \"attachment.bin\") NIL NIL \"base64\" 1000 NIL NIL NIL NIL)" * 60
      + b" \"mixed\")")


def seqset():
    star = struct.pack("<I", 600)
    for i, s in enumerate([b"1:3,7,9:*", b"*", b"4294967295", b"4294967296", b"1,",
                           b",1", b"0", b"1:0", b"3:1", b"01", b"1:*,*:1,5",
                           b"41,43:116,118,120:211,214:540", b"1::2", b"",
                           b",".join(b"%d" % (i * 3) for i in range(1, 500))]):
        w("fuzz_seqset", "set-%02d" % i, star + s)
    w("fuzz_seqset", "star-max", b"\xff\xff\xff\xff1:*")
    w("fuzz_seqset", "star-zero", b"\x00\x00\x00\x001:*")


def mime():
    # [op][param]: 0 decode_header 1 format_from 2 header_get 3 parse_date
    # 4 internaldate 5 to_utf8 6 base64 7 qp
    for i, s in enumerate([
            b"=?UTF-8?B?w6k=?= =?UTF-8?Q?caf=C3=A9?=",
            b"=?iso-8859-1?q?J=F6rg?= =?ISO-8859-15?Q?=A4?= x",
            b"=?utf-8?q?=E2=82?= =?utf-8?q?=AC?=",
            b"=?utf-8*en?B?SGVsbG8=?=glued=?bogus?Q?x?=",
            b"Caf\xe9 \x80 raw latin1", b"Caf\xc3\xa9 raw utf8\t\x01\x7f\xc2\x9b"]):
        w("fuzz_mime", "decode-%d" % i, bytes([0, 40 + i * 7]) + s)
    for i, s in enumerate([
            b"\"M\xc3\xbcller, J\xc3\xb6rg\" <j@x.de>",
            b"=?utf-8?q?J=C3=B6rg?= <j@x>", b"a@b (Name (nested) here)",
            b"Group: a@b, c@d;", b"<@route,@r2:user@host>", b"undisclosed-recipients:;",
            b"\"=?utf-8?q?quoted=20ew?=\" <q@x>", b"   ", b"root"]):
        w("fuzz_mime", "from-%d" % i, bytes([1, 10 + i * 9]) + s)
    hdr = (b"Received: x\r\nSubject: folded\r\n  over\r\n\tlines\r\nFrom: a@b\r\n"
           b"Date: Tue, 1 Jul 2003 10:52:37 +0200\r\nMessage-ID: <x@y>\r\n\r\nSubject: body")
    for p in range(6):
        w("fuzz_mime", "header-%d" % p, bytes([2, p * 7]) + hdr)
    for i, s in enumerate([b"Tue, 1 Jul 2003 10:52:37 +0200", b"1 Jan 70 00:00 GMT",
                           b"Wed, 17 Jul 1996 02:23:25 -0700 (PDT)",
                           b"Mon, 2 Jan 2023 10:00:00 +9959", b"31 Dec 9999 23:59:60 -9959",
                           b"Thu, 29 Feb 2024 12:00 +0100 CET", b"1-Jan-0000 00:00:00 +0000",
                           b"Sun, 30 Feb 2020 00:00:00 +0000"]):
        w("fuzz_mime", "date-%d" % i, bytes([3, i]) + s)
    for i, s in enumerate([b"\"17-Jul-1996 02:44:25 -0700\"", b" 7-Jul-1996 02:44:25 +0000",
                           b"7-Jul-1996 02:44:25 +9959", b"31-Dec-9999 23:59:59 -0000"]):
        w("fuzz_mime", "idate-%d" % i, bytes([4, i]) + s)
    for cs in range(10):
        w("fuzz_mime", "utf8-%d" % cs, bytes([5, cs + 10 * cs]) +
          b"caf\xc3\xa9 \x80\x81\x9f\xa4 \xe2\x82 \xf0\x9f\x98\x80 \xed\xa0\x80 \xc0\xaf")
    w("fuzz_mime", "utf8-named", bytes([5, 211]) + b"latin-9:\xa4\xa6\xbe")
    w("fuzz_mime", "b64", bytes([6, 33]) + b"SGVsbG8s\r\nIHdvcmxk IQ==Zm9v\r\nYmFy=\r\n!!")
    w("fuzz_mime", "qp", bytes([7, 5]) + b"caf=C3=A9 =\r\nsoft   \r\nhard=3D =\r\n=XY=4\r\n\t \r\nend  ")
    w("fuzz_mime", "qp-longws", bytes([7, 77]) + b"a" + b" " * 200 + b"b\r\n= " + b" " * 100 + b"\r\nx")


def store_record():
    def rec(version, strings, tz=(-420, 60)):
        b = bytes([version]) + struct.pack("<III", 0x11, 4321, 0)
        b += struct.pack("<qq", 1700000000, 1699990000) + struct.pack("<hh", *tz)
        b += struct.pack("<Q", 77)
        for s in strings:
            b += struct.pack("<H", len(s)) + s
        return b
    five = [b"$Forwarded", b"Sender <s@x>", b"Subject \xc3\xa9", b"<1@x>",
            b"(\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 10 1)"]
    w("fuzz_store_record", "v1", rec(1, five))
    w("fuzz_store_record", "v2", rec(2, five + [b"preview text"]))
    w("fuzz_store_record", "v2-empty", rec(2, [b""] * 6))
    w("fuzz_store_record", "v2-badtz", rec(2, five + [b""], tz=(5999, -5999)))
    w("fuzz_store_record", "v1-long", rec(1, [b"k" * 127, b"f" * 255, b"s" * 255, b"m" * 255, b"b" * 4095]))


def client_session():
    # [config][chunk seed]: see fuzz_client_session.c
    g = b"* OK [CAPABILITY IMAP4rev1 SASL-IR LITERAL+ ENABLE AUTH=PLAIN STARTTLS] ready\r\n"
    caps = b"IMAP4rev1 LITERAL+ ENABLE CONDSTORE QRESYNC SPECIAL-USE LIST-EXTENDED"
    login = b"S1 OK [CAPABILITY " + caps + b"] Logged in\r\n"
    sel = (b"* 2 EXISTS\r\n* OK [UIDVALIDITY 9] x\r\n* OK [UIDNEXT 3] x\r\n"
           b"* OK [HIGHESTMODSEQ 5] x\r\nS4 OK [READ-WRITE] done\r\n")
    body = (b"* 2 FETCH (UID 2 FLAGS () RFC822.SIZE 5 INTERNALDATE \"01-Jan-2023 00:00:00 +0000\" "
            b"MODSEQ (5) BODYSTRUCTURE (\"text\" \"plain\" NIL NIL NIL \"7bit\" 5 1) "
            b"BODY[HEADER.FIELDS (DATE FROM SUBJECT MESSAGE-ID)] {14}\r\nSubject: two\r\n)\r\n"
            b"* 1 FETCH (UID 1 FLAGS (\\Seen) RFC822.SIZE 5 INTERNALDATE \"01-Jan-2023 00:00:00 +0000\" "
            b"MODSEQ (4) BODYSTRUCTURE (\"text\" \"plain\" NIL NIL NIL \"7bit\" 5 1) "
            b"BODY[HEADER.FIELDS (DATE FROM SUBJECT MESSAGE-ID)] {14}\r\nSubject: one\r\n)\r\n"
            b"S5 OK done\r\n")
    fresh = (g + login + b"* ENABLED QRESYNC\r\nS2 OK\r\n* LIST (\\HasNoChildren) \"/\" INBOX\r\n"
             b"S3 OK\r\n" + sel + body + b"* BYE\r\nS6 OK bye\r\n")
    resync = (g + login + b"* ENABLED QRESYNC\r\nS2 OK\r\n* LIST () \"/\" INBOX\r\nS3 OK\r\n"
              b"* 2 EXISTS\r\n* OK [UIDVALIDITY 9] x\r\n* OK [UIDNEXT 4] x\r\n* OK [HIGHESTMODSEQ 9] x\r\n"
              b"* VANISHED (EARLIER) 1\r\n* 1 FETCH (UID 2 FLAGS (\\Seen \\Flagged) MODSEQ (8))\r\n"
              b"S4 OK done\r\n"
              b"* 2 FETCH (UID 3 FLAGS () RFC822.SIZE 5 INTERNALDATE \" 2-Jan-2023 00:00:00 +0100\" "
              b"MODSEQ (9) BODYSTRUCTURE (\"text\" \"plain\" NIL NIL NIL \"7bit\" 5 1) "
              b"BODY[HEADER.FIELDS (DATE FROM SUBJECT MESSAGE-ID)] {16}\r\nSubject: three\r\n)\r\n"
              b"S5 OK done\r\n* BYE\r\nS6 OK bye\r\n")
    w("fuzz_client_session", "qresync",
      b"\x00\x00" + fresh + b"\r\n==RECONNECT==\r\n" + resync)
    # The same client reconnects: its tags go on from where they were.
    cut = fresh.index(b"S4 OK")
    again = re.sub(rb"S(\d+) ", lambda m: b"S%d " % (int(m.group(1)) + 4), fresh)
    w("fuzz_client_session", "resume",
      b"\x00\x11" + fresh[:cut] + b"\r\n==RESUME==\r\n" + again)
    w("fuzz_client_session", "preauth", b"\x01\x00* PREAUTH [CAPABILITY IMAP4rev1] hi\r\n"
      b"* LIST () \"/\" INBOX\r\nS1 OK\r\n" + sel.replace(b"S4", b"S2") +
      body.replace(b"S5", b"S3") + b"* BYE\r\nS4 OK\r\n")
    w("fuzz_client_session", "bye-greeting", b"\x01\x00* BYE go away\r\n")
    w("fuzz_client_session", "starttls",
      b"\x02\x00" + g + b"S1 OK Begin TLS negotiation now\r\n* CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN\r\n"
      b"S2 OK\r\nS3 OK Logged in\r\n* CAPABILITY " + caps + b"\r\nS4 OK\r\n"
      b"* ENABLED QRESYNC\r\nS5 OK\r\n* LIST () \"/\" INBOX\r\nS6 OK\r\n" +
      sel.replace(b"S4", b"S7") + body.replace(b"S5", b"S8") + b"S9 OK\r\n")
    w("fuzz_client_session", "starttls-refused", b"\x02\x00" + g + b"S1 NO no tls today\r\n")
    w("fuzz_client_session", "no-starttls",
      b"\x02\x00* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] ready\r\n")
    w("fuzz_client_session", "plain-but-tls-wanted", b"\x03\x00" + g + login)
    w("fuzz_client_session", "continuation",
      b"\x11\x00" + g + b"+ \r\n" + login + b"S2 OK\r\n* LIST () \"/\" INBOX\r\nS3 OK\r\n" +
      sel + body + b"S6 OK\r\n")
    w("fuzz_client_session", "login-refused", b"\x01\x00" + g + b"S1 NO [AUTHENTICATIONFAILED] bad\r\n")
    w("fuzz_client_session", "timeout", b"\x41\x00" + g + login)
    w("fuzz_client_session", "window2", b"\x08\x07" + fresh.replace(
        b"S5 OK done\r\n", b"S5 OK done\r\n* 1 FETCH (UID 1 FLAGS ())\r\nS6 OK\r\n")
      .replace(b"S6 OK bye", b"S7 OK bye"))
    w("fuzz_client_session", "inbox-only", b"\x04\x00" + fresh)
    # A folder name with CR LF and 8-bit bytes: the client must send it as a
    # literal (the harness once mis-split such command lines).
    w("fuzz_client_session", "literal-name",
      b"\x00\x00" + g + login + b"* ENABLED QRESYNC\r\nS2 OK\r\n"
      b"* LIST () \"/\" {9}\r\nEntw\xc3\xbcr\r\n\r\n* LIST () \"/\" {4}\r\na\"\\b\r\nS3 OK\r\n"
      b"* 0 EXISTS\r\n* OK [UIDVALIDITY 1] x\r\nS4 OK\r\n* 0 EXISTS\r\n* OK [UIDVALIDITY 2] x\r\nS5 OK\r\n")
    w("fuzz_client_session", "uidvalidity-change",
      b"\x00\x00" + fresh + b"\r\n==RECONNECT==\r\n" + fresh.replace(b"UIDVALIDITY 9", b"UIDVALIDITY 10"))


imap_parser()
bodystructure()
seqset()
mime()
store_record()
client_session()
print("hand seeds written to", OUT)

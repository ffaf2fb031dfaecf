"""Bodies on demand into the LMDB cache, against a real Dovecot.

- `body` fetches only the text part: byte-identical (--raw) to BODY.PEEK[n]
  from an independent client, wire bytes close to the part size, never
  sets \\Seen; served from the cache afterwards, and offline.
- attachments by section; decoded display (base64, quoted-printable,
  Latin-1); `parts` lists them with their cached state.
- a budget of 1,000,000 bytes with hundreds of bodies opened: never
  exceeded, the most recent stay, headers all still there; LRU order exact;
  pinned messages survive; a part larger than the budget is refused.
- a connection cut in the middle of a 3 MB literal: the next `body`
  resumes from the stored chunks and the result is byte-identical.
- prefetch (off by default) stays within the budget; previews in `list`.
- fetching, decoding and resume in the three capability profiles; the
  cache (budget, LRU, pins, prefetch) once, in the full profile.
"""
import base64
import os
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import satchel_test as st  # noqa: E402



check = st.Checks()


def server_part(dc, folder, uid, section):
    """BODY.PEEK[section] through imaplib: the independent reference."""
    c = dc.client("alice")
    try:
        c.select(st.imap_quote(folder), readonly=True)
        typ, data = c.uid("FETCH", str(uid), "(BODY.PEEK[%s])" % section)
        for item in data:
            if isinstance(item, tuple):
                return item[1]
        return b""
    finally:
        c.logout()


def mime_message(i, attachment_bytes=0, charset_body=False):
    boundary = "b%d" % i
    text = ("Hello %d, caf\xe9 cr\xe8me.\r\n" % i).encode("latin-1")
    parts = [
        "--%s\r\nContent-Type: text/plain; charset=iso-8859-1\r\n"
        "Content-Transfer-Encoding: quoted-printable\r\n\r\n" % boundary,
        "Hello %d, caf=E9 cr=E8me.\r\nSoft=\r\n break.\r\n" % i,
    ]
    if attachment_bytes:
        payload = bytes((j * 7 + i) & 0xFF for j in range(attachment_bytes))
        b64 = base64.encodebytes(payload).decode().replace("\n", "\r\n")
        parts += ["--%s\r\nContent-Type: application/octet-stream; name=\"data%d.bin\"\r\n"
                  "Content-Disposition: attachment; filename=\"data%d.bin\"\r\n"
                  "Content-Transfer-Encoding: base64\r\n\r\n" % (boundary, i, i), b64]
    parts.append("--%s--\r\n" % boundary)
    head = ("From: Tester <t%d@example.org>\r\nSubject: mime %d\r\n"
            "Message-ID: <mime-%d@example.org>\r\nMIME-Version: 1.0\r\n"
            "Content-Type: multipart/mixed; boundary=\"%s\"\r\n\r\n" % (i, i, i, boundary))
    del text
    return (head + "".join(parts)).encode()


def scenario(profile, work):
    label = "[%s]" % profile
    db = os.path.join(work, "db-" + profile)
    with st.Dovecot(profile=profile) as dc:
        dc.load_mailset()
        dc.create_folder("alice", "Mime")
        dc.add_messages("alice", "Mime", [mime_message(i, 5000 if i % 2 else 0)
                                          for i in range(1, 7)])
        big = mime_message(99, 3_000_000)
        dc.add_messages("alice", "Mime", [big])
        st.run_sim(dc, db, ["sync"])
        inbox = sorted(dc.server_state("alice", "INBOX"))

        # On demand: only the text part, byte-identical, no \Seen.
        uid = inbox[-1]
        r = st.run_sim(dc, db, ["parts INBOX %d" % uid])
        parts = r.json[0]["parts"]
        text = [p for p in parts if p["type"] == "text/plain"][0]
        check(not text["cached"], "%s not cached before" % label)
        before = dc.server_state("alice", "INBOX")[uid]["flags"]
        mark = dc.log_mark()
        r = st.run_sim(dc, db, ["body INBOX %d" % uid, "stats"])
        out = r.json[0]
        check(out["from_cache"] is False and out["type"] == "text/plain",
              "%s first body fetched: %s" % (label, str(out)[:200]))
        wire = r.json[1]["bytes_in"]
        check(wire < text["size"] + 4000,
              "%s wire bytes %d close to part size %d" % (label, wire, text["size"]))
        dc.wait_sessions_logged()
        srv_out = sum(s["out"] for s in dc.session_bytes("alice", since=mark))
        check(srv_out < text["size"] + 3000, "%s server sent %d for a %d-byte part" % (
            label, srv_out, text["size"]))
        check(dc.server_state("alice", "INBOX")[uid]["flags"] == before,
              "%s body fetch did not set \\Seen" % label)
        rawb = st.run_sim(dc, db, ["body INBOX %d --raw" % uid], json=False).stdout_bytes
        ref = server_part(dc, "INBOX", uid, text["part"])
        check(rawb == ref, "%s raw body equals BODY.PEEK[%s] (%d vs %d bytes)" % (
            label, text["part"], len(rawb), len(ref)))

        # Offline afterwards: served from the cache; an uncached one is refused.
        r = st.run_sim_offline(db, ["body INBOX %d" % uid, "cache"])
        check(r.json[0]["from_cache"] is True and r.json[0]["text"] == out["text"],
              "%s offline body from cache" % label)
        check(r.json[1]["hits"] >= 1 and r.json[1]["misses"] >= 1,
              "%s hit/miss counted: %s" % (label, r.json[1]))
        r = st.run_sim_offline(db, ["body INBOX %d" % inbox[0]], check=False)
        check(r.returncode != 0 and "not available offline" in r.json[0]["error"],
              "%s uncached offline: %s" % (label, r.stdout[:200]))

        # Attachments and decoding.
        mime = sorted(dc.server_state("alice", "Mime"))
        r = st.run_sim(dc, db, ["parts Mime %d" % mime[0], "body Mime %d" % mime[0],
                                "body Mime %d 2 --raw" % mime[0]])
        p = r.json[0]["parts"]
        check(len(p) == 2 and p[1]["attachment"] and p[1]["name"] == "data1.bin",
              "%s parts: %s" % (label, p))
        check(r.json[1]["text"] == "Hello 1, café crème.\nSoft break.",
              "%s quoted-printable Latin-1 decoded: %r" % (label, r.json[1].get("text")))
        ref = server_part(dc, "Mime", mime[0], "2")
        check(r.json[2]["raw"].encode() == ref, "%s attachment raw identical" % label)
        r = st.run_sim(dc, db, ["body Mime %d 2" % mime[0]])
        payload = bytes((j * 7 + 1) & 0xFF for j in range(5000))
        # Not text: decoded from base64 to its bytes, never to UTF-8.
        got = base64.b64decode(r.json[0].get("base64", ""))
        check(got == payload and "text" not in r.json[0],
              "%s base64 attachment decoded to its bytes (%d of %d)" % (
                  label, len(got), len(payload)))

        # Resume after a cut in the middle of a 3 MB literal.
        bigsec = "2"
        relay = st.CutRelay(dc.imaps_port, 1_200_000, times=None)
        pwfile = os.path.join(dc.tmp, "secrets", "alice.pw")
        r = st.run_sim(dc, db, ["body Mime %d %s" % (mime[-1], bigsec)], check=False,
                       port=relay.port, extra=["--retries", "0"])
        relay.close()
        check(r.returncode != 0, "%s cut download reports an error" % label)
        info = st.run_sim_offline(db, ["cache"]).json[0]
        check(info["bytes"] > 500_000,
              "%s cut download kept committed chunks (%d bytes)" % (label, info["bytes"]))
        mark = dc.log_mark()
        r = st.run_sim(dc, db, ["body Mime %d %s --raw" % (mime[-1], bigsec)], json=False)
        dc.wait_sessions_logged()
        resumed_out = sum(s["out"] for s in dc.session_bytes("alice", since=mark))
        ref = server_part(dc, "Mime", mime[-1], bigsec)
        rawb = r.stdout_bytes
        check(rawb == ref, "%s resumed body byte-identical (%d vs %d)" % (
            label, len(rawb), len(ref)))
        check(resumed_out < len(ref) - 400_000,
              "%s resume fetched only the rest: %d of %d" % (label, resumed_out, len(ref)))
        # With reconnection on (the default), every connection cut at 1.2 MB:
        # the download resumes on its own, chunk by chunk, to the end.
        db_r = os.path.join(work, "db-reconnect-" + profile)
        st.run_sim(dc, db_r, ["sync Mime"])
        relay = st.CutRelay(dc.imaps_port, 1_200_000, times=None)
        r = st.run_sim(dc, db_r, ["body Mime %d %s --raw" % (mime[-1], bigsec)], json=False,
                       port=relay.port, check=False)
        cuts = relay.cuts
        relay.close()
        check(r.returncode == 0 and r.stdout_bytes == ref and cuts >= 2,
              "%s download across %d cut connections completes byte-identical" % (label, cuts))
        del pwfile

        if profile != "full":
            return  # the cache does not depend on server capabilities
        # Budget: 1,000,000 bytes, hundreds of bodies opened.  A Python model
        # of LRU says exactly which bodies must be cached after each step.
        dc.create_folder("alice", "Bulk")
        dc.add_messages("alice", "Bulk", [
            ("From: Bulk <bulk@example.org>\r\nSubject: bulk %d\r\n"
             "Message-ID: <bulk-%d@example.org>\r\n\r\n" % (i, i)
             + ("line %d of a longer body\r\n" % i) * 300).encode()
            for i in range(200)])
        db2 = os.path.join(work, "db-budget-" + profile)
        st.run_sim(dc, db2, ["sync"])
        bulk = sorted(dc.server_state("alice", "Bulk"))
        budget = 1_000_000
        sizes = {}
        for folder, uids in (("INBOX", inbox), ("Bulk", bulk)):
            r = st.run_sim_offline(db2, ["parts %s %d" % (folder, u) for u in uids])
            for u, res in zip(uids, r.json):
                ps = res["parts"]
                t = [p for p in ps if p["type"] == "text/plain" and not p["attachment"]] or \
                    [p for p in ps if p["type"] == "text/html" and not p["attachment"]] or \
                    [p for p in ps if p["type"].startswith("text/")]
                sizes[(folder, u)] = (t[0]["part"], t[0]["size"]) if t else None
        model = []  # least recently used first
        pinned = set()

        def use(key):
            if sizes.get(key) is None:
                return
            if key in model:
                model.remove(key)
                model.append(key)
                return
            need = sizes[key][1]
            total = sum(sizes[k][1] for k in model)
            i = 0
            while total + need > budget and i < len(model):
                if model[i] in pinned:
                    i += 1
                    continue
                total -= sizes[model[i]][1]
                model.pop(i)
            model.append(key)

        def cached_now():
            keys = [k for k in sizes if sizes[k] is not None]
            r = st.run_sim_offline(db2, ["parts %s %d" % k for k in keys])
            out = set()
            for k, res in zip(keys, r.json):
                sec = sizes[k][0]
                if any(p["cached"] and p["part"] == sec for p in res["parts"]):
                    out.add(k)
            return out

        def open_all(keys, extra_cmds=()):
            cmds = list(extra_cmds) + ["body %s %d" % k for k in keys if sizes.get(k)] + ["cache"]
            r = st.run_sim(dc, db2, cmds, extra=["--cache-max", str(budget)], timeout=600)
            for k in keys:
                use(k)
            return r

        seq = [("INBOX", u) for u in inbox] + [("Bulk", u) for u in bulk]
        r = open_all(seq)
        stats = r.json[-1]
        check(stats["bytes"] <= budget and stats["evictions"] > 0 and
              all(x.get("text") is not None for x in r.json[:-1]),
              "%s %d bodies opened within the budget: %s" % (label, len(seq), stats))
        have = cached_now()
        check(have == set(model), "%s cached set equals the LRU model (%d vs %d; extra %s "
              "missing %s)" % (label, len(have), len(model), sorted(have - set(model))[:3],
                               sorted(set(model) - have)[:3]))
        check(("Bulk", bulk[-1]) in have and ("INBOX", inbox[0]) not in have,
              "%s newest cached, oldest evicted" % label)
        r = st.run_sim_offline(db2, ["list INBOX 0 1000", "list Bulk 0 1000"])
        check(r.json[0]["total"] == len(inbox) and r.json[1]["total"] == len(bulk),
              "%s headers all kept" % label)
        # Touch an old cached body, then open more: the model decides again.
        oldest_cached = model[0]
        r = open_all([oldest_cached] + [("INBOX", u) for u in inbox[:40]])
        have = cached_now()
        check(oldest_cached in have and have == set(model),
              "%s LRU order exact after a touch" % label)
        # Pinning: a pinned message is never evicted.
        victim = model[0]
        pinned.add(victim)
        r = open_all([("INBOX", u) for u in inbox[40:200]],
                     extra_cmds=["cache pin %s %d" % victim])
        have = cached_now()
        check(victim in have and r.json[-1]["pinned"] == 1 and have == set(model),
              "%s pinned body kept, rest per model" % label)
        check(r.json[-1]["bytes"] <= budget, "%s budget with pins" % label)
        # Larger than the whole budget: a clear error, no eviction storm.
        before = st.run_sim_offline(db2, ["cache"]).json[0]
        r = st.run_sim(dc, db2, ["body Mime %d 2" % mime[-1]], extra=["--cache-max", "1000000"],
                       check=False)
        after = st.run_sim_offline(db2, ["cache"]).json[0]
        check(r.returncode != 0 and "budget" in r.json[0]["error"] and
              after["evictions"] == before["evictions"],
              "%s oversize part refused: %s" % (label, r.stdout[:200]))
        r = st.run_sim(dc, db2, ["cache evict INBOX", "cache"])
        check(r.json[1]["bytes"] < before["bytes"], "%s cache evict INBOX" % label)

        # Prefetch: off by default; with it, within the budget.
        db3 = os.path.join(work, "db-prefetch-" + profile)
        r = st.run_sim(dc, db3, ["sync", "cache"])
        check(r.json[1]["entries"] == 0, "%s no prefetch by default" % label)
        r = st.run_sim(dc, db3, ["sync", "cache"], extra=[
            "--prefetch", "20", "--prefetch-folders", "INBOX,Mime",
            "--prefetch-max-size", "20000", "--cache-max", "50000"])
        c = r.json[1]
        check(c["entries"] > 0 and c["bytes"] <= 50000 and c["evictions"] == 0,
              "%s prefetch within budget: %s" % (label, c))
        r = st.run_sim_offline(db3, ["list INBOX 0 5"])
        check(all(m.get("preview") for m in r.json[0]["messages"]),
              "%s previews stored with headers" % label)


def size_mismatch(work):
    """BODYSTRUCTURE's size and the bytes the server sends disagree (GNU
    imap4d gives some parts' line counts there): the part is cached as it
    came, and `body` says so in text and JSON, from the server and from the
    cache."""
    import re
    from fake_imap import FakeImap, make_messages  # noqa: E402
    text = b"".join(b"line %05d of a part whose size was given in lines\r\n" % i
                    for i in range(2000))
    msgs = make_messages(1)
    msgs[0]["bodystructure"] = (b'("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" '
                                b'%d %d NIL NIL NIL NIL)' % (2000, 2000))

    class Imap4d(FakeImap):
        def do_UID_FETCH(self, conn, tag, args):
            m = re.search(r"BODY\.PEEK\[1\]<(\d+)\.(\d+)>", args)
            if not m:
                return self._fetch(conn, tag, args, True)
            o, n = int(m.group(1)), int(m.group(2))
            piece = text[o:o + n]
            conn.send(b"* 1 FETCH (UID 1 BODY[1]<%d> {%d}\r\n" % (o, len(piece))
                      + piece + b")\r\n")
            conn.tagged(tag, "OK", "UID FETCH completed")

    db = os.path.join(work, "mismatch")
    with Imap4d(mail={"INBOX": msgs}) as srv:
        r = srv.run_sim(db, ["sync", "body INBOX 1 1 --raw"], json=True)
        body = r.json[1] if r.json and len(r.json) == 2 else {}
        check(body.get("raw", "").encode() == text,
              "mismatch: the whole part as the server sent it (%d bytes of %d)"
              % (len(body.get("raw", "")), len(text)))
        check(body.get("size_announced") == 2000 and body.get("size_received") == len(text),
              "mismatch: JSON names both sizes: %r" % {k: body.get(k) for k in
                                                       ("size_announced", "size_received")})
    r = st.run_sim_offline(db, ["body INBOX 1 1"], json=False)
    check(r.returncode == 0 and
          "BODYSTRUCTURE gave this part 2000 bytes, the server sent %d" % len(text)
          in r.stdout,
          "mismatch: the text output says so from the cache too: %r" % r.stdout[:200])


def main():
    with tempfile.TemporaryDirectory(prefix="satchel-test-bodies-") as work:
        size_mismatch(work)
        for profile in ("full", "condstore", "none"):
            scenario(profile, work)
    return check.report()


if __name__ == "__main__":
    sys.exit(main())

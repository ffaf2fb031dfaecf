#!/usr/bin/env python3
"""Recreate tests/data/mailset.tar.xz from the shared SpamAssassin corpus.

    python3 tests/data/make_mailset.py [--corpus PATH] [--out PATH] [--check]

The selection is deterministic (sorted member names, fixed strides, no
randomness), and the archive is written with fixed metadata (mtime 0, uid 0,
mode 0644, ustar format), so the same corpus gives a byte-identical file.
--check rebuilds in memory and compares with the existing file.

Layout of the archive:
    mailset/manifest.json        {"version": 1, "messages": [entry, ...]}
    mailset/<folder>/NNN.eml     one RFC 5322 message (LF line endings,
                                 mbox "From " line removed)
entry = {"folder", "file", "source", "flags", "features"}; entries are in
delivery order (per folder: by Date header), so UIDs follow list order.

Folders: INBOX ~200 (ham), Archive 40 (ham), Junk 30 (spam), Lists/Dev 20
(spamassassin-devel list traffic), Sent 10 (ham without list headers).
Suggested flags: INBOX/Lists/Dev every 3rd \\Seen, every 10th \\Flagged,
every 7th \\Answered (+\\Seen); Archive all \\Seen, every 10th \\Flagged;
Junk every 5th \\Seen; Sent all \\Seen.
"""

import argparse
import email.utils
import hashlib
import io
import json
import os
import re
import sys
import tarfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
DEFAULT_CORPUS = os.path.join(os.path.dirname(REPO), "shared", "corpus",
                              "spamassassin.tar.xz")
DEFAULT_OUT = os.path.join(HERE, "mailset.tar.xz")

MAX_SIZE = 20000
BORING_CHARSETS = {"us-ascii", "iso-8859-1"}

COUNTS = {"INBOX": 200, "Archive": 40, "Junk": 30, "Lists/Dev": 20, "Sent": 10}


def read_corpus(path):
    items = []
    with tarfile.open(path, "r|xz") as tf:
        for m in tf:
            if m.isfile() and m.name.endswith(".eml"):
                items.append((m.name, tf.extractfile(m).read()))
    items.sort(key=lambda x: x[0])
    return items


def strip_from(d):
    if d.startswith(b"From "):
        return d[d.find(b"\n") + 1:]
    return d


def headers_of(d):
    i = d.find(b"\n\n")
    return d if i < 0 else d[:i + 1]


def features(d):
    h = headers_of(d)
    f = []
    if re.search(rb"(?im)^subject:[^\n]*(\n[ \t][^\n]*)*=\?[^?]+\?[bBqQ]\?", h):
        f.append("rfc2047-subject")
    if re.search(rb"(?im)^content-type:\s*multipart/", h):
        f.append("multipart")
        if re.search(rb"(?im)^content-disposition:\s*attachment", d) or \
           re.search(rb'(?im)^content-type:\s*(application|image|audio|video)/', d):
            f.append("attachment")
    cs = {c.lower().decode("ascii", "replace")
          for c in re.findall(rb'(?i)charset\s*=\s*"?([a-z][a-z0-9_.:-]+)', d)}
    exotic = sorted(c for c in cs if c not in BORING_CHARSETS)
    if exotic:
        f.append("charset:" + ",".join(exotic))
    if re.search(rb"[\x80-\xff]", h):
        f.append("8bit-header")
    return f


def list_id(d):
    m = re.search(rb"(?im)^list-id:[^\n]*<([^>]+)>", headers_of(d))
    return m.group(1).decode("ascii", "replace") if m else None


def date_key(d):
    m = re.search(rb"(?im)^date:[ \t]*([^\n]*(?:\n[ \t][^\n]*)*)", headers_of(d))
    if m:
        try:
            t = email.utils.parsedate_to_datetime(
                re.sub(r"\s+", " ", m.group(1).decode("latin-1")).strip())
            return t.timestamp()
        except Exception:
            pass
    return 0.0


def stride(cands, n):
    """n evenly spaced items from cands (deterministic)."""
    if n >= len(cands):
        return list(cands)
    return [cands[(i * len(cands)) // n] for i in range(n)]


def flags_for(folder, i):
    fl = []
    if folder in ("INBOX", "Lists/Dev"):
        if i % 7 == 3:
            fl += ["\\Answered", "\\Seen"]
        elif i % 3 == 0:
            fl.append("\\Seen")
        if i % 10 == 0:
            fl.append("\\Flagged")
    elif folder == "Archive":
        fl.append("\\Seen")
        if i % 10 == 0:
            fl.append("\\Flagged")
    elif folder == "Junk":
        if i % 5 == 0:
            fl.append("\\Seen")
    elif folder == "Sent":
        fl.append("\\Seen")
    return sorted(set(fl))


def select(items):
    pool = {}
    for name, raw in items:
        folder = name.split("/")[-2]
        d = strip_from(raw)
        if len(d) >= MAX_SIZE:
            continue
        pool.setdefault(folder, []).append((name, d, features(d), list_id(d)))
    used = set()

    def take(cands, n):
        out = [c for c in stride([c for c in cands if c[0] not in used], n)]
        for c in out:
            used.add(c[0])
        return out

    def has(c, prefix):
        return any(x.startswith(prefix) for x in c[2])

    ham = pool["easy-ham-1"] + pool["easy-ham-2"] + pool["hard-ham-1"]
    sel = {}
    # Lists/Dev: spamassassin-devel list traffic
    sel["Lists/Dev"] = take([c for c in pool["easy-ham-1"] + pool["easy-ham-2"]
                             if c[3] and "spamassassin-devel" in c[3]],
                            COUNTS["Lists/Dev"])
    # INBOX: every interesting ham first, then even strides per corpus folder
    inbox = []
    inbox += take([c for c in ham if has(c, "rfc2047-subject")], 10)
    inbox += take([c for c in ham if has(c, "attachment")], 14)
    inbox += take([c for c in ham if has(c, "charset:")], 22)
    inbox += take([c for c in ham if has(c, "8bit-header")], 4)
    rest = COUNTS["INBOX"] - len(inbox)
    n_hard, n_e2 = 30, 60
    inbox += take(pool["hard-ham-1"], n_hard)
    inbox += take(pool["easy-ham-2"], n_e2)
    inbox += take(pool["easy-ham-1"], rest - n_hard - n_e2)
    sel["INBOX"] = inbox
    # Archive: older-style ham from easy-ham-2
    sel["Archive"] = take(pool["easy-ham-2"], COUNTS["Archive"])
    # Junk: spam, encoded subjects / exotic charsets / attachments first
    spam = pool["spam-1"]
    junk = []
    junk += take([c for c in spam if has(c, "rfc2047-subject")], 10)
    junk += take([c for c in spam if has(c, "charset:") and
                  not re.fullmatch(r"charset:(windows-1252|utf-8|iso-8859-15)",
                                   [x for x in c[2] if x.startswith("charset:")][0])], 8)
    junk += take([c for c in spam if has(c, "attachment")], 3)
    junk += take(spam, COUNTS["Junk"] - len(junk))
    sel["Junk"] = junk
    # Sent: personal (non-list) ham
    sel["Sent"] = take([c for c in ham if c[3] is None and
                        not re.search(rb"(?im)^(list-|precedence:\s*(bulk|list))",
                                      headers_of(c[1]))], COUNTS["Sent"])
    for folder, lst in sel.items():
        if len(lst) != COUNTS[folder]:
            raise SystemExit("selection for %s has %d messages, want %d"
                             % (folder, len(lst), COUNTS[folder]))
        # delivery order: by Date header, then corpus name
        lst.sort(key=lambda c: (date_key(c[1]), c[0]))
    return sel


FOLDER_ORDER = ("INBOX", "Archive", "Junk", "Lists/Dev", "Sent")


def build(corpus):
    sel = select(read_corpus(corpus))
    manifest = {"version": 1,
                "description": "Satchel test mail set, see make_mailset.py",
                "messages": []}
    files = []
    for folder in FOLDER_ORDER:
        for i, (name, data, feats, _lid) in enumerate(sel[folder]):
            fname = "%s/%03d.eml" % (folder, i + 1)
            manifest["messages"].append({
                "folder": folder, "file": fname,
                "source": "/".join(name.split("/")[-2:]),
                "flags": flags_for(folder, i), "features": feats,
                "size": len(data),
                "sha1": hashlib.sha1(data).hexdigest()})
            files.append(("mailset/" + fname, data))
    mbytes = (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:xz", format=tarfile.USTAR_FORMAT,
                      preset=9) as tf:
        for path, data in [("mailset/manifest.json", mbytes)] + files:
            ti = tarfile.TarInfo(path)
            ti.size = len(data)
            ti.mtime = 0
            ti.mode = 0o644
            ti.uid = ti.gid = 0
            ti.uname = ti.gname = ""
            tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue(), manifest


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", default=os.environ.get("SATCHEL_CORPUS",
                                                       DEFAULT_CORPUS))
    ap.add_argument("--out", default=DEFAULT_OUT)
    ap.add_argument("--check", action="store_true",
                    help="verify the existing file is up to date")
    a = ap.parse_args()
    if not os.path.isfile(a.corpus):
        print("corpus not found: %s" % a.corpus, file=sys.stderr)
        return 2
    data, manifest = build(a.corpus)
    counts = {}
    feats = {}
    for e in manifest["messages"]:
        counts[e["folder"]] = counts.get(e["folder"], 0) + 1
        for f in e["features"]:
            k = f.split(":")[0]
            feats[k] = feats.get(k, 0) + 1
    summary = "%d messages %s, features %s, %d bytes, sha256 %s" % (
        len(manifest["messages"]), counts, feats, len(data),
        hashlib.sha256(data).hexdigest()[:16])
    if a.check:
        try:
            with open(a.out, "rb") as f:
                old = f.read()
        except OSError:
            old = b""
        if old != data:
            print("OUT OF DATE: %s (rebuild: %s)" % (a.out, summary))
            return 1
        print("up to date: " + summary)
        return 0
    with open(a.out + ".tmp", "wb") as f:
        f.write(data)
    os.replace(a.out + ".tmp", a.out)
    print("wrote %s: %s" % (a.out, summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())

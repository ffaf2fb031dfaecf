"""A damaged store is refused or repaired with a message, never trusted.

A store synced from a real Dovecot, with queued offline changes, is copied
and damaged in every way the storage of a handheld damages it:

- truncated at every page boundary, and at random sizes;
- a single byte of either meta page flipped (both pages, at every offset of
  the meta record and at random ones in the rest of the page);
- a single byte of a random data page flipped.

Each damaged copy is opened offline and read (status, folders, queue, a
listing of every folder, store check).  No run may end by a signal or hang;
none may open as an empty store without saying so; none may lose a queued
change unless the store reports that it fell back to the previous commit.

A store refused for a damaged page is salvaged (--salvage, page by page,
never mapped): that must not die or hang, and the new store must open and
check clean; how often every queued change came across is printed.

Then each way of pointing at an unusable store (--db '', a file, read-only
media, no permission) must fail with its own message and exit status.

Hundreds of cases by default; thousands with SATCHEL_LONG=1.  The seed is
printed (SATCHEL_SEED=N repeats a run).
"""
import os
import random
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import satchel_test as st  # noqa: E402

check = st.Checks()
LONG = os.environ.get("SATCHEL_LONG") == "1"
PAGE = 4096


def read_store(db):
    """Open db offline and read everything a user would; returns
    (returncode, json lines, stderr)."""
    args = [st.satchel_sim_path(), "--db", db, "--offline", "--json", "-c",
            "folders; queue; list INBOX 0 100000; list Archive 0 100000; store check"]
    try:
        p = subprocess.run(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=30)
    except subprocess.TimeoutExpired:
        return None, [], "timed out"
    lines = []
    for line in p.stdout.decode("utf-8", "replace").splitlines():
        try:
            lines.append(st._json.loads(line))
        except ValueError:
            lines.append({"garbage": line})
    return p.returncode, lines, p.stderr.decode("utf-8", "replace")


def queue_of(lines):
    for j in lines:
        if "entries" in j and "pending" in j:
            return sorted((e["id"], e["op"], e.get("uid"), e.get("flags", ""),
                           e.get("dest", "")) for e in j["entries"])
    return None


def folders_of(lines):
    for j in lines:
        if "folders" in j and isinstance(j["folders"], list):
            return j["folders"]
    return None


def listing_of(lines):
    return [j for j in lines if "messages" in j]


def judge(label, pristine_queue, rc, lines, err):
    if rc is None:
        return check(False, "%s: hung (no answer in 30 s)" % label)
    if rc < 0:
        return check(False, "%s: died of signal %d\n%s" % (label, -rc, err[-2000:]))
    if "Sanitizer" in err or "runtime error:" in err:
        return check(False, "%s: sanitizer report\n%s" % (label, err[-2000:]))
    said = (err.strip() != "" or any("error" in j or "damaged_skipped" in j for j in lines)
            or any(j.get("problem_count") for j in lines))
    fell_back = "fell back" in err
    if not check(rc == 0 or said, "%s: failed (exit %d) without saying why" % (label, rc)):
        return False
    if rc != 0 and not folders_of(lines) and queue_of(lines) is None:
        # Refused at open: the message must name the file.
        return check("data.mdb" in err or "lock.mdb" in err or "store" in err,
                     "%s: refusal does not name the file: %r" % (label, err[-300:]))
    folders = folders_of(lines)
    if folders is not None and not folders:
        check(said, "%s: opened as an empty store without a word" % label)
    q = queue_of(lines)
    if q is not None and q != pristine_queue and not fell_back:
        lost = set(pristine_queue) - set(q)
        return check(not lost or said, "%s: queued changes lost silently: %s" % (label, sorted(lost)[:3]))
    if q is None and not fell_back:
        return check(said, "%s: queue unreadable without a word" % label)
    return True


def salvage(db, dest, label):
    """--salvage reads a store that does not open, page by page, into a new
    one: it must not die or hang, and what it writes must open and check
    clean.  Returns the salvaged queue, or None."""
    shutil.rmtree(dest, ignore_errors=True)
    try:
        p = subprocess.run([st.satchel_sim_path(), "--db", db, "--salvage", dest],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=30)
    except subprocess.TimeoutExpired:
        check(False, "%s: salvage hung" % label)
        return None
    out = p.stdout.decode("utf-8", "replace") + p.stderr.decode("utf-8", "replace")
    if not check(p.returncode >= 0 and "Sanitizer" not in out,
                 "%s: salvage died (%d): %s" % (label, p.returncode, out[-500:])):
        return None
    if p.returncode != 0:
        return check(False, "%s: salvage failed: %s" % (label, out[-300:])) and None
    p = subprocess.run([st.satchel_sim_path(), "--db", dest, "--offline", "--json", "-c",
                        "queue; store check"], stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    lines = [st._json.loads(x) for x in p.stdout.decode().splitlines() if x.startswith("{")]
    if not check(p.returncode == 0, "%s: the salvaged store opens and checks clean: %s %r" % (
            label, p.returncode, (p.stderr.decode() + str(lines))[-400:])):
        return None
    return queue_of(lines)


def make_store(work):
    db = os.path.join(work, "pristine")
    with st.Dovecot(profile="full") as dc:
        dc.load_mailset()
        st.run_sim(dc, db, ["sync"])
        inbox = sorted(dc.server_state("alice", "INBOX"))
    # Queued changes: flags, a move and a new folder, recorded offline.
    st.run_sim_offline(db, ["flag INBOX %d +$Satchel" % inbox[0],
                            "flag INBOX %d -\\Seen +$Forwarded" % inbox[1],
                            "move INBOX %d Archive" % inbox[2],
                            "mkdir Satchel-Damage"])
    return db


def error_cases(work, pristine):
    """Each way of pointing at an unusable store gets its own message and a
    non-zero exit status (data-driven: path maker, expected words)."""
    sim = st.satchel_sim_path()
    afile = os.path.join(work, "a-file")
    open(afile, "w").close()
    cases = [("--db ''", "", "needs a directory"),
             ("--db pointing at a file", afile, "not a directory")]
    mounted = []
    if os.geteuid() == 0:
        ro = os.path.join(work, "ro")
        os.makedirs(ro)
        if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", ro]).returncode == 0:
            mounted.append(ro)
            shutil.copytree(pristine, os.path.join(ro, "db"))
            subprocess.run(["mount", "-o", "remount,ro", ro], check=True)
            cases.append(("store on read-only media", os.path.join(ro, "db"), "read-only"))
        noperm = os.path.join(work, "noperm")
        shutil.copytree(pristine, noperm)
        os.chmod(noperm, 0o000)
        os.chmod(work, 0o711)  # nobody may pass through, not into noperm
        cases.append(("no permission", noperm, "permission denied"))
    else:
        print("error cases: read-only media and permission cases need root; skipped")
    try:
        for label, db, words in cases:
            args = [sim, "--db", db, "--offline", "-c", "status"]
            if label == "no permission":
                args = ["su", "nobody", "-s", "/bin/sh", "-c",
                        " ".join("'%s'" % a for a in args)]
            p = subprocess.run(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, timeout=30)
            err = p.stderr.decode("utf-8", "replace")
            check(p.returncode > 0 and words in err.lower(),
                  "%s: exit %d, says %r: %r" % (label, p.returncode, words, err.strip()))
    finally:
        for m in mounted:
            subprocess.run(["umount", "-l", m])


def main():
    seed = int(os.environ.get("SATCHEL_SEED", random.randrange(1 << 30)))
    print("test_damage: seed %d (SATCHEL_SEED=%d repeats this run)" % (seed, seed))
    rnd = random.Random(seed)
    work = tempfile.mkdtemp(prefix="satchel-damage-")
    try:
        db = make_store(work)
        rc, lines, err = read_store(db)
        pristine_queue = queue_of(lines)
        pristine_list = listing_of(lines)
        check(rc == 0 and pristine_queue and len(pristine_queue) == 4,
              "pristine store reads back with 4 queued changes: %r %r" % (pristine_queue, err))
        data = open(os.path.join(db, "data.mdb"), "rb").read()
        pages = len(data) // PAGE
        print("store: %d bytes, %d pages, %d queued changes" % (len(data), pages, len(pristine_queue or [])))
        cases = []
        for n in range(0, pages):
            cases.append(("truncate at page %d" % n, "trunc", n * PAGE))
        for _ in range(200 if LONG else 40):
            cases.append(("truncate at byte", "trunc", rnd.randrange(len(data))))
        # The meta record is the first ~150 bytes of each meta page.
        meta_offsets = list(range(0, 160)) if LONG else rnd.sample(range(0, 160), 60)
        for pg in (0, 1):
            for off in meta_offsets:
                cases.append(("meta page %d byte %d" % (pg, off), "flip", pg * PAGE + off))
            for _ in range(40 if LONG else 5):
                cases.append(("meta page %d byte" % pg, "flip", pg * PAGE + rnd.randrange(160, PAGE)))
        for _ in range(2000 if LONG else 120):
            cases.append(("data page byte", "flip", rnd.randrange(2 * PAGE, len(data))))
        case_dir = os.path.join(work, "case")
        kinds = {}
        for label, kind, at in cases:
            shutil.rmtree(case_dir, ignore_errors=True)
            os.makedirs(case_dir)
            if kind == "trunc":
                blob = data[:at]
                label = "%s (%d bytes)" % (label, at)
            else:
                x = rnd.randrange(1, 256)
                blob = data[:at] + bytes([data[at] ^ x]) + data[at + 1:]
                label = "%s (offset %d, xor 0x%02x)" % (label, at, x)
            with open(os.path.join(case_dir, "data.mdb"), "wb") as f:
                f.write(blob)
            rc, lines, err = read_store(case_dir)
            ok = judge(label, pristine_queue, rc, lines, err)
            outcome = ("refused" if rc and not folders_of(lines) else
                       "fell back" if "fell back" in err else
                       "error" if rc else "read")
            kinds[outcome] = kinds.get(outcome, 0) + 1
            if outcome == "read" and listing_of(lines) != pristine_list:
                # Read back different without a word: a flip CRCs cannot
                # see (in a key, or in LMDB's own bytes).
                kinds["read, differs silently"] = kinds.get("read, differs silently", 0) + 1
            if os.environ.get("SATCHEL_VERBOSE"):
                print("  %s -> %s: %s" % (label, outcome, err.strip()[-200:]))
            if not ok:
                keep = tempfile.mkdtemp(prefix="satchel-damage-failed-")
                shutil.copytree(case_dir, os.path.join(keep, "case"))
                shutil.copytree(db, os.path.join(keep, "pristine"))
                print("  case: %s -> exit %s, stderr %r (kept in %s)" % (
                    label, rc, err[-300:], keep))
            if outcome == "refused" and kind == "flip":
                salvaged = salvage(case_dir, os.path.join(work, "salvaged"), label)
                if salvaged is not None:
                    kinds["refused, salvaged"] = kinds.get("refused, salvaged", 0) + 1
                    if salvaged != pristine_queue and os.environ.get("SATCHEL_VERBOSE"):
                        print("  salvaged %s: queue %s" % (label, salvaged))
                    if salvaged == pristine_queue:
                        kinds["refused, salvaged with every queued change"] = \
                            kinds.get("refused, salvaged with every queued change", 0) + 1
        print("%d cases: %s" % (len(cases), ", ".join("%s %d" % kv for kv in sorted(kinds.items()))))
        error_cases(work, db)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return check.report()


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Firmware figures on QEMU's mps2-an386 (Cortex-M4):

  - flash and RAM per component, from the linker map of build-fw/satchel-fw.elf;
  - an initial sync of 1,000 messages (checked equal to the server with
    imaplib), then a no-change resync: guest time with -icount shift=5
    (deterministic instruction timing), heap high-water, engine heap peak,
    mbedTLS heap peak, stack high-water, store bytes per message.

Run after scripts/firmware build:  python3 tests/bench/bench_firmware.py"""
import collections
import os
import re
import sys
import tempfile

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "firmware"))
import fwlib  # noqa: E402

st = fwlib.st


def component(path):
    base = os.path.basename(path.split("(")[0])
    table = {"libsatchel_core.a": "core", "libsatchel_firmware.a": "app + console",
             "libsatchel_port_lwip.a": "lwIP (+ port glue)",
             "libfw_mbedtls.a": "mbedTLS", "libsatchel_tls.a": "mbedTLS",
             "libfw_lmdb.a": "LMDB"}
    if base in table:
        return table[base]
    if "/boards/" in path:
        return "board"
    if re.search(r"lib(c|g|m|gcc|nosys|c_nano)\.a|crt|newlib", path):
        return "newlib + libgcc"
    return "other"


def map_sizes(map_path):
    """{component: [flash, ram]} from a GNU ld map: .text/.rodata/.data in
    flash (data is copied from flash), .data/.bss in RAM."""
    sizes = collections.defaultdict(lambda: [0, 0])
    text = open(map_path).read()
    start = text.index("Linker script and memory map")
    sec_re = re.compile(r"^ (\.[\w.$]+)\s*(?:\n\s+)?(0x[0-9a-f]+)\s+(0x[0-9a-f]+)\s+(\S+)$", re.M)
    for m in sec_re.finditer(text, start):
        name, addr, size, obj = m.group(1), int(m.group(2), 16), int(m.group(3), 16), m.group(4)
        if size == 0 or addr == 0 and not name.startswith(".text"):
            continue
        comp = component(obj)
        if name.startswith((".text", ".rodata", ".ARM")):
            sizes[comp][0] += size
        elif name.startswith(".data"):
            sizes[comp][0] += size
            sizes[comp][1] += size
        elif name.startswith((".bss", "COMMON")):
            sizes[comp][1] += size
    return sizes


def main():
    elf = fwlib.image()
    mp = os.path.join(os.path.dirname(elf), "satchel-fw.map")
    sizes = map_sizes(mp)
    print("| component | flash (text + rodata + data) | static RAM (data + bss) |")
    print("|---|---|---|")
    for comp in sorted(sizes, key=lambda c: -sizes[c][0]):
        print("| %s | %s | %s |" % (comp, format(sizes[comp][0], ","),
                                   format(sizes[comp][1], ",")))
    print("| **total** | **%s** | **%s** |" % (
        format(sum(v[0] for v in sizes.values()), ","),
        format(sum(v[1] for v in sizes.values()), ",")))

    tmp = tempfile.mkdtemp(prefix="satchel-fw-bench-")
    with st.Dovecot() as dc:
        base = st.load_mailset()["INBOX"]
        dc.add_messages("alice", "INBOX", st.synth_messages(1000, base))
        work = os.path.join(tmp, "dev")
        fwlib.write_config(work, dc)
        with fwlib.Device(work, icount=True, boot_timeout=120) as dev:
            boot = dev.boot_log
            m0 = dev.jcmd("mem")
            r = dev.jcmd("sync", timeout=1200)
            m1 = dev.jcmd("mem")
            ok = r.get("ok") is True
            check = st.Checks()
            fwlib.compare_folder(check, dc, dev, "INBOX", "1,000-message sync")
            m1b = dev.jcmd("mem")
            r2 = dev.jcmd("sync", timeout=600)
            m2 = dev.jcmd("mem")
            hs_rsa = [dev.jcmd("tls-handshake") for _ in range(3)]
    with st.Dovecot(key_type="ec") as dc_ec:
        work_ec = os.path.join(tmp, "ec")
        fwlib.write_config(work_ec, dc_ec)
        with fwlib.Device(work_ec, icount=True, boot_timeout=120) as dev:
            hs_ec = [dev.jcmd("tls-handshake") for _ in range(3)]
    if True:
        db = os.path.getsize(os.path.join(work, "satchel.db"))
        total = sum(f["total"] for f in r["folders"])
        print()
        print("guest time (-icount shift=5):")
        m = re.search(rb"ready: (\d+) ms after reset", boot)
        print("  boot to the prompt (store opened): %s ms" % (m.group(1).decode() if m else "?"))
        print("  initial sync of %d messages: %d ms (ok=%s, equals server: %s)" % (
            total, m1["uptime_ms"] - m0["uptime_ms"], ok, check.failed == 0))
        print("  no-change resync in the session kept open: %d ms, "
              "%d bytes in, %d round trips" % (
                  m2["uptime_ms"] - m1b["uptime_ms"], r2["bytes_in"], r2["round_trips"]))
        for name, hs in (("RSA-2048", hs_rsa), ("P-256", hs_ec)):
            print("  full TLS handshake, %s certificate: %s ms (%s)" % (
                name, ", ".join("%.1f" % (h.get("handshake_us", 0) / 1000.0) for h in hs),
                hs[0].get("cipher", hs[0])))
        print("memory after the initial sync:")
        print("  static RAM (data + bss): %d B" % m1["static"])
        print("  heap high-water: %d B (engine peak %d B, mbedTLS peak %d B)" % (
            m1["heap_high_water"], m1["engine_heap_peak"], m1["tls_heap_peak"]))
        print("  stack high-water: %d B" % m1["stack_high_water"])
        print("  static + heap + stack: %d B" % (
            m1["static"] + m1["heap_high_water"] + m1["stack_high_water"]))
        print("store: %d bytes for %d messages: %d bytes per message" % (db, total, db // max(total, 1)))
        print("wire: %d bytes in, %d out, %d round trips" % (
            r["bytes_in"], r["bytes_out"], r["round_trips"]))
        return 0 if ok and check.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

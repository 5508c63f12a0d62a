#!/usr/bin/env python3
"""Print what pefile (an independent PE parser, not ours) reports for every PE here.

    python3 expected.py                  print the tables (Markdown) to stdout
    python3 expected.py --write MANIFEST.md   replace the generated part of MANIFEST.md
    python3 expected.py --check MANIFEST.md   exit 1 if MANIFEST.md is out of date

The expectations of the Rust PE tests come from this output. Every number is pefile's,
except the lines marked "cross-check": a ~40-line walk of the VS_VERSIONINFO bytes in
this script, used only to point out where pefile itself reports less than the file holds
(it then says so; the Rust tests should expect the file's content, shown there).
"""

import argparse
import hashlib
import os
import struct
import sys

import pefile

HERE = os.path.dirname(os.path.abspath(__file__))
BEGIN = "<!-- BEGIN expected.py output: do not edit by hand -->"
END = "<!-- END expected.py output -->"
RT_VERSION = 16


def dotted(ms, ls):
    return "%d.%d.%d.%d" % (ms >> 16, ms & 0xFFFF, ls >> 16, ls & 0xFFFF)


def walk_versioninfo(d):
    """cross-check: (string tables [(block, [(key, value)])], translations [(lang, cp)])."""
    def node(off):
        wl, vl, typ = struct.unpack_from("<HHH", d, off)
        k, key = off + 6, []
        while True:
            c = struct.unpack_from("<H", d, k)[0]
            k += 2
            if c == 0:
                break
            key.append(chr(c))
        v = (k + 3) & ~3
        return off + wl, "".join(key), vl, typ, v

    def children(start, end):
        off = start
        while off + 6 <= end:
            off = (off + 3) & ~3
            if off + 6 > end:
                break
            nxt, key, vl, typ, v = node(off)
            yield off, nxt, key, vl, typ, v
            if nxt <= off:
                break
            off = nxt

    end, key, vl, typ, v = node(0)
    tables, trans = [], []
    for _, n1, k1, _, _, v1 in children((v + vl + 3) & ~3, end):
        if k1 == "StringFileInfo":
            for _, n2, k2, _, _, v2 in children(v1, n1):
                entries = []
                for _, _, k3, vl3, t3, v3 in children(v2, n2):
                    raw = d[v3:v3 + 2 * vl3] if t3 == 1 else d[v3:v3 + vl3]
                    entries.append((k3, raw.decode("utf-16-le", "replace").rstrip("\0")))
                tables.append((k2, entries))
        elif k1 == "VarFileInfo":
            for _, _, k2, vl2, _, v2 in children(v1, n1):
                if k2 == "Translation":
                    trans += [struct.unpack_from("<HH", d, v2 + i) for i in range(0, vl2 - vl2 % 4, 4)]
    return tables, trans


def describe(path):
    name = os.path.basename(path)
    data = open(path, "rb").read()
    pe = pefile.PE(path)
    fh, oh = pe.FILE_HEADER, pe.OPTIONAL_HEADER
    row = {
        "file": name,
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "machine": "0x%x" % fh.Machine,
        "format": "PE32+" if oh.Magic == 0x20B else "PE32",
        "kind": "DLL" if fh.Characteristics & 0x2000 else "EXE",
    }
    lines = []
    rdir = oh.DATA_DIRECTORY[2]
    rsect = None
    if rdir.VirtualAddress:
        rsect = pe.get_section_by_rva(rdir.VirtualAddress)
    sections = ", ".join("%s@0x%x+0x%x" % (s.Name.rstrip(b"\0").decode(), s.PointerToRawData, s.SizeOfRawData)
                         for s in pe.sections)
    lines.append("- headers: TimeDateStamp 0x%X, ImageBase 0x%X, Subsystem %d, CheckSum 0x%X (pefile verify_checksum: %s), "
                 "e_lfanew 0x%X" % (fh.TimeDateStamp, oh.ImageBase, oh.Subsystem, oh.CheckSum,
                                    "yes" if pe.verify_checksum() else "no", pe.DOS_HEADER.e_lfanew))
    lines.append("- sections (name@file offset+raw size): %s" % sections)
    if rsect is not None:
        row["rsrc"] = "%s at 0x%x, 0x%x bytes" % (rsect.Name.rstrip(b"\0").decode(), rsect.PointerToRawData,
                                                 rsect.SizeOfRawData)
        last = max(pe.sections, key=lambda s: s.PointerToRawData)
        lines.append("- resource directory: RVA 0x%x, size 0x%x, file offset 0x%x; the resource section %s the last "
                     "thing in the file" % (rdir.VirtualAddress, rdir.Size, pe.get_offset_from_rva(rdir.VirtualAddress),
                                            "is" if last is rsect and last.PointerToRawData + last.SizeOfRawData == len(data)
                                            else "is not"))
    else:
        row["rsrc"] = "none"
        lines.append("- no resource directory")
    res = getattr(pe, "DIRECTORY_ENTRY_RESOURCE", None)
    types = res.entries if res is not None else []
    versions = []
    for t in types:
        if t.id != RT_VERSION:
            continue
        for n in t.directory.entries:
            for lang in n.directory.entries:
                rva, size = lang.data.struct.OffsetToData, lang.data.struct.Size
                versions.append((n.id, lang.id, rva, size, pe.get_offset_from_rva(rva)))
    other = []
    for t in types:
        if t.id != RT_VERSION:
            other.append("%s x%d" % (pefile.RESOURCE_TYPE.get(t.id, t.id), len(t.directory.entries)))
    if other:
        lines.append("- other resources: %s" % ", ".join(other))
    if not versions:
        row["vsinfo"] = "no version resource"
        row["fv"] = row["pv"] = "-"
        return row, lines
    row["vsinfo"] = "; ".join("0x%x, %d bytes (id %d, lang 0x%04x)" % (off, size, rid, lang)
                              for rid, lang, _, size, off in versions)
    ff = pe.VS_FIXEDFILEINFO[0]
    row["fv"] = dotted(ff.FileVersionMS, ff.FileVersionLS)
    row["pv"] = dotted(ff.ProductVersionMS, ff.ProductVersionLS)
    lines.append("- VS_FIXEDFILEINFO: Signature 0x%08X, StrucVersion 0x%08X, FileVersion %s (MS 0x%08X, LS 0x%08X), "
                 "ProductVersion %s (MS 0x%08X, LS 0x%08X), FileFlagsMask 0x%X, FileFlags 0x%X, FileOS 0x%X, "
                 "FileType 0x%X, FileSubtype 0x%X, FileDate 0x%X:%X" % (
                     ff.Signature, ff.StrucVersion, row["fv"], ff.FileVersionMS, ff.FileVersionLS, row["pv"],
                     ff.ProductVersionMS, ff.ProductVersionLS, ff.FileFlagsMask, ff.FileFlags, ff.FileOS,
                     ff.FileType, ff.FileSubtype, ff.FileDateMS, ff.FileDateLS))
    pe_tables, pe_var = [], []
    for fi in getattr(pe, "FileInfo", []) or []:
        for e in fi:
            if e.Key == b"StringFileInfo":
                for st in e.StringTable:
                    pe_tables.append((st.LangID.decode(), [(k.decode(), v.decode()) for k, v in st.entries.items()]))
            elif e.Key == b"VarFileInfo":
                for var in e.Var:
                    pe_var += ["%s: %s" % (k.decode(), v) for k, v in var.entry.items()]
    if not pe_tables:
        lines.append("- StringFileInfo: none (pefile reports no string table)")
    for block, entries in pe_tables:
        lines.append("- StringFileInfo \"%s\": %s" % (block, "; ".join("%s = \"%s\"" % kv for kv in entries)))
    lines.append("- VarFileInfo (pefile's Var entry): %s" % (", ".join(pe_var) or "none"))
    vid, vlang, vrva, vsize, _ = versions[0]
    cc_tables, cc_trans = walk_versioninfo(pe.get_data(vrva, vsize))
    if cc_trans:
        lines.append("- cross-check: Translation holds %s" % ", ".join("0x%04x/%d" % p for p in cc_trans))
    if [b for b, _ in cc_tables] != [b for b, _ in pe_tables] or \
            any(dict(e) != dict(pe_e) for (_, e), (_, pe_e) in zip(cc_tables, pe_tables)):
        lines.append("- cross-check: **pefile reports less than the file holds**; the StringFileInfo tables are:")
        for block, entries in cc_tables:
            lines.append("  - \"%s\": %s" % (block, "; ".join("%s = \"%s\"" % kv for kv in entries)))
    if len(cc_trans) > 1:
        lines.append("- cross-check: pefile's Var entry keeps only the last Translation pair (it overwrites the "
                     "pairs in a loop); the file has %d" % len(cc_trans))
    return row, lines


def render():
    files = sorted(f for f in os.listdir(HERE) if f.lower().endswith((".exe", ".dll")))
    out = ["Generated by `expected.py` with pefile %s (Python %s)." % (
        pefile.__version__, sys.version.split()[0]), "",
        "| file | size | sha256 | machine | format | kind | resource section | VS_VERSIONINFO data (file offset, size) | "
        "FileVersion | ProductVersion |", "|---|---|---|---|---|---|---|---|---|---|"]
    details = []
    for f in files:
        row, lines = describe(os.path.join(HERE, f))
        out.append("| `%s` | %d | `%s` | %s | %s | %s | %s | %s | %s | %s |" % (
            row["file"], row["size"], row["sha256"], row["machine"], row["format"], row["kind"], row["rsrc"],
            row["vsinfo"], row["fv"], row["pv"]))
        details += ["", "### `%s`" % f, ""] + lines
    return "\n".join(out + details) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--write", metavar="MANIFEST")
    g.add_argument("--check", metavar="MANIFEST")
    a = ap.parse_args()
    text = render()
    if not (a.write or a.check):
        sys.stdout.write(text)
        return 0
    path = a.write or a.check
    doc = open(path, encoding="utf-8").read()
    if BEGIN not in doc or END not in doc:
        print("expected.py: %s has no %s ... %s block" % (path, BEGIN, END), file=sys.stderr)
        return 2
    head, rest = doc.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    new = head + BEGIN + "\n" + text + END + tail
    if a.write:
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(new)
        return 0
    if new != doc:
        print("expected.py: %s is out of date; run: python3 expected.py --write %s" % (path, path), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""mkpe.py - build small PE files (EXE/DLL, i686 or x86_64) with a chosen version resource.

The bytes come from tools nobody on the project wrote: GNU binutils for mingw-w64
(`<triplet>-as` assembles a minimal entry stub, `<triplet>-windres` compiles an .rc
file with a VERSIONINFO block, `<triplet>-ld` links). This script only writes the
.rc/.s sources and runs the tools; it never writes PE structures itself.

    mkpe.py --host-profile DIR --out CDIR [--cache DIR] [-v]
        build every [[file]] table of DIR/host.toml into CDIR/<path>
    mkpe.py --spec JSON --out FILE [--cache DIR] [-v]
        build one file; JSON is the spec text, or @PATH to read it from a file
    mkpe.py --check DIR [DIR...]
        validate the [[file]] tables of the profiles and check that the tools
        their arches need are installed (no build)

Spec keys (host.toml [[file]] tables, which take defaults from an optional
[file_defaults] table, and --spec JSON; tests/lab/README.md has the table):
path, arch, dll, version, file_version, product_version, file_version_text,
product_version_text, description, company, product, original_filename,
internal_name, extra_strings, language, codepage, string_tables, translations,
string_file_info, var_file_info, file_flags, file_flags_mask, file_os, file_type,
file_subtype, subsystem, padding_mib, rcdata, mtime.

Same spec + same binutils = same bytes (ld --no-insert-timestamp; windres and as
write no time stamps). --cache DIR keeps every built file under its spec hash, so a
second build of the lab is a copy. Exit status: 0 ok, 1 build failed, 2 bad spec
or usage.
"""

import argparse
import calendar
import concurrent.futures
import hashlib
import json
import os
import posixpath
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time

try:
    import tomllib
except ImportError:  # pragma: no cover - Python < 3.11
    tomllib = None

MKPE_FORMAT = 1  # bump when the generated sources change: invalidates caches
TRIPLETS = {"i686": "i686-w64-mingw32", "x86_64": "x86_64-w64-mingw32"}
WINDRES_TARGET = {"i686": "pe-i386", "x86_64": "pe-x86-64"}
SUBSYSTEMS = ("console", "windows", "native")
TOOLS = ("as", "windres", "ld")
MIB = 1024 * 1024
MAX_PADDING_MIB = 1024
HEADER_BYTES = 4096  # ld's headers and section table fit in the first page

KEYS = {
    "path": str, "arch": str, "dll": bool, "version": bool,
    "file_version": str, "product_version": str,
    "file_version_text": str, "product_version_text": str,
    "description": str, "company": str, "product": str,
    "original_filename": str, "internal_name": str, "extra_strings": dict,
    "language": int, "codepage": int, "string_tables": list, "translations": list,
    "string_file_info": bool, "var_file_info": bool,
    "file_flags": int, "file_flags_mask": int, "file_os": int, "file_type": int,
    "file_subtype": int, "subsystem": str, "padding_mib": int, "rcdata": str,
    "mtime": str,
}


class SpecError(Exception):
    pass


class BuildError(Exception):
    pass


# --- spec ----------------------------------------------------------------------

def parse_version(text, what):
    m = re.fullmatch(r"(\d+)\.(\d+)\.(\d+)\.(\d+)", text or "")
    if not m:
        raise SpecError("%s must be a.b.c.d (got %r)" % (what, text))
    parts = tuple(int(x) for x in m.groups())
    if any(p > 0xFFFF for p in parts):
        raise SpecError("%s: each part must be 0-65535 (got %r)" % (what, text))
    return parts


def check_u32(value, what):
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 0xFFFFFFFF:
        raise SpecError("%s must be an integer 0..0xFFFFFFFF (got %r)" % (what, value))
    return value


def check_u16(value, what):
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 0xFFFF:
        raise SpecError("%s must be an integer 0..0xFFFF (got %r)" % (what, value))
    return value


def check_strings(table, what):
    if not isinstance(table, dict):
        raise SpecError("%s must be a table of name = \"text\"" % what)
    for k, v in table.items():
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", k):
            raise SpecError("%s: string name %r must be [A-Za-z][A-Za-z0-9_]*" % (what, k))
        if not isinstance(v, str):
            raise SpecError("%s: %s must be a string" % (what, k))
        if "\0" in v:
            raise SpecError("%s: %s contains NUL" % (what, k))
    return dict(table)


def check_path(path):
    if not path or path.startswith("/") or "\\" in path or "\0" in path:
        raise SpecError("path must be relative, with / separators (got %r)" % (path,))
    parts = path.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise SpecError("path must not contain empty, '.' or '..' parts (got %r)" % (path,))
    return path


def normalise(raw, need_path):
    """Validate a raw spec dict; return the fully resolved spec (every default
    filled in), which is also what the cache key is computed from."""
    if not isinstance(raw, dict):
        raise SpecError("a file spec must be a table/object")
    unknown = sorted(set(raw) - set(KEYS))
    if unknown:
        raise SpecError("unknown key%s %s (known: %s)" % (
            "s" if len(unknown) > 1 else "", ", ".join(unknown), ", ".join(sorted(KEYS))))
    for k, t in KEYS.items():
        if k in raw and not (isinstance(raw[k], t) and not (t is int and isinstance(raw[k], bool))):
            raise SpecError("%s must be a %s (got %r)" % (k, t.__name__, raw[k]))
    s = {}
    if need_path:
        if "path" not in raw:
            raise SpecError("path is required")
        s["path"] = check_path(raw["path"])
    elif "path" in raw:
        s["path"] = check_path(raw["path"])
    if "arch" not in raw:
        raise SpecError("arch is required (\"i686\" or \"x86_64\")")
    if raw["arch"] not in TRIPLETS:
        raise SpecError("arch must be \"i686\" or \"x86_64\" (got %r)" % raw["arch"])
    s["arch"] = raw["arch"]
    s["dll"] = raw.get("dll", False)
    s["version"] = raw.get("version", True)
    s["subsystem"] = raw.get("subsystem", "windows" if s["dll"] else "console")
    if s["subsystem"] not in SUBSYSTEMS:
        raise SpecError("subsystem must be one of %s (got %r)" % (", ".join(SUBSYSTEMS), s["subsystem"]))
    pad = raw.get("padding_mib", 0)
    if not 0 <= pad <= MAX_PADDING_MIB:
        raise SpecError("padding_mib must be 0..%d (got %r)" % (MAX_PADDING_MIB, pad))
    s["padding_mib"] = pad
    s["rcdata"] = raw.get("rcdata")
    if s["rcdata"] is not None and not s["rcdata"].isascii():
        raise SpecError("rcdata must be ASCII text")
    if "mtime" in raw:
        try:
            calendar.timegm(time.strptime(raw["mtime"], "%Y-%m-%d"))
        except ValueError:
            raise SpecError("mtime must be YYYY-MM-DD (got %r)" % raw["mtime"]) from None
    s["mtime"] = raw.get("mtime")
    base = posixpath.basename(s.get("path") or raw.get("original_filename") or "")

    version_keys = [k for k in KEYS if k not in (
        "path", "arch", "dll", "version", "subsystem", "padding_mib", "rcdata", "mtime")]
    if not s["version"]:
        given = [k for k in version_keys if k in raw]
        if given:
            raise SpecError("version = false, so %s would be ignored; remove %s" % (
                ", ".join(given), "it" if len(given) == 1 else "them"))
        return s

    if "file_version" not in raw:
        raise SpecError("file_version is required (or version = false for a PE without a version resource)")
    fv = parse_version(raw["file_version"], "file_version")
    pv = parse_version(raw.get("product_version", raw["file_version"]), "product_version")
    s["file_version"] = ".".join(map(str, fv))
    s["product_version"] = ".".join(map(str, pv))
    s["file_version_text"] = raw.get("file_version_text", s["file_version"])
    s["product_version_text"] = raw.get("product_version_text", s["product_version"])
    s["description"] = raw.get("description", "")
    s["company"] = raw.get("company", "")
    s["product"] = raw.get("product", "")
    s["original_filename"] = raw.get("original_filename", base)
    if not s["original_filename"]:
        raise SpecError("original_filename is required when there is no path")
    s["internal_name"] = raw.get("internal_name")
    s["extra_strings"] = check_strings(raw.get("extra_strings", {}), "extra_strings")
    s["language"] = check_u16(raw.get("language", 0x0409), "language")
    s["codepage"] = check_u16(raw.get("codepage", 1200), "codepage")
    s["string_file_info"] = raw.get("string_file_info", True)
    s["var_file_info"] = raw.get("var_file_info", True)
    tables = []
    for i, t in enumerate(raw.get("string_tables", [])):
        what = "string_tables[%d]" % i
        if not isinstance(t, dict) or set(t) - {"block", "strings"} or "block" not in t:
            raise SpecError("%s must be a table with block = \"LLLLCCCC\" and strings = {...}" % what)
        if not isinstance(t["block"], str) or not re.fullmatch(r"[0-9A-Fa-f]{8}", t["block"]):
            raise SpecError("%s: block must be 8 hex digits, language then codepage (got %r)" % (what, t["block"]))
        tables.append({"block": t["block"], "strings": check_strings(t.get("strings", {}), what)})
    if tables and not s["string_file_info"]:
        raise SpecError("string_tables given but string_file_info = false")
    s["string_tables"] = tables
    trans = raw.get("translations", [[s["language"], s["codepage"]]])
    if not all(isinstance(p, list) and len(p) == 2 for p in trans):
        raise SpecError("translations must be a list of [language, codepage] pairs")
    s["translations"] = [[check_u16(a, "translations language"), check_u16(b, "translations codepage")]
                         for a, b in trans]
    if "translations" in raw and not s["var_file_info"]:
        raise SpecError("translations given but var_file_info = false")
    s["file_flags"] = check_u32(raw.get("file_flags", 0), "file_flags")
    s["file_flags_mask"] = check_u32(raw.get("file_flags_mask", 0x3F), "file_flags_mask")
    s["file_os"] = check_u32(raw.get("file_os", 0x40004), "file_os")          # VOS_NT_WINDOWS32
    s["file_type"] = check_u32(raw.get("file_type", 2 if s["dll"] else 1), "file_type")  # VFT_DLL / VFT_APP
    s["file_subtype"] = check_u32(raw.get("file_subtype", 0), "file_subtype")
    return s


def spec_key(spec, tool_ids):
    payload = {"format": MKPE_FORMAT, "tools": tool_ids,
               "spec": {k: v for k, v in spec.items() if k != "path"}}
    # OriginalFilename, which defaults from the path, is in the resolved spec.
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()


# --- sources -------------------------------------------------------------------

def rc_wide(text):
    """An .rc wide string literal: ASCII as is (with "" and \\\\ escaped), anything
    else as \\xNNNN UTF-16 code units; a hex digit right after an escape is
    escaped too, so no escape can swallow it."""
    out, prev_escape = ['L"'], False
    for ch in text:
        o = ord(ch)
        if 0x20 <= o < 0x7F and not (prev_escape and ch in "0123456789abcdefABCDEF"):
            out.append({'"': '""', "\\": "\\\\"}.get(ch, ch))
            prev_escape = False
        else:
            data = ch.encode("utf-16-le")
            for i in range(0, len(data), 2):
                out.append("\\x%04x" % struct.unpack_from("<H", data, i)[0])
            prev_escape = True
    out.append('"')
    return "".join(out)


def make_rc(spec):
    # No comments: without a C preprocessor windres's own parser sees them.
    lines = []
    if spec["version"]:
        lang = spec["language"]
        lines.append("LANGUAGE 0x%02x, 0x%02x" % (lang & 0x3FF, lang >> 10))
        fv = spec["file_version"].replace(".", ",")
        pv = spec["product_version"].replace(".", ",")
        lines += [
            "1 VERSIONINFO",
            "FILEVERSION %s" % fv,
            "PRODUCTVERSION %s" % pv,
            "FILEFLAGSMASK 0x%x" % spec["file_flags_mask"],
            "FILEFLAGS 0x%x" % spec["file_flags"],
            "FILEOS 0x%x" % spec["file_os"],
            "FILETYPE 0x%x" % spec["file_type"],
            "FILESUBTYPE 0x%x" % spec["file_subtype"],
            "BEGIN",
        ]
        if spec["string_file_info"]:
            strings = {
                "CompanyName": spec["company"],
                "FileDescription": spec["description"],
                "FileVersion": spec["file_version_text"],
            }
            if spec["internal_name"] is not None:
                strings["InternalName"] = spec["internal_name"]
            strings.update({
                "OriginalFilename": spec["original_filename"],
                "ProductName": spec["product"],
                "ProductVersion": spec["product_version_text"],
            })
            strings.update(spec["extra_strings"])
            tables = [{"block": "%04X%04X" % (spec["language"], spec["codepage"]), "strings": strings}]
            tables += spec["string_tables"]
            lines += ['  BLOCK "StringFileInfo"', "  BEGIN"]
            for t in tables:
                lines += ['    BLOCK "%s"' % t["block"], "    BEGIN"]
                for k, v in t["strings"].items():
                    lines.append('      VALUE "%s", %s' % (k, rc_wide(v)))
                lines.append("    END")
            lines.append("  END")
        if spec["var_file_info"]:
            pairs = ", ".join("0x%x, %d" % (a, b) for a, b in spec["translations"])
            lines += ['  BLOCK "VarFileInfo"', "  BEGIN", '    VALUE "Translation", %s' % pairs, "  END"]
        lines.append("END")
    if spec.get("rcdata") is not None:
        lines += ["LANGUAGE 0x09, 0x01", "1 RCDATA", "BEGIN", '  "%s"' % spec["rcdata"].replace('"', '""'), "END"]
    return "\n".join(lines) + "\n"


STUB = {
    # Entry point only: returns 0 (EXE) or TRUE (DllMain). No imports, no CRT.
    ("i686", False): "xorl %eax, %eax\n\tret",
    ("i686", True): "movl $1, %eax\n\tret $12",
    ("x86_64", False): "xorl %eax, %eax\n\tret",
    ("x86_64", True): "movl $1, %eax\n\tret",
}


def make_stub(arch, dll):
    return "\t.text\n\t.globl\t_start\n_start:\n\t%s\n" % STUB[(arch, dll)]


# --- tools ---------------------------------------------------------------------

def tool(arch, name):
    return "%s-%s" % (TRIPLETS[arch], name)


def missing_tools(arches):
    return [tool(a, t) for a in sorted(arches) for t in TOOLS if not shutil.which(tool(a, t))]


def tool_ids(arches):
    ids = {}
    for a in sorted(arches):
        out = subprocess.run([tool(a, "ld"), "--version"], capture_output=True, text=True, check=True).stdout
        ids[a] = out.splitlines()[0] if out else "?"
    return ids


def run(cmd, cwd, verbose):
    if verbose:
        print("mkpe: + %s" % " ".join(cmd), file=sys.stderr)
    p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if p.returncode != 0:
        raise BuildError("%s failed (exit %d): %s" % (cmd[0], p.returncode, (p.stderr or p.stdout).strip()))


PREPROCESSOR = """#!/bin/sh
# windres preprocessor stand-in: the .rc files mkpe writes need no C preprocessor
# (no #include/#define), and mingw's gcc is not installed. windres appends its
# own options (-E -xc -DRC_INVOKED ...) and the .rc file last; print that file.
for a in "$@"; do f=$a; done
exec cat -- "$f"
"""


def write_padding(path, nbytes):
    """Deterministic filler: byte i = i mod 251 (not all zero, so an offset error
    in a reader does not go unnoticed)."""
    block = bytes(range(251)) * (MIB // 251 + 2)
    with open(path, "wb") as f:
        off = 0
        while off < nbytes:
            n = min(MIB, nbytes - off)
            start = off % 251
            f.write(block[start:start + n])
            off += n


def check_layout(data, size, spec):
    """Cheap structural check of what ld wrote, from its first bytes (headers and
    section table) and its size. Full checks: pefile, in the tests."""
    if data[:2] != b"MZ":
        raise BuildError("output has no MZ header")
    pe = struct.unpack_from("<I", data, 0x3C)[0]
    if data[pe:pe + 4] != b"PE\0\0":
        raise BuildError("output has no PE signature")
    machine, nsect, _, _, _, opt_size, chars = struct.unpack_from("<HHIIIHH", data, pe + 4)
    want = 0x14C if spec["arch"] == "i686" else 0x8664
    if machine != want:
        raise BuildError("machine 0x%x, expected 0x%x" % (machine, want))
    if bool(chars & 0x2000) != spec["dll"]:
        raise BuildError("IMAGE_FILE_DLL flag does not match dll = %s" % spec["dll"])
    sects = []
    for i in range(nsect):
        off = pe + 24 + opt_size + 40 * i
        name = data[off:off + 8].rstrip(b"\0").decode("ascii", "replace")
        size_raw, ptr_raw = struct.unpack_from("<II", data, off + 16)
        sects.append((name, ptr_raw, size_raw))
    names = [n for n, _, _ in sects]
    has_rsrc = spec["version"] or spec.get("rcdata") is not None
    if has_rsrc != (".rsrc" in names):
        raise BuildError("sections %s: .rsrc %s" % (names, "missing" if has_rsrc else "unexpected"))
    if has_rsrc:
        last = max(sects, key=lambda s: s[1])
        if last[0] != ".rsrc" or last[1] + last[2] != size:
            raise BuildError("the .rsrc raw data is not the last thing in the file: %s, size %d" % (sects, size))
    if spec["padding_mib"] and not any(n == ".rdata" and sz >= spec["padding_mib"] * MIB for n, _, sz in sects):
        raise BuildError("padding section missing: %s" % sects)


def build_one(spec, dest, cache, tools_id, tmproot, verbose):
    """Build spec into dest (atomically). Returns 'cached' or 'built'."""
    key = spec_key(spec, tools_id)
    cached = os.path.join(cache, key[:2], key + ".pe") if cache else None
    os.makedirs(os.path.dirname(os.path.abspath(dest)) or ".", exist_ok=True)
    tmp_dest = "%s.mkpe-%d.tmp" % (dest, os.getpid())
    how = "cached"
    if not (cached and os.path.isfile(cached)):
        how = "built"
        work = tempfile.mkdtemp(prefix="b-", dir=tmproot)
        arch = spec["arch"]
        objs = []
        with open(os.path.join(work, "stub.s"), "w") as f:
            f.write(make_stub(arch, spec["dll"]))
        run([tool(arch, "as"), "-o", "stub.o", "stub.s"], work, verbose)
        objs.append("stub.o")
        if spec["padding_mib"]:
            write_padding(os.path.join(work, "pad.bin"), spec["padding_mib"] * MIB)
            with open(os.path.join(work, "pad.s"), "w") as f:
                # .rdata comes before .rsrc in ld's default PE script.
                f.write('\t.section .rdata,"dr"\n\t.globl\t_exsweep_lab_padding\n'
                        '_exsweep_lab_padding:\n\t.incbin "pad.bin"\n')
            run([tool(arch, "as"), "-o", "pad.o", "pad.s"], work, verbose)
            os.unlink(os.path.join(work, "pad.bin"))
            objs.append("pad.o")
        if spec["version"] or spec.get("rcdata") is not None:
            with open(os.path.join(work, "res.rc"), "w", encoding="ascii") as f:
                f.write(make_rc(spec))
            run([tool(arch, "windres"), "--preprocessor=%s" % os.path.join(tmproot, "pp.sh"),
                 "-F", WINDRES_TARGET[arch], "-i", "res.rc", "-o", "res.o"], work, verbose)
            objs.append("res.o")
        cmd = [tool(arch, "ld"), "--no-insert-timestamp", "-s", "--disable-reloc-section",
               "--disable-dynamicbase", "-e", "_start", "--subsystem", spec["subsystem"]]
        if arch == "x86_64":
            cmd.append("--disable-high-entropy-va")
        if spec["dll"]:
            cmd.append("--dll")
        cmd += ["-o", "out.pe"] + objs
        run(cmd, work, verbose)
        out = os.path.join(work, "out.pe")
        with open(out, "rb") as f:
            check_layout(f.read(HEADER_BYTES), os.path.getsize(out), spec)
        if cached:
            os.makedirs(os.path.dirname(cached), exist_ok=True)
            tmp_c = "%s.%d-%d.tmp" % (cached, os.getpid(), threading.get_ident())
            shutil.copyfile(out, tmp_c)
            os.replace(tmp_c, cached)
            src = cached
        else:
            src = out
        shutil.copyfile(src, tmp_dest)
        shutil.rmtree(work, ignore_errors=True)
    else:
        shutil.copyfile(cached, tmp_dest)
    os.chmod(tmp_dest, 0o644)
    if spec.get("mtime"):
        t = calendar.timegm(time.strptime(spec["mtime"], "%Y-%m-%d"))
        os.utime(tmp_dest, (t, t))
    os.replace(tmp_dest, dest)
    return how


# --- host profiles -------------------------------------------------------------

def load_profile(pdir):
    """Returns (host.toml path, [resolved spec]); raises SpecError naming the file
    and the entry."""
    f = os.path.join(pdir, "host.toml")
    try:
        with open(f, "rb") as fh:
            doc = tomllib.load(fh)
    except OSError as e:
        raise SpecError("%s: cannot read: %s" % (f, e.strerror)) from None
    except tomllib.TOMLDecodeError as e:
        raise SpecError("%s: cannot parse: %s" % (f, e)) from None
    files = doc.get("file", [])
    if not isinstance(files, list):
        raise SpecError("%s: file must be an array of tables ([[file]])" % f)
    defaults = doc.get("file_defaults", {})
    if not isinstance(defaults, dict):
        raise SpecError("%s: file_defaults must be a table" % f)
    if "path" in defaults:
        raise SpecError("%s: [file_defaults]: path cannot have a default" % f)
    specs, seen = [], {}
    for i, raw in enumerate(files, 1):
        label = "[[file]] #%d" % i
        if isinstance(raw, dict) and isinstance(raw.get("path"), str):
            label += " (path %r)" % raw["path"]
        try:
            if not isinstance(raw, dict):
                raise SpecError("must be a table")
            # A [[file]] key wins over [file_defaults]; version-resource defaults
            # do not apply to a file with version = false.
            merged = dict(defaults)
            if raw.get("version", defaults.get("version", True)) is False:
                merged = {k: v for k, v in merged.items() if k in (
                    "arch", "dll", "version", "subsystem", "padding_mib", "rcdata", "mtime")}
            merged.update(raw)
            s = normalise(merged, need_path=True)
        except SpecError as e:
            raise SpecError("%s: %s: %s" % (f, label, e)) from None
        low = s["path"].lower()  # the share is case-insensitive for clients
        if low in seen:
            raise SpecError("%s: %s: same path as [[file]] #%d" % (f, label, seen[low]))
        seen[low] = i
        specs.append(s)
    return f, specs


def build_all(jobs, cache, verbose):
    """jobs: [(label, spec, dest)]. Builds in parallel; returns [(label, dest, how)]."""
    arches = {s["arch"] for _, s, _ in jobs}
    miss = missing_tools(arches)
    if miss:
        raise BuildError("%s not found; run scripts/setup (Debian packages binutils-mingw-w64-x86-64, "
                         "binutils-mingw-w64-i686)" % ", ".join(miss))
    ids = tool_ids(arches)
    if cache:
        os.makedirs(cache, exist_ok=True)
    results, errors = [], []
    with tempfile.TemporaryDirectory(prefix="mkpe-") as tmproot:
        pp = os.path.join(tmproot, "pp.sh")
        with open(pp, "w") as f:
            f.write(PREPROCESSOR)
        os.chmod(pp, 0o755)
        # Largest first, so the long build is not the last one started.
        order = sorted(jobs, key=lambda j: -j[1]["padding_mib"])
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as ex:
            futs = {ex.submit(build_one, s, d, cache, ids, tmproot, verbose): (lab, d) for lab, s, d in order}
            for fut in concurrent.futures.as_completed(futs):
                lab, d = futs[fut]
                try:
                    results.append((lab, d, fut.result()))
                except (BuildError, OSError) as e:
                    errors.append("%s: %s" % (lab, e))
    if errors:
        raise BuildError("\n".join(sorted(errors)))
    return results


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--host-profile", metavar="DIR", help="build DIR/host.toml's [[file]] tables")
    mode.add_argument("--spec", metavar="JSON", help="one file spec (JSON text, or @FILE)")
    mode.add_argument("--check", metavar="DIR", nargs="+", help="validate profiles and tools, build nothing")
    ap.add_argument("--out", metavar="PATH", help="C/ tree (--host-profile) or output file (--spec)")
    ap.add_argument("--cache", metavar="DIR", help="keep built files here, keyed by spec hash")
    ap.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args(argv)
    if tomllib is None and (a.host_profile or a.check):
        print("mkpe: Python >= 3.11 needed (tomllib)", file=sys.stderr)
        return 2
    t0 = time.monotonic()
    try:
        if a.check:
            arches = set()
            for d in a.check:
                _, specs = load_profile(d)
                arches |= {s["arch"] for s in specs}
            miss = missing_tools(arches)
            if miss:
                print("mkpe: %s not found; run scripts/setup" % ", ".join(miss), file=sys.stderr)
                return 1
            return 0
        if not a.out:
            ap.error("--out is required")
        if a.host_profile:
            f, specs = load_profile(a.host_profile)
            jobs = [("%s: %s" % (f, s["path"]), s, os.path.join(a.out, *s["path"].split("/"))) for s in specs]
        else:
            text = a.spec
            if text.startswith("@"):
                with open(text[1:], encoding="utf-8") as fh:
                    text = fh.read()
            try:
                raw = json.loads(text)
            except json.JSONDecodeError as e:
                raise SpecError("--spec: not JSON: %s" % e) from None
            if isinstance(raw, dict) and "original_filename" not in raw and "path" not in raw \
                    and raw.get("version", True):
                raw = dict(raw, original_filename=os.path.basename(a.out))
            try:
                s = normalise(raw, need_path=False)
            except SpecError as e:
                raise SpecError("--spec: %s" % e) from None
            jobs = [("--spec", s, a.out)]
        results = build_all(jobs, a.cache, a.verbose)
    except SpecError as e:
        print("mkpe: %s" % e, file=sys.stderr)
        return 2
    except BuildError as e:
        print("mkpe: %s" % e, file=sys.stderr)
        return 1
    if a.verbose:
        for lab, d, how in sorted(results):
            print("mkpe: %s %s -> %s" % (how, lab, d), file=sys.stderr)
        built = sum(1 for r in results if r[2] == "built")
        print("mkpe: %d file(s), %d built, %d from cache, %.2f s" % (
            len(results), built, len(results) - built, time.monotonic() - t0), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Check that a running lab host serves every value of its registry.reg.

Usage:
    python3 tests/lab/oracle/check_profile.py --credentials target/lab/credentials.toml \
        tests/lab/hosts/<name> [more host dirs...]

Parses the profile's .reg file (its own small parser, independent of Samba's),
reads every value and every key's subkey list back over MS-RRP with the impacket
reader in rrp_read.py, and prints one line per mismatch. Exit 0 when all match,
1 on mismatches, 2 when a host cannot be read at all.
"""

import argparse
import os
import re
import sys
import tomllib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rrp_read  # noqa: E402

TYPES = {"string": 1, "dword": 4, "hex": 3}


def read_text(path):
    raw = open(path, "rb").read()
    if raw.startswith(b"\xff\xfe"):
        return raw[2:].decode("utf-16-le")
    return raw.decode("utf-8-sig")


def unquote(s):
    """Parse a quoted .reg string at the start of s; return (text, rest)."""
    assert s[0] == '"'
    out, i = [], 1
    while i < len(s):
        c = s[i]
        if c == "\\" and i + 1 < len(s):
            out.append(s[i + 1])
            i += 2
            continue
        if c == '"':
            return "".join(out), s[i + 1:]
        out.append(c)
        i += 1
    raise ValueError("unterminated string")


def parse_reg(path):
    """Return {key: {value_name: (type, bytes)}} in file order (keys upper-cased
    for lookup, original spelling kept in the second dict)."""
    lines = read_text(path).splitlines()
    if not lines or lines[0].strip() != "Windows Registry Editor Version 5.00":
        raise ValueError("%s: bad header" % path)
    # Join continuation lines.
    joined, buf = [], ""
    for line in lines[1:]:
        s = line.strip()
        if buf:
            buf += s
        else:
            buf = s
        if buf.endswith("\\") and not buf.startswith("["):
            buf = buf[:-1]
            continue
        joined.append(buf)
        buf = ""
    keys, key = {}, None
    for s in joined:
        if not s or s.startswith(";"):
            continue
        if s.startswith("[") and s.endswith("]"):
            name = s[1:-1]
            if name.startswith("-"):
                key = None
                continue
            key = name.replace("HKEY_LOCAL_MACHINE", "HKLM", 1)
            keys.setdefault(key, {})
            continue
        if key is None:
            continue
        if s.startswith("@="):
            vname, rest = "", s[1:]
        else:
            vname, rest = unquote(s)
        if not rest.startswith("="):
            raise ValueError("%s: cannot parse %r" % (path, s))
        rest = rest[1:]
        if rest == "-":
            keys[key].pop(vname, None)
            continue
        if rest.startswith('"'):
            text, _ = unquote(rest)
            keys[key][vname] = (1, (text + "\0").encode("utf-16-le"))
        elif rest.startswith("dword:"):
            keys[key][vname] = (4, int(rest[6:], 16).to_bytes(4, "little"))
        else:
            m = re.fullmatch(r"hex(?:\(([0-9a-fA-F]+)\))?:(.*)", rest)
            if not m:
                raise ValueError("%s: cannot parse %r" % (path, s))
            vtype = int(m.group(1), 16) if m.group(1) else 3
            data = bytes(int(b, 16) for b in m.group(2).split(",") if b.strip())
            keys[key][vname] = (vtype, data)
    return keys


def check_host(hostdir, creds, timeout):
    with open(os.path.join(hostdir, "host.toml"), "rb") as fh:
        host = tomllib.load(fh)
    name, address = host["name"], host["address"]
    keys = parse_reg(os.path.join(hostdir, "registry.reg"))
    try:
        conn, dce = rrp_read.connect(address, 445, timeout, *creds)
    except Exception as exc:  # noqa: BLE001
        print("%s: cannot connect: %s" % (name, rrp_read.error_text(exc)))
        return 2
    reader = rrp_read.Reader(dce)
    bad = total = 0
    children = {}
    for key in keys:
        parent, _, leaf = key.rpartition("\\")
        children.setdefault(parent.upper(), set()).add(leaf.upper())
    for key, values in keys.items():
        for vname, (vtype, raw) in values.items():
            total += 1
            want = rrp_read.decode(vtype, raw)
            try:
                got = rrp_read.decode(*reader.with_key(key, lambda k: reader.query_value(k, vname)))
            except rrp_read.ReadError as exc:
                got = ("error", str(exc))
            if got != want:
                bad += 1
                print("%s: %s\\%s: file %s = %r, served %s = %r"
                      % (name, key, vname or "@", want[0], want[1], got[0], got[1]))
        try:
            served = {s.upper() for s in reader.with_key(key, reader.enum_keys)}
        except rrp_read.ReadError as exc:
            bad += 1
            print("%s: %s: cannot enumerate subkeys: %s" % (name, key, exc))
            continue
        missing = children.get(key.upper(), set()) - served
        if missing:
            bad += 1
            print("%s: %s: subkeys missing: %s" % (name, key, ", ".join(sorted(missing))))
    print("%s: %d values in %d keys checked, %d mismatches" % (name, total, len(keys), bad))
    return 1 if bad else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--credentials", required=True)
    ap.add_argument("--entry", default="default")
    ap.add_argument("--timeout", type=float, default=10.0)
    ap.add_argument("hosts", nargs="+", help="profile directories (tests/lab/hosts/<name>)")
    args = ap.parse_args()
    creds = rrp_read.load_credentials(args.credentials, args.entry)
    return max(check_host(h, creds, args.timeout) for h in args.hosts)


if __name__ == "__main__":
    sys.exit(main())

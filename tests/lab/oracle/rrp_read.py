#!/usr/bin/env python3
"""Independent MS-RRP (winreg) reader for the exsweep lab, built on impacket.

It is the oracle the Rust collector is compared against: it shares no code with
exsweep, only the lab host it reads.

Usage:
    python3 tests/lab/oracle/rrp_read.py --address 127.0.0.11 \
        --credentials target/lab/credentials.toml [--entry default] < request.json

Request (stdin, JSON):
    {"values":      [{"path": "HKLM\\SOFTWARE\\...", "value": "Name"}, ...],
     "subkeys":     ["HKLM\\SOFTWARE\\Microsoft\\Updates", ...],
     "enum_values": ["HKLM\\SOFTWARE\\Microsoft\\Exchange\\Setup", ...]}

Answer (stdout, JSON):
    {"address": ..., "values": [...], "subkeys": [...], "enum_values": [...],
     "elapsed_ms": <connect + auth + all reads>}

Each item carries either its result or "error": "not-found" | "access-denied" |
"<other text>". A failure before any read (connect, logon, pipe, bind) is
reported as a top-level "error" with exit status 2. The password is read from
the credentials file (TOML), never from the command line.
"""

import argparse
import json
import sys
import time
import tomllib

from impacket import system_errors
from impacket.dcerpc.v5 import rrp, transport
from impacket.dcerpc.v5.rpcrt import DCERPCException
from impacket.smbconnection import SMBConnection, SessionError

KEY_READ = 0x00020019

ROOTS = {
    "HKLM": rrp.hOpenLocalMachine,
    "HKEY_LOCAL_MACHINE": rrp.hOpenLocalMachine,
    "HKU": rrp.hOpenUsers,
    "HKEY_USERS": rrp.hOpenUsers,
    "HKCR": rrp.hOpenClassesRoot,
    "HKEY_CLASSES_ROOT": rrp.hOpenClassesRoot,
    "HKCU": rrp.hOpenCurrentUser,
    "HKEY_CURRENT_USER": rrp.hOpenCurrentUser,
}

TYPE_NAMES = {
    0: "REG_NONE",
    1: "REG_SZ",
    2: "REG_EXPAND_SZ",
    3: "REG_BINARY",
    4: "REG_DWORD",
    5: "REG_DWORD_BIG_ENDIAN",
    7: "REG_MULTI_SZ",
    11: "REG_QWORD",
}

ERROR_FILE_NOT_FOUND = 2
ERROR_ACCESS_DENIED = 5
ERROR_MORE_DATA = 234
ERROR_NO_MORE_ITEMS = 259
MAX_DATA = 1 << 20


class ReadError(Exception):
    """A per-item failure, already reduced to the text reported."""


def error_text(exc):
    code = None
    if hasattr(exc, "get_error_code"):
        try:
            code = exc.get_error_code()
        except Exception:  # noqa: BLE001 - some exceptions carry no code
            code = None
    if code == ERROR_FILE_NOT_FOUND:
        return "not-found"
    if code in (ERROR_ACCESS_DENIED, 0xC0000022):
        return "access-denied"
    if code is not None and code in system_errors.ERROR_MESSAGES:
        return "%s (0x%08x)" % (system_errors.ERROR_MESSAGES[code][0], code)
    return str(exc) or exc.__class__.__name__


def utf16(raw):
    if len(raw) % 2:
        raw = raw[:-1]
    return raw.decode("utf-16-le", errors="replace")


def decode(vtype, raw):
    """Return (type name, JSON-able data) for raw value bytes."""
    name = TYPE_NAMES.get(vtype, "REG_UNKNOWN(%d)" % vtype)
    if vtype in (1, 2):
        text = utf16(raw)
        if text.endswith("\x00"):
            text = text[:-1]
        return name, text
    if vtype == 7:
        parts = utf16(raw).split("\x00")
        while parts and parts[-1] == "":
            parts.pop()
        return name, parts
    if vtype == 4 and len(raw) == 4:
        return name, int.from_bytes(raw, "little")
    if vtype == 5 and len(raw) == 4:
        return name, int.from_bytes(raw, "big")
    if vtype == 11 and len(raw) == 8:
        return name, int.from_bytes(raw, "little")
    return name, raw.hex()


def split_path(path):
    root, _, sub = path.replace("/", "\\").partition("\\")
    opener = ROOTS.get(root.upper())
    if opener is None:
        raise ReadError("unknown root key %r" % root)
    return root.upper(), opener, sub.strip("\\")


class Reader:
    def __init__(self, dce):
        self.dce = dce
        self.roots = {}

    def root(self, name, opener):
        if name not in self.roots:
            self.roots[name] = opener(self.dce, KEY_READ)["phKey"]
        return self.roots[name]

    def open(self, path):
        name, opener, sub = split_path(path)
        try:
            root = self.root(name, opener)
            if not sub:
                return root, False
            resp = rrp.hBaseRegOpenKey(self.dce, root, sub, samDesired=KEY_READ)
            return resp["phkResult"], True
        except (DCERPCException, SessionError) as exc:
            raise ReadError(error_text(exc)) from exc

    def close(self, handle, owned):
        if owned:
            try:
                rrp.hBaseRegCloseKey(self.dce, handle)
            except (DCERPCException, SessionError):
                pass

    def query_value(self, key, value):
        size = 512
        while True:
            req = rrp.BaseRegQueryValue()
            req["hKey"] = key
            req["lpValueName"] = value + "\x00"
            req["lpType"] = 0
            req["lpData"] = b"\x00" * size
            req["lpcbData"] = size
            req["lpcbLen"] = size
            try:
                resp = self.dce.request(req)
            except DCERPCException as exc:
                if exc.get_error_code() == ERROR_MORE_DATA:
                    wanted = exc.get_packet()["lpcbData"]
                    if wanted <= size or wanted > MAX_DATA:
                        raise ReadError("value size %d refused" % wanted) from exc
                    size = wanted
                    continue
                raise
            length = resp["lpcbLen"]
            raw = b"".join(resp["lpData"])[:length] if resp["lpData"] else b""
            return resp["lpType"], raw

    def enum_keys(self, key):
        names = []
        index = 0
        while True:
            try:
                resp = rrp.hBaseRegEnumKey(self.dce, key, index)
            except DCERPCException as exc:
                if exc.get_error_code() == ERROR_NO_MORE_ITEMS:
                    return names
                raise
            names.append(resp["lpNameOut"].rstrip("\x00"))
            index += 1

    def enum_value_names(self, key):
        names = []
        index = 0
        while True:
            size = 256
            while True:
                req = rrp.BaseRegEnumValue()
                req["hKey"] = key
                req["dwIndex"] = index
                req.fields["lpValueNameIn"].fields["MaximumLength"] = 2 * 1024
                req.fields["lpValueNameIn"].fields["Data"].fields["Data"].fields["MaximumCount"] = 1024
                req["lpType"] = 0
                req["lpData"] = b"\x00" * size
                req["lpcbData"] = size
                req["lpcbLen"] = size
                try:
                    resp = self.dce.request(req)
                    break
                except DCERPCException as exc:
                    code = exc.get_error_code()
                    if code == ERROR_NO_MORE_ITEMS:
                        return names
                    if code == ERROR_MORE_DATA:
                        # Samba leaves lpcbData at the caller's size on EnumValue (seen in
                        # the winreg capture), so it cannot say how much it needs: grow.
                        wanted = exc.get_packet()["lpcbData"]
                        if wanted <= size:
                            wanted = size * 4
                        if wanted > MAX_DATA:
                            raise ReadError("value size %d refused" % wanted) from exc
                        size = wanted
                        continue
                    raise
            names.append(resp["lpValueNameOut"].rstrip("\x00"))
            index += 1

    def with_key(self, path, fn):
        key, owned = self.open(path)
        try:
            return fn(key)
        except ReadError:
            raise
        except (DCERPCException, SessionError) as exc:
            raise ReadError(error_text(exc)) from exc
        finally:
            self.close(key, owned)


def load_credentials(path, entry):
    with open(path, "rb") as fh:
        doc = tomllib.load(fh)
    if entry not in doc:
        raise SystemExit("rrp_read: no [%s] entry in %s" % (entry, path))
    sec = doc[entry]
    return sec.get("domain", ""), sec["user"], sec["password"]


def connect(address, port, timeout, domain, user, password):
    conn = SMBConnection(address, address, sess_port=port, timeout=timeout)
    conn.login(user, password, domain)
    rpc = transport.SMBTransport(address, port, filename=r"\winreg", smb_connection=conn)
    dce = rpc.get_dce_rpc()
    dce.connect()
    dce.bind(rrp.MSRPC_UUID_RRP)
    return conn, dce


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--address", required=True)
    ap.add_argument("--credentials", required=True, help="TOML file with [entry] domain/user/password")
    ap.add_argument("--entry", default="default")
    ap.add_argument("--port", type=int, default=445)
    ap.add_argument("--timeout", type=float, default=10.0)
    args = ap.parse_args()

    domain, user, password = load_credentials(args.credentials, args.entry)
    request = json.load(sys.stdin)
    out = {"address": args.address, "values": [], "subkeys": [], "enum_values": []}

    start = time.perf_counter()
    try:
        conn, dce = connect(args.address, args.port, args.timeout, domain, user, password)
    except Exception as exc:  # noqa: BLE001 - any failure here ends the run
        out["error"] = "connect: " + error_text(exc)
        out["elapsed_ms"] = round((time.perf_counter() - start) * 1000, 1)
        json.dump(out, sys.stdout, indent=1)
        sys.stdout.write("\n")
        return 2

    reader = Reader(dce)
    for item in request.get("values", []):
        path, value = item["path"], item["value"]
        entry = {"path": path, "value": value}
        try:
            vtype, raw = reader.with_key(path, lambda k: reader.query_value(k, value))
            entry["type"], entry["data"] = decode(vtype, raw)
        except ReadError as exc:
            entry["error"] = str(exc)
        out["values"].append(entry)

    # (request field, answer field, enumeration): subkey names and value names alike.
    for field, answer, enumerate_key in (("subkeys", "subkeys", reader.enum_keys),
                                         ("enum_values", "values", reader.enum_value_names)):
        for path in request.get(field, []):
            entry = {"path": path}
            try:
                entry[answer] = reader.with_key(path, enumerate_key)
            except ReadError as exc:
                entry["error"] = str(exc)
            out[field].append(entry)

    out["elapsed_ms"] = round((time.perf_counter() - start) * 1000, 1)
    for handle in reader.roots.values():
        reader.close(handle, True)
    try:
        dce.disconnect()
        conn.logoff()
    except Exception:  # noqa: BLE001 - teardown errors do not change the reads
        pass
    json.dump(out, sys.stdout, indent=1)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

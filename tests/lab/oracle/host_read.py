#!/usr/bin/env python3
"""Independent reader of a lab host's files, services and SMB identity, built on impacket and
pefile: the oracle for exsweep's file versions, svcctl states, NTLM target information and
SMB1 probe. It shares no code with exsweep, only the lab host it reads.

Usage:
    python3 tests/lab/oracle/host_read.py --address 127.0.0.11 \
        --credentials target/lab/credentials.toml < request.json

Request (stdin, JSON):
    {"files": [{"share": "C$", "path": "Program Files\\\\Exchsrvr\\\\bin\\\\store.exe"}, ...],
     "services": true, "identity": true}

Answer (stdout, JSON):
    {"files": [{"share", "path", "file_version", "product_version", "version_text", "machine",
                "size"} or {"error": "not-found" | "no-version" | text}],
     "services": [{"name", "display_name", "state"}] or {"error": ...},
     "identity": {"server_name", "server_domain", "server_dns_host", "server_dns_domain",
                  "os_major", "os_minor", "os_build", "smb1_accepted"}}

Files are fetched whole with impacket's getFile and parsed with pefile; services are listed
with impacket's scmr REnumServicesStatusW; the identity comes from impacket's logon (its
NTLM CHALLENGE) and an impacket SMB1 connection attempt. The password is read from the
credentials file, never from the command line.
"""

import argparse
import io
import json
import sys
import tomllib

import pefile
from impacket.dcerpc.v5 import scmr, transport
from impacket.smb import SMB_DIALECT
from impacket.smbconnection import SMBConnection

STATES = {1: "stopped", 2: "start-pending", 3: "stop-pending", 4: "running",
          5: "continue-pending", 6: "pause-pending", 7: "paused"}
MACHINES = {0x14C: "i386", 0x8664: "x64", 0xAA64: "arm64"}


def load_credentials(path, entry):
    with open(path, "rb") as fh:
        sec = tomllib.load(fh)[entry]
    return sec.get("domain", ""), sec["user"], sec["password"]


def dotted(ms, ls):
    return "%d.%d.%d.%d" % (ms >> 16, ms & 0xFFFF, ls >> 16, ls & 0xFFFF)


def file_version(conn, share, path):
    buf = io.BytesIO()
    try:
        conn.getFile(share, path, buf.write)
    except Exception as exc:  # noqa: BLE001
        text = str(exc)
        if "OBJECT_NAME_NOT_FOUND" in text or "OBJECT_PATH_NOT_FOUND" in text:
            return {"error": "not-found"}
        return {"error": text}
    data = buf.getvalue()
    pe = pefile.PE(data=data, fast_load=True)
    pe.parse_data_directories(directories=[pefile.DIRECTORY_ENTRY["IMAGE_DIRECTORY_ENTRY_RESOURCE"]])
    out = {"size": len(data), "machine": MACHINES.get(pe.FILE_HEADER.Machine, "other")}
    fixed = getattr(pe, "VS_FIXEDFILEINFO", None)
    if not fixed:
        out["error"] = "no-version"
        return out
    f = fixed[0]
    out["file_version"] = dotted(f.FileVersionMS, f.FileVersionLS)
    out["product_version"] = dotted(f.ProductVersionMS, f.ProductVersionLS)
    for info in getattr(pe, "FileInfo", [[]])[0]:
        if getattr(info, "Key", b"") == b"StringFileInfo":
            for table in info.StringTable:
                text = table.entries.get(b"FileVersion")
                if text is not None and "version_text" not in out:
                    out["version_text"] = text.decode("utf-8")
    return out


def services(address, port, conn):
    rpc = transport.SMBTransport(address, port, filename=r"\svcctl", smb_connection=conn)
    dce = rpc.get_dce_rpc()
    dce.connect()
    dce.bind(scmr.MSRPC_UUID_SCMR)
    scm = scmr.hROpenSCManagerW(dce)["lpScHandle"]
    win32 = scmr.SERVICE_WIN32_OWN_PROCESS | scmr.SERVICE_WIN32_SHARE_PROCESS
    listed = scmr.hREnumServicesStatusW(dce, scm, win32, scmr.SERVICE_STATE_ALL)
    scmr.hRCloseServiceHandle(dce, scm)
    dce.disconnect()
    return [{"name": s["lpServiceName"][:-1], "display_name": s["lpDisplayName"][:-1],
             "state": STATES.get(s["ServiceStatus"]["dwCurrentState"], "unknown")} for s in listed]


def smb1_accepted(address, port, timeout):
    try:
        conn = SMBConnection(address, address, sess_port=port, timeout=timeout, preferredDialect=SMB_DIALECT)
    except Exception:  # noqa: BLE001 - refused in any way
        return False
    conn.close()
    return True


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--address", required=True)
    ap.add_argument("--credentials", required=True)
    ap.add_argument("--entry", default="default")
    ap.add_argument("--port", type=int, default=445)
    ap.add_argument("--timeout", type=float, default=10.0)
    args = ap.parse_args()
    domain, user, password = load_credentials(args.credentials, args.entry)
    request = json.load(sys.stdin)

    conn = SMBConnection(args.address, args.address, sess_port=args.port, timeout=args.timeout)
    conn.login(user, password, domain)
    out = {"address": args.address}
    out["files"] = [dict(item, **file_version(conn, item["share"], item["path"])) for item in request.get("files", [])]
    if request.get("services"):
        try:
            out["services"] = services(args.address, args.port, conn)
        except Exception as exc:  # noqa: BLE001
            out["services"] = {"error": str(exc)}
    if request.get("identity"):
        out["identity"] = {
            "server_name": conn.getServerName(),
            "server_domain": conn.getServerDomain(),
            "server_dns_host": conn.getServerDNSHostName(),
            "server_dns_domain": conn.getServerDNSDomainName(),
            "os_major": conn.getServerOSMajor(),
            "os_minor": conn.getServerOSMinor(),
            "os_build": conn.getServerOSBuild(),
            "smb1_accepted": smb1_accepted(args.address, args.port, args.timeout),
        }
    conn.close()
    json.dump(out, sys.stdout, indent=1)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

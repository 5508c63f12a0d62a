#!/usr/bin/env python3
"""impacket client driving the svcctl (MS-SCMR) exchange that capture.sh records.

usage: capture_client.py LABELS_OUT [PASSWORD]

Writes a label list (one line per RPC exchange, in wire order) to LABELS_OUT;
../winreg/extract.py uses it to name the PDUs it cuts out of the capture.
Prints what impacket decoded (client.txt), a second opinion beside tshark/ndrdump.
Only ever talks to 127.0.0.98 (loopback alias of the throwaway smbd).

Session 1, admin account capuser (BUILTIN\\Administrators via groupmap):
  bind; ROpenSCManagerW(\\\\127.0.0.98, NULL, CONNECT|ENUMERATE_SERVICE);
  REnumServicesStatusW(SERVICE_WIN32, SERVICE_STATE_ALL) with cbBufSize 0
  (resume NULL), cbBufSize 64 (resume -> 0), then cbBufSize = pcbBytesNeeded
  (resume -> 0), cbBufSize 8192 (resume -> 0), and once more through
  impacket's hREnumServicesStatusW (cbBufSize 0, then the size returned);
  per service returned: ROpenServiceW(QUERY_CONFIG|QUERY_STATUS),
  RQueryServiceStatus, RQueryServiceConfigW with cbBufSize 0 then
  pcbBytesNeeded, RCloseServiceHandle; ROpenServiceW("NoSuchService");
  RCloseServiceHandle(SCM).
Session 2, non-admin account capplain: bind; the same ROpenSCManagerW;
  REnumServicesStatusW with cbBufSize 0, then the right size; ROpenServiceW +
  RQueryServiceStatus on RemoteRegistry; RCloseServiceHandle x2;
  ROpenSCManagerW asking SC_MANAGER_ALL_ACCESS.
"""
import sys
from impacket.smbconnection import SMBConnection
from impacket.dcerpc.v5 import transport, scmr, rpcrt
from impacket.dcerpc.v5.dtypes import NULL

HOST = "127.0.0.98"
PASS = sys.argv[2] if len(sys.argv) > 2 else "Capture-Pass-1"
MACHINE = "\\\\" + HOST

SC_MANAGER_CONNECT = 0x0001
SC_MANAGER_ENUMERATE_SERVICE = 0x0004
SC_MANAGER_ALL_ACCESS = 0x000F003F
SERVICE_QUERY_CONFIG = 0x0001
SERVICE_QUERY_STATUS = 0x0004
SERVICE_WIN32 = 0x00000030
SERVICE_STATE_ALL = 0x00000003

labels = []
current = [None, 0]


def lab(name):
    """Set the label for the next RPC exchange."""
    current[0], current[1] = name, 0


def record():
    labels.append(current[0] + ("-retry" if current[1] else ""))
    current[1] += 1


_orig_request = rpcrt.DCERPC_v5.request


def _request(self, *a, **kw):
    record()
    return _orig_request(self, *a, **kw)


rpcrt.DCERPC_v5.request = _request


def connect(user, tag):
    smb = SMBConnection(HOST, HOST, sess_port=445)
    smb.login(user, PASS, "EXLAB")
    print("%s: dialect 0x%x signing=%s" % (user, smb.getDialect(), smb.isSigningRequired()))
    rpc = transport.DCERPCTransportFactory(r"ncacn_np:%s[\pipe\svcctl]" % HOST)
    rpc.set_smb_connection(smb)
    dce = rpc.get_dce_rpc()
    dce.connect()
    lab(tag + "bind")
    record()
    dce.bind(scmr.MSRPC_UUID_SCMR)
    return smb, dce


def open_scm(dce, tag, access):
    lab(tag)
    req = scmr.ROpenSCManagerW()
    req["lpMachineName"] = MACHINE + "\x00"
    req["lpDatabaseName"] = NULL
    req["dwDesiredAccess"] = access
    resp = dce.request(req, checkError=False)
    print("%s: status %d handle %s" % (tag, resp["ErrorCode"], bytes(resp["lpScHandle"]).hex()))
    return resp


def resume_str(resp):
    p = resp.fields["lpResumeIndex"]
    return "NULL" if p.fields["ReferentID"] == 0 else str(p["Data"])


def enum(dce, tag, h, size, resume):
    lab(tag)
    req = scmr.REnumServicesStatusW()
    req["hSCManager"] = h
    req["dwServiceType"] = SERVICE_WIN32
    req["dwServiceState"] = SERVICE_STATE_ALL
    req["cbBufSize"] = size
    req["lpResumeIndex"] = NULL if resume is None else resume
    resp = dce.request(req, checkError=False)
    buf = b"".join(resp["lpBuffer"])
    print("%s: status %d cbBufSize %d -> len(lpBuffer) %d pcbBytesNeeded %d "
          "lpServicesReturned %d lpResumeIndex %s" % (
              tag, resp["ErrorCode"], size, len(buf), resp["pcbBytesNeeded"],
              resp["lpServicesReturned"],
              resume_str(resp)))
    return resp, buf


def parse_enum_buffer(buf, count):
    """The buffer as a client sees it: count x 36-byte ENUM_SERVICE_STATUSW
    records whose two string 'pointers' are byte offsets from the buffer start."""
    def wstr(off):
        end = off
        while buf[end:end + 2] != b"\x00\x00":
            end += 2
        return buf[off:end].decode("utf-16-le")
    out = []
    for i in range(count):
        rec = buf[36 * i: 36 * (i + 1)]
        f = [int.from_bytes(rec[k:k + 4], "little") for k in range(0, 36, 4)]
        out.append((wstr(f[0]), wstr(f[1]), f[0], f[1], f[2:]))
    return out


# ---- session 1: admin ----
smb, dce = connect("capuser", "")
scm = open_scm(dce, "openscmanager", SC_MANAGER_CONNECT | SC_MANAGER_ENUMERATE_SERVICE)["lpScHandle"]
r, _ = enum(dce, "enumservices-size0", scm, 0, None)
need = r["pcbBytesNeeded"]
enum(dce, "enumservices-small", scm, 64, 0)
r, buf = enum(dce, "enumservices", scm, need, 0)
services = parse_enum_buffer(buf, r["lpServicesReturned"])
for name, disp, o1, o2, st in services:
    print("  service %-15s display %-40r offsets %d,%d status %s" % (name, disp, o1, o2,
          " ".join("%#x" % v for v in st)))
# A generous buffer up front (what a one-round-trip client does): 8192 bytes,
# so the response is also a 2-fragment PDU.
r, big = enum(dce, "enumservices-large", scm, 8192, 0)
print("  large buffer: first %d bytes identical to the exact-size buffer: %s; rest all zero: %s" % (
    len(buf), big[:len(buf)] == buf, big[len(buf):] == bytes(len(big) - len(buf))))
# impacket's own helper (cbBufSize 0, then pcbBytesNeeded) and its own parser
lab("enumservices-impacket")
for rec in scmr.hREnumServicesStatusW(dce, scm, SERVICE_WIN32, SERVICE_STATE_ALL):
    print("  impacket: %r %r type %#x state %d" % (rec["lpServiceName"], rec["lpDisplayName"],
          rec["ServiceStatus"]["dwServiceType"], rec["ServiceStatus"]["dwCurrentState"]))

for name, disp, _o1, _o2, _st in services:
    tag = name.lower()
    lab("openservice-" + tag)
    req = scmr.ROpenServiceW()
    req["hSCManager"] = scm
    req["lpServiceName"] = name + "\x00"
    req["dwDesiredAccess"] = SERVICE_QUERY_CONFIG | SERVICE_QUERY_STATUS
    resp = dce.request(req, checkError=False)
    print("openservice %s: status %d" % (name, resp["ErrorCode"]))
    hs = resp["lpServiceHandle"]
    lab("querystatus-" + tag)
    q = scmr.RQueryServiceStatus()
    q["hService"] = hs
    resp = dce.request(q, checkError=False)
    s = resp["lpServiceStatus"]
    print("  querystatus: status %d type %#x state %d controls %#x win32exit %d svcexit %d "
          "checkpoint %d waithint %d" % (resp["ErrorCode"], s["dwServiceType"], s["dwCurrentState"],
                                         s["dwControlsAccepted"], s["dwWin32ExitCode"],
                                         s["dwServiceSpecificExitCode"], s["dwCheckPoint"],
                                         s["dwWaitHint"]))
    lab("queryconfig-" + tag + "-size0")
    q = scmr.RQueryServiceConfigW()
    q["hService"] = hs
    q["cbBufSize"] = 0
    resp = dce.request(q, checkError=False)
    need = resp["pcbBytesNeeded"]
    print("  queryconfig size0: status %d pcbBytesNeeded %d" % (resp["ErrorCode"], need))
    lab("queryconfig-" + tag)
    q["cbBufSize"] = need
    resp = dce.request(q, checkError=False)
    c = resp["lpServiceConfig"]
    print("  queryconfig: status %d pcbBytesNeeded %d type %#x start %d errctl %d path %r group %r "
          "tag %d deps %r startname %r display %r" % (
              resp["ErrorCode"], resp["pcbBytesNeeded"], c["dwServiceType"], c["dwStartType"],
              c["dwErrorControl"], c["lpBinaryPathName"], c["lpLoadOrderGroup"], c["dwTagId"],
              c["lpDependencies"], c["lpServiceStartName"], c["lpDisplayName"]))
    lab("closeservice-" + tag)
    c = scmr.RCloseServiceHandle()
    c["hSCObject"] = hs
    resp = dce.request(c, checkError=False)
    print("  closeservice: status %d" % resp["ErrorCode"])

lab("openservice-missing")
req = scmr.ROpenServiceW()
req["hSCManager"] = scm
req["lpServiceName"] = "NoSuchService\x00"
req["dwDesiredAccess"] = SERVICE_QUERY_CONFIG | SERVICE_QUERY_STATUS
resp = dce.request(req, checkError=False)
print("openservice NoSuchService: status %d handle %s" % (resp["ErrorCode"],
                                                        bytes(resp["lpServiceHandle"]).hex()))

lab("closescm")
c = scmr.RCloseServiceHandle()
c["hSCObject"] = scm
resp = dce.request(c, checkError=False)
print("closescm: status %d" % resp["ErrorCode"])
dce.disconnect()
smb.logoff()

# ---- session 2: non-admin ----
smb, dce = connect("capplain", "nonadmin-")
r = open_scm(dce, "nonadmin-openscmanager", SC_MANAGER_CONNECT | SC_MANAGER_ENUMERATE_SERVICE)
scm = r["lpScHandle"]
if r["ErrorCode"] == 0:
    r, _ = enum(dce, "nonadmin-enumservices-size0", scm, 0, None)
    r, buf = enum(dce, "nonadmin-enumservices", scm, r["pcbBytesNeeded"], 0)
    for name, disp, o1, o2, st in parse_enum_buffer(buf, r["lpServicesReturned"]):
        print("  service %-15s display %-40r offsets %d,%d status %s" % (
            name, disp, o1, o2, " ".join("%#x" % v for v in st)))
    lab("nonadmin-openservice-remoteregistry")
    req = scmr.ROpenServiceW()
    req["hSCManager"] = scm
    req["lpServiceName"] = "RemoteRegistry\x00"
    req["dwDesiredAccess"] = SERVICE_QUERY_CONFIG | SERVICE_QUERY_STATUS
    resp = dce.request(req, checkError=False)
    print("nonadmin openservice RemoteRegistry: status %d" % resp["ErrorCode"])
    hs = resp["lpServiceHandle"]
    if resp["ErrorCode"] == 0:
        lab("nonadmin-querystatus-remoteregistry")
        q = scmr.RQueryServiceStatus()
        q["hService"] = hs
        resp = dce.request(q, checkError=False)
        s = resp["lpServiceStatus"]
        print("  querystatus: status %d type %#x state %d controls %#x" % (
            resp["ErrorCode"], s["dwServiceType"], s["dwCurrentState"], s["dwControlsAccepted"]))
        lab("nonadmin-closeservice-remoteregistry")
        c = scmr.RCloseServiceHandle()
        c["hSCObject"] = hs
        print("  closeservice: status %d" % dce.request(c, checkError=False)["ErrorCode"])
    lab("nonadmin-closescm")
    c = scmr.RCloseServiceHandle()
    c["hSCObject"] = scm
    print("nonadmin closescm: status %d" % dce.request(c, checkError=False)["ErrorCode"])
open_scm(dce, "nonadmin-openscmanager-allaccess", SC_MANAGER_ALL_ACCESS)
dce.disconnect()
smb.logoff()

with open(sys.argv[1], "w") as f:
    f.write("\n".join(labels) + "\n")

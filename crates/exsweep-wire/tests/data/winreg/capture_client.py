#!/usr/bin/env python3
"""impacket client driving the winreg exchange that capture.sh records.

Writes a label list (one line per RPC exchange, in wire order) to argv[1];
extract.py uses it to name the PDUs it cuts out of the capture.
Only ever talks to 127.0.0.99 (loopback alias of the throwaway smbd).
"""
import sys
from impacket.smbconnection import SMBConnection
from impacket.dcerpc.v5 import transport, rrp, rpcrt
from impacket.dcerpc.v5.rpcrt import DCERPCException
from impacket.uuid import uuidtup_to_bin

HOST = "127.0.0.99"
USER, PASS = "capuser", sys.argv[2] if len(sys.argv) > 2 else "Capture-Pass-1"
KEY = "SOFTWARE\\ExsweepCapture"

labels = []
current = [None, 0]


def lab(name):
    """Set the label for the next RPC exchange(s)."""
    current[0], current[1] = name, 0


def record():
    # one entry per request actually sent; repeats (impacket's own
    # ERROR_MORE_DATA retry) get a "-retry" suffix
    labels.append(current[0] + ("-retry" if current[1] else ""))
    current[1] += 1


_orig_request = rpcrt.DCERPC_v5.request


def _request(self, *a, **kw):
    record()
    return _orig_request(self, *a, **kw)


rpcrt.DCERPC_v5.request = _request


smb = SMBConnection(HOST, HOST, sess_port=445)
smb.login(USER, PASS, "EXLAB")
print("dialect 0x%x signing=%s" % (smb.getDialect(), smb.isSigningRequired()))

rpc = transport.DCERPCTransportFactory(r"ncacn_np:%s[\pipe\winreg]" % HOST)
rpc.set_smb_connection(smb)
dce = rpc.get_dce_rpc()
dce.connect()
lab("bind")
record()
dce.bind(rrp.MSRPC_UUID_RRP)

lab("openlocalmachine")
hklm = rrp.hOpenLocalMachine(dce)["phKey"]

lab("openkey")
hkey = rrp.hBaseRegOpenKey(dce, hklm, KEY)["phkResult"]

VALUES = [("sz", "SzValue"), ("expandsz", "ExpandSzValue"), ("multisz", "MultiSzValue"),
          ("dword", "DwordValue"), ("dwordbe", "DwordBEValue"), ("qword", "QwordValue"),
          ("binary", "BinaryValue"), ("none", "NoneValue"), ("nonascii", "Größe-Ü€")]
for tag, name in VALUES:
    lab("queryvalue-" + tag)
    t, d = rrp.hBaseRegQueryValue(dce, hkey, name)
    print(tag, t, repr(d)[:60])

# Deliberately too-small buffer -> ERROR_MORE_DATA (234), then retry with the size returned.
lab("queryvalue-moredata")
req = rrp.BaseRegQueryValue()
req["hKey"] = hkey
req["lpValueName"] = "SzValue\x00"
req["lpData"] = b" " * 4
req["lpcbData"] = 4
req["lpcbLen"] = 4
resp = dce.request(req, checkError=False)
need = resp["lpcbData"]
print("moredata status", resp["ErrorCode"], "need", need)
req["lpData"] = b" " * need
req["lpcbData"] = need
req["lpcbLen"] = need
resp = dce.request(req)

# Big value with a buffer big enough up front: multi-fragment response.
lab("queryvalue-big")
t, d = rrp.hBaseRegQueryValue(dce, hkey, "BigBinary", dataLen=10000)
print("big", t, len(d))

lab("queryvalue-missing")
try:
    rrp.hBaseRegQueryValue(dce, hkey, "NoSuchValue")
except rrp.DCERPCSessionError as e:
    print("missing value ->", e.get_error_code())

lab("openkey-missing")
try:
    rrp.hBaseRegOpenKey(dce, hklm, KEY + "\\NoSuchKey")
except rrp.DCERPCSessionError as e:
    print("missing key ->", e.get_error_code())

for i in range(3):
    lab("enumkey-%d" % i)
    try:
        r = rrp.hBaseRegEnumKey(dce, hkey, i)
        print("enumkey", i, r["lpNameOut"])
    except rrp.DCERPCSessionError as e:
        print("enumkey", i, "->", e.get_error_code())



def enum_value(i, data_len):
    req = rrp.BaseRegEnumValue()
    req["hKey"] = hkey
    req["dwIndex"] = i
    # same request shape as impacket's hBaseRegEnumValue
    req.fields["lpValueNameIn"].fields["MaximumLength"] = data_len * 2
    req.fields["lpValueNameIn"].fields["Data"].fields["Data"].fields["MaximumCount"] = data_len
    req["lpData"] = b" " * data_len
    req["lpcbData"] = data_len
    req["lpcbLen"] = data_len
    return dce.request(req, checkError=False)


# EnumValue 0..n.  impacket's hBaseRegEnumValue retries ERROR_MORE_DATA with
# the returned lpcbData, but Samba leaves lpcbData at the caller's value on
# EnumValue/ERROR_MORE_DATA, so retry with a fixed larger buffer instead.
i = 0
while True:
    lab("enumvalue-%02d" % i)
    r = enum_value(i, 256)
    if r["ErrorCode"] == 234:
        print("enumvalue", i, "-> 234, lpcbData", r["lpcbData"])
        r = enum_value(i, 10240)
    if r["ErrorCode"] != 0:
        print("enumvalue", i, "->", r["ErrorCode"])
        break
    print("enumvalue", i, r["lpValueNameOut"], r["lpType"], r["lpcbData"])
    i += 1

lab("closekey-subkey")
rrp.hBaseRegCloseKey(dce, hkey)
lab("closekey-hklm")
rrp.hBaseRegCloseKey(dce, hklm)
dce.disconnect()

# Bind with a wrong interface version on a fresh pipe: Samba answers with a
# bind_ack whose context result is provider_rejection.
rpc2 = transport.DCERPCTransportFactory(r"ncacn_np:%s[\pipe\winreg]" % HOST)
rpc2.set_smb_connection(smb)
dce2 = rpc2.get_dce_rpc()
dce2.connect()
lab("bind-badversion")
record()
try:
    dce2.bind(uuidtup_to_bin(("338CD001-2244-31F1-AAAA-900038001003", "2.0")))
    print("bad bind unexpectedly accepted")
except Exception as e:
    print("bad bind ->", e)
dce2.disconnect()

# Bind with an empty presentation-context list: Samba answers bind_nak.
# (A bind naming an unknown assoc_group just gets the pipe disconnected by
# samba-dcerpcd, no PDU, so that case is not recorded.)
rpc3 = transport.DCERPCTransportFactory(r"ncacn_np:%s[\pipe\winreg]" % HOST)
rpc3.set_smb_connection(smb)
rpc3.connect()
lab("bind-noctx")
record()
bind = rpcrt.MSRPCBind()
bind["ctx_num"] = 0
pkt = rpcrt.MSRPCHeader()
pkt["type"] = rpcrt.MSRPC_BIND
pkt["pduData"] = bind.getData()
pkt["call_id"] = 1
rpc3.send(pkt.get_packet())
ans = rpc3.recv()
print("empty-context bind -> ptype", ans[2])
rpc3.disconnect()
smb.logoff()

with open(sys.argv[1], "w") as f:
    f.write("\n".join(labels) + "\n")

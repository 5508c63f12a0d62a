#!/usr/bin/env python3
"""Records LsarOpenPolicy2, LsarQueryInformationPolicy (PolicyAuditEventsInformation) and
LsarClose between impacket and a lab host's Samba, with impacket's own reading of the audit
policy, as `name hex-or-value` lines for tests/audit_policy.rs:

    python3 record_audit_policy.py CREDENTIALS.toml ADDRESS > audit-policy.txt

Whole stubs are recorded, the policy handle of this session included (the tests take it from
the recorded answer); `auditing_mode` and `options` are impacket's reading of the answer.
"""
import sys
import tomllib

from impacket.dcerpc.v5 import lsad, transport

creds, address = sys.argv[1], sys.argv[2]
c = tomllib.load(open(creds, "rb"))["default"]
t = transport.DCERPCTransportFactory(r"ncacn_np:%s[\pipe\lsarpc]" % address)
t.set_credentials(c["user"], c["password"], c.get("domain", ""))
dce = t.get_dce_rpc()
dce.connect()
dce.bind(lsad.MSRPC_UUID_LSAD)

def exchange(name, req):
    dce.call(req.opnum, req)
    raw = dce.recv()
    print(name + "-request", req.getData().hex())
    print(name + "-response", raw.hex())
    return raw

req = lsad.LsarOpenPolicy2()
req["SystemName"] = lsad.NULL
req["ObjectAttributes"]["RootDirectory"] = lsad.NULL
req["ObjectAttributes"]["ObjectName"] = lsad.NULL
req["ObjectAttributes"]["SecurityDescriptor"] = lsad.NULL
req["ObjectAttributes"]["SecurityQualityOfService"] = lsad.NULL
req["DesiredAccess"] = lsad.POLICY_VIEW_AUDIT_INFORMATION
raw = exchange("open", req)
handle = lsad.LsarOpenPolicy2Response(raw)["PolicyHandle"]

req = lsad.LsarQueryInformationPolicy()
req["PolicyHandle"] = handle
req["InformationClass"] = lsad.POLICY_INFORMATION_CLASS.PolicyAuditEventsInformation
raw = exchange("query", req)
info = lsad.LsarQueryInformationPolicyResponse(raw)["PolicyInformation"]["PolicyAuditEventsInfo"]
print("auditing_mode", info["AuditingMode"])
print("options", " ".join(str(int(o["Data"]) if hasattr(o, "fields") else o) for o in info["EventAuditingOptions"]))

req = lsad.LsarClose()
req["ObjectHandle"] = handle
exchange("close", req)

#!/usr/bin/env python3
"""Records one BaseRegGetKeySecurity (DACL) exchange between impacket and a lab host's Samba,
and impacket's own reading of the descriptor, as `name value` lines for
tests/key_security.rs:

    python3 record_key_security.py CREDENTIALS.toml ADDRESS 'KEY\\PATH' > key-security.txt

request: the stub impacket builds (descriptor pointer null, 4096 bytes offered);
response: the stub Samba answers, raw; owner, group: SIDs; ace: type flags mask SID, in order.
"""
import sys
import tomllib

from impacket.dcerpc.v5 import rrp, transport
from impacket.ldap.ldaptypes import SR_SECURITY_DESCRIPTOR

creds, address, path = sys.argv[1], sys.argv[2], sys.argv[3]
c = tomllib.load(open(creds, "rb"))["default"]
t = transport.DCERPCTransportFactory(r"ncacn_np:%s[\pipe\winreg]" % address)
t.set_credentials(c["user"], c["password"], c.get("domain", ""))
dce = t.get_dce_rpc()
dce.connect()
dce.bind(rrp.MSRPC_UUID_RRP)
hklm = rrp.hOpenLocalMachine(dce)["phKey"]
key = rrp.hBaseRegOpenKey(dce, hklm, path, samDesired=rrp.KEY_READ)["phkResult"]
req = rrp.BaseRegGetKeySecurity()
req["hKey"] = key
req["SecurityInformation"] = 4
req["pRpcSecurityDescriptorIn"]["lpSecurityDescriptor"] = rrp.NULL
req["pRpcSecurityDescriptorIn"]["cbInSecurityDescriptor"] = 4096
req["pRpcSecurityDescriptorIn"]["cbOutSecurityDescriptor"] = 0
dce.call(req.opnum, req)
raw = dce.recv()
resp = rrp.BaseRegGetKeySecurityResponse(raw)
sd = SR_SECURITY_DESCRIPTOR()
sd.fromString(b"".join(resp["pRpcSecurityDescriptorOut"]["lpSecurityDescriptor"]))
print("key", path)
print("request", req.getData()[20:].hex())  # after the 20-byte handle, which differs per session
print("response", raw.hex())
print("owner", sd["OwnerSid"].formatCanonical() if sd["OwnerSid"] else "-")
print("group", sd["GroupSid"].formatCanonical() if sd["GroupSid"] else "-")
for ace in sd["Dacl"].aces:
    print("ace", ace["AceType"], ace["AceFlags"], "0x%08x" % ace["Ace"]["Mask"]["Mask"], ace["Ace"]["Sid"].formatCanonical())

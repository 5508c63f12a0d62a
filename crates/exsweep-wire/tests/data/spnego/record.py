#!/usr/bin/env python3
"""Records one SPNEGO/NTLM logon between pyspnego's initiator and acceptor (NTLM only, no
Kerberos), one token per line as `name hex`: what tests/spnego_tokens.rs reads.

    python3 record.py > pyspnego-logon.txt
"""
import os
import tempfile

import spnego

users = os.path.join(tempfile.mkdtemp(), "users")
with open(users, "w") as fh:
    fh.write("EXLAB:exscan:Lab-Passw0rd!\n")
os.environ["NTLM_USER_FILE"] = users
client = spnego.client("EXLAB\\exscan", "Lab-Passw0rd!", hostname="ex1", service="http", protocol="negotiate")
server = spnego.server(hostname="ex1", service="http", protocol="negotiate")
init = client.step()
challenge = server.step(init)
authenticate = client.step(challenge)
final = server.step(authenticate)
client.step(final)
assert client.complete and server.complete
for name, token in (("init", init), ("challenge", challenge), ("authenticate", authenticate), ("final", final)):
    print(name, token.hex())

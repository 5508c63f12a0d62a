#!/usr/bin/env python3
"""Raw-socket SMB probes whose answers capture.sh records.

usage: smb_probe.py OUT.json ADDR LABEL [ADDR LABEL ...]

For each server ADDR (named LABEL in file names) it opens one TCP connection
per probe to ADDR:445 and sends hand-made messages (every byte is built here,
nothing comes from an SMB library), each in one NetBIOS session message
(4-byte header: 0x00 + 24-bit big-endian length):

  smb2-311       SMB2 NEGOTIATE, dialects 0x0202 0x0210 0x0300 0x0302 0x0311,
                 with PREAUTH_INTEGRITY (SHA-512, 32-byte salt) and ENCRYPTION
                 (AES-128-GCM, AES-128-CCM) negotiate contexts; then
                 SESSION_SETUP carrying SPNEGO NegTokenInit(NTLMSSP NEGOTIATE)
  smb2-202       SMB2 NEGOTIATE, dialect 0x0202 only; then SESSION_SETUP
                 carrying a bare NTLMSSP NEGOTIATE (no SPNEGO)
  smb1-nt1       SMB1 NEGOTIATE, dialect "NT LM 0.12" only, FLAGS2 with
                 EXTENDED_SECURITY; if the server answers with SMB1, also
                 SESSION_SETUP_ANDX carrying SPNEGO NegTokenInit(NTLMSSP NEGOTIATE)
  smb1-nt1-noext SMB1 NEGOTIATE, "NT LM 0.12" only, FLAGS2 without EXTENDED_SECURITY
  smb1-multi     SMB1 NEGOTIATE, "NT LM 0.12", "SMB 2.002", "SMB 2.???"; if the
                 answer is an SMB2 NEGOTIATE response with dialect 0x02FF, the
                 smb2-311 NEGOTIATE again (MessageId 1)
  smb1-nt1-2002  SMB1 NEGOTIATE, "NT LM 0.12", "SMB 2.002"

Every message sent and every message received (without the NetBIOS header),
with the client port, is written to OUT.json in order; a connection the
server closes or resets instead of answering is recorded as such, and after
the last answer the probe waits 1.5 s to see whether the server closes the
connection by itself (FIN), resets it, or keeps it open.
extract.py cuts the same messages out of the pcap and checks they match.
"""
import json
import socket
import struct
import sys

CLIENT_GUID = bytes(range(0x10, 0x20))          # fixed, for reproducible requests
SALT = bytes(range(0x20, 0x40))                 # fixed preauth salt

# NTLMSSP NEGOTIATE flags: UNICODE OEM REQUEST_TARGET SIGN SEAL NTLM ALWAYS_SIGN
# EXTENDED_SESSIONSECURITY TARGET_INFO VERSION 128 KEY_EXCH 56
NTLM_FLAGS = 0xE2888237
NTLM_VERSION = bytes([10, 0]) + struct.pack("<H", 19041) + b"\x00\x00\x00\x0f"


def ntlm_negotiate():
    return (b"NTLMSSP\x00" + struct.pack("<I", 1) + struct.pack("<I", NTLM_FLAGS)
            + struct.pack("<HHI", 0, 0, 0x28) + struct.pack("<HHI", 0, 0, 0x28)
            + NTLM_VERSION)


def der(tag, body):
    n = len(body)
    if n < 0x80:
        ln = bytes([n])
    elif n < 0x100:
        ln = b"\x81" + bytes([n])
    else:
        ln = b"\x82" + struct.pack(">H", n)
    return bytes([tag]) + ln + body


def spnego_init(mech_token):
    ntlm_oid = der(0x06, bytes.fromhex("2b0601040182370202 0a".replace(" ", "")))
    mech_types = der(0xA0, der(0x30, ntlm_oid))
    token = der(0xA2, der(0x04, mech_token))
    neg_token_init = der(0xA0, der(0x30, mech_types + token))
    spnego_oid = der(0x06, bytes.fromhex("2b0601050502"))
    return der(0x60, spnego_oid + neg_token_init)


def smb2_header(command, message_id, credits=31):
    return (b"\xfeSMB" + struct.pack("<HHIHHIIQIIQ16s", 64, 0, 0, command, credits, 0, 0,
                                     message_id, 0xFEFF, 0, 0, b"\x00" * 16))


def smb2_negotiate(dialects, contexts=False, message_id=0):
    body_len = 36 + 2 * len(dialects)
    ctx = b""
    if contexts:
        pad = (-(64 + body_len)) % 8
        preauth = struct.pack("<HHH", 1, 32, 0x0001) + SALT
        enc = struct.pack("<HHH", 2, 0x0002, 0x0001)

        def nctx(t, data):
            return struct.pack("<HHI", t, len(data), 0) + data
        c1 = nctx(1, preauth)
        c1 += b"\x00" * ((-len(c1)) % 8)
        ctx = b"\x00" * pad + c1 + nctx(2, enc)
        off = 64 + body_len + pad
        tail = struct.pack("<IHH", off, 2, 0)
    else:
        tail = b"\x00" * 8                       # ClientStartTime
    body = (struct.pack("<HHHHI", 36, len(dialects), 0x0001, 0, 0x7F) + CLIENT_GUID + tail
            + b"".join(struct.pack("<H", d) for d in dialects))
    return smb2_header(0, message_id) + body + ctx


def smb2_session_setup(blob):
    body = struct.pack("<HBBIIHHQ", 25, 0, 0x01, 0x01, 0, 64 + 24, len(blob), 0)
    return smb2_header(1, 1) + body + blob


def smb1_header(command, flags2, mid=0):
    return (b"\xffSMB" + bytes([command]) + struct.pack("<I", 0) + bytes([0x18])
            + struct.pack("<HH8sHHHHH", flags2, 0, b"\x00" * 8, 0, 0xFFFF, 0xFEFF, 0, mid))


FLAGS2_EXT = 0xC801     # UNICODE | NT_STATUS | EXTENDED_SECURITY | LONG_NAMES
FLAGS2_NOEXT = 0xC001   # UNICODE | NT_STATUS | LONG_NAMES


def smb1_negotiate(dialects, flags2=FLAGS2_EXT):
    data = b"".join(b"\x02" + d.encode("ascii") + b"\x00" for d in dialects)
    return smb1_header(0x72, flags2) + b"\x00" + struct.pack("<H", len(data)) + data


def smb1_session_setup(blob, uid=0):
    caps = 0x80000000 | 0x40 | 0x10 | 0x08 | 0x04  # EXTENDED_SECURITY NT_STATUS NT_SMBS LARGE_FILES UNICODE
    words = struct.pack("<BBHHHHIHII", 0xFF, 0, 0, 0xFFFF, 2, 1, 0, len(blob), 0, caps)
    data = blob
    if (32 + 1 + len(words) + 2 + len(data)) % 2:
        data += b"\x00"                          # align the Unicode strings
    data += b"\x00\x00" + b"\x00\x00"            # NativeOS "", NativeLanMan ""
    h = bytearray(smb1_header(0x73, FLAGS2_EXT, mid=1))
    struct.pack_into("<H", h, 28, uid)
    return bytes(h) + bytes([len(words) // 2]) + words + struct.pack("<H", len(data)) + data


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise EOFError("closed after %d of %d bytes" % (len(buf), n))
        buf += chunk
    return buf


def exchange(s, log, label, msg):
    s.sendall(struct.pack(">I", len(msg)) + msg)
    log.append({"dir": "c2s", "label": label, "hex": msg.hex()})
    try:
        hdr = recv_exact(s, 4)
        body = recv_exact(s, int.from_bytes(hdr[1:4], "big"))
    except (EOFError, ConnectionResetError) as e:
        log.append({"dir": "s2c", "label": label, "event": "%s: %s" % (type(e).__name__, e)})
        return None
    log.append({"dir": "s2c", "label": label, "hex": body.hex(), "nbss_type": hdr[0]})
    return body


def await_close(s, log):
    """After the last answer: does the server end the connection by itself?"""
    s.settimeout(1.5)
    try:
        data = s.recv(4096)
        ev = "server closed the connection (FIN)" if not data else "unexpected %d more bytes" % len(data)
    except socket.timeout:
        ev = "connection still open 1.5 s after the last answer"
    except ConnectionResetError:
        ev = "server reset the connection (RST)"
    log.append({"dir": "s2c", "label": "after", "event": ev})


def probe(addr, name, out):
    def conn(tag, steps):
        s = socket.create_connection((addr, 445), timeout=5)
        port = s.getsockname()[1]
        log = []
        steps(s, log)
        if not log or "event" not in log[-1]:
            await_close(s, log)
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        s.close()
        out.append({"server": name, "addr": addr, "probe": tag, "client_port": port, "messages": log})

    def smb2_311(s, log):
        if exchange(s, log, "smb2-311-negotiate", smb2_negotiate([0x0202, 0x0210, 0x0300, 0x0302, 0x0311], True)):
            exchange(s, log, "smb2-311-sessionsetup", smb2_session_setup(spnego_init(ntlm_negotiate())))

    def smb2_202(s, log):
        if exchange(s, log, "smb2-202-negotiate", smb2_negotiate([0x0202])):
            exchange(s, log, "smb2-202-sessionsetup-rawntlmssp", smb2_session_setup(ntlm_negotiate()))

    def smb1_nt1(s, log):
        r = exchange(s, log, "smb1-nt1-negotiate", smb1_negotiate(["NT LM 0.12"]))
        if r and r[:4] == b"\xffSMB" and r[4] == 0x72 and r[5:9] == b"\x00" * 4 and r[32] == 17:
            exchange(s, log, "smb1-nt1-sessionsetup", smb1_session_setup(spnego_init(ntlm_negotiate())))

    conn("smb2-311", smb2_311)
    conn("smb2-202", smb2_202)
    conn("smb1-nt1", smb1_nt1)
    conn("smb1-nt1-noext", lambda s, log: exchange(
        s, log, "smb1-nt1-noext-negotiate", smb1_negotiate(["NT LM 0.12"], FLAGS2_NOEXT)))
    def smb1_multi(s, log):
        r = exchange(s, log, "smb1-multi-negotiate", smb1_negotiate(["NT LM 0.12", "SMB 2.002", "SMB 2.???"]))
        # SMB2 NEGOTIATE response with dialect 0x02FF: the client must negotiate
        # again with an SMB2 NEGOTIATE, MessageId 1 (MS-SMB2 3.2.5.2)
        if r and r[:4] == b"\xfeSMB" and r[64 + 4:64 + 6] == b"\xff\x02":
            exchange(s, log, "smb1-multi-then-smb2-negotiate",
                     smb2_negotiate([0x0202, 0x0210, 0x0300, 0x0302, 0x0311], True, message_id=1))

    conn("smb1-multi", smb1_multi)
    conn("smb1-nt1-2002", lambda s, log: exchange(
        s, log, "smb1-nt1-2002-negotiate", smb1_negotiate(["NT LM 0.12", "SMB 2.002"])))


def main():
    out = []
    args = sys.argv[2:]
    for i in range(0, len(args), 2):
        probe(args[i], args[i + 1], out)
    with open(sys.argv[1], "w") as f:
        json.dump(out, f, indent=1)
    for c in out:
        for m in c["messages"]:
            print("%-5s %-14s port %5d %s %-36s %s" % (
                c["server"], c["probe"], c["client_port"], m["dir"], m["label"],
                m.get("event") or "%d bytes %s" % (len(m["hex"]) // 2, m["hex"][:24])))


if __name__ == "__main__":
    main()

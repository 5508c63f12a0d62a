#!/usr/bin/env python3
"""Cut the SMB messages of smb_probe.py's connections out of the capture,
check them against what the probe logged, name them, and decode each with
tshark.

usage: extract.py cap.pcapng probes.json OUTDIR   (decode goes to stdout)

The bytes come from tshark (tcp.payload of every segment of the probe's TCP
streams, in order), not from the probe: each direction of each stream is
concatenated and cut into NetBIOS session messages (4-byte header 0x00 +
24-bit big-endian length); each .bin file is one message WITHOUT that 4-byte
header, i.e. starting at 0xFF 'SMB' or 0xFE 'SMB'.  The probe's own record
of the same bytes must be identical (asserted).  How each connection ended
(FIN or RST, and from which side) is read from the TCP flags.
"""
import glob
import json
import os
import subprocess
import sys

cap, probes_path, out = sys.argv[1:4]
probes = json.load(open(probes_path))

rows = subprocess.run(
    ["tshark", "-r", cap, "-Y", "tcp", "-T", "fields", "-E", "separator=|",
     "-e", "frame.number", "-e", "ip.src", "-e", "tcp.srcport", "-e", "ip.dst", "-e", "tcp.dstport",
     "-e", "tcp.flags.fin", "-e", "tcp.flags.reset", "-e", "tcp.payload"],
    check=True, capture_output=True, text=True).stdout.splitlines()

segs = {}      # (client_port, server_addr) -> list of (frame, dir, bytes, fin, rst)
for row in rows:
    frame, src, sport, dst, dport, fin, rst, payload = row.split("|")
    if dport == "445":
        key, d = (int(sport), dst), "c2s"
    else:
        key, d = (int(dport), src), "s2c"
    segs.setdefault(key, []).append((int(frame), d, bytes.fromhex(payload), fin in ("1", "True"),
                                     rst in ("1", "True")))


def messages(key, d):
    """-> [(first_frame, body)], and how the direction ended"""
    buf, start, out_msgs, end = b"", None, [], None
    for frame, dd, b, fin, rst in segs[key]:
        if dd != d:
            continue
        if b:
            if not buf:
                start = frame
            buf += b
            while len(buf) >= 4 and len(buf) >= 4 + int.from_bytes(buf[1:4], "big"):
                n = int.from_bytes(buf[1:4], "big")
                assert buf[0] == 0, "not a NetBIOS session message"
                out_msgs.append((start, buf[4:4 + n]))
                buf = buf[4 + n:]
                start = frame if buf else None
        if (fin or rst) and end is None:
            end = ("FIN" if fin else "RST", frame)
    assert not buf, "trailing partial message"
    return out_msgs, end


for f in glob.glob(os.path.join(out, "[0-9][0-9]-*.bin")):
    os.remove(f)

n = 0
index = []
for c in probes:
    key = (c["client_port"], c["addr"])
    c2s, c_end = messages(key, "c2s")
    s2c, s_end = messages(key, "s2c")
    print("=" * 78)
    print("server %s (%s), probe %s, client port %d" % (c["server"], c["addr"], c["probe"], c["client_port"]))
    for m in c["messages"]:
        if "event" in m:
            print("  [%s] probe saw: %s" % (m["label"], m["event"]))
            continue
        frame, body = (c2s if m["dir"] == "c2s" else s2c).pop(0)
        assert body.hex() == m["hex"], (c["probe"], m["label"], m["dir"])
        n += 1
        name = "%02d-%s-%s-%s.bin" % (n, c["server"], m["label"], "req" if m["dir"] == "c2s" else "resp")
        with open(os.path.join(out, name), "wb") as f:
            f.write(body)
        index.append((name, frame, len(body)))
        print("-" * 78)
        print("%s  (%d bytes, frame %d)" % (name, len(body), frame))
        print("  hex: %s" % body.hex())
        dec = subprocess.run(["tshark", "-r", cap, "-Y", "frame.number==%d" % frame,
                              "-O", "smb,smb2,gss-api,spnego,ntlmssp"],
                             check=True, capture_output=True, text=True).stdout
        i = dec.find("NetBIOS Session Service")
        print(dec[i:].rstrip() if i >= 0 else dec.rstrip())
    assert not c2s and not s2c, "unlogged messages in stream %r" % (key,)
    print("  TCP end: client side %s, server side %s" % (
        "%s in frame %d" % c_end if c_end else "none seen",
        "%s in frame %d" % s_end if s_end else "none seen"))

with open(os.path.join(out, "index.txt"), "w") as f:
    for name, frame, ln in index:
        f.write("%s\tframe=%d\tlen=%d\n" % (name, frame, ln))

# One Markdown row per file: the fields tshark decodes, by name.
FIELDS = [
    ("SMB1 cmd", "smb.cmd"), ("SMB1 status", "smb.nt_status"), ("FLAGS2", "smb.flags2"),
    ("UID", "smb.uid"), ("dialects offered", "smb.dialect.name"),
    ("DialectIndex", "smb.dialect.index"), ("SecurityMode", "smb.sm"),
    ("MaxMpx", "smb.max_mpx_count"), ("MaxVCs", "smb.max_vcs"), ("MaxBufferSize", "smb.max_bufsize"),
    ("MaxRaw", "smb.max_raw"), ("SessionKey", "smb.session_key"), ("Capabilities", "smb.server_cap"),
    ("SystemTime", "smb.system.time"), ("TimeZone", "smb.server_timezone"),
    ("ChallengeLength", "smb.challenge_length"), ("Challenge", "smb.challenge"),
    ("DomainName", "smb.primary_domain"), ("ServerName", "smb.server"),
    ("ServerGUID", "smb.server_guid"), ("SecurityBlobLength", "smb.security_blob_len"),
    ("NativeOS", "smb.native_os"), ("NativeLanMan", "smb.native_lanman"),
    ("SMB2 cmd", "smb2.cmd"), ("SMB2 status", "smb2.nt_status"), ("MessageId", "smb2.msg_id"),
    ("CreditsGranted", "smb2.credits.granted"), ("SessionId", "smb2.sesid"),
    ("Dialect(s)", "smb2.dialect"), ("SecurityMode", "smb2.sec_mode"),
    ("Capabilities", "smb2.capabilities"), ("ClientGuid", "smb2.client_guid"),
    ("ServerGuid", "smb2.server_guid"), ("MaxTransact", "smb2.max_trans_size"),
    ("MaxRead", "smb2.max_read_size"), ("MaxWrite", "smb2.max_write_size"),
    ("SystemTime", "smb2.current_time"), ("BootTime", "smb2.boot_time"),
    ("NegotiateContextCount", "smb2.negotiate_context.count"),
    ("NegotiateContextOffset", "smb2.negotiate_context.offset"),
    ("context types", "smb2.negotiate_context.type"), ("HashAlgorithm", "smb2.negotiate_context.hash_algorithm"),
    ("SaltLength", "smb2.negotiate_context.salt_length"), ("Salt", "smb2.negotiate_context.salt"),
    ("CipherId", "smb2.negotiate_context.cipher_id"), ("SessionFlags", "smb2.session_flags"),
    ("SPNEGO mechTypes", "spnego.MechType"), ("negHints hintName", "spnego.hintName"),
    ("negResult", "spnego.negResult"), ("supportedMech", "spnego.supportedMech"),
    ("NTLMSSP type", "ntlmssp.messagetype"), ("NegotiateFlags", "ntlmssp.negotiateflags"),
    ("TargetName", "ntlmssp.challenge.target_name"), ("ServerChallenge", "ntlmssp.ntlmserverchallenge"),
    ("AV ids in order", "ntlmssp.challenge.target_info.item.type"),
    ("AV lengths", "ntlmssp.challenge.target_info.item.length"),
    ("MsvAvNbComputerName", "ntlmssp.challenge.target_info.nb_computer_name"),
    ("MsvAvNbDomainName", "ntlmssp.challenge.target_info.nb_domain_name"),
    ("MsvAvDnsComputerName", "ntlmssp.challenge.target_info.dns_computer_name"),
    ("MsvAvDnsDomainName", "ntlmssp.challenge.target_info.dns_domain_name"),
    ("MsvAvDnsTreeName", "ntlmssp.challenge.target_info.dns_tree_name"),
    ("MsvAvTimestamp", "ntlmssp.challenge.target_info.timestamp"),
    ("Version major", "ntlmssp.version.major"), ("minor", "ntlmssp.version.minor"),
    ("build", "ntlmssp.version.build_number"), ("NTLM revision", "ntlmssp.version.ntlm_current_revision"),
]
args = ["tshark", "-r", cap, "-T", "fields", "-E", "separator=\t", "-E", "aggregator=,"]
for _, fld in FIELDS:
    args += ["-e", fld]
with open(os.path.join(out, "manifest-table.md"), "w") as f:
    f.write("| file | bytes | frame | fields as tshark decodes them |\n| --- | --- | --- | --- |\n")
    for name, frame, ln in index:
        vals = subprocess.run(args + ["-Y", "frame.number==%d" % frame], check=True,
                              capture_output=True, text=True).stdout.rstrip("\n").split("\t")
        cells = ["%s %s" % (label, v) for (label, _), v in zip(FIELDS, vals) if v != ""]
        f.write("| %s | %d | %d | %s |\n" % (name, ln, frame, "; ".join(cells).replace("|", "\\|")))

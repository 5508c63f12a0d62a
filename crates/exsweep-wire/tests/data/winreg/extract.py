#!/usr/bin/env python3
"""Cut the raw DCE/RPC PDUs out of the capture and name them.

usage: extract.py cap.pcapng labels.txt outdir

The bytes come from tshark: SMB2 WRITE request data (client->server) and
SMB2 READ response data (server->client) on the named pipe, with the DCE/RPC
dissector disabled so tshark shows the pipe payload as plain data.  READ
responses with STATUS_BUFFER_OVERFLOW carry a partial PDU and are simply
concatenated with the following READ, as a client does.  Each direction is
then cut into PDUs with the 16-bit frag_length at offset 8 of each header.
labels.txt (written by capture_client.py) says, in order, what each
exchange is; request PDUs are taken until one has PFC_LAST_FRAG, then
response PDUs likewise.
"""
import glob
import os
import subprocess
import sys

cap, labels_path, out = sys.argv[1:4]

FILTER = ("(smb2.cmd==9 && smb2.flags.response==0) || "
          "(smb2.cmd==8 && smb2.flags.response==1 && "
          "(smb2.nt_status==0 || smb2.nt_status==0x80000005))")
rows = subprocess.run(
    ["tshark", "-r", cap, "-o", "smb2.pipe_reassembly:FALSE",
     "--disable-protocol", "dcerpc", "-Y", FILTER, "-T", "fields",
     "-E", "separator=|", "-e", "frame.number", "-e", "smb2.cmd",
     "-e", "smb2.nt_status", "-e", "smb2.write_length", "-e", "smb2.olb.length",
     "-e", "data.data"],
    check=True, capture_output=True, text=True).stdout.splitlines()

streams = {"req": [], "resp": []}          # list of (frame, bytes) chunks
for row in rows:
    frame, cmd, status, wlen, rlen, data = row.split("|")
    assert "," not in frame + cmd + data, "compound SMB2 frame not handled: " + row[:80]
    b = bytes.fromhex(data)
    if cmd == "9":
        assert len(b) == int(wlen), (frame, len(b), wlen)
        streams["req"].append((int(frame), b, False))
    else:
        assert len(b) == int(rlen), (frame, len(b), rlen)
        streams["resp"].append((int(frame), b, status == "0x80000005"))


def cut(chunks):
    """-> list of (frames, pdu_bytes)"""
    pdus, buf, frames = [], b"", []
    for frame, b, partial in chunks:
        buf += b
        frames.append(frame)
        while len(buf) >= 16:
            flen = int.from_bytes(buf[8:10], "little")
            if len(buf) < flen:
                break
            pdus.append((list(frames), buf[:flen]))
            buf = buf[flen:]
            frames = [frame] if buf else []
    assert not buf, "trailing partial PDU"
    return pdus


req, resp = cut(streams["req"]), cut(streams["resp"])
labels = [l.strip() for l in open(labels_path) if l.strip()]

for f in glob.glob(os.path.join(out, "[0-9][0-9]-*.bin")):
    os.remove(f)

PTYPE = {0: "req", 2: "resp", 3: "fault", 11: "req", 12: "ack", 13: "nak"}
n = 0
index = []


def take(pdus, label):
    got = []
    while True:
        frames, p = pdus.pop(0)
        got.append((frames, p))
        if p[3] & 0x02:                     # PFC_LAST_FRAG
            return got


for label in labels:
    for side in (take(req, label), take(resp, label)):
        for k, (frames, p) in enumerate(side):
            n += 1
            suffix = PTYPE[p[2]]
            if len(side) > 1:
                suffix += "-frag%d" % (k + 1)
            name = "%02d-%s-%s.bin" % (n, label, suffix)
            with open(os.path.join(out, name), "wb") as f:
                f.write(p)
            call_id = int.from_bytes(p[12:16], "little")
            index.append("%s\tframes=%s\tptype=%d\tflags=0x%02x\tcall_id=%d\tlen=%d"
                         % (name, ",".join(map(str, frames)), p[2], p[3], call_id, len(p)))

assert not req and not resp, "unlabelled PDUs left: %d req, %d resp" % (len(req), len(resp))
print("\n".join(index))

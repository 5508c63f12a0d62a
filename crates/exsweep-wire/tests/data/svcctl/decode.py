#!/usr/bin/env python3
"""Decode every svcctl vector with decoders we did not write: ndrdump (Samba's
PIDL-generated NDR code) and tshark.  Writes decoded.txt (full dumps) to stdout
and manifest-table.md (one Markdown row per file) into OUTDIR.

usage: decode.py cap.pcapng index.txt OUTDIR

index.txt is what ../winreg/extract.py printed (file, frames, ptype, flags,
call_id, len).  Stubs are the PDU bytes after the 24-byte request/response
header (no auth trailer here), fragments of one call concatenated.  Response
stubs are decoded with the matching request stub as ndrdump's context (-c),
which [size_is(offered)] arrays need.

The REnumServicesStatusW lpBuffer is an opaque byte array to both decoders;
its records are decoded with `ndrdump svcctl ENUM_SERVICE_STATUSW struct`,
whose [relative] string pointers are offsets from the start of the blob
handed to it: record i is decoded from a copy of the buffer whose first 36
bytes are replaced by record i's 36 bytes (the strings stay where they are),
so every record is resolved against the buffer start, as the wire format says.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

cap, index_path, out = sys.argv[1:4]
OPS = {0: "CloseServiceHandle", 6: "QueryServiceStatus", 14: "EnumServicesStatusW",
       15: "OpenSCManagerW", 16: "OpenServiceW", 17: "QueryServiceConfigW"}
PT = {0: "request", 2: "response", 3: "fault", 11: "bind", 12: "bind_ack", 13: "bind_nak"}
tmp = tempfile.mkdtemp(prefix="svcdec")


def run(cmd):
    p = subprocess.run(cmd, capture_output=True, text=True)
    return (p.stdout + p.stderr).rstrip("\n")


def put(name, data):
    path = os.path.join(tmp, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


rows = []
for line in open(index_path):
    parts = line.split("\t")
    rows.append((parts[0], parts[1].split("=")[1]))

# group fragments: files of one call are consecutive with the same label+side
calls = []          # (label, side, [files], [frames])
for name, frames in rows:
    m = re.match(r"\d\d-(.*)-(req|resp|ack|nak|fault)(?:-frag\d+)?\.bin$", name)
    label, side = m.group(1), m.group(2)
    side = "req" if side == "req" else "resp"
    if calls and calls[-1][0] == label and calls[-1][1] == side and "-frag" in name and not name.endswith("frag1.bin"):
        calls[-1][2].append(name)
        calls[-1][3].append(frames)
    else:
        calls.append((label, side, [name], [frames]))

table = []
last_req = {}
for label, side, files, frames in calls:
    pdus = [open(os.path.join(out, f), "rb").read() for f in files]
    p0 = pdus[-1]
    ptype, flags = p0[2], p0[3]
    call_id = int.from_bytes(p0[12:16], "little")
    print("=" * 78)
    print("%s  (frames %s)" % (" + ".join(files), ",".join(frames)))
    for f, p in zip(files, pdus):
        print("  %s: ptype %d %s, pfc_flags 0x%02x, frag_length %d, auth_length %d, call_id %d%s" % (
            f, p[2], PT.get(p[2], "?"), p[3], int.from_bytes(p[8:10], "little"),
            int.from_bytes(p[10:12], "little"), int.from_bytes(p[12:16], "little"),
            (", alloc_hint %d, ctx %d, %s %d" % (
                int.from_bytes(p[16:20], "little"), int.from_bytes(p[20:22], "little"),
                "opnum" if p[2] == 0 else "cancel_count",
                int.from_bytes(p[22:24], "little") if p[2] == 0 else p[22]))
            if p[2] in (0, 2) else ""))
    summary = ""
    if ptype in (11, 12, 13):
        for f in files:
            txt = run(["ndrdump", "dcerpc", "ncacn_packet", "struct", os.path.join(out, f)])
            print(txt)
        op = "-"

        def f(key):
            m = re.search(r"(?m)^\s+%s\s+: (.*)$" % key, txt)
            return m.group(1).strip() if m else "?"
        uuids = re.findall(r"(?m)^\s+uuid\s+: (\S+)\n\s+if_version\s+: \S+ \((\d+)\)", txt)
        common = "max_xmit_frag %s, max_recv_frag %s, assoc_group %s" % (
            f("max_xmit_frag"), f("max_recv_frag"), f("assoc_group_id"))
        if ptype == 11:
            summary = "%s, %s context(s): abstract %s v%s, transfer %s v%s" % (
                common, f("num_contexts"), uuids[0][0], uuids[0][1], uuids[1][0], uuids[1][1])
        else:
            summary = "%s, secondary address %s (size %s), result %s reason %s, transfer %s v%s" % (
                common, f("secondary_address"), f("secondary_address_size"), f("result"),
                f("value"), uuids[0][0] if uuids else "?", uuids[0][1] if uuids else "?")
        table.append((", ".join(files), PT[ptype], op, call_id, sum(len(p) for p in pdus), ",".join(frames), summary))
        continue
    stub = b"".join(p[24:] for p in pdus)
    if side == "req":
        opnum = int.from_bytes(pdus[0][22:24], "little")
        last_req[label] = (opnum, stub)
        fn = "svcctl_" + OPS[opnum]
        txt = run(["ndrdump", "svcctl", fn, "in", put("stub", stub)])
    else:
        opnum, reqstub = last_req[label]
        fn = "svcctl_" + OPS[opnum]
        txt = run(["ndrdump", "svcctl", fn, "out", put("stub", stub), "-c", put("ctx", reqstub)])
    # the 388+ byte arrays make ndrdump's per-byte listing long: keep it in hex
    shown = re.sub(r"(?m)((?:^\s+\[\d+\]\s+: 0x[0-9a-f]{2} \(\d+\)\n)+)",
                   lambda m: "                    (bytes, hex) " + "".join(
                       re.findall(r": 0x([0-9a-f]{2}) ", m.group(1))) + "\n", txt)
    print("-- ndrdump svcctl %s %s" % (fn, "in" if side == "req" else "out"))
    print(shown)
    tsh = run(["tshark", "-r", cap, "-Y", "frame.number==%s" % frames[-1].split(",")[-1], "-O", "svcctl"])
    tsh = tsh[tsh.find("Microsoft Service Control"):] if "Microsoft Service Control" in tsh else tsh
    tsh = "\n".join(l for l in tsh.splitlines() if not re.match(r"\s+[.01 ]{8,} = ", l))
    print("-- tshark -O svcctl (frame %s)" % frames[-1].split(",")[-1])
    print(tsh)

    def g(key, text=txt):
        vals = [v.strip() for v in re.findall(r"(?m)^\s+%s\s+: (.*)$" % re.escape(key), text)]
        vals = [v for v in vals if v != "*"]
        return vals[0] if vals else None

    def handle(key="handle"):
        # every handle-carrying stub here starts with the 20-byte context handle;
        # shown raw, as tshark prints it (ndrdump: handle_type + GUID)
        m = re.search(r"(?m)^\s+%s: struct policy_handle\n\s+handle_type\s+: (\S+) .*\n\s+uuid\s+: (\S+)" % key, txt)
        assert m, txt
        return stub[0:20].hex()

    result = g("result")
    werr = ""
    if side == "resp":
        st = int.from_bytes(stub[-4:], "little")
        werr = "; status %d (%s)" % (st, result)
    if OPS[opnum] == "OpenSCManagerW":
        if side == "req":
            summary = "MachineName %s; DatabaseName %s; access_mask %s" % (
                g("MachineName"), g("DatabaseName"), g("access_mask"))
        else:
            summary = "handle %s" % handle() + werr
    elif OPS[opnum] == "OpenServiceW":
        if side == "req":
            summary = "scmanager %s; ServiceName %s; access_mask %s" % (
                handle("scmanager_handle"), g("ServiceName"), g("access_mask"))
        else:
            summary = "handle %s" % handle() + werr
    elif OPS[opnum] == "CloseServiceHandle":
        summary = "handle %s" % handle() + werr
    elif OPS[opnum] == "QueryServiceStatus":
        if side == "req":
            summary = "handle %s" % handle()
        else:
            summary = ("dwServiceType %s; dwCurrentState %s; dwControlsAccepted %s; dwWin32ExitCode %s; "
                       "dwServiceSpecificExitCode %s; dwCheckPoint %s; dwWaitHint %s" % (
                           g("type"), g("state"), g("controls_accepted"), g("win32_exit_code"),
                           g("service_exit_code"), g("check_point"), g("wait_hint"))) + werr
    elif OPS[opnum] == "QueryServiceConfigW":
        if side == "req":
            summary = "handle %s; cbBufSize %s" % (handle(), g("offered"))
        else:
            summary = ("dwServiceType %s; dwStartType %s; dwErrorControl %s; lpBinaryPathName %s; "
                       "lpLoadOrderGroup %s; dwTagId %s; lpDependencies %s; lpServiceStartName %s; "
                       "lpDisplayName %s; pcbBytesNeeded %s" % (
                           g("service_type"), g("start_type"), g("error_control"),
                           g("executablepath"), g("loadordergroup"), g("tag_id"),
                           g("dependencies"), g("startname"), g("displayname"), g("needed"))) + werr
    elif OPS[opnum] == "EnumServicesStatusW":
        if side == "req":
            summary = "handle %s; dwServiceType %s; dwServiceState %s; cbBufSize %s; lpResumeIndex %s" % (
                handle(), g("type"), g("state"), g("offered"),
                "NULL" if g("resume_handle") == "NULL" else "-> " + g("resume_handle"))
        else:
            n = int.from_bytes(stub[0:4], "little")
            buf = stub[4:4 + n]
            ret = int(g("services_returned").split()[0], 16)
            recs = []
            for i in range(ret):
                b = bytearray(buf)
                b[0:36] = buf[36 * i:36 * i + 36]
                r = run(["ndrdump", "svcctl", "ENUM_SERVICE_STATUSW", "struct", put("rec", bytes(b))])
                r = re.sub(r"(?s)WARNING! \d+ unread bytes.*?(?=\n    ENUM)", "", r)
                print("-- record %d: ndrdump svcctl ENUM_SERVICE_STATUSW struct (buffer with record %d moved to offset 0)" % (i, i))
                print(r)
                off = (int.from_bytes(buf[36 * i:36 * i + 4], "little"), int.from_bytes(buf[36 * i + 4:36 * i + 8], "little"))
                recs.append("[%d] %s @%d / %s @%d, type %s, state %s, controls %s, win32 exit %s" % (
                    i, g("service_name", r), off[0], g("display_name", r), off[1],
                    g("type", r), g("state", r), g("controls_accepted", r), g("win32_exit_code", r)))
            resume = g("resume_handle")
            used = 36 * ret
            for i in range(ret):
                for k in (0, 4):
                    o = int.from_bytes(buf[36 * i + k:36 * i + k + 4], "little")
                    while buf[o:o + 2] != b"\0\0":
                        o += 2
                    used = max(used, o + 2)
            summary = ("lpBuffer max_count %d (%s); pcbBytesNeeded %s; lpServicesReturned %s; lpResumeIndex %s%s" % (
                n, "all zero" if buf == bytes(n) else "%d records + strings = %d bytes, then %d zero bytes" % (
                    ret, used, n - used) if buf[used:] == bytes(n - used) else "?",
                g("needed"), g("services_returned"), resume, werr))
            if recs:
                summary += "; " + "; ".join(recs)
    table.append((", ".join(files), "%s%s" % (PT[ptype], " (%d fragments)" % len(files) if len(files) > 1 else ""),
                  "%d %s" % (opnum, OPS[opnum]), call_id, sum(len(p) for p in pdus), ",".join(frames), summary))

with open(os.path.join(out, "manifest-table.md"), "w") as f:
    f.write("| file | PDU | opnum | call id | bytes | pcap frame(s) | decoded (ndrdump; status = last 4 stub bytes) |\n")
    f.write("| --- | --- | --- | --- | --- | --- | --- |\n")
    for r in table:
        f.write("| %s | %s | %s | %s | %s | %s | %s |\n" % r)

shutil.rmtree(tmp)

#!/usr/bin/env python3
"""A small WinRM stub around pyspnego's NTLM acceptor: it checks exsweep's WinRM client against
an NTLM implementation nobody on the project wrote (so a bug shared by both sides of our own code
cannot hide).

Usage: NTLM_USER_FILE=users.txt pyspnego_stub.py --address 127.0.0.1 --port 0 --ready FILE

It accepts `Authorization: Negotiate` (NTLM), then unseals each request with pyspnego's
`unwrap_winrm`, and answers: a Win32_OperatingSystem Enumerate with one item whose `Caption`
echoes the request's ResourceURI, everything else with a SOAP fault. Each answer is sealed with
`wrap_winrm`. It writes the port it listens on to the --ready file and serves until killed.
The users file (`DOMAIN:USER:PASSWORD` lines) comes from the environment, never argv.
"""

import argparse
import base64
import re
import socket
import threading

import spnego

BOUNDARY = b"Encrypted Boundary"
ITEM = (
    '<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
    'xmlns:n="http://schemas.xmlsoap.org/ws/2004/09/enumeration" '
    'xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"><s:Body><n:EnumerateResponse><w:Items>'
    '<p:Win32_OperatingSystem xmlns:p="http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/Win32_OperatingSystem">'
    "<p:Caption>{caption}</p:Caption><p:BuildNumber>17763</p:BuildNumber></p:Win32_OperatingSystem>"
    "</w:Items><w:EndOfSequence/></n:EnumerateResponse></s:Body></s:Envelope>"
)
FAULT = (
    '<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body><s:Fault><s:Code>'
    "<s:Value>s:Sender</s:Value><s:Subcode><s:Value>w:ActionNotSupported</s:Value></s:Subcode></s:Code>"
    '<s:Reason><s:Text xml:lang="en-US">the stub answers Enumerate only</s:Text></s:Reason></s:Fault></s:Body></s:Envelope>'
)


def read_request(conn, buf):
    while b"\r\n\r\n" not in buf:
        chunk = conn.recv(65536)
        if not chunk:
            return None, buf
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    headers = {}
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        headers[k.strip().lower().decode()] = v.strip().decode()
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = conn.recv(65536)
        if not chunk:
            return None, buf
        rest += chunk
    return (headers, rest[:length]), rest[length:]


def respond(conn, status, headers, body=b""):
    lines = [f"HTTP/1.1 {status} {'OK' if status == 200 else 'X'}"]
    lines += [f"{k}: {v}" for k, v in headers]
    lines.append(f"Content-Length: {len(body)}")
    conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)


def seal(ctx, xml):
    wrapped = ctx.wrap_winrm(xml)
    return (
        b"--" + BOUNDARY + b"\r\n\tContent-Type: application/HTTP-SPNEGO-session-encrypted\r\n"
        + b"\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length=" + str(len(xml)).encode() + b"\r\n"
        + b"--" + BOUNDARY + b"\r\n\tContent-Type: application/octet-stream\r\n"
        + len(wrapped.header).to_bytes(4, "little") + wrapped.header + wrapped.data
        + b"--" + BOUNDARY + b"--\r\n"
    )


def unseal(ctx, body):
    length = int(re.search(rb"Length=(\d+)", body).group(1))
    start = body.index(b"application/octet-stream\r\n") + len(b"application/octet-stream\r\n")
    sig_len = int.from_bytes(body[start:start + 4], "little")
    header = body[start + 4:start + 4 + sig_len]
    data = body[start + 4 + sig_len:start + 4 + sig_len + length]
    return ctx.unwrap_winrm(header, data)


def serve(conn):
    ctx = spnego.server(protocol="ntlm")
    buf = b""
    try:
        while True:
            req, buf = read_request(conn, buf)
            if req is None:
                return
            headers, body = req
            auth = headers.get("authorization", "")
            if auth.startswith("Negotiate "):
                try:
                    out = ctx.step(base64.b64decode(auth[len("Negotiate "):]))
                except spnego.exceptions.SpnegoError:
                    # A refused logon: 401, as Windows answers, and a fresh context.
                    ctx = spnego.server(protocol="ntlm")
                    respond(conn, 401, [("WWW-Authenticate", "Negotiate")])
                    continue
                if not ctx.complete:
                    respond(conn, 401, [("WWW-Authenticate", "Negotiate " + base64.b64encode(out).decode())])
                else:
                    respond(conn, 200, [])
                continue
            if not ctx.complete:
                respond(conn, 401, [("WWW-Authenticate", "Negotiate")])
                continue
            xml = unseal(ctx, body).decode()
            uri = re.search(r"ResourceURI[^>]*>([^<]*)<", xml).group(1)
            answer = ITEM.format(caption=uri) if "/Enumerate<" in xml else FAULT
            status = 200 if answer is not FAULT else 500
            ctype = 'multipart/encrypted;protocol="application/HTTP-SPNEGO-session-encrypted";boundary="Encrypted Boundary"'
            respond(conn, status, [("Content-Type", ctype)], seal(ctx, answer.encode()))
    except Exception as exc:  # noqa: BLE001 - a stub: report and drop the connection
        respond(conn, 500, [], str(exc).encode())
    finally:
        conn.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--address", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--ready", required=True)
    args = ap.parse_args()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.address, args.port))
    sock.listen(16)
    with open(args.ready, "w") as fh:
        fh.write(str(sock.getsockname()[1]))
    while True:
        conn, _ = sock.accept()
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    main()

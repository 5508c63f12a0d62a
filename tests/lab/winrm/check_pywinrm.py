#!/usr/bin/env python3
"""Check the lab's WinRM server with clients nobody on the project wrote: pywinrm (and pypsrp).

Usage:
    python3 tests/lab/winrm/check_pywinrm.py --credentials target/lab/credentials.toml \
        [--hosts-dir tests/lab/hosts] [--address 127.0.0.11 ...] [--port 5985] [--tls-port 5986] [NAME...]

For every lab host (or the ones named / at the given addresses), with pywinrm over
http://<address>:5985/wsman, transport ntlm, message_encryption="always" (every body sealed with
pywinrm's own code): run_cmd("hostname") and run_cmd("ipconfig", ["/all"]); an Enumerate + Pull of
Win32_OperatingSystem, WQL enumerations (Win32_Service, CIM_DataFile) with OptimizeEnumeration,
Win32_QuickFixEngineering, StdRegProv calls, an Exchange cmdlet through run_ps, built as pywinrm
builds its own envelopes and sent through Protocol.send_message; the faults a Windows host gives
(unknown class, bad WQL, a non-admin account, unencrypted HTTP); a wrong password (401); once over
https://<address>:5986/wsman; and, when pypsrp is installed, its WinRS shell and WSMan.enumerate,
and its SPNEGO logon on the listener that refuses raw NTLMSSP (--spnego-port, 5987).
Every expected value is worked out here from the profile's host.toml and registry.reg with this
file's own parser (it shares no code with server.py). One line per check; exit 0 only when every
check passes, 1 otherwise, 2 on bad usage.
"""

import argparse
import concurrent.futures
import importlib.util
import json
import os
import re
import sys
import threading
import time
import tomllib
import warnings
import xml.etree.ElementTree as ET

try:
    import winrm
    import xmltodict
    from winrm.exceptions import InvalidCredentialsError, WinRMTransportError, WSManFaultError
except ImportError:
    sys.exit("check_pywinrm: pywinrm is not installed (run scripts/setup)")

warnings.filterwarnings("ignore")   # urllib3's InsecureRequestWarning for the self-signed certificate

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
NS = {
    "s": "http://www.w3.org/2003/05/soap-envelope",
    "n": "http://schemas.xmlsoap.org/ws/2004/09/enumeration",
    "w": "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd",
    "xsi": "http://www.w3.org/2001/XMLSchema-instance",
}
WMI = "http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/"
STDREGPROV = "http://schemas.microsoft.com/wbem/wsman/1/wmi/root/default/StdRegProv"
WQL = "http://schemas.microsoft.com/wbem/wsman/1/WQL"
ENUMERATE = "http://schemas.xmlsoap.org/ws/2004/09/enumeration/Enumerate"
PULL = "http://schemas.xmlsoap.org/ws/2004/09/enumeration/Pull"
HKLM = "2147483650"
# Win32_OperatingSystem.Caption of the Windows versions the lab's kernels have.
CAPTIONS = {(5, 0): "Microsoft Windows 2000 Server", (10, 0, 17763): "Microsoft Windows Server 2019 Standard"}


# --- the profile, read independently of the server ---------------------------------------------

def read_reg(path):
    """{(KEY, NAME): (kind, value)} and the set of KEY paths (upper case, relative to HKLM)."""
    raw = open(path, "rb").read()
    text = raw[2:].decode("utf-16-le") if raw[:2] == b"\xff\xfe" else raw.decode("utf-8-sig")
    values, keys, key, pending = {}, set(), None, ""
    for line in text.splitlines()[1:]:
        line = pending + line.strip()
        if line.endswith("\\") and "=hex" in line.lower():
            pending = line[:-1]
            continue
        pending = ""
        m = re.fullmatch(r"\[(-?)HKEY_LOCAL_MACHINE\\(.*)\]", line)
        if m:
            key = None if m.group(1) else m.group(2).upper()
            if key:
                parts = key.split("\\")
                keys.update("\\".join(parts[:i]) for i in range(1, len(parts) + 1))
            continue
        if key is None or not line or line.startswith(";"):
            continue
        m = re.fullmatch(r'(@|"(?:[^"\\]|\\.)*")=(.*)', line)
        if not m:
            continue
        name = "" if m.group(1) == "@" else re.sub(r"\\(.)", r"\1", m.group(1)[1:-1])
        data = m.group(2)
        if data.startswith('"'):
            values[(key, name.upper())] = ("sz", re.sub(r"\\(.)", r"\1", data[1:-1]))
        elif data.startswith("dword:"):
            values[(key, name.upper())] = ("dword", int(data[6:], 16))
        elif data.lower().startswith("hex"):
            values[(key, name.upper())] = ("hex", data)
    return values, keys


class Profile:
    def __init__(self, d):
        with open(os.path.join(d, "host.toml"), "rb") as fh:
            doc = tomllib.load(fh)
        self.name, self.address = doc["name"], doc["address"]
        self.netbios = doc.get("netbios_name", self.name.upper())
        self.winrm = doc.get("winrm", {})
        self.owa = doc.get("owa")
        self.files = {f["path"].lower(): f for f in doc.get("file", [])}
        self.values, self.keys = read_reg(os.path.join(d, "registry.reg"))

    def value(self, key, name):
        return self.values.get((key.upper(), name.upper()))

    def kernel_version(self):
        f = next(f for p, f in self.files.items() if p.endswith("system32/ntoskrnl.exe"))
        return [int(x) for x in f["file_version"].split(".")]

    def expected_os(self):
        v = self.kernel_version()
        caption = self.winrm.get("os_caption") or CAPTIONS.get((v[0], v[1], v[2])) or CAPTIONS.get((v[0], v[1]))
        sp = self.value(r"SYSTEM\CurrentControlSet\Control\Windows", "CSDVersion")
        sp = sp[1] >> 8 if sp else 0
        return {"Caption": caption, "Version": "%d.%d.%d" % tuple(v[:3]), "BuildNumber": str(v[2]),
                "CSDVersion": "Service Pack %d" % sp if sp else None, "ServicePackMajorVersion": str(sp)}

    def hotfix_ids(self):
        ids = set()
        for k in self.keys:
            parts = k.split("\\")
            if parts[:3] == ["SOFTWARE", "MICROSOFT", "UPDATES"]:
                rest = parts[3:]
                if len(rest) == 3 and re.fullmatch(r"SP\d+", rest[1]):
                    ids.add(rest[2])
                elif len(rest) == 2 and not re.fullmatch(r"SP\d+", rest[1]):
                    ids.add(rest[1])
        return ids


# --- reporting ----------------------------------------------------------------------------------

class Report:
    def __init__(self):
        self.lock = threading.Lock()
        self.passed = self.failed = 0

    def check(self, host, what, got, want):
        ok = got == want
        with self.lock:
            if ok:
                self.passed += 1
                print("ok   %-11s %s" % (host, what))
            else:
                self.failed += 1
                print("FAIL %-11s %s: expected %r, got %r" % (host, what, want, got))
        return ok

    def error(self, host, what, exc):
        with self.lock:
            self.failed += 1
            print("FAIL %-11s %s: %s: %s" % (host, what, type(exc).__name__, str(exc).splitlines()[0][:300]
                                             if str(exc) else ""))


# --- pywinrm, lower level ------------------------------------------------------------------------

def send(proto, action, resource_uri, body):
    env = proto.build_wsman_header(action, resource_uri)
    env["env:Body"] = body
    return ET.fromstring(proto.send_message(xmltodict.unparse({"env:Envelope": env})))


def instance_dict(elem):
    out = {}
    for c in elem:
        name = c.tag.rsplit("}", 1)[-1]
        val = None if c.get("{%s}nil" % NS["xsi"]) == "true" else (c.text or "")
        if name in out:
            out[name] = (out[name] if isinstance(out[name], list) else [out[name]]) + [val]
        else:
            out[name] = val
    return out


def enumerate_wmi(proto, resource_uri, wql=None, optimize=False):
    """All instances of an enumeration: Enumerate, then Pull until EndOfSequence."""
    enum = {}
    if optimize:
        enum["w:OptimizeEnumeration"] = None
    enum["w:MaxElements"] = "32000"
    if wql:
        enum["w:Filter"] = {"@Dialect": WQL, "#text": wql}
    root = send(proto, ENUMERATE, resource_uri, {"n:Enumerate": enum})
    items = [instance_dict(i) for i in root.findall(".//w:Items/*", NS)]
    end = root.find(".//w:EndOfSequence", NS)
    ctx = root.find(".//n:EnumerationContext", NS)
    for _ in range(100):
        if end is not None or ctx is None or not (ctx.text or "").strip():
            break
        root = send(proto, PULL, resource_uri,
                    {"n:Pull": {"n:EnumerationContext": ctx.text.strip(), "n:MaxElements": "32000"}})
        items += [instance_dict(i) for i in root.findall(".//n:Items/*", NS)]
        end = root.find(".//n:EndOfSequence", NS)
        ctx = root.find(".//n:EnumerationContext", NS)
    return items


def stdregprov(proto, method, key, value=None):
    body = {"p:%s_INPUT" % method: {"@xmlns:p": STDREGPROV, "p:hDefKey": HKLM, "p:sSubKeyName": key}}
    if value is not None:
        body["p:%s_INPUT" % method]["p:sValueName"] = value
    root = send(proto, STDREGPROV + "/" + method, STDREGPROV, body)
    out = root.find(".//{%s}%s_OUTPUT" % (STDREGPROV, method))
    return instance_dict(out) if out is not None else {}


def fault_of(fn):
    """(HTTP status, subcode, WSMan fault code) of the fault fn raises, or what it returned."""
    try:
        got = fn()
    except WSManFaultError as e:
        return ("fault", e.code, e.fault_subcode, e.wsman_fault_code)
    except InvalidCredentialsError:
        return ("401",)
    except WinRMTransportError as e:
        return ("http", e.code)
    return ("no fault", got)


# --- the checks ---------------------------------------------------------------------------------

def check_host(p, args, creds, report):
    user, password = creds["default"]
    nonadmin = creds.get("nonadmin")
    url = "http://%s:%d/wsman" % (p.address, args.port)
    host = p.name

    def session(u=user, pw=password, endpoint=url, enc="always", send_cbt=True):
        return winrm.Session(endpoint, auth=(u, pw), transport="ntlm", message_encryption=enc, send_cbt=send_cbt,
                             server_cert_validation="ignore", read_timeout_sec=30, operation_timeout_sec=20)

    def attempt(what, fn):
        try:
            fn()
        except Exception as e:  # noqa: BLE001 - every failure is a reported check
            report.error(host, what, e)

    s = session()
    proto = s.protocol

    def shell():
        r = s.run_cmd("hostname")
        report.check(host, "run_cmd hostname (http, sealed)", (r.status_code, r.std_out.decode()),
                     (0, p.netbios + "\r\n"))
        r = s.run_cmd("ipconfig", ["/all"])
        out = r.std_out.decode("cp437")
        report.check(host, "run_cmd ipconfig /all: exit code", r.status_code, 0)
        report.check(host, "ipconfig /all: host name", re.search(r"Host Name[ .]*: (\S+)", out).group(1), p.netbios)
        report.check(host, "ipconfig /all: address", re.search(r"IP(?:v4)? Address[ .]*: ([\d.]+)", out).group(1),
                     p.address)
    attempt("shell", shell)

    def operating_system():
        got = enumerate_wmi(proto, WMI + "Win32_OperatingSystem")
        report.check(host, "Enumerate+Pull Win32_OperatingSystem: instances", len(got), 1)
        want = p.expected_os()
        report.check(host, "Win32_OperatingSystem " + ", ".join(want),
                     {k: got[0].get(k) for k in want} if got else None, want)
    attempt("Win32_OperatingSystem", operating_system)

    def service():
        start = p.value(r"SYSTEM\CurrentControlSet\Services\W3SVC", "Start")[1]
        got = enumerate_wmi(proto, WMI + "*", "SELECT Name, StartMode, State FROM Win32_Service WHERE Name='W3SVC'",
                            optimize=True)
        want = [{"Name": "W3SVC", "StartMode": {2: "Auto", 3: "Manual", 4: "Disabled"}[start],
                 "State": "Running" if start == 2 else "Stopped"}]
        report.check(host, "WQL Win32_Service WHERE Name='W3SVC' (OptimizeEnumeration)", got, want)
    attempt("WQL Win32_Service", service)

    def datafile():
        path, spec = next((k, f) for k, f in p.files.items()
                          if k.endswith("bin/store.exe") or k.endswith("bin/exsetup.exe"))
        name = "c:\\" + path.replace("/", "\\")
        got = enumerate_wmi(proto, WMI + "*", "SELECT Name, Version FROM CIM_DataFile WHERE Name='%s'"
                            % name.replace("\\", "\\\\"), optimize=True)
        report.check(host, "WQL CIM_DataFile %s" % name, got, [{"Name": name, "Version": spec["file_version"]}])
    attempt("WQL CIM_DataFile", datafile)

    def hotfixes():
        got = enumerate_wmi(proto, WMI + "Win32_QuickFixEngineering", optimize=True)
        report.check(host, "Win32_QuickFixEngineering HotFixIDs", {i["HotFixID"].upper() for i in got},
                     p.hotfix_ids())
    attempt("Win32_QuickFixEngineering", hotfixes)

    def registry():
        for key, name in ((r"SOFTWARE\Microsoft\Exchange\Setup", "Services"),
                          (r"SOFTWARE\Microsoft\ExchangeServer\v15\Setup", "MsiInstallPath")):
            want = p.value(key, name)
            if want:
                got = stdregprov(proto, "GetStringValue", key, name)
                report.check(host, "StdRegProv GetStringValue %s\\%s" % (key, name),
                             (got.get("ReturnValue"), got.get("sValue")), ("0", want[1]))
                break
        else:
            report.check(host, "an Exchange setup value in registry.reg", None, "Services or MsiInstallPath")
        key = r"SYSTEM\CurrentControlSet\Control\Windows"
        got = stdregprov(proto, "GetDWORDValue", key, "CSDVersion")
        report.check(host, "StdRegProv GetDWORDValue %s\\CSDVersion" % key,
                     (got.get("ReturnValue"), got.get("uValue")), ("0", str(p.value(key, "CSDVersion")[1])))
        got = stdregprov(proto, "GetStringValue", key, "CSDVersion")
        report.check(host, "StdRegProv GetStringValue of a REG_DWORD: type mismatch", got.get("ReturnValue"),
                     "2147749893")
        got = stdregprov(proto, "GetStringValue", key, "NoSuchValue")
        report.check(host, "StdRegProv GetStringValue of a missing value", got.get("ReturnValue"), "2")
        got = stdregprov(proto, "EnumKey", r"SYSTEM\CurrentControlSet\Services")
        want = {k.split("\\")[-1] for k in p.keys if re.fullmatch(r"SYSTEM\\CURRENTCONTROLSET\\SERVICES\\[^\\]+", k)}
        names = got.get("sNames") or []
        report.check(host, "StdRegProv EnumKey Services", {n.upper() for n in
                                                           (names if isinstance(names, list) else [names])}, want)
    attempt("StdRegProv", registry)

    def faults():
        report.check(host, "unknown class: fault",
                     fault_of(lambda: enumerate_wmi(proto, WMI + "Win32_NoSuchClass")),
                     ("fault", 500, "a:DestinationUnreachable", 2150858752))
        report.check(host, "bad WQL: fault",
                     fault_of(lambda: enumerate_wmi(proto, WMI + "*", "SELECT FROM WHERE", optimize=True))[:3],
                     ("fault", 500, "w:CannotProcessFilter"))
    attempt("faults", faults)

    def powershell():
        owa = (p.winrm.get("cmdlet") or {}).get("Get-OwaVirtualDirectory")
        if owa:
            props = ["Name", "ExtendedProtectionTokenChecking", "InternalAuthenticationMethods",
                     "BasicAuthentication"]
            r = s.run_ps("Get-OwaVirtualDirectory | Select-Object %s | ConvertTo-Json" % ",".join(props))
            report.check(host, "run_ps Get-OwaVirtualDirectory | ConvertTo-Json",
                         (r.status_code, json.loads(r.std_out.decode("cp437"))), (0, {k: owa[0][k] for k in props}))
        else:
            r = s.run_ps("Get-ExchangeServer | ConvertTo-Json")
            report.check(host, "run_ps Get-ExchangeServer without the Exchange cmdlets: exit 1, not recognized",
                         (r.status_code, b"is not recognized as the name of a cmdlet" in r.std_err), (1, True))
    attempt("run_ps", powershell)

    def logons():
        report.check(host, "wrong password: 401",
                     fault_of(lambda: session(pw=password + "x").run_cmd("hostname")), ("401",))
        if nonadmin:
            report.check(host, "non-admin %s: access denied" % nonadmin[0],
                         fault_of(lambda: session(*nonadmin).run_cmd("hostname")),
                         ("fault", 500, "w:AccessDenied", 5))
        report.check(host, "unencrypted body over http: refused",
                     fault_of(lambda: session(enc="never").run_cmd("hostname"))[:2], ("fault", 400))
    attempt("logons", logons)

    def https():
        hs = session(endpoint="https://%s:%d/wsman" % (p.address, args.tls_port), enc="auto")
        r = hs.run_cmd("hostname")
        report.check(host, "https: run_cmd hostname (TLS, bodies not sealed)", (r.status_code, r.std_out.decode()),
                     (0, p.netbios + "\r\n"))
        got = enumerate_wmi(hs.protocol, WMI + "Win32_OperatingSystem", optimize=True)
        report.check(host, "https: Win32_OperatingSystem Caption", [g.get("Caption") for g in got],
                     [p.expected_os()["Caption"]])
        # pywinrm sends channel bindings over HTTPS unless told not to; a "strict" host refuses a
        # logon without them, a "relaxed" one (Windows' default) accepts it.
        strict = str(p.winrm.get("cbt_hardening", "relaxed")).lower() == "strict"
        plain = session(endpoint="https://%s:%d/wsman" % (p.address, args.tls_port), enc="auto", send_cbt=False)
        report.check(host, "https without channel bindings (%s)" % ("strict" if strict else "relaxed"),
                     fault_of(lambda: plain.run_cmd("hostname"))[:1], ("401",) if strict else ("no fault",))
    if args.tls_port:
        attempt("https", https)

    def owa():
        # The profile's IIS stand-in, read with the standard library's HTTP client.
        import http.client
        conn = http.client.HTTPConnection(p.address, args.http_port, timeout=10)
        conn.request("GET", p.owa.get("path", "/exchange/"))
        r = conn.getresponse()
        want = {"auth": 401, "ssl-required": 403, "redirect-https": 302, "anonymous": 200}[p.owa["http"]]
        schemes = r.msg.get_all("WWW-Authenticate") or []
        report.check(host, "http.client GET OWA over plain HTTP", (r.status, schemes),
                     (want, p.owa.get("auth_schemes", []) if want == 401 else []))
        conn.close()
    if args.http_port and p.owa is not None:
        attempt("owa", owa)

    def pypsrp_checks():
        from pypsrp.shell import Process, SignalCode, WinRS
        from pypsrp.wsman import WSMan
        wsman = WSMan(p.address, port=args.port, ssl=False, auth="ntlm", username=user, password=password,
                      encryption="always", cert_validation=False)
        with WinRS(wsman) as sh:
            proc = Process(sh, "hostname")
            proc.invoke()
            proc.signal(SignalCode.CTRL_C)
        report.check(host, "pypsrp WinRS hostname", (proc.rc, proc.stdout.decode()), (0, p.netbios + "\r\n"))
        res = ET.Element("{%s}Enumerate" % NS["n"])
        ET.SubElement(res, "{%s}OptimizeEnumeration" % NS["w"])
        ET.SubElement(res, "{%s}MaxElements" % NS["w"]).text = "32000"
        ET.SubElement(res, "{%s}Filter" % NS["w"], Dialect=WQL).text = \
            "SELECT Caption, Version FROM Win32_OperatingSystem"
        body = wsman.enumerate(WMI + "*", resource=res)
        got = [instance_dict(i) for i in body.findall(".//w:Items/*", NS)]
        want = p.expected_os()
        report.check(host, "pypsrp WSMan.enumerate WQL Win32_OperatingSystem", got,
                     [{"Caption": want["Caption"], "Version": want["Version"]}])
        if args.spnego_port:
            # A listener that wants SPNEGO: pyspnego's Negotiate (SPNEGO around NTLM, with
            # mechListMICs) gets in, pywinrm's raw NTLMSSP gets a bare 401.
            spnego_wsman = WSMan(p.address, port=args.spnego_port, ssl=False, auth="negotiate", username=user,
                                 password=password, encryption="always", cert_validation=False)
            with WinRS(spnego_wsman) as sh:
                proc = Process(sh, "hostname")
                proc.invoke()
                proc.signal(SignalCode.CTRL_C)
            report.check(host, "pypsrp SPNEGO-only listener: WinRS hostname", (proc.rc, proc.stdout.decode()),
                         (0, p.netbios + "\r\n"))
            raw = session(endpoint="http://%s:%d/wsman" % (p.address, args.spnego_port))
            try:
                raw.run_cmd("hostname")
                outcome = "logged on"
            except PermissionError as e:   # requests_ntlm: a 401 with no NTLM challenge token
                outcome = "no challenge" if "challenge" in str(e) else str(e)
            except Exception as e:  # noqa: BLE001 - reported as the outcome
                outcome = type(e).__name__
            report.check(host, "pywinrm raw NTLMSSP on the SPNEGO-only listener: bare 401", outcome, "no challenge")
    if args.pypsrp:
        attempt("pypsrp", pypsrp_checks)


def load_credentials(path):
    with open(path, "rb") as fh:
        doc = tomllib.load(fh)
    out = {}
    for entry in ("default", "nonadmin"):
        e = doc.get(entry)
        if e:
            out[entry] = ("%s\\%s" % (e["domain"], e["user"]) if e.get("domain") else e["user"], e["password"])
    if "default" not in out:
        sys.exit("check_pywinrm: %s has no [default] entry" % path)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--credentials", required=True, help="the lab's credentials.toml ([default], [nonadmin])")
    ap.add_argument("--hosts-dir", default=os.path.join(REPO, "tests", "lab", "hosts"))
    ap.add_argument("--address", action="append", default=[], help="check only the host at this address")
    ap.add_argument("--port", type=int, default=5985)
    ap.add_argument("--tls-port", type=int, default=5986, help="0: skip the HTTPS checks")
    ap.add_argument("--http-port", type=int, default=80, help="the OWA stand-in's port (0: skip)")
    ap.add_argument("--spnego-port", type=int, default=5987,
                    help="the listeners that take only SPNEGO-wrapped NTLM (0: skip those checks)")
    ap.add_argument("--no-pypsrp", dest="pypsrp", action="store_false", help="skip the pypsrp checks")
    ap.add_argument("names", nargs="*", metavar="NAME")
    args = ap.parse_args()
    creds = load_credentials(args.credentials)
    profiles = [Profile(os.path.join(args.hosts_dir, d)) for d in sorted(os.listdir(args.hosts_dir))
                if os.path.isfile(os.path.join(args.hosts_dir, d, "host.toml"))]
    profiles = [p for p in profiles if (not args.names or p.name in args.names)
                and (not args.address or p.address in args.address)]
    if not profiles:
        print("check_pywinrm: no host matches", file=sys.stderr)
        return 2
    if args.pypsrp:
        if importlib.util.find_spec("pypsrp") is None:
            print("check_pywinrm: pypsrp is not installed: its checks fail (run scripts/setup, or --no-pypsrp)")
    t0 = time.perf_counter()
    report = Report()
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(profiles)) as pool:
        for f in [pool.submit(check_host, p, args, creds, report) for p in profiles]:
            f.result()
    print("check_pywinrm: %d hosts in %.2f s (pywinrm %s)" % (len(profiles), time.perf_counter() - t0,
                                                             getattr(winrm, "__version__", "?")))
    print("%d passed, %d failed" % (report.passed, report.failed))
    return 1 if report.failed or not report.passed else 0


if __name__ == "__main__":
    sys.exit(main())

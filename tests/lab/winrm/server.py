#!/usr/bin/env python3
"""tests/lab/winrm/server.py - the lab's WinRM (WS-Management) server.

One process serves every lab host: for each host profile (tests/lab/hosts/<name>/host.toml,
registry.reg and the [[file]] tables) it listens on <address>:5985 (HTTP, NTLM with message
sealing, as Windows with AllowUnencrypted=false) and <address>:5986 (HTTPS with a self-signed
certificate made at its first TLS connection, NTLM still required), optionally <address>:--spnego-port (HTTP that,
like a server wanting SPNEGO, refuses raw NTLMSSP), and answers WMI enumerations (by class and by
WQL), StdRegProv method calls and the cmd shell (hostname, whoami, ipconfig, a few Exchange
cmdlets through powershell -EncodedCommand) from that profile. The non-admin account gets the
access-denied fault a Windows host returns. Everything it does and where each answer comes from:
tests/lab/winrm/README.md.

    server.py --hosts-dir tests/lab/hosts --users-file FILE --run-dir DIR
              [--port 5985] [--tls-port 5986] [--spnego-port 0] [--http-port 0] [--admin USER]...
              [--add-addresses] [NAME...]
    server.py --self-test

NTLM is pyspnego's acceptor (spnego.server); it reads the accounts from the file named by
NTLM_USER_FILE (DOMAIN:USER:PASSWORD lines), which this process sets to --users-file: passwords
never appear on a command line. Writes DIR/winrm.pid, DIR/winrm.ready (JSON, once every listener
is bound) and logs to DIR/winrm.log.
"""

import argparse
import asyncio
import base64
import binascii
import datetime
import hashlib
import ipaddress
import json
import logging
import logging.handlers
import os
import re
import resource
import signal
import ssl
import subprocess
import sys
import time
import tomllib
import types
import uuid
import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape as _xml_escape

LOG = logging.getLogger("winrm")

# --- limits -------------------------------------------------------------------------------------

MAX_HEAD = 16 * 1024            # request line + headers
MAX_HEADERS = 100
MAX_BODY = 512 * 1024           # request body (encrypted or not)
FIRST_REQUEST_TIMEOUT = 30.0    # from accept (or TLS handshake) to a complete request head
IDLE_TIMEOUT = 120.0            # keep-alive: between requests (http.sys's default idle is 120 s)
BODY_TIMEOUT = 30.0
TLS_HANDSHAKE_TIMEOUT = 10.0
MAX_CONNECTIONS = 4096
MAX_ENUM_CONTEXTS = 10000
ENUM_CONTEXT_TTL = 240.0        # EnumerationTimeoutms default 240000
MAX_SHELLS = 5000
MAX_SHELLS_PER_USER = 30        # Winrs MaxShellsPerUser default (2012 and later)
SHELL_IDLE_TTL = 7200.0         # Winrs IdleTimeout default 7200000 ms

# --- namespaces and URIs ------------------------------------------------------------------------

NS_S = "http://www.w3.org/2003/05/soap-envelope"
NS_A = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
NS_N = "http://schemas.xmlsoap.org/ws/2004/09/enumeration"
NS_X = "http://schemas.xmlsoap.org/ws/2004/09/transfer"
NS_W = "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"
NS_P = "http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd"
NS_RSP = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell"
NS_F = "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault"
NS_XSI = "http://www.w3.org/2001/XMLSchema-instance"
NS_CIM = "http://schemas.dmtf.org/wbem/wscim/1/common"

ANONYMOUS = "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous"
WMI_PREFIX = "http://schemas.microsoft.com/wbem/wsman/1/wmi/"
DMTF_CIM_PREFIX = "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/"
SHELL_CMD_URI = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd"
WQL_DIALECT = "http://schemas.microsoft.com/wbem/wsman/1/WQL"

ACT_ENUMERATE = "http://schemas.xmlsoap.org/ws/2004/09/enumeration/Enumerate"
ACT_PULL = "http://schemas.xmlsoap.org/ws/2004/09/enumeration/Pull"
ACT_RELEASE = "http://schemas.xmlsoap.org/ws/2004/09/enumeration/Release"
ACT_CREATE = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Create"
ACT_DELETE = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Delete"
ACT_COMMAND = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Command"
ACT_RECEIVE = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Receive"
ACT_SIGNAL = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Signal"
ACT_SEND = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Send"

FAULT_WSMAN = "http://schemas.dmtf.org/wbem/wsman/1/wsman/fault"
FAULT_ADDRESSING = "http://schemas.xmlsoap.org/ws/2004/08/addressing/fault"
FAULT_ENUMERATION = "http://schemas.xmlsoap.org/ws/2004/09/enumeration/fault"

ENC_PROTOCOL = "application/HTTP-SPNEGO-session-encrypted"
ENC_BOUNDARY = b"--Encrypted Boundary"
ENC_CONTENT_TYPE = 'multipart/encrypted;protocol="%s";boundary="Encrypted Boundary"' % ENC_PROTOCOL
SOAP_CONTENT_TYPE = "application/soap+xml;charset=UTF-8"

HKLM = 2147483650
WBEM_E_TYPE_MISMATCH = 2147749893   # 0x80041005 (WbemErrorEnum wbemErrTypeMismatch)
REG_SZ, REG_EXPAND_SZ, REG_BINARY, REG_DWORD, REG_MULTI_SZ, REG_QWORD = 1, 2, 3, 4, 7, 11


def xesc(text):
    """XML-escape text; characters XML 1.0 cannot carry become U+FFFD."""
    text = "".join(c if c in "\t\n\r" or 0x20 <= ord(c) <= 0xD7FF or 0xE000 <= ord(c) <= 0xFFFD
                   or 0x10000 <= ord(c) <= 0x10FFFF else "\ufffd" for c in str(text))
    return _xml_escape(text, {'"': "&quot;"})


def new_uuid():
    return str(uuid.uuid4()).upper()


# --- registry.reg -------------------------------------------------------------------------------

class ProfileError(Exception):
    pass


class RegKey:
    __slots__ = ("name", "values", "subkeys")

    def __init__(self, name):
        self.name = name
        self.values = {}    # upper name -> (name, type, bytes)
        self.subkeys = {}   # upper name -> RegKey


class Registry:
    """HKLM of one host, as its registry.reg describes it (paths relative to HKLM)."""

    def __init__(self):
        self.root = RegKey("")

    @staticmethod
    def parts(path):
        return [p for p in path.replace("/", "\\").split("\\") if p]

    def key(self, path):
        k = self.root
        for part in self.parts(path):
            k = k.subkeys.get(part.upper())
            if k is None:
                return None
        return k

    def ensure(self, path):
        k = self.root
        for part in self.parts(path):
            k = k.subkeys.setdefault(part.upper(), RegKey(part))
        return k

    def delete(self, path):
        parts = self.parts(path)
        if not parts:
            return
        parent = self.key("\\".join(parts[:-1]))
        if parent is not None:
            parent.subkeys.pop(parts[-1].upper(), None)

    def value(self, path, name):
        k = self.key(path)
        if k is None:
            return None
        return k.values.get(name.upper())

    def walk(self, path=""):
        """(path, key) for the key at path and every key below it."""
        k = self.key(path)
        if k is None:
            return
        stack = [(path.strip("\\"), k)]
        while stack:
            p, k = stack.pop()
            yield p, k
            for sub in sorted(k.subkeys.values(), key=lambda s: s.name.upper(), reverse=True):
                stack.append((p + "\\" + sub.name if p else sub.name, sub))


ROOT_ALIASES = {"HKEY_LOCAL_MACHINE": "", "HKLM": ""}


_REG_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"')


def _reg_unquote(s, where):
    """Parse the quoted .reg string at the start of s; (text, rest)."""
    m = _REG_QUOTED.match(s)
    if not m:
        raise ProfileError("%s: expected a terminated quoted string" % where)
    return re.sub(r"\\(.)", r"\1", m.group(1)), s[m.end():]


_REG_CACHE = {}


def parse_reg(path):
    """parse_reg_file, cached by file identity: a fleet of hosts made from one profile shares it."""
    st = os.stat(path)
    ident = (os.path.realpath(path), st.st_size, st.st_mtime_ns)
    reg = _REG_CACHE.get(ident)
    if reg is None:
        reg = _REG_CACHE[ident] = parse_reg_file(path)
    return reg


def parse_reg_file(path):
    """Parse a regedit export (UTF-16LE with BOM, or UTF-8) into a Registry."""
    raw = open(path, "rb").read()
    text = raw[2:].decode("utf-16-le") if raw.startswith(b"\xff\xfe") else raw.decode("utf-8-sig")
    lines = text.splitlines()
    reg = Registry()
    if not lines or lines[0].strip() not in ("Windows Registry Editor Version 5.00", "REGEDIT4"):
        raise ProfileError("%s:1: not a .reg file (first line)" % path)
    key, i = None, 1
    while i < len(lines):
        no, line = i + 1, lines[i].strip()
        i += 1
        # hex data continues on the next line after a trailing backslash
        while line.endswith("\\") and re.search(r"=\s*hex", line, re.I) and i < len(lines):
            line = line[:-1] + lines[i].strip()
            i += 1
        if not line or line.startswith(";"):
            continue
        where = "%s:%d" % (path, no)
        if line.startswith("[") and line.endswith("]"):
            name = line[1:-1].strip()
            delete = name.startswith("-")
            name = name.lstrip("-")
            root, _, rest = name.partition("\\")
            if root.upper() not in ROOT_ALIASES:
                key = None          # another hive: not served
                continue
            if delete:
                reg.delete(rest)
                key = None
            else:
                key = reg.ensure(rest)
            continue
        if key is None:
            continue
        if line.startswith("@"):
            vname, rest = "", line[1:]
        else:
            vname, rest = _reg_unquote(line, where)
        rest = rest.strip()
        if not rest.startswith("="):
            raise ProfileError("%s: cannot parse %r" % (where, line[:80]))
        rest = rest[1:].strip()
        if rest == "-":
            key.values.pop(vname.upper(), None)
            continue
        if rest.startswith('"'):
            s, tail = _reg_unquote(rest, where)
            if tail.strip():
                raise ProfileError("%s: text after the string" % where)
            key.values[vname.upper()] = (vname, REG_SZ, (s + "\0").encode("utf-16-le"))
            continue
        m = re.fullmatch(r"dword:([0-9a-fA-F]{1,8})", rest)
        if m:
            key.values[vname.upper()] = (vname, REG_DWORD, int(m.group(1), 16).to_bytes(4, "little"))
            continue
        m = re.fullmatch(r"hex(?:\(([0-9a-fA-F]+)\))?:([0-9a-fA-F,\s]*)", rest)
        if not m:
            raise ProfileError("%s: cannot parse value %r" % (where, line[:80]))
        vtype = int(m.group(1), 16) if m.group(1) else REG_BINARY
        try:
            data = bytes.fromhex("".join("%02s" % b for b in m.group(2).replace(" ", "").split(",") if b)
                                 .replace(" ", "0"))
        except ValueError:
            raise ProfileError("%s: bad hex data" % where) from None
        key.values[vname.upper()] = (vname, vtype, data)
    return reg


def reg_string(data):
    if len(data) % 2:
        data = data[:-1]
    s = data.decode("utf-16-le", errors="replace")
    return s.split("\0", 1)[0]


def reg_multi(data):
    if len(data) % 2:
        data = data[:-1]
    items = data.decode("utf-16-le", errors="replace").split("\0")
    while items and items[-1] == "":
        items.pop()
    return items


def reg_int(data, size):
    return int.from_bytes(data[:size].ljust(size, b"\0"), "little")


# --- host profiles ------------------------------------------------------------------------------

CAPTIONS = [
    # (major, minor, first build or 0, caption): Win32_OperatingSystem.Caption of a Standard server
    (5, 0, 0, "Microsoft Windows 2000 Server"),
    (5, 2, 0, "Microsoft(R) Windows(R) Server 2003, Standard Edition"),
    (6, 0, 0, "Microsoft\u00ae Windows Server\u00ae 2008 Standard"),
    (6, 1, 0, "Microsoft Windows Server 2008 R2 Standard"),
    (6, 2, 0, "Microsoft Windows Server 2012 Standard"),
    (6, 3, 0, "Microsoft Windows Server 2012 R2 Standard"),
    (10, 0, 14393, "Microsoft Windows Server 2016 Standard"),
    (10, 0, 17763, "Microsoft Windows Server 2019 Standard"),
    (10, 0, 20348, "Microsoft Windows Server 2022 Standard"),
    (10, 0, 26100, "Microsoft Windows Server 2025 Standard"),
]


class Host:
    """Everything the WinRM side of one lab host answers, derived from its profile."""

    def __init__(self, pdir):
        f = os.path.join(pdir, "host.toml")
        try:
            with open(f, "rb") as fh:
                doc = tomllib.load(fh)
        except (OSError, tomllib.TOMLDecodeError) as e:
            raise ProfileError("%s: %s" % (f, e)) from None
        self.dir = pdir
        self.name = doc.get("name")
        if not isinstance(self.name, str) or not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,40}", self.name):
            raise ProfileError("%s: bad or missing name" % f)
        try:
            self.address = str(ipaddress.IPv4Address(doc.get("address", "")))
        except ValueError:
            raise ProfileError("%s: bad address %r" % (f, doc.get("address"))) from None
        if ipaddress.IPv4Address(self.address) not in ipaddress.IPv4Network("127.0.0.0/8"):
            raise ProfileError("%s: address %s is outside 127.0.0.0/8" % (f, self.address))
        self.netbios = str(doc.get("netbios_name", self.name.upper())).upper()
        self.roles = list(doc.get("roles", []))
        self.domain = "EXLAB"
        self.winrm = doc.get("winrm", {})
        if not isinstance(self.winrm, dict):
            raise ProfileError("%s: [winrm] must be a table" % f)
        self.enabled = bool(self.winrm.get("enabled", True))
        # Like WinRM's CbtHardeningLevel: "relaxed" (Windows' default) checks channel bindings a
        # client sends over HTTPS; "strict" also refuses an HTTPS logon without them.
        self.cbt = str(self.winrm.get("cbt_hardening", "relaxed")).lower()
        # The certificate's key and signature: RSA 2048 with SHA-256, or ECDSA P-384 with SHA-384
        # (whose channel binding is then a SHA-384 hash, RFC 5929 4.1).
        self.tls_key = str(self.winrm.get("tls_key", "rsa-2048")).lower()
        if self.tls_key not in ("rsa-2048", "ecdsa-p384"):
            raise ProfileError("%s: [winrm] tls_key must be \"rsa-2048\" or \"ecdsa-p384\"" % f)
        if self.cbt not in ("relaxed", "strict"):
            raise ProfileError("%s: [winrm] cbt_hardening must be \"relaxed\" or \"strict\"" % f)
        regf = os.path.join(pdir, "registry.reg")
        self.registry = parse_reg(regf) if os.path.isfile(regf) else Registry()
        defaults = doc.get("file_defaults", {})
        self.files = []     # (windows path, lower path, spec)
        for n, entry in enumerate(doc.get("file", []), 1):
            spec = dict(defaults)
            spec.update(entry)
            path = spec.get("path")
            if not isinstance(path, str) or not path:
                raise ProfileError("%s: [[file]] #%d has no path" % (f, n))
            win = "C:\\" + path.replace("/", "\\")
            self.files.append((win, win.lower(), spec))
        self._derive_os()
        self._cmdlets = {k.lower(): (k, v) for k, v in (self.winrm.get("cmdlet") or {}).items()}
        self.owa = doc.get("owa")
        if self.owa is not None:
            if not isinstance(self.owa, dict) or self.owa.get("http") not in OWA_MODES:
                raise ProfileError("%s: [owa] http must be one of %s" % (f, ", ".join(OWA_MODES)))
            self.owa_path = str(self.owa.get("path", "/exchange/")).lower().rstrip("/")
            self.owa_schemes = [str(s) for s in self.owa.get("auth_schemes", [])]

    # -- operating system --
    def _derive_os(self):
        kernel = next((spec for win, low, spec in self.files
                       if re.fullmatch(r"c:\\(winnt|windows)\\system32\\ntoskrnl\.exe", low)), None)
        self.kernel_path = next((win for win, low, spec in self.files
                                 if re.fullmatch(r"c:\\(winnt|windows)\\system32\\ntoskrnl\.exe", low)), None)
        ver = kernel.get("file_version") if kernel else None
        if not ver:
            cur = self.registry.value(r"SOFTWARE\Microsoft\Windows NT\CurrentVersion", "CurrentVersion")
            build = self.registry.value(r"SOFTWARE\Microsoft\Windows NT\CurrentVersion", "CurrentBuildNumber")
            if cur and build:
                ver = "%s.%s.0" % (reg_string(cur[2]), reg_string(build[2]))
        nums = [int(x) for x in re.findall(r"\d+", ver or "")][:4]
        while len(nums) < 3:
            nums.append(0)
        self.os_major, self.os_minor, self.os_build = nums[0], nums[1], nums[2]
        self.os_version = "%d.%d.%d" % (self.os_major, self.os_minor, self.os_build) if ver else None
        self.kernel_arch = (kernel or {}).get("arch", "i686")
        caption = None
        for major, minor, build, text in CAPTIONS:
            if (self.os_major, self.os_minor) == (major, minor) and self.os_build >= build:
                caption = text
        self.os_caption = self.winrm.get("os_caption", caption)
        self.windir = "C:\\WINNT" if self.kernel_path and self.kernel_path.upper().startswith("C:\\WINNT") \
            else "C:\\Windows"
        # Service pack: CSDVersion string in CurrentVersion, else Control\Windows CSDVersion (0x100 per SP)
        csd = self.registry.value(r"SOFTWARE\Microsoft\Windows NT\CurrentVersion", "CSDVersion")
        dword = self.registry.value(r"SYSTEM\CurrentControlSet\Control\Windows", "CSDVersion")
        self.sp_major = self.sp_minor = 0
        self.csd_version = None
        if csd and csd[1] in (REG_SZ, REG_EXPAND_SZ):
            self.csd_version = reg_string(csd[2]) or None
            m = re.search(r"(\d+)", self.csd_version or "")
            self.sp_major = int(m.group(1)) if m else 0
        elif dword and dword[1] == REG_DWORD:
            v = reg_int(dword[2], 4)
            self.sp_major, self.sp_minor = v >> 8, v & 0xFF
            self.csd_version = "Service Pack %d" % self.sp_major if self.sp_major else None
        lm = self.registry.value(r"SYSTEM\CurrentControlSet\Control\Lsa", "LmCompatibilityLevel")
        self.lm_compat = reg_int(lm[2], 4) if lm and lm[1] == REG_DWORD else 3
        self.lm_compat = min(max(self.lm_compat, 0), 5)

    def expand(self, text):
        return re.sub(r"%SystemRoot%|%windir%", lambda m: self.windir, text, flags=re.I)

    def cmdlet(self, name):
        return self._cmdlets.get(name.lower())


def load_hosts(hosts_dir, wanted):
    hosts, seen_names, seen_addrs = [], {}, {}
    if not os.path.isdir(hosts_dir):
        raise ProfileError("no profile directory %s" % hosts_dir)
    for entry in sorted(os.listdir(hosts_dir)):
        d = os.path.join(hosts_dir, entry)
        if not os.path.isfile(os.path.join(d, "host.toml")):
            continue
        h = Host(d)
        if wanted and h.name not in wanted:
            continue
        if h.name in seen_names or h.address in seen_addrs:
            raise ProfileError("%s: name or address already used by %s"
                               % (d, seen_names.get(h.name) or seen_addrs.get(h.address)))
        seen_names[h.name] = seen_addrs[h.address] = d
        hosts.append(h)
    missing = set(wanted) - set(seen_names)
    if missing:
        raise ProfileError("no profile named %s in %s" % (", ".join(sorted(missing)), hosts_dir))
    if not hosts:
        raise ProfileError("no host profiles in %s" % hosts_dir)
    return hosts


# --- WMI classes --------------------------------------------------------------------------------

class WmiError(Exception):
    """kind: 'invalid-class' or 'invalid-query'."""

    def __init__(self, kind, text):
        super().__init__(text)
        self.kind = kind


def _sorted_props(props):
    # WMI lists an instance's properties in case-insensitive alphabetical order
    return sorted(props, key=lambda kv: kv[0].upper())


START_MODES = {0: "Boot", 1: "System", 2: "Auto", 3: "Manual", 4: "Disabled"}
SERVICE_TYPES = {1: "Kernel Driver", 2: "File System Driver", 0x10: "Own Process", 0x20: "Share Process",
                 0x110: "Own Process", 0x120: "Share Process"}
ERROR_CONTROL = {0: "Ignore", 1: "Normal", 2: "Severe", 3: "Critical"}


def os_instances(h):
    if not h.os_version:
        return []
    p = [
        ("BootDevice", "\\Device\\HarddiskVolume1"),
        ("BuildNumber", str(h.os_build)),
        ("BuildType", "Multiprocessor Free"),
        ("Caption", h.os_caption),
        ("CodeSet", "1252"),
        ("CountryCode", "1"),
        ("CSDVersion", h.csd_version),
        ("CSName", h.netbios),
        ("Locale", "0409"),
        ("Manufacturer", "Microsoft Corporation"),
        ("Name", "%s|%s|\\Device\\Harddisk0\\Partition1" % (h.os_caption or "", h.windir)),
        ("Organization", ""),
        ("OSLanguage", 1033),
        ("OSType", 18),
        ("Primary", True),
        ("ProductType", 3),
        ("RegisteredUser", ""),
        ("ServicePackMajorVersion", h.sp_major),
        ("ServicePackMinorVersion", h.sp_minor),
        ("Status", "OK"),
        ("SystemDirectory", h.windir + "\\system32"),
        ("SystemDrive", "C:"),
        ("Version", h.os_version),
        ("WindowsDirectory", h.windir),
    ]
    if h.os_major >= 6:     # added with Windows Vista / Server 2008
        p.append(("OSArchitecture", "64-bit" if h.kernel_arch == "x86_64" else "32-bit"))
    return [_sorted_props(p)]


def computer_instances(h):
    return [_sorted_props([
        ("Caption", h.netbios), ("DNSHostName", h.name), ("Domain", h.domain), ("DomainRole", 2),
        ("Manufacturer", "exsweep lab"), ("Model", "Virtual Machine"), ("Name", h.netbios),
        ("PartOfDomain", False), ("PrimaryOwnerName", ""), ("Status", "OK"), ("Workgroup", h.domain),
    ])]


def service_instances(h):
    out = []
    services = h.registry.key(r"SYSTEM\CurrentControlSet\Services")
    if services is None:
        return out
    overrides = {k.upper(): v for k, v in (h.winrm.get("service_state") or {}).items()}
    n = 0
    for k in sorted(services.subkeys.values(), key=lambda k: k.name.upper()):
        start = k.values.get("START")
        if not start or start[1] != REG_DWORD:
            continue
        stype = k.values.get("TYPE")
        stype = reg_int(stype[2], 4) if stype and stype[1] == REG_DWORD else 0x10
        if not stype & 0x30:        # drivers are Win32_SystemDriver, not Win32_Service
            continue
        start = reg_int(start[2], 4)

        def sval(name, default=None):
            v = k.values.get(name.upper())
            if not v:
                return default
            return reg_string(v[2]) if v[1] in (REG_SZ, REG_EXPAND_SZ) else default

        state = overrides.get(k.name.upper(), "Running" if start == 2 else "Stopped")
        running = state == "Running"
        n += 1
        ec = k.values.get("ERRORCONTROL")
        display = sval("DisplayName", k.name)
        image = sval("ImagePath")
        out.append(_sorted_props([
            ("AcceptPause", False), ("AcceptStop", running), ("Caption", display),
            ("Description", sval("Description")), ("DisplayName", display),
            ("ErrorControl", ERROR_CONTROL.get(reg_int(ec[2], 4) if ec else 1, "Unknown")),
            ("ExitCode", 0 if running else 1077), ("Name", k.name),
            ("PathName", h.expand(image) if image else None),
            ("ProcessId", 1000 + 4 * n if running else 0),
            ("ServiceType", SERVICE_TYPES.get(stype, "Unknown")), ("Started", running),
            ("StartMode", START_MODES.get(start, "Unknown")),
            ("StartName", sval("ObjectName", "LocalSystem")), ("State", state), ("Status", "OK"),
            ("SystemName", h.netbios),
        ]))
    return out


def qfe_instances(h):
    """Update indicator keys (Updates\\<product>[\\<SPn>]\\<id>) and Windows NT\\CurrentVersion\\Hotfix."""
    out = []

    def inst(key, hotfix_id, sp):
        def sval(name):
            v = key.values.get(name.upper())
            return reg_string(v[2]) if v and v[1] in (REG_SZ, REG_EXPAND_SZ) else None
        return _sorted_props([
            ("Caption", None), ("CSName", h.netbios),
            ("Description", sval("Type") or "Update"),
            ("FixComments", sval("Description") or sval("PackageName")),
            ("HotFixID", hotfix_id), ("InstallDate", None), ("InstalledBy", sval("InstalledBy")),
            ("InstalledOn", sval("InstalledDate")), ("Name", None), ("ServicePackInEffect", sp),
            ("Status", None),
        ])

    updates = h.registry.key(r"SOFTWARE\Microsoft\Updates")
    if updates is not None:
        for product in sorted(updates.subkeys.values(), key=lambda k: k.name.upper()):
            for level in sorted(product.subkeys.values(), key=lambda k: k.name.upper()):
                if re.fullmatch(r"SP\d+", level.name, re.I):
                    for upd in sorted(level.subkeys.values(), key=lambda k: k.name.upper()):
                        out.append(inst(upd, upd.name, level.name))
                else:
                    out.append(inst(level, level.name, ""))
    hotfix = h.registry.key(r"SOFTWARE\Microsoft\Windows NT\CurrentVersion\Hotfix")
    if hotfix is not None:
        for upd in sorted(hotfix.subkeys.values(), key=lambda k: k.name.upper()):
            out.append(inst(upd, upd.name, ""))
    return out


def datafile_instances(h):
    out = []
    for win, low, spec in h.files:
        drive, _, rest = low.partition("\\")
        folder, _, fname = ("\\" + rest).rpartition("\\")
        base, dot, ext = fname.rpartition(".")
        if not dot:
            base, ext = fname, ""
        out.append(_sorted_props([
            ("Caption", low), ("CSName", h.netbios), ("Description", low), ("Drive", drive),
            ("Extension", ext), ("FileName", base), ("FileType", "Application" if ext == "exe" else
                                                   "Application Extension" if ext == "dll" else ext),
            ("FSName", "NTFS"), ("Manufacturer", spec.get("company")), ("Name", low),
            ("Path", folder + "\\"), ("Version", spec.get("file_version")),
        ]))
    return out


WMI_CLASSES = {
    "WIN32_OPERATINGSYSTEM": ("Win32_OperatingSystem", os_instances),
    "WIN32_COMPUTERSYSTEM": ("Win32_ComputerSystem", computer_instances),
    "WIN32_SERVICE": ("Win32_Service", service_instances),
    "WIN32_QUICKFIXENGINEERING": ("Win32_QuickFixEngineering", qfe_instances),
    "CIM_DATAFILE": ("CIM_DataFile", datafile_instances),
}


def wmi_class(name):
    c = WMI_CLASSES.get(name.upper())
    if c is None:
        raise WmiError("invalid-class", "Invalid class %s" % name)
    return c


# --- WQL ----------------------------------------------------------------------------------------

_WQL_TOKEN = re.compile(r"""\s*(?:
    (?P<str>'(?:\\.|[^'\\])*'|"(?:\\.|[^"\\])*")
  | (?P<num>-?\d+(?:\.\d+)?)
  | (?P<op><>|!=|<=|>=|=|<|>|\(|\)|,|\*)
  | (?P<id>[A-Za-z_][A-Za-z0-9_]*)
  )""", re.X)


def wql_tokens(q):
    pos, out = 0, []
    q = q.rstrip()
    while pos < len(q):
        m = _WQL_TOKEN.match(q, pos)
        if not m or m.end() == pos:
            raise WmiError("invalid-query", "cannot parse WQL at %r" % q[pos:pos + 20])
        pos = m.end()
        if m.group("str") is not None:
            s = m.group("str")[1:-1]
            out.append(("str", re.sub(r"\\(.)", r"\1", s)))
        elif m.group("num") is not None:
            out.append(("num", m.group("num")))
        elif m.group("op") is not None:
            out.append(("op", m.group("op")))
        else:
            out.append(("id", m.group("id")))
    return out


class Wql:
    """SELECT <*|props> FROM <class> [WHERE <conditions>] (=, <>, <, >, LIKE, IS [NOT] NULL, AND, OR, NOT)."""

    def __init__(self, query):
        self.t = wql_tokens(query)
        self.i = 0
        if not self._kw("SELECT"):
            raise WmiError("invalid-query", "WQL must start with SELECT")
        self.props = None
        if self._op("*"):
            pass
        else:
            self.props = [self._ident()]
            while self._op(","):
                self.props.append(self._ident())
        if not self._kw("FROM"):
            raise WmiError("invalid-query", "FROM expected")
        self.cls = self._ident()
        self.where = None
        if self._kw("WHERE"):
            self.where = self._or()
        if self.i != len(self.t):
            raise WmiError("invalid-query", "unexpected %r" % (self.t[self.i][1],))

    def _peek(self):
        return self.t[self.i] if self.i < len(self.t) else (None, None)

    def _kw(self, word):
        kind, val = self._peek()
        if kind == "id" and val.upper() == word:
            self.i += 1
            return True
        return False

    def _op(self, op):
        kind, val = self._peek()
        if kind == "op" and val == op:
            self.i += 1
            return True
        return False

    def _ident(self):
        kind, val = self._peek()
        if kind != "id" or val.upper() in ("SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "LIKE", "IS"):
            raise WmiError("invalid-query", "identifier expected")
        self.i += 1
        return val

    def _literal(self):
        kind, val = self._peek()
        if kind == "str":
            self.i += 1
            return val
        if kind == "num":
            self.i += 1
            return float(val) if "." in val else int(val)
        if kind == "id" and val.upper() in ("TRUE", "FALSE", "NULL"):
            self.i += 1
            return {"TRUE": True, "FALSE": False, "NULL": None}[val.upper()]
        raise WmiError("invalid-query", "literal expected")

    def _or(self):
        node = self._and()
        while self._kw("OR"):
            node = ("or", node, self._and())
        return node

    def _and(self):
        node = self._not()
        while self._kw("AND"):
            node = ("and", node, self._not())
        return node

    def _not(self):
        if self._kw("NOT"):
            return ("not", self._not())
        if self._op("("):
            node = self._or()
            if not self._op(")"):
                raise WmiError("invalid-query", ") expected")
            return node
        return self._cmp()

    def _cmp(self):
        kind, _ = self._peek()
        if kind == "id":
            prop = self._ident()
            if self._kw("IS"):
                neg = self._kw("NOT")
                if not self._kw("NULL"):
                    raise WmiError("invalid-query", "NULL expected")
                return ("isnull", prop, neg)
            if self._kw("LIKE"):
                pat = self._literal()
                if not isinstance(pat, str):
                    raise WmiError("invalid-query", "LIKE needs a string")
                return ("like", prop, pat)
            kind, op = self._peek()
            if kind != "op" or op not in ("=", "<>", "!=", "<", ">", "<=", ">="):
                raise WmiError("invalid-query", "operator expected")
            self.i += 1
            return ("cmp", prop, op, self._literal())
        lit = self._literal()
        kind, op = self._peek()
        if kind != "op" or op not in ("=", "<>", "!="):
            raise WmiError("invalid-query", "operator expected")
        self.i += 1
        return ("cmp", self._ident(), op, lit)

    def props_used(self, node=None):
        node = self.where if node is None else node
        if node is None:
            return []
        if node[0] in ("and", "or"):
            return self.props_used(node[1]) + self.props_used(node[2])
        if node[0] == "not":
            return self.props_used(node[1])
        return [node[1]]

    @staticmethod
    def _coerce(a, b):
        if isinstance(b, bool) or isinstance(a, bool):
            return bool(a), bool(b)
        if isinstance(b, (int, float)) and not isinstance(a, (int, float)):
            try:
                return float(a), b
            except (TypeError, ValueError):
                return str(a), str(b)
        if isinstance(a, str) or isinstance(b, str):
            return str(a).upper(), str(b).upper()
        return a, b

    def matches(self, inst, node=None):
        node = self.where if node is None else node
        if node is None:
            return True
        op = node[0]
        if op == "and":
            return self.matches(inst, node[1]) and self.matches(inst, node[2])
        if op == "or":
            return self.matches(inst, node[1]) or self.matches(inst, node[2])
        if op == "not":
            return not self.matches(inst, node[1])
        value = inst.get(node[1].upper())
        if op == "isnull":
            return (value is not None) if node[2] else (value is None)
        if value is None:
            return False
        if op == "like":
            rx = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in node[2])
            return re.fullmatch(rx, str(value), re.I | re.S) is not None
        _, _, cmp, lit = node
        if lit is None:
            return False
        a, b = self._coerce(value, lit)
        try:
            return {"=": a == b, "<>": a != b, "!=": a != b, "<": a < b, ">": a > b,
                    "<=": a <= b, ">=": a >= b}[cmp]
        except TypeError:
            return False


def wmi_query(h, query):
    """(class name, [instance props]) for a WQL query on a host."""
    q = Wql(query)
    cname, make = wmi_class(q.cls)
    instances = make(h)
    known = {k.upper() for k, _ in instances[0]} if instances else None
    if known is not None:
        for p in (q.props or []) + q.props_used():
            if p.upper() not in known:
                raise WmiError("invalid-query", "no property %s in %s" % (p, cname))
    out = []
    for props in instances:
        idx = {k.upper(): v for k, v in props}
        if q.matches(idx):
            if q.props is not None:
                want = {p.upper() for p in q.props}
                props = [(k, v) for k, v in props if k.upper() in want]
            out.append(props)
    return cname, out


def instance_xml(ns_uri, cname, props):
    parts = ['<p:%s xmlns:p="%s" xmlns:cim="%s" xmlns:xsi="%s" xsi:type="p:%s_Type" xml:lang="en-US">'
             % (cname, xesc(ns_uri), NS_CIM, NS_XSI, cname)]
    for k, v in props:
        if v is None:
            parts.append('<p:%s xsi:nil="true"/>' % k)
        elif isinstance(v, list):
            for item in v:
                parts.append("<p:%s>%s</p:%s>" % (k, xesc(_wmi_text(item)), k))
        else:
            parts.append("<p:%s>%s</p:%s>" % (k, xesc(_wmi_text(v)), k))
    parts.append("</p:%s>" % cname)
    return "".join(parts)


def _wmi_text(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


# --- StdRegProv ---------------------------------------------------------------------------------

STDREGPROV_METHODS = {
    # method: (required type, output parameter, kind)
    "GetStringValue": (REG_SZ, "sValue", "string"),
    "GetExpandedStringValue": (REG_EXPAND_SZ, "sValue", "string"),
    "GetMultiStringValue": (REG_MULTI_SZ, "sValue", "multi"),
    "GetDWORDValue": (REG_DWORD, "uValue", "dword"),
    "GetQWORDValue": (REG_QWORD, "uValue", "qword"),
    "GetBinaryValue": (REG_BINARY, "uValue", "binary"),
    "EnumKey": (None, None, "enumkey"),
    "EnumValues": (None, None, "enumvalues"),
}


def stdregprov(h, method, params):
    """[(name, value)] output parameters, ReturnValue last."""
    hdef = params.get("hDefKey", str(HKLM)).strip() or str(HKLM)
    try:
        hdef = int(hdef)
    except ValueError:
        return [("ReturnValue", 87)]          # ERROR_INVALID_PARAMETER
    sub = params.get("sSubKeyName", "")
    vname = params.get("sValueName", "")
    if hdef != HKLM:
        return [("ReturnValue", 2)]           # the lab has HKLM only
    key = h.registry.key(sub)
    if key is None:
        return [("ReturnValue", 2)]           # ERROR_FILE_NOT_FOUND
    want, out_name, kind = STDREGPROV_METHODS[method]
    if kind == "enumkey":
        names = [k.name for k in sorted(key.subkeys.values(), key=lambda k: k.name.upper())]
        return ([("sNames", names)] if names else []) + [("ReturnValue", 0)]
    if kind == "enumvalues":
        vals = list(key.values.values())
        if not vals:
            return [("ReturnValue", 0)]
        return [("sNames", [v[0] for v in vals]), ("Types", [v[1] for v in vals]), ("ReturnValue", 0)]
    val = key.values.get(vname.upper())
    if val is None:
        return [("ReturnValue", 2)]
    _, vtype, data = val
    if vtype != want:
        return [("ReturnValue", WBEM_E_TYPE_MISMATCH)]
    if kind == "string":
        out = reg_string(data)
    elif kind == "multi":
        out = reg_multi(data)
    elif kind == "dword":
        out = reg_int(data, 4)
    elif kind == "qword":
        out = reg_int(data, 8)
    else:
        out = list(data)
    return [(out_name, out), ("ReturnValue", 0)]


# --- the cmd shell and PowerShell ---------------------------------------------------------------

def split_cmdline(line):
    """Windows-style argument splitting (double quotes group, no escapes beyond \\")."""
    args, cur, quoted, i, have = [], [], False, 0, False
    while i < len(line):
        c = line[i]
        if c == '"':
            quoted, have = not quoted, True
        elif c in " \t" and not quoted:
            if have:
                args.append("".join(cur))
                cur, have = [], False
        else:
            cur.append(c)
            have = True
        i += 1
    if have:
        args.append("".join(cur))
    return args


def mac_of(h):
    a = ipaddress.IPv4Address(h.address).packed
    return "00-15-5D-%02X-%02X-%02X" % (a[1], a[2], a[3])


def ipconfig(h, args):
    full = any(a.lower() in ("/all", "-all") for a in args)
    if h.os_major < 6:
        ind = "        "
        lines = ["", "Windows 2000 IP Configuration" if h.os_major == 5 and h.os_minor == 0
                 else "Windows IP Configuration", ""]
        if full:
            lines += [ind + "Host Name . . . . . . . . . . . . : " + h.netbios,
                      ind + "Primary DNS Suffix  . . . . . . . : ",
                      ind + "Node Type . . . . . . . . . . . . : Hybrid",
                      ind + "IP Routing Enabled. . . . . . . . : No",
                      ind + "WINS Proxy Enabled. . . . . . . . : No", ""]
        lines += ["Ethernet adapter Local Area Connection:", "",
                  ind + "Connection-specific DNS Suffix  . : "]
        if full:
            lines += [ind + "Description . . . . . . . . . . . : Intel 21140-Based PCI Fast Ethernet Adapter",
                      ind + "Physical Address. . . . . . . . . : " + mac_of(h),
                      ind + "DHCP Enabled. . . . . . . . . . . : No"]
        lines += [ind + "IP Address. . . . . . . . . . . . : " + h.address,
                  ind + "Subnet Mask . . . . . . . . . . . : 255.255.255.255",
                  ind + "Default Gateway . . . . . . . . . : "]
        if full:
            lines += [ind + "DNS Servers . . . . . . . . . . . : 127.0.0.1"]
    else:
        ind = "   "
        lines = ["", "Windows IP Configuration", ""]
        if full:
            lines += [ind + "Host Name . . . . . . . . . . . . : " + h.netbios,
                      ind + "Primary Dns Suffix  . . . . . . . : ",
                      ind + "Node Type . . . . . . . . . . . . : Hybrid",
                      ind + "IP Routing Enabled. . . . . . . . : No",
                      ind + "WINS Proxy Enabled. . . . . . . . : No", ""]
        else:
            lines += [""]
        lines += ["Ethernet adapter Ethernet0:", "",
                  ind + "Connection-specific DNS Suffix  . : "]
        if full:
            lines += [ind + "Description . . . . . . . . . . . : Microsoft Hyper-V Network Adapter",
                      ind + "Physical Address. . . . . . . . . : " + mac_of(h),
                      ind + "DHCP Enabled. . . . . . . . . . . : No",
                      ind + "Autoconfiguration Enabled . . . . : Yes"]
        lines += [ind + "IPv4 Address. . . . . . . . . . . : " + h.address + ("(Preferred) " if full else ""),
                  ind + "Subnet Mask . . . . . . . . . . . : 255.255.255.255",
                  ind + "Default Gateway . . . . . . . . . : "]
        if full:
            lines += [ind + "DNS Servers . . . . . . . . . . . : 127.0.0.1",
                      ind + "NetBIOS over Tcpip. . . . . . . . : Enabled"]
    return "\r\n".join(lines) + "\r\n"


def not_recognized_cmd(name):
    return ("'%s' is not recognized as an internal or external command,\r\n"
            "operable program or batch file.\r\n" % name)


def run_command(h, user, command, arguments):
    """(stdout text, stderr text, exit code) of a command line run by cmd.exe on the host."""
    line = " ".join([command] + [a if not re.search(r"\s", a) or a.startswith('"') else '"%s"' % a
                                 for a in arguments]).strip()
    args = split_cmdline(line)
    # cmd /c <command> (pypsrp's WinRS, or a client that wraps its command itself)
    while len(args) >= 2 and args[0].lower() in ("cmd", "cmd.exe") and args[1].lower() in ("/c", "/k"):
        args = args[2:]
        line = " ".join(args)
    if not args:
        return "", "", 0
    name = args[0].lower()
    if name.endswith(".exe") and name != "powershell.exe":
        name = name[:-4]
    if name == "hostname":
        return h.netbios + "\r\n", "", 0
    if name == "whoami":
        return user.lower() + "\r\n", "", 0
    if name == "ipconfig":
        return ipconfig(h, args[1:]), "", 0
    if name == "ver":
        return "\r\nMicrosoft Windows [Version %s]\r\n" % (h.os_version or "0.0.0"), "", 0
    if name == "echo":
        rest = line.split(None, 1)[1] if len(line.split(None, 1)) > 1 else "ECHO is on."
        return rest + "\r\n", "", 0
    if name in ("powershell", "powershell.exe"):
        return run_powershell_cmdline(h, args[1:])
    return "", not_recognized_cmd(args[0]), 1


def run_powershell_cmdline(h, args):
    """powershell.exe's own parameters (abbreviations as PowerShell 5.1 accepts them)."""
    script = None
    i = 0
    while i < len(args):
        a = args[i]
        if a[:1] not in ("-", "/"):
            script = " ".join(args[i:])
            break
        opt = a[1:].lower()
        if opt in ("e", "ec") or (len(opt) >= 2 and "encodedcommand".startswith(opt)):
            if i + 1 >= len(args):
                return "", ("Cannot process the command because of a missing parameter. "
                            "A command must follow -EncodedCommand.\r\n"), 1
            try:
                script = base64.b64decode(args[i + 1], validate=True).decode("utf-16-le")
            except (binascii.Error, UnicodeDecodeError, ValueError):
                return "", ("Cannot process the command because the value specified with -EncodedCommand "
                            "is not properly encoded. The value must be Base64 encoded.\r\n"), 1
            i += 2
            continue
        if opt and "command".startswith(opt):
            script = " ".join(args[i + 1:])
            break
        if opt in ("ep", "ex", "exec") or (len(opt) >= 3 and "executionpolicy".startswith(opt)) or \
                opt in ("inputformat", "if", "outputformat", "of", "windowstyle", "w", "version", "v",
                        "configurationname", "config"):
            i += 2
            continue
        i += 1          # -NoProfile, -NonInteractive, -NoLogo, -Sta, -Mta, ...
    if script is None:
        return "", "The lab's PowerShell has no interactive session: use -EncodedCommand or -Command.\r\n", 1
    return run_powershell(h, script)


def _ps_split(text, seps):
    """Split PowerShell text on separator characters outside quotes, (), {} and []."""
    out, cur, depth, quote = [], [], 0, None
    for c in text:
        if quote:
            cur.append(c)
            if c == quote:
                quote = None
            continue
        if c in "'\"":
            quote = c
        elif c in "({[":
            depth += 1
        elif c in ")}]":
            depth = max(0, depth - 1)
        elif c in seps and depth == 0:
            out.append("".join(cur))
            cur = []
            continue
        cur.append(c)
    out.append("".join(cur))
    return out


def ps_value_text(v):
    if isinstance(v, bool):
        return "True" if v else "False"
    if isinstance(v, list):
        return "{" + ", ".join(ps_value_text(x) for x in v) + "}"
    if isinstance(v, dict):
        return "@{" + "; ".join("%s=%s" % (k, ps_value_text(x)) for k, x in v.items()) + "}"
    return str(v)


def ps_format_list(objs):
    out = []
    for o in objs:
        if not isinstance(o, dict):
            out.append(ps_value_text(o))
            continue
        width = max((len(k) for k in o), default=0)
        out.append("")
        for k, v in o.items():
            out.append("%s : %s" % (k.ljust(width), ps_value_text(v)))
    return "\r\n".join(out) + ("\r\n\r\n\r\n" if out else "")


def ps_json(objs):
    if not objs:
        return ""
    data = objs[0] if len(objs) == 1 else objs
    text = json.dumps(data, indent=4, ensure_ascii=False)
    # Windows PowerShell 5.1 writes two spaces after the colon
    text = re.sub(r'^(\s*"(?:[^"\\]|\\.)*"):\s', r"\1:  ", text, flags=re.M)
    return text.replace("\n", "\r\n") + "\r\n"


def _clixml_error(lines):
    def enc(s):
        s = xesc(s)
        return s.replace("\r\n", "_x000D__x000A_")
    body = "".join('<S S="Error">%s_x000D__x000A_</S>' % enc(line) for line in lines)
    return '#< CLIXML\r\n<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04">%s</Objs>' \
        % body


def _ps_error(stmt, command, message, category, error_id):
    first = stmt.strip()
    return ["%s : %s" % (command, message) if command else message,
            "At line:1 char:1",
            "+ " + first,
            "+ " + "~" * max(1, len(command or first)),
            "    + CategoryInfo          : %s" % category,
            "    + FullyQualifiedErrorId : %s" % error_id,
            " "]


def _not_recognized(stmt, name):
    return _ps_error(stmt, name, "The term '%s' is not recognized as the name of a cmdlet, function, script "
                                 "file, or operable program. Check the spelling of the name, or if a path was "
                                 "included, verify that the path is correct and try again." % name,
                     "ObjectNotFound: (%s:String) [], CommandNotFoundException" % name,
                     "CommandNotFoundException")


def _ps_args(text):
    """Split a PowerShell argument string into words, honouring quotes; 'a,b' stays one word."""
    words, cur, quote = [], [], None
    for c in text:
        if quote:
            if c == quote:
                quote = None
            else:
                cur.append(c)
        elif c in "'\"":
            quote = c
        elif c.isspace():
            if cur:
                words.append("".join(cur))
                cur = []
        else:
            cur.append(c)
    if cur:
        words.append("".join(cur))
    return words


def run_powershell(h, script):
    """Emulate the few statements the lab understands; everything else is CommandNotFound."""
    stdout, errors = [], []
    snapin_ok = bool(h.winrm.get("cmdlet"))
    for stmt in _ps_split(script.replace("\r\n", "\n"), ";\n"):
        stmt = stmt.strip()
        if not stmt or stmt.startswith("#"):
            continue
        if re.match(r"^\$\w+\s*=", stmt) or re.match(r"^Set-StrictMode\b", stmt, re.I):
            continue
        m = re.match(r"^Add-PSSnapin\s+(?:-Name\s+)?['\"]?([\w.*]+)['\"]?", stmt, re.I)
        if m:
            if not (snapin_ok and m.group(1).lower().startswith("microsoft.exchange")):
                errors += _ps_error(stmt, "Add-PSSnapin", "The Windows PowerShell snap-in '%s' is not installed "
                                    "on this computer." % m.group(1),
                                    "InvalidArgument: (%s:String) [Add-PSSnapin], PSArgumentException" % m.group(1),
                                    "AddPSSnapInRead,Microsoft.PowerShell.Commands.AddPSSnapinCommand")
            continue
        stages = [s.strip() for s in _ps_split(stmt, "|")]
        first = _ps_args(stages[0])
        if not first:
            continue
        found = h.cmdlet(first[0])
        if found is None:
            errors += _not_recognized(stmt, first[0])
            continue
        _, objs = found
        objs = [o for o in objs if not isinstance(o, dict) or "_match" not in o
                or re.search(o["_match"], stages[0], re.I)]
        objs = [o["_value"] if isinstance(o, dict) and "_value" in o else
                {k: v for k, v in o.items() if not k.startswith("_")} if isinstance(o, dict) else o
                for o in objs]
        text, err = None, None
        for stage in stages[1:]:
            words = _ps_args(stage)
            verb = words[0].lower() if words else ""
            if verb in ("select-object", "select"):
                props, expand = [], None
                j = 1
                while j < len(words):
                    w = words[j]
                    if w.lower() in ("-property", "-prop"):
                        j += 1
                        continue
                    if w.lower() in ("-expandproperty", "-expand", "-exp"):
                        expand = words[j + 1] if j + 1 < len(words) else None
                        j += 2
                        continue
                    props += [p.strip() for p in w.split(",") if p.strip()]
                    j += 1
                if expand:
                    vals = []
                    for o in objs:
                        if isinstance(o, dict):
                            key = next((k for k in o if k.lower() == expand.lower()), None)
                            v = o.get(key) if key else None
                            vals += v if isinstance(v, list) else [v] if v is not None else []
                    objs = vals
                elif props and props != ["*"]:
                    objs = [{p: next((v for k, v in o.items() if k.lower() == p.lower()), None) for p in props}
                            if isinstance(o, dict) else o for o in objs]
            elif verb == "convertto-json":
                text = ps_json(objs)
                objs = [text] if text else []
            elif verb in ("format-list", "fl"):
                if len(words) > 1 and words[1] != "*":
                    props = [p for w in words[1:] if not w.startswith("-") for p in w.split(",") if p]
                    objs = [{k: v for k, v in o.items() if any(k.lower() == p.lower() for p in props)}
                            if isinstance(o, dict) else o for o in objs]
                text = ps_format_list(objs)
                objs = [text] if text else []
            elif verb in ("out-string",):
                pass
            else:
                err = _not_recognized(stmt, words[0] if words else stage)
                break
        if err:
            errors += err
            continue
        if text is None:
            text = ps_format_list(objs) if any(isinstance(o, dict) for o in objs) else \
                "".join(ps_value_text(o) + "\r\n" for o in objs)
        stdout.append(text)
    return "".join(stdout), (_clixml_error(errors) if errors else ""), (1 if errors else 0)


# --- WS-Management --------------------------------------------------------------------------------

def local(tag):
    return tag.rsplit("}", 1)[-1]


def child(elem, ns, name):
    return elem.find("{%s}%s" % (ns, name)) if elem is not None else None


def text_of(elem):
    return (elem.text or "").strip() if elem is not None else ""


class Request:
    """The parts of a SOAP request the server looks at."""

    def __init__(self, xml_bytes):
        if b"<!DOCTYPE" in xml_bytes[:4096].upper() or b"<!ENTITY" in xml_bytes.upper():
            raise ValueError("DTDs are not allowed in SOAP messages")
        root = ET.fromstring(xml_bytes)
        if root.tag != "{%s}Envelope" % NS_S:
            raise ValueError("not a SOAP 1.2 envelope")
        self.header = child(root, NS_S, "Header")
        self.body = child(root, NS_S, "Body")
        if self.header is None or self.body is None:
            raise ValueError("envelope without Header or Body")
        self.action = text_of(child(self.header, NS_A, "Action"))
        self.message_id = text_of(child(self.header, NS_A, "MessageID"))
        self.resource_uri = text_of(child(self.header, NS_W, "ResourceURI"))
        self.selectors = {}
        sset = child(self.header, NS_W, "SelectorSet")
        if sset is not None:
            for s in sset.findall("{%s}Selector" % NS_W):
                self.selectors[s.get("Name", "")] = text_of(s)
        self.options = {}
        oset = child(self.header, NS_W, "OptionSet")
        if oset is not None:
            for o in oset.findall("{%s}Option" % NS_W):
                self.options[o.get("Name", "")] = text_of(o)
        mes = text_of(child(self.header, NS_W, "MaxEnvelopeSize"))
        self.max_envelope = int(mes) if mes.isdigit() else 153600


class Fault(Exception):
    def __init__(self, status, code, subcode, reason, detail="", action=FAULT_WSMAN):
        super().__init__(reason)
        self.status, self.code, self.subcode, self.reason = status, code, subcode, reason
        self.detail, self.action = detail, action


def wsman_fault_detail(code, machine, message, provider=None, inner_machine=None, fault_detail=None):
    inner = xesc(message)
    if provider:
        name, path = provider
        inner = ('<f:ProviderFault provider="%s" path="%s"><f:WSManFault xmlns:f="%s" Code="%d" Machine="%s">'
                 "<f:Message>%s</f:Message></f:WSManFault></f:ProviderFault>"
                 % (xesc(name), xesc(path), NS_F, code, xesc(inner_machine or machine), xesc(message)))
    return ("<s:Detail>%s<f:WSManFault xmlns:f=\"%s\" Code=\"%d\" Machine=\"%s\"><f:Message>%s</f:Message>"
            "</f:WSManFault></s:Detail>"
            % ("<w:FaultDetail>%s</w:FaultDetail>" % fault_detail if fault_detail else "",
               NS_F, code, xesc(machine), inner))


def fault_access_denied(h):
    text = "Access is denied. "
    return Fault(500, "s:Sender", "w:AccessDenied", text, wsman_fault_detail(5, h.address, text))


def fault_resource_not_found(h, wmi=True):
    text = ("The WS-Management service cannot process the request. The service cannot find the resource "
            "identified by the resource URI and selectors. ")
    return Fault(500, "s:Sender", "a:DestinationUnreachable", text,
                 wsman_fault_detail(2150858752, h.address, text,
                                    provider=("WMI Provider", h.windir + "\\system32\\WsmWmiPl.dll") if wmi else None,
                                    inner_machine=h.netbios,
                                    fault_detail="http://schemas.dmtf.org/wbem/wsman/1/wsman/faultDetail/"
                                                 "InvalidResourceURI"),
                 action=FAULT_ADDRESSING)


def fault_bad_filter(h, why):
    text = ("The data source could not process the filter. The filter might be missing, invalid or too complex "
            "to process. If a service only supports a subset of a filter dialect (such as XPath level 1), it may "
            "return this fault for valid filter expressions outside of the supported subset. Change the filter and "
            "try the request again. ")
    return Fault(500, "s:Sender", "w:CannotProcessFilter", text,
                 wsman_fault_detail(2150859042, h.address, text,
                                    provider=("WMI Provider", h.windir + "\\system32\\WsmWmiPl.dll"),
                                    inner_machine=h.netbios))


def fault_action_not_supported(h, action):
    text = ("The WS-Management service cannot process the request. The WS-Addressing action URI %s is invalid "
            "for this resource. " % action)
    return Fault(500, "s:Sender", "a:ActionNotSupported", text,
                 wsman_fault_detail(2150858753, h.address, text), action=FAULT_ADDRESSING)


def fault_invalid_selectors(h, message):
    text = "The WS-Management service cannot process the request because the request contained invalid " \
           "selectors for the resource. "
    return Fault(500, "s:Sender", "w:InvalidSelectors", text,
                 wsman_fault_detail(2150858843, h.address, message,
                                    fault_detail="http://schemas.dmtf.org/wbem/wsman/1/wsman/faultDetail/"
                                                 "UnexpectedSelectors"))


def fault_schema(h, why):
    text = "The WS-Management service cannot process the request because the XML is invalid. "
    return Fault(400, "s:Sender", "w:SchemaValidationError", text,
                 wsman_fault_detail(2150858817, h.address, text + why))


def fault_unencrypted(h):
    text = ("The WinRM service cannot process the request: unencrypted traffic is disabled in the service "
            "configuration (AllowUnencrypted = false). Seal the message (multipart/encrypted) or use HTTPS. ")
    return Fault(400, "s:Sender", "w:AccessDenied", text, "")


SHELL_NOT_FOUND = ("The request for the Windows Remote Shell with ShellId %s failed because the shell was not "
                   "found on the server. Possible causes are: the specified ShellId is incorrect or the shell no "
                   "longer exists on the server. Provide the correct ShellId or create a new shell and retry the "
                   "operation. ")
COMMAND_NOT_FOUND = ("The Windows Remote Shell received a request to perform an operation on a command identifier "
                     "that does not exist. Either the command has completed execution or the client specified an "
                     "invalid command identifier. ")


def envelope(action, relates_to, body):
    return ('<s:Envelope xml:lang="en-US" xmlns:s="%s" xmlns:a="%s" xmlns:x="%s" xmlns:n="%s" xmlns:w="%s" '
            'xmlns:rsp="%s" xmlns:p="%s"><s:Header><a:Action>%s</a:Action><a:MessageID>uuid:%s</a:MessageID>'
            "<p:ActivityId>%s</p:ActivityId><a:To>%s</a:To>%s</s:Header><s:Body>%s</s:Body></s:Envelope>"
            % (NS_S, NS_A, NS_X, NS_N, NS_W, NS_RSP, NS_P, xesc(action), new_uuid(), new_uuid(), ANONYMOUS,
               "<a:RelatesTo>%s</a:RelatesTo>" % xesc(relates_to) if relates_to else "", body)).encode("utf-8")


def fault_envelope(f, relates_to):
    body = ('<s:Fault><s:Code><s:Value>%s</s:Value><s:Subcode><s:Value>%s</s:Value></s:Subcode></s:Code>'
            '<s:Reason><s:Text xml:lang="en-US">%s</s:Text></s:Reason>%s</s:Fault>'
            % (f.code, f.subcode, xesc(f.reason), f.detail))
    return envelope(f.action, relates_to, body)


class Shell:
    __slots__ = ("id", "host", "user", "codepage", "last", "commands")

    def __init__(self, host, user, codepage):
        self.id = new_uuid()
        self.host, self.user, self.codepage = host, user, codepage
        self.last = time.monotonic()
        self.commands = {}


class WsMan:
    """Dispatch of WS-Management requests for all hosts; state (enumerations, shells) is per process."""

    def __init__(self):
        self.enums = {}      # context id -> (host name, user, [item xml], ns uri... , expires)
        self.shells = {}     # shell id -> Shell

    def handle(self, h, conn, soap):
        """(HTTP status, response envelope bytes, summary for the log)."""
        relates = None
        try:
            try:
                req = Request(soap)
            except (ET.ParseError, ValueError) as e:
                if not conn.admin:
                    raise fault_access_denied(h) from None
                raise fault_schema(h, str(e)) from None
            relates = req.message_id
            if not conn.admin:
                raise fault_access_denied(h)
            action, body = self.dispatch(h, conn, req)
            return 200, envelope(action, relates, body), "%s %s" % (req.action.rsplit("/", 1)[-1],
                                                                   req.resource_uri.rsplit("/", 1)[-1])
        except Fault as f:
            return f.status, fault_envelope(f, relates), "fault %s" % f.subcode

    def dispatch(self, h, conn, req):
        uri, action = req.resource_uri, req.action
        uri_l = uri.lower()
        if uri_l == SHELL_CMD_URI:
            return self.shell(h, conn, req)
        if uri_l.startswith(WMI_PREFIX) or uri_l.startswith(DMTF_CIM_PREFIX):
            if uri_l.startswith(DMTF_CIM_PREFIX):
                namespace, cls = "root/cimv2", uri[len(DMTF_CIM_PREFIX):]
            else:
                rest = uri[len(WMI_PREFIX):]
                namespace, _, cls = rest.rpartition("/")
            namespace = namespace.lower()
            if action == ACT_ENUMERATE:
                return self.enumerate(h, conn, req, namespace, cls)
            if action == ACT_PULL:
                return self.pull(h, conn, req)
            if action == ACT_RELEASE:
                ctx = text_of(child(child(req.body, NS_N, "Release"), NS_N, "EnumerationContext"))
                self.enums.pop(ctx, None)
                return "http://schemas.xmlsoap.org/ws/2004/09/enumeration/ReleaseResponse", ""
            if cls.lower() == "stdregprov" and namespace in ("root/default", "root/cimv2") \
                    and action.lower().startswith(uri_l + "/"):
                return self.invoke_stdregprov(h, req, uri, action[len(uri) + 1:])
            if namespace == "root/cimv2" and cls.upper() in WMI_CLASSES or cls.lower() == "stdregprov":
                raise fault_action_not_supported(h, action)
            raise fault_resource_not_found(h)
        if action in (ACT_PULL, ACT_RELEASE):
            raise fault_resource_not_found(h, wmi=False)
        raise fault_resource_not_found(h, wmi=False)

    # -- enumeration --
    def _prune_enums(self):
        now = time.monotonic()
        for k in [k for k, v in self.enums.items() if v[3] < now]:
            del self.enums[k]
        while len(self.enums) >= MAX_ENUM_CONTEXTS:
            self.enums.pop(next(iter(self.enums)))

    def enumerate(self, h, conn, req, namespace, cls):
        enum = child(req.body, NS_N, "Enumerate")
        if enum is None:
            raise fault_schema(h, "Enumerate body missing")
        filt = child(enum, NS_W, "Filter")
        if filt is None:
            filt = child(enum, NS_N, "Filter")
        optimize = child(enum, NS_W, "OptimizeEnumeration") is not None
        max_el = text_of(child(enum, NS_W, "MaxElements"))
        max_el = int(max_el) if max_el.isdigit() and int(max_el) > 0 else 1
        if namespace != "root/cimv2":
            raise fault_resource_not_found(h)
        try:
            if filt is not None:
                dialect = filt.get("Dialect", WQL_DIALECT).strip()
                if dialect.lower() != WQL_DIALECT.lower():
                    raise Fault(500, "s:Sender", "w:FilterDialectRequestedUnavailable",
                                "The requested filtering dialect is not supported. ",
                                wsman_fault_detail(2150858770, h.address,
                                                   "The requested filtering dialect is not supported. "),
                                action=FAULT_WSMAN)
                cname, instances = wmi_query(h, "".join(filt.itertext()).strip())
            else:
                if cls == "*":
                    raise fault_bad_filter(h, "a resource URI ending in * needs a WQL filter")
                cname, make = wmi_class(cls)
                instances = make(h)
        except WmiError as e:
            LOG.info("%s: WMI %s: %s", h.name, e.kind, e)
            if e.kind == "invalid-class":
                raise fault_resource_not_found(h) from None
            raise fault_bad_filter(h, str(e)) from None
        ns_uri = WMI_PREFIX + "root/cimv2/" + cname
        items = [instance_xml(ns_uri, cname, p) for p in instances]
        self._prune_enums()
        ctx = "uuid:" + new_uuid()
        if optimize:
            batch, rest = self._batch(h, items, max_el, req.max_envelope)
            if not rest:
                return ("http://schemas.xmlsoap.org/ws/2004/09/enumeration/EnumerateResponse",
                        "<n:EnumerateResponse><n:EnumerationContext></n:EnumerationContext><w:Items>%s</w:Items>"
                        "<w:EndOfSequence/></n:EnumerateResponse>" % "".join(batch))
            self.enums[ctx] = (h.name, conn.user, rest, time.monotonic() + ENUM_CONTEXT_TTL)
            return ("http://schemas.xmlsoap.org/ws/2004/09/enumeration/EnumerateResponse",
                    "<n:EnumerateResponse><n:EnumerationContext>%s</n:EnumerationContext><w:Items>%s</w:Items>"
                    "</n:EnumerateResponse>" % (ctx, "".join(batch)))
        self.enums[ctx] = (h.name, conn.user, items, time.monotonic() + ENUM_CONTEXT_TTL)
        return ("http://schemas.xmlsoap.org/ws/2004/09/enumeration/EnumerateResponse",
                "<n:EnumerateResponse><n:EnumerationContext>%s</n:EnumerationContext></n:EnumerateResponse>" % ctx)

    @staticmethod
    def _batch(h, items, max_el, max_env):
        budget = max(max_env - 2048, 1024)
        batch, size = [], 0
        for it in items[:max_el]:
            n = len(it.encode("utf-8"))
            if batch and size + n > budget:
                break
            if not batch and n > budget:
                raise Fault(500, "s:Sender", "w:EncodingLimit",
                            "The response that the WS-Management service computed exceeds the internal limit for "
                            "envelope size. ", wsman_fault_detail(2150858886, h.address, "MaxEnvelopeSize"))
            batch.append(it)
            size += n
        return batch, items[len(batch):]

    def pull(self, h, conn, req):
        pull = child(req.body, NS_N, "Pull")
        ctx = text_of(child(pull, NS_N, "EnumerationContext"))
        max_el = text_of(child(pull, NS_N, "MaxElements"))
        max_el = int(max_el) if max_el.isdigit() and int(max_el) > 0 else 1
        state = self.enums.pop(ctx, None)
        if state is None or state[0] != h.name or state[1] != conn.user or state[3] < time.monotonic():
            text = "The enumeration context supplied in the message is not valid. "
            raise Fault(500, "s:Receiver", "n:InvalidEnumerationContext", text,
                        wsman_fault_detail(2150858791, h.address, text), action=FAULT_ENUMERATION)
        batch, rest = self._batch(h, state[2], max_el, req.max_envelope)
        if rest:
            new = "uuid:" + new_uuid()
            self.enums[new] = (state[0], state[1], rest, time.monotonic() + ENUM_CONTEXT_TTL)
            return ("http://schemas.xmlsoap.org/ws/2004/09/enumeration/PullResponse",
                    "<n:PullResponse><n:EnumerationContext>%s</n:EnumerationContext><n:Items>%s</n:Items>"
                    "</n:PullResponse>" % (new, "".join(batch)))
        return ("http://schemas.xmlsoap.org/ws/2004/09/enumeration/PullResponse",
                "<n:PullResponse><n:Items>%s</n:Items><n:EndOfSequence/></n:PullResponse>" % "".join(batch))

    # -- StdRegProv --
    def invoke_stdregprov(self, h, req, uri, method):
        method = next((m for m in STDREGPROV_METHODS if m.lower() == method.lower()), None)
        if method is None:
            raise fault_action_not_supported(h, req.action)
        inp = next(iter(req.body), None)
        if inp is None or local(inp.tag).lower() != method.lower() + "_input":
            raise fault_schema(h, "expected %s_INPUT" % method)
        params = {local(c.tag): "".join(c.itertext()) for c in inp}
        out = stdregprov(h, method, params)
        parts = []
        for name, value in out:
            for v in value if isinstance(value, list) else [value]:
                parts.append("<p:%s>%s</p:%s>" % (name, xesc(v), name))
        return (req.action + "Response",
                '<p:%s_OUTPUT xmlns:p="%s">%s</p:%s_OUTPUT>' % (method, xesc(uri), "".join(parts), method))

    # -- the cmd shell --
    def _shell(self, h, conn, req):
        sid = req.selectors.get("ShellId", "")
        s = self.shells.get(sid.upper())
        if s is None or s.host != h.name or s.user != conn.user:
            raise fault_invalid_selectors(h, SHELL_NOT_FOUND % sid)
        s.last = time.monotonic()
        return s

    def shell(self, h, conn, req):
        action = req.action
        if action == ACT_CREATE:
            now = time.monotonic()
            for k in [k for k, s in self.shells.items() if now - s.last > SHELL_IDLE_TTL]:
                del self.shells[k]
            mine = sum(1 for s in self.shells.values() if s.host == h.name and s.user == conn.user)
            if mine >= MAX_SHELLS_PER_USER or len(self.shells) >= MAX_SHELLS:
                text = ("The WS-Management service cannot process the request. This user is allowed a maximum "
                        "number of %d concurrent shells, which has been exceeded. Close existing shells or raise "
                        "the quota for this user. " % MAX_SHELLS_PER_USER)
                raise Fault(500, "s:Receiver", "w:QuotaLimit", text, wsman_fault_detail(2150859173, h.address, text))
            cp = req.options.get("WINRS_CODEPAGE", "437")
            s = Shell(h.name, conn.user, cp if cp.isdigit() else "437")
            self.shells[s.id] = s
            owner = conn.user.split("\\")[-1]
            addr = "%s://%s:%d/wsman" % ("https" if conn.tls else "http", h.address, conn.port)
            body = ('<x:ResourceCreated><a:Address>%s</a:Address><a:ReferenceParameters><w:ResourceURI>%s'
                    '</w:ResourceURI><w:SelectorSet><w:Selector Name="ShellId">%s</w:Selector></w:SelectorSet>'
                    '</a:ReferenceParameters></x:ResourceCreated><rsp:Shell xmlns:rsp="%s"><rsp:ShellId>%s'
                    "</rsp:ShellId><rsp:ResourceUri>%s</rsp:ResourceUri><rsp:Owner>%s</rsp:Owner><rsp:ClientIP>%s"
                    "</rsp:ClientIP><rsp:IdleTimeOut>PT7200.000S</rsp:IdleTimeOut><rsp:InputStreams>stdin"
                    "</rsp:InputStreams><rsp:OutputStreams>stdout stderr</rsp:OutputStreams><rsp:ShellRunTime>"
                    "P0DT0H0M0S</rsp:ShellRunTime><rsp:ShellInactivity>P0DT0H0M0S</rsp:ShellInactivity></rsp:Shell>"
                    % (addr, SHELL_CMD_URI, s.id, NS_RSP, s.id, SHELL_CMD_URI, xesc(owner), xesc(conn.peer)))
            return "http://schemas.xmlsoap.org/ws/2004/09/transfer/CreateResponse", body
        s = self._shell(h, conn, req)
        if action == ACT_DELETE:
            del self.shells[s.id]
            return "http://schemas.xmlsoap.org/ws/2004/09/transfer/DeleteResponse", ""
        if action == ACT_COMMAND:
            cl = child(req.body, NS_RSP, "CommandLine")
            if cl is None:
                raise fault_schema(h, "CommandLine missing")
            command = text_of(child(cl, NS_RSP, "Command"))
            arguments = [text_of(a) for a in cl.findall("{%s}Arguments" % NS_RSP)]
            if len(s.commands) >= 100:
                raise fault_schema(h, "too many commands in this shell")
            out, err, code = run_command(h, conn.user, command, arguments)
            enc = "utf-8" if s.codepage == "65001" else "cp437"
            cid = new_uuid()
            s.commands[cid] = (out.encode(enc, errors="replace"), err.encode(enc, errors="replace"), code)
            LOG.info("%s: %s ran %r -> exit %d", h.name, conn.user, (command + " " + " ".join(arguments))[:200], code)
            return ("http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandResponse",
                    "<rsp:CommandResponse><rsp:CommandId>%s</rsp:CommandId></rsp:CommandResponse>" % cid)
        if action == ACT_RECEIVE:
            ds = child(child(req.body, NS_RSP, "Receive"), NS_RSP, "DesiredStream")
            cid = (ds.get("CommandId", "") if ds is not None else "").upper()
            cmd = s.commands.get(cid)
            if cmd is None:
                raise fault_invalid_selectors(h, COMMAND_NOT_FOUND)
            out, err, code = cmd
            parts = []
            if out:
                parts.append('<rsp:Stream Name="stdout" CommandId="%s">%s</rsp:Stream>'
                             % (cid, base64.b64encode(out).decode()))
            parts.append('<rsp:Stream Name="stdout" CommandId="%s" End="true"></rsp:Stream>' % cid)
            if err:
                parts.append('<rsp:Stream Name="stderr" CommandId="%s">%s</rsp:Stream>'
                             % (cid, base64.b64encode(err).decode()))
            parts.append('<rsp:Stream Name="stderr" CommandId="%s" End="true"></rsp:Stream>' % cid)
            parts.append('<rsp:CommandState CommandId="%s" State="http://schemas.microsoft.com/wbem/wsman/1/'
                         'windows/shell/CommandState/Done"><rsp:ExitCode>%d</rsp:ExitCode></rsp:CommandState>'
                         % (cid, code))
            s.commands[cid] = (b"", b"", code)
            return ("http://schemas.microsoft.com/wbem/wsman/1/windows/shell/ReceiveResponse",
                    "<rsp:ReceiveResponse>%s</rsp:ReceiveResponse>" % "".join(parts))
        if action == ACT_SIGNAL:
            sig = child(req.body, NS_RSP, "Signal")
            cid = (sig.get("CommandId", "") if sig is not None else "").upper()
            if cid not in s.commands:
                raise fault_invalid_selectors(h, COMMAND_NOT_FOUND)
            del s.commands[cid]
            return "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/SignalResponse", "<rsp:SignalResponse/>"
        if action == ACT_SEND:
            return "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/SendResponse", "<rsp:SendResponse/>"
        raise fault_action_not_supported(h, action)


# --- NTLM, sealing and HTTP -------------------------------------------------------------------------

def _import_spnego():
    try:
        import spnego
        import spnego.channel_bindings
        import spnego.exceptions
    except ImportError:
        sys.exit("winrm: pyspnego is not installed (run scripts/setup)")
    return spnego


spnego = None  # imported in main() / self_test()
_NTLM_TARGET = {"name": None}


def _patch_ntlm_target_names():
    """pyspnego's acceptor names itself after socket.gethostname(); make it the lab host's NetBIOS name."""
    try:
        import spnego._ntlm as ntlm_mod
        real = ntlm_mod.socket
        ntlm_mod.socket = types.SimpleNamespace(
            gethostname=lambda: _NTLM_TARGET["name"] or real.gethostname(),
            **{k: getattr(real, k) for k in ("AF_INET", "AF_INET6") if hasattr(real, k)})
    except Exception as e:  # noqa: BLE001 - cosmetic only
        LOG.warning("cannot set NTLM target names per host: %s", e)


def is_authenticate(token):
    """True when the token is (or wraps) an NTLM AUTHENTICATE message."""
    return token.find(b"NTLMSSP\x00\x03\x00\x00\x00") >= 0


def client_sent_bindings(token):
    """True when an NTLM AUTHENTICATE (raw or inside SPNEGO) carries non-zero channel bindings."""
    at = token.find(b"NTLMSSP\x00\x03\x00\x00\x00")
    if at < 0:
        return False
    try:
        from spnego._ntlm_raw.messages import Authenticate, AvId, NTClientChallengeV2
        auth = Authenticate.unpack(token[at:])
        nt = auth.nt_challenge_response or b""
        if len(nt) <= 24:
            return False
        info = NTClientChallengeV2.unpack(nt[16:]).av_pairs
        cb = info.get(AvId.channel_bindings)
        return bool(cb) and cb != b"\x00" * 16
    except Exception:  # noqa: BLE001
        return False


def decrypt_body(ctx, body):
    """MS-WSMV 2.2.9.1.1: one SPNEGO-session-encrypted part; returns the SOAP bytes."""
    head = ENC_BOUNDARY + b"\r\n"
    if not body.startswith(head):
        raise ValueError("encrypted body does not start with the boundary")
    end = body.rfind(ENC_BOUNDARY + b"--")
    if end < 0:
        raise ValueError("encrypted body has no closing boundary")
    first_end = body.find(head, len(head))
    if first_end < 0 or first_end > end:
        raise ValueError("encrypted body has one part only")
    meta = body[len(head):first_end].decode("ascii", errors="replace")
    if "content-type: " + ENC_PROTOCOL.lower() not in meta.lower().replace("\t", ""):
        raise ValueError("first part is not %s" % ENC_PROTOCOL)
    m = re.search(r"Length=(\d+)", meta)
    if not m:
        raise ValueError("OriginalContent has no Length")
    length = int(m.group(1))
    part = body[first_end + len(head):end]
    prefix = b"\tContent-Type: application/octet-stream\r\n"
    if not part.startswith(prefix):
        raise ValueError("second part is not application/octet-stream")
    part = part[len(prefix):]
    if len(part) < 20:
        raise ValueError("encrypted part too short")
    sig_len = int.from_bytes(part[:4], "little")
    if sig_len != 16:
        raise ValueError("signature length %d, expected 16" % sig_len)
    data = ctx.unwrap(part[4:]).data
    if len(data) != length:
        raise ValueError("decrypted length %d, OriginalContent says %d" % (len(data), length))
    return data


def encrypted_body(signature, sealed, length):
    return (ENC_BOUNDARY + b"\r\n\tContent-Type: " + ENC_PROTOCOL.encode() + b"\r\n"
            b"\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length=" + str(length).encode() + b"\r\n"
            + ENC_BOUNDARY + b"\r\n\tContent-Type: application/octet-stream\r\n"
            + len(signature).to_bytes(4, "little") + signature + sealed + ENC_BOUNDARY + b"--\r\n")


def encrypt_body(ctx, data):
    w = ctx.wrap(data, encrypt=True).data
    return encrypted_body(w[:16], w[16:], len(data))


class Conn:
    """One TCP connection: one NTLM security context (HTTP keep-alive)."""

    def __init__(self, host, tls, peer, port, cert_hash, spnego_only=False):
        self.host, self.tls, self.peer, self.port, self.cert_hash = host, tls, peer, port, cert_hash
        self.spnego_only = spnego_only
        self.ctx = None
        self.authenticated = False
        self.user = ""
        self.admin = False

    def reset(self):
        self.ctx, self.authenticated, self.user, self.admin = None, False, "", False


class HttpRequest:
    __slots__ = ("method", "target", "version", "headers", "body")


class BadRequest(Exception):
    def __init__(self, status, text):
        super().__init__(text)
        self.status = status


async def read_request(reader, writer, first):
    """One HTTP/1.1 request, or None at a clean end of stream."""
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"),
                                      FIRST_REQUEST_TIMEOUT if first else IDLE_TIMEOUT)
    except asyncio.IncompleteReadError as e:
        if not e.partial.strip():
            return None
        raise BadRequest(400, "truncated request head") from None
    except asyncio.LimitOverrunError:
        raise BadRequest(431, "request head too large") from None
    if len(head) > MAX_HEAD:
        raise BadRequest(431, "request head too large")
    try:
        lines = head.decode("iso-8859-1").split("\r\n")
    except UnicodeDecodeError:
        raise BadRequest(400, "bad request head") from None
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise BadRequest(400, "bad request line")
    req = HttpRequest()
    req.method, req.target, req.version = parts
    req.headers = {}
    count = 0
    for line in lines[1:]:
        if not line:
            continue
        count += 1
        if count > MAX_HEADERS:
            raise BadRequest(431, "too many headers")
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise BadRequest(400, "bad header line")
        req.headers[name.lower()] = value.strip()
    te = req.headers.get("transfer-encoding", "").lower()
    if te and te != "identity":
        if te != "chunked":
            raise BadRequest(501, "transfer-encoding %s not supported" % te)
        req.body = await read_chunked(reader)
        return req
    cl = req.headers.get("content-length", "0")
    if not cl.isdigit():
        raise BadRequest(400, "bad Content-Length")
    n = int(cl)
    if n > MAX_BODY:
        raise BadRequest(413, "body larger than %d bytes" % MAX_BODY)
    if n and req.headers.get("expect", "").lower() == "100-continue":
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    try:
        req.body = await asyncio.wait_for(reader.readexactly(n), BODY_TIMEOUT) if n else b""
    except asyncio.IncompleteReadError:
        raise BadRequest(400, "truncated body") from None
    return req


async def read_chunked(reader):
    body = bytearray()
    while True:
        line = await asyncio.wait_for(reader.readuntil(b"\r\n"), BODY_TIMEOUT)
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise BadRequest(400, "bad chunk size") from None
        if size == 0:
            while (await asyncio.wait_for(reader.readuntil(b"\r\n"), BODY_TIMEOUT)) != b"\r\n":
                pass
            return bytes(body)
        if len(body) + size > MAX_BODY:
            raise BadRequest(413, "body larger than %d bytes" % MAX_BODY)
        body += await asyncio.wait_for(reader.readexactly(size), BODY_TIMEOUT)
        if await asyncio.wait_for(reader.readexactly(2), BODY_TIMEOUT) != b"\r\n":
            raise BadRequest(400, "bad chunk")


REASONS = {100: "Continue", 200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found",
           405: "Method Not Allowed", 411: "Length Required", 413: "Request Entity Too Large",
           431: "Request Header Fields Too Large", 500: "Internal Server Error", 501: "Not Implemented"}


# How a profile's IIS answers a GET of the OWA folder over plain HTTP ([owa] http).
OWA_MODES = ("auth", "ssl-required", "redirect-https", "anonymous")
IIS_SSL_REQUIRED = (b"<html><head><title>The page must be viewed over a secure channel</title></head>"
                    b"<body><h2>HTTP 403.4 - Forbidden: SSL required</h2>Internet Information Services</body></html>")


def owa_response(h, target):
    """What the host's IIS 5 answers a credential-less GET of `target` over plain HTTP."""
    def iis(status, reason, body=b"", extra=()):
        lines = ["HTTP/1.1 %d %s" % (status, reason), "Server: Microsoft-IIS/5.0",
                 "Date: " + datetime.datetime.now(datetime.timezone.utc).strftime("%a, %d %b %Y %H:%M:%S GMT")]
        lines += list(extra)
        lines += ["Content-Length: %d" % len(body), "Content-Type: text/html", "Connection: close"]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("iso-8859-1") + body
    path = target.split("?", 1)[0].lower().rstrip("/")
    if path != h.owa_path and not path.startswith(h.owa_path + "/"):
        return iis(404, "Object Not Found", b"<html>HTTP 404 - File not found</html>"), "owa 404"
    mode = h.owa["http"]
    if mode == "auth":
        return iis(401, "Access Denied", b"<html>HTTP 401.2 - Unauthorized</html>",
                   ["WWW-Authenticate: " + s for s in h.owa_schemes]), "owa 401"
    if mode == "ssl-required":
        return iis(403, "Access Forbidden", IIS_SSL_REQUIRED), "owa 403.4"
    if mode == "redirect-https":
        return iis(302, "Object Moved", extra=["Location: https://%s%s/" % (h.address, h.owa_path)]), "owa 302"
    return iis(200, "OK", b"<html><title>Microsoft Outlook Web Access</title></html>",
               ["MS-WebStorage: 6.0.6249"]), "owa 200"


def http_response(status, body=b"", content_type=None, extra=(), close=False):
    lines = ["HTTP/1.1 %d %s" % (status, REASONS.get(status, "Status")),
             "Server: Microsoft-HTTPAPI/2.0",
             "Date: " + datetime.datetime.now(datetime.timezone.utc).strftime("%a, %d %b %Y %H:%M:%S GMT")]
    if content_type:
        lines.append("Content-Type: " + content_type)
    lines += list(extra)
    lines.append("Content-Length: %d" % len(body))
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("iso-8859-1") + body


class Server:
    def __init__(self, hosts, admins, run_dir, port, tls_port, spnego_port=0, http_port=0):
        self.hosts = hosts
        self.admins = {a.lower() for a in admins}
        self.run_dir, self.port, self.tls_port, self.spnego_port = run_dir, port, tls_port, spnego_port
        self.http_port = http_port
        self.wsman = WsMan()
        self.connections = 0
        self.tls = {}            # host name -> (SSLContext, cert hash)
        self._key_pem = None     # key type -> PEM path of its private key (0600)
        self._keys = {}          # key type -> private key
        self.servers = []

    def is_admin(self, principal):
        user = principal.split("\\")[-1].lower()
        return principal.lower() in self.admins or user in self.admins

    # -- TLS --
    def tls_for(self, h):
        got = self.tls.get(h.name)
        if got:
            return got
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec, rsa
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
        kdir = os.path.join(self.run_dir, "tls")
        if self._key_pem is None:
            self._key_pem = {}
        if h.tls_key not in self._key_pem:
            os.makedirs(kdir, mode=0o700, exist_ok=True)
            if h.tls_key == "ecdsa-p384":
                key = ec.generate_private_key(ec.SECP384R1())
            else:
                key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            self._keys[h.tls_key] = key
            path = os.path.join(kdir, "key-%s.pem" % h.tls_key)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
            self._key_pem[h.tls_key] = path
        key = self._keys[h.tls_key]
        digest = hashes.SHA384() if h.tls_key == "ecdsa-p384" else hashes.SHA256()
        now = datetime.datetime.now(datetime.timezone.utc)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, h.name)])
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(days=1))
                .not_valid_after(now + datetime.timedelta(days=365))
                .add_extension(x509.SubjectAlternativeName([
                    x509.DNSName(h.name), x509.DNSName(h.netbios),
                    x509.IPAddress(ipaddress.IPv4Address(h.address))]), critical=False)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                .sign(key, digest))
        der = cert.public_bytes(serialization.Encoding.DER)
        cpath = os.path.join(kdir, "%s.pem" % h.name)
        with open(cpath, "wb") as fh:
            fh.write(cert.public_bytes(serialization.Encoding.PEM))
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(cpath, self._key_pem[h.tls_key])
        # RFC 5929 tls-server-end-point: the certificate hashed with its signature's hash
        got = (ctx, (hashlib.sha384 if h.tls_key == "ecdsa-p384" else hashlib.sha256)(der).digest())
        self.tls[h.name] = got
        return got

    def listener_tls(self, h):
        """A certificate-less context whose SNI callback (called for every ClientHello, with or without
        SNI) swaps in the host's real context, made on first use: start-up stays cheap for many hosts."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2

        def swap(ssl_obj, server_name, _ctx):
            try:
                ssl_obj.context = self.tls_for(h)[0]
            except Exception:  # noqa: BLE001
                LOG.exception("%s: cannot make the TLS certificate", h.name)
                return ssl.ALERT_DESCRIPTION_INTERNAL_ERROR
            return None
        ctx.sni_callback = swap
        return ctx

    # -- connections --
    async def serve_owa(self, reader, writer, h):
        """One GET of the host's OWA over plain HTTP, answered as its IIS would; then close."""
        peer = (writer.get_extra_info("peername") or ("?", 0))[0]
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10.0)
            line = head.split(b"\r\n", 1)[0].decode("iso-8859-1")
            method, target = (line.split(" ") + ["", ""])[:2]
            if method != "GET":
                out, what = http_response(405, extra=["Allow: GET"], close=True), method[:20]
            else:
                out, what = owa_response(h, target)
            writer.write(out)
            await writer.drain()
            LOG.info("%s:%d %s %s %s", h.address, self.http_port, peer, target[:80], what)
        except (asyncio.TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        finally:
            writer.close()

    async def serve(self, reader, writer, h, tls, port):
        peer = (writer.get_extra_info("peername") or ("?", 0))[0]
        if self.connections >= MAX_CONNECTIONS:
            writer.close()
            return
        self.connections += 1
        try:
            # the TLS handshake is done (start_server(ssl=...)); its SNI callback made the host's context
            cert_hash = self.tls_for(h)[1] if tls else None
            conn = Conn(h, tls, peer, port, cert_hash, spnego_only=port == self.spnego_port)
            first = True
            while True:
                try:
                    req = await read_request(reader, writer, first)
                except BadRequest as e:
                    LOG.info("%s:%d %s: %d %s", h.address, port, peer, e.status, e)
                    writer.write(http_response(e.status, close=True))
                    await writer.drain()
                    return
                except (asyncio.TimeoutError, asyncio.IncompleteReadError, ConnectionError, OSError):
                    return
                if req is None:
                    return
                first = False
                t0 = time.perf_counter()
                try:
                    resp, close, what = self.process(conn, req)
                except Exception:  # noqa: BLE001 - never let one request kill the server
                    LOG.exception("%s:%d %s: internal error", h.address, port, peer)
                    resp, close, what = http_response(500, close=True), True, "internal error"
                LOG.info("%s:%d %s %s %s %s (%.1f ms)", h.address, port, peer, conn.user or "-", what,
                         resp[9:12].decode(), (time.perf_counter() - t0) * 1000)
                writer.write(resp)
                await writer.drain()
                if close or req.headers.get("connection", "").lower() == "close" or req.version == "HTTP/1.0":
                    return
        except (ConnectionError, OSError, asyncio.TimeoutError):
            pass
        finally:
            self.connections -= 1
            try:
                writer.close()
            except Exception:  # noqa: BLE001
                pass

    def _new_context(self, h, spnego_wrapped):
        os.environ["LM_COMPAT_LEVEL"] = str(h.lm_compat)
        return spnego.server(hostname=h.name, service="http",
                             protocol="negotiate" if spnego_wrapped else "ntlm")

    def process(self, conn, req):
        """(response bytes, close connection?, what for the log)."""
        h = conn.host
        challenge = "WWW-Authenticate: Negotiate"
        if req.method != "POST":
            return http_response(405, extra=["Allow: POST"]), False, req.method
        if req.target.split("?", 1)[0].lower().rstrip("/") != "/wsman":
            return http_response(404), False, "not found " + req.target[:60]
        auth = req.headers.get("authorization")
        extra = []
        if auth:
            scheme, _, b64 = auth.partition(" ")
            if scheme.lower() not in ("negotiate", "ntlm"):
                return http_response(401, extra=[challenge]), False, "auth scheme " + scheme[:20]
            try:
                token = base64.b64decode(b64.strip(), validate=True)
            except (binascii.Error, ValueError):
                return http_response(400), True, "bad auth token"
            is_ntlm = token.startswith(b"NTLMSSP\x00")
            if is_ntlm and conn.spnego_only:
                # as a server that wants SPNEGO: a bare challenge, no token
                conn.reset()
                return http_response(401, extra=[challenge]), False, "raw NTLMSSP refused (SPNEGO only)"
            starts = (is_ntlm and token[8:12] == b"\x01\x00\x00\x00") or (token[:1] == b"\x60")
            if starts:
                conn.reset()
                conn.ctx = self._new_context(h, not is_ntlm)
            elif conn.ctx is None:
                return http_response(401, extra=[challenge]), False, "auth out of sequence"
            _NTLM_TARGET["name"] = h.netbios
            bindings = None
            sent_bindings = client_sent_bindings(token)
            if conn.tls and h.cbt == "strict" and is_authenticate(token) and not sent_bindings:
                LOG.info("%s: logon refused: no channel bindings over https (strict)", h.name)
                conn.reset()
                return http_response(401, extra=[challenge]), False, "no channel bindings"
            if conn.tls and conn.cert_hash and sent_bindings:
                bindings = spnego.channel_bindings.GssChannelBindings(
                    application_data=b"tls-server-end-point:" + conn.cert_hash)
            try:
                out = conn.ctx.step(token, channel_bindings=bindings)
            except Exception as e:  # noqa: BLE001 - any failure is a refused logon
                LOG.info("%s: logon refused: %s", h.name, str(e).splitlines()[0][:200])
                conn.reset()
                return http_response(401, extra=[challenge]), False, "logon refused"
            if not conn.ctx.complete:
                return (http_response(401, extra=["WWW-Authenticate: Negotiate " + base64.b64encode(out).decode()]),
                        False, "auth challenge")
            conn.authenticated = True
            conn.user = conn.ctx.client_principal or "?"
            conn.admin = self.is_admin(conn.user)
            LOG.info("%s: %s logged on over %s (%s)", h.name, conn.user, "https" if conn.tls else "http",
                     "admin" if conn.admin else "not an administrator")
            if out:
                extra.append("WWW-Authenticate: Negotiate " + base64.b64encode(out).decode())
        elif not conn.authenticated:
            return http_response(401, extra=[challenge]), False, "no credentials"
        body = req.body
        if not body:
            # the empty POST that completes a client's logon (pywinrm sends one to set up sealing)
            return http_response(200, extra=extra), False, "logon"
        ctype = req.headers.get("content-type", "")
        encrypted = ctype.lower().startswith("multipart/encrypted")
        if encrypted:
            if ENC_PROTOCOL.lower() not in ctype.lower():
                return http_response(400, extra=extra), True, "unsupported encryption " + ctype[:80]
            try:
                soap = decrypt_body(conn.ctx, body)
            except Exception as e:  # noqa: BLE001 - the sealing state is unusable after this
                LOG.info("%s: cannot decrypt: %s", h.name, e)
                return http_response(400, extra=extra), True, "decrypt failed"
        else:
            if not conn.tls:
                f = fault_unencrypted(h)
                return (http_response(f.status, fault_envelope(f, None), SOAP_CONTENT_TYPE, extra),
                        False, "refused unencrypted")
            soap = body
        status, xml, what = self.wsman.handle(h, conn, soap)
        if encrypted:
            return http_response(status, encrypt_body(conn.ctx, xml), ENC_CONTENT_TYPE, extra), False, what
        return http_response(status, xml, SOAP_CONTENT_TYPE, extra), False, what

    async def start(self, add_addresses):
        added = []
        for h in self.hosts:
            if not h.enabled:
                continue
            for port, tls in ((self.port, False), (self.tls_port, True), (self.spnego_port, False)):
                if not port:
                    continue
                kw = dict(limit=MAX_HEAD, reuse_address=True, backlog=128)
                if tls:
                    kw.update(ssl=self.listener_tls(h), ssl_handshake_timeout=TLS_HANDSHAKE_TIMEOUT)

                def cb(r, w, h=h, tls=tls, port=port):
                    return self.serve(r, w, h, tls, port)
                try:
                    srv = await asyncio.start_server(cb, h.address, port, **kw)
                except OSError as e:
                    if e.errno == 99 and add_addresses and h.address not in added:   # EADDRNOTAVAIL
                        subprocess.run(["ip", "addr", "add", h.address + "/32", "dev", "lo"], check=True)
                        added.append(h.address)
                        srv = await asyncio.start_server(cb, h.address, port, **kw)
                    else:
                        raise OSError(e.errno, "%s: cannot listen on %s:%d: %s%s" % (
                            h.name, h.address, port, e.strerror,
                            " (the address is not on lo: start the lab with scripts/lab up, or pass "
                            "--add-addresses)" if e.errno == 99 else "")) from None
                self.servers.append(srv)
            if self.http_port and h.owa is not None:
                def owa_cb(r, w, h=h):
                    return self.serve_owa(r, w, h)
                self.servers.append(await asyncio.start_server(owa_cb, h.address, self.http_port,
                                                               limit=MAX_HEAD, reuse_address=True))
        return added


# --- self-test ------------------------------------------------------------------------------------

def self_test():
    """Offline checks: sealing and the HTTP body layout against an NTLM known-answer vector, .reg and WQL parsing."""
    global spnego
    spnego = _import_spnego()
    from spnego._ntlm_raw.crypto import rc4init
    from spnego._ntlm_raw.security import seal
    # NTLM sealing known answer (pyspnego 0.12.4, flags 0xe28a8235; client sealing key as in MS-NLMP 4.2.4).
    flags = 0xE28A8235
    plain = b'<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"/>'
    msg, sig = seal(flags, rc4init(bytes.fromhex("9355f3a957c1583d25c4c2f11e40390e")),
                    bytes.fromhex("d04d6f10741041d1d246d64188d7a8ad"), 0, plain)
    assert sig.hex() == "0100000094c3e47912ffc0e400000000", sig.hex()
    assert msg.hex() == ("7a7b27f23fcc788547b442f75b3640498aea67b6036b106c65e84297b56f1e18c2ddfbc86f21e087a1598e58"
                         "78a17b2f8f17300b459ed16182a6ecd41a9fd7"), msg.hex()
    body = encrypted_body(bytes.fromhex("0100000006bb69ed8d379d0b00000000"),
                          bytes.fromhex("38965720b06f3ab0981031e19c761b68fc657cbb84fc437f7a451bec1397888c28d4b44c"
                                        "2334837849d747d5070d77bee871ec3f27c212706a3fd3b19a6dc1"), len(plain))
    want = ("2d2d456e6372797074656420426f756e646172790d0a09436f6e74656e742d547970653a206170706c69636174696f6e2f"
            "485454502d53504e45474f2d73657373696f6e2d656e637279707465640d0a094f726967696e616c436f6e74656e743a2074"
            "7970653d6170706c69636174696f6e2f736f61702b786d6c3b636861727365743d5554462d383b4c656e6774683d36330d0a"
            "2d2d456e6372797074656420426f756e646172790d0a09436f6e74656e742d547970653a206170706c69636174696f6e2f6f"
            "637465742d73747265616d0d0a100000000100000006bb69ed8d379d0b0000000038965720b06f3ab0981031e19c761b68fc"
            "657cbb84fc437f7a451bec1397888c28d4b44c2334837849d747d5070d77bee871ec3f27c212706a3fd3b19a6dc12d2d456e"
            "6372797074656420426f756e646172792d2d0d0a")
    assert body.hex() == want, "encrypted body layout differs from the known answer"
    # decrypt_body parses what encrypted_body builds
    fake = types.SimpleNamespace(unwrap=lambda d: types.SimpleNamespace(data=d[16:]))
    assert decrypt_body(fake, encrypted_body(b"S" * 16, plain, len(plain))) == plain
    # WQL
    q = Wql(r"SELECT Name, StartMode FROM Win32_Service WHERE Name='W3SVC' AND (State <> 'x' OR NOT Started = TRUE)")
    assert q.cls == "Win32_Service" and q.props == ["Name", "StartMode"]
    q = Wql(r"select * from CIM_DataFile where Name = 'c:\\program files\\exchsrvr\\bin\\store.exe'")
    assert q.matches({"NAME": r"C:\Program Files\Exchsrvr\bin\store.exe"})
    for bad in ("SELECT FROM x", "SELECT * FROM", "SELECT * FROM x WHERE", "SELECT * FROM x WHERE a = ",
                "DELETE FROM x", "SELECT * FROM x WHERE a = 'unterminated"):
        try:
            Wql(bad)
        except WmiError:
            continue
        raise AssertionError("accepted bad WQL %r" % bad)
    assert Wql("SELECT * FROM x WHERE Name LIKE 'MSExch%'").matches({"NAME": "MSExchangeIS"})
    # command lines and PowerShell
    assert split_cmdline('powershell -enc "a b" c') == ["powershell", "-enc", "a b", "c"]
    print("winrm self-test: ok (sealing known answer, body layout, WQL, command lines)")
    return 0


# --- main -----------------------------------------------------------------------------------------

def main():
    global spnego
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hosts-dir")
    ap.add_argument("--users-file", help="NTLM accounts, DOMAIN:USER:PASSWORD per line (pyspnego NTLM_USER_FILE)")
    ap.add_argument("--run-dir", help="pid file, ready marker, log, TLS key and certificates")
    ap.add_argument("--port", type=int, default=5985)
    ap.add_argument("--tls-port", type=int, default=5986, help="0: no HTTPS listeners")
    ap.add_argument("--http-port", type=int, default=0,
                    help="plain-HTTP listeners answering GETs of OWA as the [owa] table of a profile says (0: none)")
    ap.add_argument("--spnego-port", type=int, default=0,
                    help="HTTP listeners that refuse raw NTLMSSP and take only SPNEGO-wrapped NTLM (0: none)")
    ap.add_argument("--admin", action="append", default=[],
                    help="account that is a local administrator (USER or DOMAIN\\USER); default exscan")
    ap.add_argument("--add-addresses", action="store_true",
                    help="add a host's /32 to lo when it is missing (removed again at exit)")
    ap.add_argument("--self-test", action="store_true", help="offline checks, then exit")
    ap.add_argument("names", nargs="*", metavar="NAME", help="serve only these hosts")
    args = ap.parse_args()
    if args.self_test:
        return self_test()
    if not (args.hosts_dir and args.users_file and args.run_dir):
        ap.error("--hosts-dir, --users-file and --run-dir are required")
    t0 = time.perf_counter()
    os.makedirs(args.run_dir, exist_ok=True)
    # bounded: a fleet benchmark makes many requests (two files of 16 MiB at most)
    handler = logging.handlers.RotatingFileHandler(os.path.join(args.run_dir, "winrm.log"),
                                                   maxBytes=16 << 20, backupCount=1)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    users = os.path.abspath(args.users_file)
    if not os.path.isfile(users):
        sys.exit("winrm: no users file %s" % users)
    if os.stat(users).st_mode & 0o077:
        sys.exit("winrm: %s is readable by group or others; it holds passwords (chmod 600)" % users)
    os.environ["NTLM_USER_FILE"] = users
    spnego = _import_spnego()
    _patch_ntlm_target_names()
    try:
        hosts = load_hosts(args.hosts_dir, args.names)
    except (ProfileError, OSError) as e:
        sys.exit("winrm: %s" % e)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    server = Server(hosts, args.admin or ["exscan"], args.run_dir, args.port, args.tls_port, args.spnego_port,
                    args.http_port)
    ready = os.path.join(args.run_dir, "winrm.ready")
    pidf = os.path.join(args.run_dir, "winrm.pid")
    for f in (ready,):
        if os.path.exists(f):
            os.unlink(f)
    with open(pidf, "w") as fh:
        fh.write("%d\n" % os.getpid())

    async def run():
        loop = asyncio.get_running_loop()
        stop = loop.create_future()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
        try:
            added = await server.start(args.add_addresses)
        except (OSError, subprocess.CalledProcessError) as e:
            LOG.error("%s", e)
            print("winrm: %s" % e, file=sys.stderr)
            return 1
        ms = (time.perf_counter() - t0) * 1000
        listeners = [{"host": h.name, "address": h.address, "http": args.port, "https": args.tls_port or None,
                      "spnego": args.spnego_port or None}
                     for h in hosts if h.enabled]
        tmp = ready + ".tmp"
        with open(tmp, "w") as fh:
            json.dump({"pid": os.getpid(), "ready_ms": round(ms, 1), "listeners": listeners}, fh)
        os.replace(tmp, ready)
        LOG.info("ready in %.0f ms: %d hosts, %d listeners", ms, len(listeners), len(server.servers))
        await stop
        for srv in server.servers:
            srv.close()
        for a in added:
            subprocess.run(["ip", "addr", "del", a + "/32", "dev", "lo"], check=False)
        LOG.info("stopped")
        return 0

    try:
        rc = asyncio.run(run())
    finally:
        for f in (ready, pidf):
            try:
                os.unlink(f)
            except OSError:
                pass
    return rc


if __name__ == "__main__":
    sys.exit(main())

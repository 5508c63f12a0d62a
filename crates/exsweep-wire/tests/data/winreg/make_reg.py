#!/usr/bin/env python3
"""Write the .reg file imported into the throwaway Samba registry (UTF-8)."""
import sys

KEY = r"HKEY_LOCAL_MACHINE\SOFTWARE\ExsweepCapture"


def hexlist(b: bytes) -> str:
    # .reg hex lists; split long lists with "\" continuation lines
    parts = ["%02x" % x for x in b]
    lines, cur = [], []
    for i, p in enumerate(parts):
        cur.append(p)
        if len(cur) == 25 and i != len(parts) - 1:
            lines.append(",".join(cur) + ",\\")
            cur = []
    lines.append(",".join(cur))
    return "\n  ".join(lines)


def u16z(s: str) -> bytes:
    return (s + "\0").encode("utf-16-le")


BIG = bytes((i * 7 + 3) & 0xFF for i in range(10000))

out = ["Windows Registry Editor Version 5.00", "", "[%s]" % KEY,
       '"SzValue"="hello exsweep"',
       '"ExpandSzValue"=hex(2):' + hexlist(u16z(r"%SystemRoot%\system32")),
       '"MultiSzValue"=hex(7):' + hexlist(u16z("alpha") + u16z("beta") + u16z("gamma") + b"\0\0"),
       '"DwordValue"=dword:12345678',
       '"DwordBEValue"=hex(5):' + hexlist(bytes([0x12, 0x34, 0x56, 0x78])),
       '"QwordValue"=hex(b):' + hexlist((0x0102030405060708).to_bytes(8, "little")),
       '"BinaryValue"=hex:' + hexlist(bytes([0xDE, 0xAD, 0xBE, 0xEF, 0x00, 0x01, 0x02])),
       '"NoneValue"=hex(0):' + hexlist(bytes([0x01, 0x02, 0x03])),
       '"BigBinary"=hex:' + hexlist(BIG),
       '"Größe-Ü€"="wert-ä"',
       "",
       "[%s\\SubKeyA]" % KEY, '"InA"=dword:00000001', "",
       "[%s\\SubKeyB]" % KEY, '"InB"="b"', ""]
sys.stdout.write("\r\n".join(out))

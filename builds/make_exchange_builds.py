#!/usr/bin/env python3
"""Re-make builds/exchange.csv from the public tables named in builds/README.md.

Usage: make_exchange_builds.py SHARED_DATA_DIR > builds/exchange.csv
Facts only (build numbers, level names, dates) in this project's own columns.
"""
import csv, json, re, sys

data = sys.argv[1]
rows = []
MONTHS = {m: i for i, m in enumerate(
    "January February March April May June July August September October November December".split(), 1)}

def month(text):
    m = re.match(r"(\w+)\s*(\d+)?,?\s*(\d{4})", text.strip())
    if not m or m.group(1) not in MONTHS:
        return ""
    year = int(m.group(3))
    if year > 2090:  # the source writes 1998/1999 as 2098/2099
        year -= 100
    return "%04d-%02d" % (year, MONTHS[m.group(1)])

uniq = json.load(open(f"{data}/righel-ms-exchange-version-nse/ms-exchange-unique-versions-dict.json"))
GEN = {"5.5": "5.5", "6.0": "2000", "6.5": "2003", "8.0": "2007", "8.1": "2007", "8.2": "2007",
       "8.3": "2007", "14.0": "2010", "14.1": "2010", "14.2": "2010", "14.3": "2010"}
for build, v in uniq.items():
    mm = ".".join(build.split(".")[:2])
    if mm not in GEN or re.search(r"\.0\d", build):  # skip zero-padded duplicates (8.2.305.03)
        continue
    name = " ".join(v["name"].split())
    m = re.search(r"\b(RTM|SP\d)\b", name)
    level = m.group(1) if m else ("RTM" if "for Exchange Server 20" in name and " SP" not in name else "")
    if "Update Rollup" in name:
        m = re.match(r"(Update Rollup [\w-]+(?: v\d)?)(?: for)? Exchange Server \d+(?: (SP\d))?(.*)", name)
        level, update = (m.group(2) or "RTM"), m.group(1) + m.group(3)
    elif re.search(r"\bRU\d", name):
        m = re.search(r"(SP\d) RU(\d+)(.*)", name)
        level, update = m.group(1), ("Update Rollup " + m.group(2) + m.group(3)).strip()
    elif "Post" in name:
        base = {"5.5": "SP4", "2000": "SP3", "2003": "SP2"}[GEN[mm]]
        level, update = base, "post-" + base + (" (Mercury)" if "Mercury" in name else "")
    else:
        update = ""
    rows.append((GEN[mm], build, level, update, month(v["release_date"]), "righel ms-exchange-version-nse"))

# Exchange 2000 post-SP3 milestones of store.exe (shared/data/compiled/exchange2000-windows2000-builds.csv).
rows += [
    ("2000", "6.0.6556.5", "SP3", "post-SP3 rollup KB836488", "2004", "Exchange team blog 2004-08-17"),
    ("2000", "6.0.6603.1", "SP3", "post-SP3 rollup KB870540 (August 2004)", "2004-08", "Exchange team blog; MS05-029 bulletin"),
]
rows = [r for r in rows if not (r[0] == "2000" and r[1] == "6.0.6620.15")]
rows.append(("2000", "6.0.6620.15", "SP3", "post-SP3 KB976703 (MS10-024)", "2010-04", "righel; MS10-024 bulletin"))

GEN15 = {"Exchange2013": "2013", "Exchange2016": "2016", "Exchange2019": "2019", "ExchangeSE": "SE"}
with open(f"{data}/css-exchange-build-dictionary.csv", newline="") as f:
    for r in csv.reader(f):
        if r[0] not in GEN15:
            continue
        mdy = r[4].split("/")
        released = f"{mdy[2]}-{mdy[0]}-{mdy[1]}" if len(mdy) == 3 else ""
        rows.append((GEN15[r[0]], r[3], r[1], r[2], released if not r[2] else "",
                     "CSS-Exchange Get-ExchangeBuildVersionInformation.ps1"))

def key(r):
    return [int(x) for x in r[1].split(".")], r[3]
w = csv.writer(sys.stdout, lineterminator="\n")
w.writerow(["generation", "build", "level", "update", "released", "source"])
seen = set()
for r in sorted(rows, key=key):
    if (r[1], r[3]) in seen:
        continue
    seen.add((r[1], r[3]))
    w.writerow(r)

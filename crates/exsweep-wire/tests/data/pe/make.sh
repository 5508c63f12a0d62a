#!/usr/bin/env bash
# make.sh - re-make the PE fixtures in this folder.
#
# 1. The mingw-built ones: one per specs/<file>.json, with tests/lab/mkpe.py (GNU binutils
#    for mingw-w64: as, windres, ld; `scripts/setup` installs them). Same binutils
#    version = same bytes (MANIFEST.md names the version used).
# 2. The third-party ones are copied from their installed packages when they are not here
#    yet, and always checked against the sha256 in THIRD_PARTY below.
# 3. MANIFEST.md's generated part is rewritten from pefile (expected.py --write).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
REPO=$(cd ../../../../.. && pwd)

for spec in specs/*.json; do
    out=$(basename "$spec" .json)
    python3 "$REPO/tests/lab/mkpe.py" --spec "@$spec" --out "$out"
done

# file, sha256, where pip/setuptools install it, how to fetch it otherwise
THIRD_PARTY=(
    "t32.exe|6b4195e640a85ac32eb6f9628822a622057df1e459df7c17a12f97aeabc9415b|pip/_vendor/distlib/t32.exe|pip download pip==24.2 --no-deps; unzip -j pip-24.2-py3-none-any.whl pip/_vendor/distlib/t32.exe"
    "t64.exe|81a618f21cb87db9076134e70388b6e9cb7c2106739011b6a51772d22cae06b7|pip/_vendor/distlib/t64.exe|pip download pip==24.2 --no-deps; unzip -j pip-24.2-py3-none-any.whl pip/_vendor/distlib/t64.exe"
    "cli-32.exe|75f12ea2f30d9c0d872dade345f30f562e6d93847b6a509ba53beec6d0b2c346|setuptools/cli-32.exe|pip download setuptools==65.5.0 --no-deps; unzip -j setuptools-65.5.0-py3-none-any.whl setuptools/cli-32.exe"
)
for entry in "${THIRD_PARTY[@]}"; do
    IFS='|' read -r file sum rel fetch <<<"$entry"
    if [[ ! -f $file ]]; then
        for site in $(python3 -c 'import site, sys; print(" ".join(site.getsitepackages() + [site.getusersitepackages()]))') \
            /root/.pyenv/versions/*/lib/python3*/site-packages; do
            if [[ -f $site/$rel ]] && [[ $(sha256sum <"$site/$rel" | cut -d' ' -f1) == "$sum" ]]; then
                cp -- "$site/$rel" "$file"
                break
            fi
        done
    fi
    if [[ ! -f $file ]]; then
        echo "make.sh: $file missing; get it with: $fetch" >&2
        exit 1
    fi
    if [[ $(sha256sum <"$file" | cut -d' ' -f1) != "$sum" ]]; then
        echo "make.sh: $file has the wrong sha256 (want $sum)" >&2
        exit 1
    fi
    chmod 0644 "$file"
done

python3 expected.py --write MANIFEST.md

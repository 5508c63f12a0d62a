#!/usr/bin/env bash
# Makes the self-signed certificates of certhash.rs with openssl (one per key type and digest),
# and expected.txt: for each, the length of the channel-binding hash requests_ntlm 1.3's
# _get_certificate_hash computes (32 = SHA-256, 48 = SHA-384, 64 = SHA-512, 0 = none).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
make() { # name, then openssl req options choosing the key and the digest
    local name=$1; shift
    openssl req -x509 -new "$@" -keyout "$tmp/$name.key" -nodes -subj "/CN=$name" -days 1 \
        -outform DER -out "$name.der" 2>/dev/null
}
make rsa-sha1 -newkey rsa:2048 -sha1
make rsa-sha256 -newkey rsa:2048 -sha256
make rsa-sha384 -newkey rsa:2048 -sha384
make rsa-sha512 -newkey rsa:2048 -sha512
make rsa-pss-sha384 -newkey rsa:2048 -sha384 -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:-1
make ec-p256-sha256 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -sha256
make ec-p384-sha384 -newkey ec -pkeyopt ec_paramgen_curve:P-384 -sha384
make ec-p384-sha512 -newkey ec -pkeyopt ec_paramgen_curve:P-384 -sha512
make ed25519 -newkey ed25519
python3 - <<'PY' > expected.txt
import glob, warnings
from requests_ntlm.requests_ntlm import _get_certificate_hash
warnings.simplefilter("ignore")
for f in sorted(glob.glob("*.der")):
    h = _get_certificate_hash(open(f, "rb").read())
    print(f, len(h) if h else 0)
PY

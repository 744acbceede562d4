#!/usr/bin/env bash
# Throwaway private keys in the formats `udpjwt send --key` reads or refuses,
# made with OpenSSL and OpenSSH, and expected.json with each usable key's
# format, algorithm, whether it is encrypted, its public key's fingerprint as
# ssh-keygen computes it, and a public key file made by the tools (PEM SPKI)
# that tests verify signatures with. Encrypted keys use the passphrase in
# passphrase.txt. Needs openssl, ssh-keygen and python3 (standard library
# only, to write the JWKs). Run from this directory.
set -euo pipefail
cd "$(dirname "$0")"
rm -f ./*.pem ./*.key ./*.jwk ./id_* expected.json passphrase.txt
PASS="correct horse battery staple"
printf '%s\n' "$PASS" > passphrase.txt

openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out rsa.pkcs8.pem 2>/dev/null
openssl rsa -in rsa.pkcs8.pem -traditional -out rsa.pkcs1.pem 2>/dev/null
# `openssl ecparam -genkey` writes an EC PARAMETERS block before the key.
openssl ecparam -name prime256v1 -genkey -out p256.sec1.pem
openssl pkey -in p256.sec1.pem -out p256.pkcs8.pem
# SEC1 without the optional public key.
openssl ec -in p256.sec1.pem -no_public -out p256.sec1.nopublic.pem 2>/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out p384.pkcs8.pem
openssl ec -in p384.pkcs8.pem -out p384.sec1.pem 2>/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-521 -out p521.pkcs8.pem
openssl ec -in p521.pkcs8.pem -out p521.sec1.pem 2>/dev/null
openssl genpkey -algorithm ED25519 -out ed25519.pkcs8.pem
# An RSASSA-PSS key (its own OID in PKCS#8): it signs PS256/384/512 only.
openssl genpkey -algorithm RSA-PSS -pkeyopt rsa_keygen_bits:2048 -out rsapss.pkcs8.pem 2>/dev/null
# PBES2: OpenSSL's defaults (PBKDF2 with HMAC-SHA256, AES-256-CBC), and
# other PRF and key sizes.
openssl pkey -in p256.pkcs8.pem -aes256 -passout pass:secret -out encrypted.pem
openssl pkcs8 -topk8 -v2 aes-256-cbc -in p521.pkcs8.pem -passout "pass:$PASS" -out p521.pkcs8.encrypted.pem
openssl pkcs8 -topk8 -v2 aes-128-cbc -v2prf hmacWithSHA512 -in ed25519.pkcs8.pem -passout "pass:$PASS" -out ed25519.pkcs8.encrypted.pem
openssl pkcs8 -topk8 -v2 aes-192-cbc -v2prf hmacWithSHA1 -in rsa.pkcs8.pem -passout "pass:$PASS" -out rsa.pkcs8.encrypted.pem
# Refused: PBES1 and the legacy "Proc-Type: 4,ENCRYPTED" PEM.
openssl pkcs8 -topk8 -v1 PBE-SHA1-3DES -in p256.pkcs8.pem -passout "pass:$PASS" -out pbes1.encrypted.pem
openssl rsa -in rsa.pkcs8.pem -traditional -aes256 -passout "pass:$PASS" -out rsa.legacy.encrypted.pem 2>/dev/null
openssl pkey -in p256.pkcs8.pem -pubout -out public.pem

# OpenSSH's own format, as ssh-keygen writes it today (bcrypt KDF,
# aes256-ctr when there is a passphrase).
ssh-keygen -q -t ed25519 -N "" -C student@lab -f id_ed25519
ssh-keygen -q -t ed25519 -N "$PASS" -C student@lab -f id_ed25519_pass
ssh-keygen -q -t ecdsa -b 256 -N "" -f id_ecdsa256
ssh-keygen -q -t ecdsa -b 384 -N "" -f id_ecdsa384
ssh-keygen -q -t ecdsa -b 521 -N "$PASS" -f id_ecdsa521_pass
ssh-keygen -q -t rsa -b 2048 -N "" -f id_rsa
ssh-keygen -q -t rsa -b 3072 -N "$PASS" -f id_rsa_pass
# The P-256 key above, rewritten in the OpenSSH format.
cp p256.pkcs8.pem openssh.key && chmod 600 openssh.key
ssh-keygen -q -p -N "" -f openssh.key >/dev/null

# Private JWKs from the OpenSSL keys: Ed25519 with a kid, RSA choosing PS256.
python3 - <<'PY'
import base64, json, subprocess

def der(*args):
    return subprocess.run(["openssl", *args, "-outform", "DER"], check=True, capture_output=True).stdout

def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()

def ints(d):
    """The INTEGERs of a DER SEQUENCE (enough for RSAPrivateKey)."""
    def length(i):
        n = d[i]
        if n < 0x80:
            return n, i + 1
        k = n & 0x7F
        return int.from_bytes(d[i + 1:i + 1 + k], "big"), i + 1 + k
    _, i = length(1)
    out = []
    while i < len(d):
        n, j = length(i + 1)
        out.append(d[j:j + n].lstrip(b"\0") or b"\0")
        i = j + n
    return out

seed = der("pkey", "-in", "ed25519.pkcs8.pem")[-32:]
pub = der("pkey", "-in", "ed25519.pkcs8.pem", "-pubout")[-32:]
json.dump({"kty": "OKP", "crv": "Ed25519", "kid": "ed-2026", "x": b64(pub), "d": b64(seed)},
          open("ed25519.jwk", "w"), indent=2)
_, n, e, d, p, q, dp, dq, qi = ints(der("rsa", "-in", "rsa.pkcs1.pem", "-traditional"))
json.dump({"kty": "RSA", "alg": "PS256", "kid": "rsa-pss", "use": "sig", "n": b64(n), "e": b64(e),
           "d": b64(d), "p": b64(p), "q": b64(q), "dp": b64(dp), "dq": b64(dq), "qi": b64(qi)},
          open("rsa.ps256.jwk", "w"), indent=2)
json.dump({"kty": "OKP", "crv": "Ed25519", "x": b64(pub)}, open("ed25519.public.jwk", "w"))
PY

# Public keys as PEM SPKI, made by the tools: openssl from the PEM keys,
# ssh-keygen -e from the .pub files, and for Ed25519 (which ssh-keygen -e
# cannot export) the raw key behind the fixed SPKI prefix.
spki() { openssl pkey -in "$1" -pubout; }
ssh_spki() { ssh-keygen -e -m PKCS8 -f "$1.pub"; }
ed_spki() {
  { printf '302a300506032b6570032100' | xxd -r -p
    cut -d' ' -f2 "$1.pub" | base64 -d | tail -c 32
  } | openssl pkey -pubin -inform DER
}
fp() { ssh-keygen -lf "$1" | cut -d' ' -f2; }
pem_fp() { ssh-keygen -i -m PKCS8 -f "$1" | ssh-keygen -lf - | cut -d' ' -f2; }
ed_fp() { ssh-keygen -lf "$1.pub" | cut -d' ' -f2; }
# ssh-keygen reads no RSASSA-PSS key: the ssh-rsa blob from its modulus.
pss_fp() {
  python3 - "$(openssl rsa -in "$1" -noout -modulus 2>/dev/null | cut -d= -f2)" <<'PY'
import base64, hashlib, struct, sys
n, e = int(sys.argv[1], 16), 65537
mpint = lambda v: (lambda b: struct.pack(">I", len(b)) + b)(v.to_bytes((v.bit_length() + 8) // 8, "big"))
blob = struct.pack(">I", 7) + b"ssh-rsa" + mpint(e) + mpint(n)
print("SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("="))
PY
}

mkdir -p public
rm -f public/*
for f in rsa.pkcs8.pem rsapss.pkcs8.pem p256.pkcs8.pem p384.pkcs8.pem p521.pkcs8.pem ed25519.pkcs8.pem; do
  spki "$f" > "public/${f%%.*}.spki.pem"
done
for f in id_ecdsa256 id_ecdsa384 id_ecdsa521_pass id_rsa id_rsa_pass; do
  ssh_spki "$f" > "public/$f.spki.pem"
done
for f in id_ed25519 id_ed25519_pass; do
  ed_spki "$f" > "public/$f.spki.pem"
done
# The Ed25519 PEM key's fingerprint, through the OpenSSH line ssh-keygen
# would write for it.
ED_LINE="ssh-ed25519 $( { printf '\0\0\0\x0bssh-ed25519\0\0\0\x20'; openssl pkey -in ed25519.pkcs8.pem -pubout -outform DER | tail -c 32; } | base64 -w0)"
ED_FP=$(echo "$ED_LINE" | ssh-keygen -lf - | cut -d' ' -f2)

row() { # file format alg encrypted public fingerprint
  printf '  "%s": {"format": "%s", "alg": "%s", "encrypted": %s, "public": "%s", "fingerprint": "%s"}' "$@"
}
{
  echo "{"
  {
    row rsa.pkcs8.pem "PKCS#8" RS256 false public/rsa.spki.pem "$(pem_fp public/rsa.spki.pem)"; echo ","
    row rsa.pkcs1.pem "PKCS#1" RS256 false public/rsa.spki.pem "$(pem_fp public/rsa.spki.pem)"; echo ","
    row rsa.pkcs8.encrypted.pem "PKCS#8" RS256 true public/rsa.spki.pem "$(pem_fp public/rsa.spki.pem)"; echo ","
    row rsa.ps256.jwk "JWK" PS256 false public/rsa.spki.pem "$(pem_fp public/rsa.spki.pem)"; echo ","
    row rsapss.pkcs8.pem "PKCS#8" PS256 false public/rsapss.spki.pem "$(pss_fp rsapss.pkcs8.pem)"; echo ","
    row p256.pkcs8.pem "PKCS#8" ES256 false public/p256.spki.pem "$(pem_fp public/p256.spki.pem)"; echo ","
    row p256.sec1.pem "SEC1" ES256 false public/p256.spki.pem "$(pem_fp public/p256.spki.pem)"; echo ","
    row p256.sec1.nopublic.pem "SEC1" ES256 false public/p256.spki.pem "$(pem_fp public/p256.spki.pem)"; echo ","
    row encrypted.pem "PKCS#8" ES256 true public/p256.spki.pem "$(pem_fp public/p256.spki.pem)"; echo ","
    row openssh.key "OpenSSH" ES256 false public/p256.spki.pem "$(pem_fp public/p256.spki.pem)"; echo ","
    row p384.pkcs8.pem "PKCS#8" ES384 false public/p384.spki.pem "$(pem_fp public/p384.spki.pem)"; echo ","
    row p384.sec1.pem "SEC1" ES384 false public/p384.spki.pem "$(pem_fp public/p384.spki.pem)"; echo ","
    row p521.pkcs8.pem "PKCS#8" ES512 false public/p521.spki.pem "$(pem_fp public/p521.spki.pem)"; echo ","
    row p521.sec1.pem "SEC1" ES512 false public/p521.spki.pem "$(pem_fp public/p521.spki.pem)"; echo ","
    row p521.pkcs8.encrypted.pem "PKCS#8" ES512 true public/p521.spki.pem "$(pem_fp public/p521.spki.pem)"; echo ","
    row ed25519.pkcs8.pem "PKCS#8" EdDSA false public/ed25519.spki.pem "$ED_FP"; echo ","
    row ed25519.pkcs8.encrypted.pem "PKCS#8" EdDSA true public/ed25519.spki.pem "$ED_FP"; echo ","
    row ed25519.jwk "JWK" EdDSA false public/ed25519.spki.pem "$ED_FP"; echo ","
    row id_ed25519 "OpenSSH" EdDSA false public/id_ed25519.spki.pem "$(ed_fp id_ed25519)"; echo ","
    row id_ed25519_pass "OpenSSH" EdDSA true public/id_ed25519_pass.spki.pem "$(ed_fp id_ed25519_pass)"; echo ","
    row id_ecdsa256 "OpenSSH" ES256 false public/id_ecdsa256.spki.pem "$(fp id_ecdsa256.pub)"; echo ","
    row id_ecdsa384 "OpenSSH" ES384 false public/id_ecdsa384.spki.pem "$(fp id_ecdsa384.pub)"; echo ","
    row id_ecdsa521_pass "OpenSSH" ES512 true public/id_ecdsa521_pass.spki.pem "$(fp id_ecdsa521_pass.pub)"; echo ","
    row id_rsa "OpenSSH" RS256 false public/id_rsa.spki.pem "$(fp id_rsa.pub)"; echo ","
    row id_rsa_pass "OpenSSH" RS256 true public/id_rsa_pass.spki.pem "$(fp id_rsa_pass.pub)"; echo
  }
  echo "}"
} > expected.json
# The encrypted.pem fixture predates passphrase.txt and uses "secret".

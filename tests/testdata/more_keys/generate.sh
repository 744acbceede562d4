#!/usr/bin/env bash
# Regenerates the protocol 2.1 key fixtures (Ed25519, P-384, P-521, RSA-PSS,
# JWK and JWK Sets) with tools independent of udpjwt: OpenSSH's ssh-keygen,
# OpenSSL and jq (Debian packages openssh-client, openssl, jq). The keys are
# throwaway test keys; their private halves are kept (*.key.pem, PKCS#8) so
# that tests can sign requests with them.
#
# Usage: ./generate.sh   (rewrites every fixture and expected.json here)
#
# The Ed25519, P-384 and P-521 keys are made by `ssh-keygen -t ed25519` and
# `ssh-keygen -t ecdsa -b 384/521`, as students make them. OpenSSH 9.2 cannot
# write an Ed25519 key for OpenSSL, so the script takes the 32-byte seed out
# of the OpenSSH private key file and wraps it as PKCS#8, then checks with
# openssl that its public half is the ssh-keygen key. expected.json records
# what the tools say: fingerprints (ssh-keygen -l), raw public keys and
# signatures over message.txt (openssl), RFC 7638 thumbprints (jq -cS and
# openssl dgst).
set -euo pipefail
cd "$(dirname "$0")"
rm -f ./*.pem ./*.ssh ./*.pub ./*.jwk ./*.jwks expected.json message.txt
t=$(mktemp -d); trap 'rm -rf "$t"' EXIT

hex() { od -An -v -tx1 | tr -d ' \n'; }
b64url() { base64 -w0 | tr '+/' '-_' | tr -d '='; }
unhex() { xxd -r -p; }
fp() { ssh-keygen -l -E sha256 -f "$1" | awk '{print $2}'; }
# The RFC 7638 thumbprint of a JWK file: required members, sorted, compact.
thumb() { jq -cS "$2" "$1" | tr -d '\n' | openssl dgst -sha256 -binary | b64url; }
# An ECDSA DER signature as raw r || s, each padded to $2 bytes.
ecdsa_raw() {
  openssl asn1parse -inform DER -in "$1" | awk -F: '/INTEGER/ {print $NF}' |
    while read -r v; do printf "%0$(($2 * 2))s" "$v" | tr ' ' 0; done | tr 'A-F' 'a-f'
}
spki_tail() { openssl pkey -pubin -in "$1" -outform DER | tail -c "$2"; }

printf 'udpjwt protocol 2.1 key fixture message\n' > message.txt

# Ed25519 by ssh-keygen, in every form: OpenSSH line, .pub, RFC 4716, SPKI, JWK.
ssh-keygen -q -t ed25519 -N '' -C carol@lab -f "$t/ed25519"
cp "$t/ed25519.pub" ed25519.ssh
cp "$t/ed25519.pub" ed25519.pub
ssh-keygen -e -m RFC4716 -f ed25519.ssh > ed25519.rfc4716.ssh
# The unencrypted OpenSSH private key's private section holds the 64-byte
# string seed || public key: find it by the public key that ends it.
ssh_x=$(awk '{print $2}' ed25519.ssh | base64 -d | tail -c 32 | hex)
seed=$(sed '1d;$d' "$t/ed25519" | base64 -d | hex |
  grep -oE "00000040[0-9a-f]{64}$ssh_x" | head -1 | cut -c9-72)
printf '302e020100300506032b657004220420%s' "$seed" | unhex |
  openssl pkey -inform DER -out ed25519.key.pem
openssl pkey -in ed25519.key.pem -pubout -out ed25519.spki.pem
x_ed=$(spki_tail ed25519.spki.pem 32 | hex)
[ "$x_ed" = "$ssh_x" ] || { echo "generate.sh: Ed25519 seed extraction failed" >&2; exit 1; }
jq -n --arg x "$(printf %s "$x_ed" | unhex | b64url)" \
  '{kty: "OKP", crv: "Ed25519", x: $x, use: "sig"}' > ed25519.jwk
openssl pkeyutl -sign -rawin -inkey ed25519.key.pem -in message.txt -out "$t/ed25519.sig"

# P-384 and P-521 by ssh-keygen: OpenSSH line, RFC 4716, SPKI (ssh-keygen -e
# -m PKCS8), JWK; the private key converted to PKCS#8 for signing.
for bits in 384 521; do
  k=p$bits
  ssh-keygen -q -t ecdsa -b $bits -N '' -C "erin$bits@lab" -f "$t/$k"
  cp "$t/$k.pub" $k.ssh
  ssh-keygen -e -m RFC4716 -f $k.ssh > $k.rfc4716.ssh
  ssh-keygen -e -m PKCS8 -f $k.ssh > $k.spki.pem
  ssh-keygen -p -q -N '' -m PEM -f "$t/$k" >/dev/null
  openssl pkcs8 -topk8 -nocrypt -in "$t/$k" -out $k.key.pem
  size=$(( bits == 384 ? 48 : 66 ))
  point=$(spki_tail $k.spki.pem $((1 + 2 * size)) | hex)
  x=$(printf %s "${point:2:$((size * 2))}" | unhex | b64url)
  y=$(printf %s "${point:$((2 + size * 2))}" | unhex | b64url)
  jq -n --arg crv "P-$bits" --arg x "$x" --arg y "$y" \
    '{kty: "EC", crv: $crv, x: $x, y: $y}' > $k.jwk
  md=$(( bits == 384 ? 384 : 512 ))
  openssl dgst -sha$md -sign $k.key.pem -out "$t/$k.sig" message.txt
  printf '%s' "$(ecdsa_raw "$t/$k.sig" $size)" > "$t/$k.raw"
  printf '%s' "$point" > "$t/$k.point"
done

# RSA 2048 by openssl: RS384/RS512 and PS256/PS384/PS512 signatures, and a
# JWK whose alg picks PS256.
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out rsa.key.pem 2>/dev/null
openssl pkey -in rsa.key.pem -pubout -out rsa.spki.pem
n=$(openssl rsa -pubin -in rsa.spki.pem -noout -modulus | cut -d= -f2 | unhex | b64url)
jq -n --arg n "$n" '{kty: "RSA", n: $n, e: "AQAB", alg: "PS256", kid: "rsa-pss", key_ops: ["verify"]}' > rsa-ps256.jwk
for md in 384 512; do
  openssl dgst -sha$md -sign rsa.key.pem -out "$t/rs$md.sig" message.txt
done
for md in 256 384 512; do
  openssl dgst -sha$md -sign rsa.key.pem -sigopt rsa_padding_mode:pss \
    -sigopt rsa_pss_saltlen:digest -out "$t/ps$md.sig" message.txt
done

# Key rotation: a JWK Set with the old key (P-256, kid 2026-old) and the new
# one (Ed25519, kid 2026-new), both by openssl.
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$t/old.sec1" 2>/dev/null
openssl pkcs8 -topk8 -nocrypt -in "$t/old.sec1" -out rotation-old.key.pem
openssl genpkey -algorithm ED25519 -out rotation-new.key.pem
openssl pkey -in rotation-old.key.pem -pubout -out "$t/old.spki"
openssl pkey -in rotation-new.key.pem -pubout -out "$t/new.spki"
old=$(spki_tail "$t/old.spki" 65 | hex)
jq -n --arg x "$(printf %s "${old:2:64}" | unhex | b64url)" \
  --arg y "$(printf %s "${old:66}" | unhex | b64url)" \
  --arg nx "$(spki_tail "$t/new.spki" 32 | b64url)" \
  '{keys: [
    {kty: "EC", crv: "P-256", x: $x, y: $y, kid: "2026-old", alg: "ES256", use: "sig"},
    {kty: "OKP", crv: "Ed25519", x: $nx, kid: "2026-new", alg: "EdDSA", use: "sig"}
  ]}' > rotation.jwks

# A key type udpjwt does not support.
openssl genpkey -algorithm ED448 -out "$t/ed448.key"
openssl pkey -in "$t/ed448.key" -pubout -out ed448.spki.pem

cat > expected.json <<JSON
{
  "message": "message.txt",
  "ed25519": {
    "fingerprint": "$(fp ed25519.ssh)",
    "xHex": "$x_ed",
    "thumbprint": "$(thumb ed25519.jwk '{crv, kty, x}')",
    "signatureHex": "$(hex < "$t/ed25519.sig")"
  },
  "p384": {
    "fingerprint": "$(fp p384.ssh)",
    "pointHex": "$(cat "$t/p384.point")",
    "thumbprint": "$(thumb p384.jwk '{crv, kty, x, y}')",
    "signatureHex": "$(cat "$t/p384.raw")"
  },
  "p521": {
    "fingerprint": "$(fp p521.ssh)",
    "pointHex": "$(cat "$t/p521.point")",
    "thumbprint": "$(thumb p521.jwk '{crv, kty, x, y}')",
    "signatureHex": "$(cat "$t/p521.raw")"
  },
  "rsa": {
    "thumbprint": "$(thumb rsa-ps256.jwk '{e, kty, n}')",
    "signatures": {
      "RS384": "$(hex < "$t/rs384.sig")",
      "RS512": "$(hex < "$t/rs512.sig")",
      "PS256": "$(hex < "$t/ps256.sig")",
      "PS384": "$(hex < "$t/ps384.sig")",
      "PS512": "$(hex < "$t/ps512.sig")"
    }
  },
  "rotation": {
    "old": { "kid": "2026-old", "thumbprint": "$(jq '.keys[0]' rotation.jwks > "$t/o.jwk"; thumb "$t/o.jwk" '{crv, kty, x, y}')" },
    "new": { "kid": "2026-new", "thumbprint": "$(jq '.keys[1]' rotation.jwks > "$t/n.jwk"; thumb "$t/n.jwk" '{crv, kty, x}')" }
  }
}
JSON
if grep -Eq '": ""' expected.json; then
  echo "generate.sh: a value in expected.json is empty" >&2; exit 1
fi
echo "wrote $(ls -1 | wc -l) files to $(pwd)"

#!/usr/bin/env bash
# Regenerates the public key fixtures of tests/public_key_test.ts and
# tests/keys_test.ts with tools independent of udpjwt: OpenSSL and OpenSSH's
# ssh-keygen (Debian packages openssl, openssh-client). The keys are
# throwaway test keys; their private halves are deleted, except private.pem,
# which exists only to check the "this is a private key" message.
#
# Usage: ./generate.sh   (rewrites every fixture and expected.json here)
#
# expected.json records, per key, what the tools say about it: the RSA modulus
# and exponent or the EC point (from openssl), a signature over message.txt
# (from openssl dgst), and per file the fingerprint that `ssh-keygen -l` prints
# after `ssh-keygen -i` (or openssl for certificates) has converted that very
# file to an OpenSSH line. The tests compare udpjwt against these values.
set -euo pipefail
cd "$(dirname "$0")"
rm -f ./*.pem ./*.ssh expected.json message.txt
t=$(mktemp -d); trap 'rm -rf "$t"' EXIT

hex() { od -An -v -tx1 | tr -d ' \n'; }
rsa() { openssl genpkey -algorithm RSA -pkeyopt "rsa_keygen_bits:$2" -out "$t/$1.key" 2>/dev/null; chmod 600 "$t/$1.key"; }
ec()  { openssl genpkey -algorithm EC -pkeyopt "ec_paramgen_curve:$2" -out "$t/$1.key" 2>/dev/null; chmod 600 "$t/$1.key"; }
ssh_line() { ssh-keygen -y -f "$t/$1.key"; }
# The RFC 4716 form as `ssh-keygen -e` prints it, with a fixed Comment (the
# default names the host) and an extra header continued over two lines; the
# continuation line looks like base64, so a parser that fails to skip it breaks.
rfc4716() {
  ssh-keygen -e -m RFC4716 -f "$1" |
    sed "s/^Comment: .*/Comment: \"$2\"\\nx-udpjwt-note: a header that goes on \\\\\\nandContinuesHere/"
}
# Fingerprint of one fixture file, by ssh-keygen, after converting that file.
fp() {
  local file=$1 mode=$2
  case $mode in
    line) cp "$file" "$t/fp.pub" ;;
    cert) openssl x509 -in "$file" -pubkey -noout > "$t/fp.spki"
          ssh-keygen -i -m PKCS8 -f "$t/fp.spki" > "$t/fp.pub" ;;
    *)    ssh-keygen -i -m "$mode" -f "$file" > "$t/fp.pub" ;;
  esac
  ssh-keygen -l -E sha256 -f "$t/fp.pub" | awk '{print $2}'
}
# An ECDSA DER signature as raw r || s (32 bytes each), the form WebCrypto uses.
ecdsa_raw() {
  openssl asn1parse -inform DER -in "$1" | awk -F: '/INTEGER/ {printf "%064s", $NF}' | tr ' ' 0 | tr 'A-F' 'a-f'
}

printf 'udpjwt public key fixture message\n' > message.txt

# One RSA 2048 key in every accepted format.
rsa rsa2048 2048
openssl pkey -in "$t/rsa2048.key" -pubout -out rsa2048.spki.pem
openssl rsa -in "$t/rsa2048.key" -RSAPublicKey_out -out rsa2048.pkcs1.pem 2>/dev/null
ssh_line rsa2048 | sed 's/$/ alice@lab key with spaces/' > rsa2048.ssh
ssh_line rsa2048 > rsa2048.nocomment.ssh
rfc4716 rsa2048.nocomment.ssh "2048-bit RSA, udpjwt fixture" > rsa2048.rfc4716.ssh
openssl req -x509 -new -sha256 -key "$t/rsa2048.key" -subj "/CN=udpjwt rsa2048 fixture" -days 36500 -out rsa2048.crt.pem 2>/dev/null
openssl dgst -sha256 -sign "$t/rsa2048.key" -out "$t/rsa.sig" message.txt

# One P-256 key in every format that can hold it.
ec p256 P-256
openssl pkey -in "$t/p256.key" -pubout -out p256.spki.pem
ssh_line p256 | sed 's/$/ bob@lab/' > p256.ssh
rfc4716 p256.ssh "256-bit ECDSA, udpjwt fixture" > p256.rfc4716.ssh
openssl req -x509 -new -sha256 -key "$t/p256.key" -subj "/CN=udpjwt p256 fixture" -days 36500 -out p256.crt.pem 2>/dev/null
openssl dgst -sha256 -sign "$t/p256.key" -out "$t/p256.sig" message.txt

# Too short for the default minimum of 2048 bits.
rsa rsa1024 1024
openssl pkey -in "$t/rsa1024.key" -pubout -out rsa1024.spki.pem
ssh_line rsa1024 > rsa1024.ssh

# Valid keys of types udpjwt does not support.
# (ssh-keygen 9.2 cannot read OpenSSL's Ed25519 keys: two different keys.)
openssl genpkey -algorithm ED25519 -out "$t/ed25519.key"
openssl pkey -in "$t/ed25519.key" -pubout -out ed25519.spki.pem
ssh-keygen -q -t ed25519 -N '' -C carol@lab -f "$t/ed25519"
cp "$t/ed25519.pub" ed25519.ssh
ec p384 P-384
openssl pkey -in "$t/p384.key" -pubout -out p384.spki.pem
ssh_line p384 > p384.ssh
ssh-keygen -q -t dsa -N '' -C dave@lab -f "$t/dsa"
cp "$t/dsa.pub" dsa.ssh

# A private key put where a public key belongs.
ec private P-256
cp "$t/private.key" private.pem

n_rsa2048=$(openssl rsa -pubin -in rsa2048.spki.pem -noout -modulus | cut -d= -f2 | tr 'A-F' 'a-f')
n_rsa1024=$(openssl rsa -pubin -in rsa1024.spki.pem -noout -modulus | cut -d= -f2 | tr 'A-F' 'a-f')
e_of() { openssl rsa -pubin -in "$1" -noout -text | sed -n 's/^Exponent: \([0-9]*\).*/\1/p'; }
point_p256=$(openssl pkey -pubin -in p256.spki.pem -outform DER | tail -c 65 | hex)

cat > expected.json <<JSON
{
  "message": "message.txt",
  "keys": {
    "rsa2048": {
      "type": "RSA", "alg": "RS256", "bits": 2048, "description": "RSA 2048",
      "modulusHex": "$n_rsa2048",
      "exponent": $(e_of rsa2048.spki.pem),
      "signatureHex": "$(hex < "$t/rsa.sig")",
      "files": {
        "rsa2048.spki.pem": { "format": "PEM SPKI", "fingerprint": "$(fp rsa2048.spki.pem PKCS8)" },
        "rsa2048.pkcs1.pem": { "format": "PEM PKCS#1", "fingerprint": "$(fp rsa2048.pkcs1.pem PEM)" },
        "rsa2048.ssh": { "format": "OpenSSH", "fingerprint": "$(fp rsa2048.ssh line)" },
        "rsa2048.nocomment.ssh": { "format": "OpenSSH", "fingerprint": "$(fp rsa2048.nocomment.ssh line)" },
        "rsa2048.rfc4716.ssh": { "format": "RFC 4716", "fingerprint": "$(fp rsa2048.rfc4716.ssh RFC4716)" },
        "rsa2048.crt.pem": { "format": "PEM certificate", "fingerprint": "$(fp rsa2048.crt.pem cert)" }
      }
    },
    "p256": {
      "type": "EC", "alg": "ES256", "bits": 256, "curve": "P-256", "description": "EC P-256",
      "pointHex": "$point_p256",
      "signatureHex": "$(ecdsa_raw "$t/p256.sig")",
      "files": {
        "p256.spki.pem": { "format": "PEM SPKI", "fingerprint": "$(fp p256.spki.pem PKCS8)" },
        "p256.ssh": { "format": "OpenSSH", "fingerprint": "$(fp p256.ssh line)" },
        "p256.rfc4716.ssh": { "format": "RFC 4716", "fingerprint": "$(fp p256.rfc4716.ssh RFC4716)" },
        "p256.crt.pem": { "format": "PEM certificate", "fingerprint": "$(fp p256.crt.pem cert)" }
      }
    },
    "rsa1024": {
      "type": "RSA", "alg": "RS256", "bits": 1024, "description": "RSA 1024",
      "modulusHex": "$n_rsa1024",
      "exponent": $(e_of rsa1024.spki.pem),
      "files": {
        "rsa1024.spki.pem": { "format": "PEM SPKI", "fingerprint": "$(fp rsa1024.spki.pem PKCS8)" },
        "rsa1024.ssh": { "format": "OpenSSH", "fingerprint": "$(fp rsa1024.ssh line)" }
      }
    }
  }
}
JSON
# Command substitutions above do not stop the script: check nothing came out empty.
if grep -Eq '"(fingerprint|modulusHex|pointHex|signatureHex)": ""|"exponent": ,' expected.json; then
  echo "generate.sh: a value in expected.json is empty" >&2; exit 1
fi
echo "wrote $(ls -1 | wc -l) files to $(pwd)"

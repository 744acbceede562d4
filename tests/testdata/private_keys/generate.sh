#!/usr/bin/env bash
# Throwaway private keys in the formats `udpjwt send --key` reads or refuses,
# made with OpenSSL and OpenSSH, and expected.json with each usable key's
# algorithm and its public key's fingerprint as ssh-keygen computes it.
# Needs openssl and ssh-keygen. Run from this directory.
set -euo pipefail
cd "$(dirname "$0")"
rm -f ./*.pem ./*.key expected.json

openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out rsa.pkcs8.pem 2>/dev/null
openssl rsa -in rsa.pkcs8.pem -traditional -out rsa.pkcs1.pem 2>/dev/null
# `openssl ecparam -genkey` writes an EC PARAMETERS block before the key.
openssl ecparam -name prime256v1 -genkey -out p256.sec1.pem
openssl pkey -in p256.sec1.pem -out p256.pkcs8.pem
# SEC1 without the optional public key.
openssl ec -in p256.sec1.pem -no_public -out p256.sec1.nopublic.pem 2>/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out p384.pkcs8.pem
openssl genpkey -algorithm ED25519 -out ed25519.pkcs8.pem
openssl pkey -in p256.pkcs8.pem -aes256 -passout pass:secret -out encrypted.pem
cp p256.pkcs8.pem openssh.key && chmod 600 openssh.key
ssh-keygen -q -p -N "" -f openssh.key >/dev/null # rewrites it in the OpenSSH format
openssl pkey -in p256.pkcs8.pem -pubout -out public.pem

fp() { openssl pkey -in "$1" -pubout | ssh-keygen -i -m PKCS8 -f /dev/stdin | ssh-keygen -lf - | cut -d' ' -f2; }
{
  echo "{"
  echo "  \"rsa.pkcs8.pem\": {\"alg\": \"RS256\", \"format\": \"PKCS#8\", \"fingerprint\": \"$(fp rsa.pkcs8.pem)\"},"
  echo "  \"rsa.pkcs1.pem\": {\"alg\": \"RS256\", \"format\": \"PKCS#1\", \"fingerprint\": \"$(fp rsa.pkcs1.pem)\"},"
  echo "  \"p256.pkcs8.pem\": {\"alg\": \"ES256\", \"format\": \"PKCS#8\", \"fingerprint\": \"$(fp p256.pkcs8.pem)\"},"
  echo "  \"p256.sec1.pem\": {\"alg\": \"ES256\", \"format\": \"SEC1\", \"fingerprint\": \"$(fp p256.sec1.pem)\"},"
  echo "  \"p256.sec1.nopublic.pem\": {\"alg\": \"ES256\", \"format\": \"SEC1\", \"fingerprint\": \"$(fp p256.sec1.pem)\"}"
  echo "}"
} > expected.json

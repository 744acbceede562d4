#!/usr/bin/env bash
# Throwaway answer keys for `--answer-key` (tests/keys/answer_key_test.ts,
# tests/net/answer_key_test.ts): the three kinds the server signs answers
# with (PKCS#8 PEM), and files it must refuse at start-up. Needs openssl.
# Run from anywhere; rewrites every key here.
set -euo pipefail
cd "$(dirname "$0")"
rm -f ./*.pem

openssl genpkey -algorithm ED25519 -out ed25519.pem
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out p256.pem
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out rsa2048.pem 2>/dev/null
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:3072 -out rsa3072.pem 2>/dev/null

# Refused: too big, another curve, another type, encrypted, the public half,
# and a key that is not PKCS#8.
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:4096 -out rsa4096.pem 2>/dev/null
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024 -out rsa1024.pem 2>/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out p384.pem
openssl genpkey -algorithm ED448 -out ed448.pem
openssl pkey -in p256.pem -aes256 -passout pass:secret -out encrypted.pem
openssl pkey -in ed25519.pem -pubout -out public.pem
openssl pkey -in rsa2048.pem -traditional -out rsa2048.pkcs1.pem
chmod 600 ./*.pem

#!/usr/bin/env bash
# Regenerates the protocol 2.1 interoperability vectors in this folder with
# tools that are independent of udpjwt: OpenSSL and OpenSSH's ssh-keygen make
# the keys, PyJWT signs the tokens, Python's standard library writes the JWKs
# (Debian packages openssl, openssh-client, python3-jwt, python3-cryptography).
# Usage: ./generate.sh   (rewrites keys_pub/, keys_priv/, private/, vectors.json)
# PYTHON names a python3 that can import jwt and cryptography
# (default: /usr/bin/python3, where Debian installs them).
set -euo pipefail
cd "$(dirname "$0")"
rm -rf keys_pub keys_priv private
mkdir -p keys_pub keys_priv private

rsa() { openssl genpkey -algorithm RSA -pkeyopt "rsa_keygen_bits:$2" -out "private/$1.key" 2>/dev/null; }
ed() { openssl genpkey -algorithm ED25519 -out "private/$1.key"; }

# ssh-ed25519, as a bare `ssh-keygen` makes it: the .pub line as is.
ssh-keygen -q -t ed25519 -N '' -C edssh@lab -f private/edssh.key
mv private/edssh.key.pub keys_pub/edssh.pub
# Ed25519 as PEM SPKI, by openssl.
ed edspki; openssl pkey -in private/edspki.key -pubout -out keys_pub/edspki.pem
# ecdsa-sha2-nistp384 as an OpenSSH line, by ssh-keygen.
ssh-keygen -q -t ecdsa -b 384 -N '' -C p384@lab -f private/p384ssh.key
mv private/p384ssh.key.pub keys_pub/p384ssh.ssh
# ecdsa-sha2-nistp521 in the RFC 4716 form, by ssh-keygen.
ssh-keygen -q -t ecdsa -b 521 -N '' -C p521@lab -f private/p521rfc.key
ssh-keygen -e -m RFC4716 -f private/p521rfc.key.pub > keys_pub/p521rfc.ssh
rm private/p521rfc.key.pub
# RSA keys whose JWK alg picks the algorithm (the JWKs are written below).
rsa pss256 2048; rsa pss384 2048; rsa pss512 3072; rsa rs384 2048; rsa rs512 3072
# A rotation set: two Ed25519 keys with kids, the old one first.
ed rotation-old; ed rotation-new
# Keys of no group: a third Ed25519 key, a P-256 key, an attacker's key and
# a self-signed certificate for it (for x5c).
ed stranger; openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out private/other-p256.key
ed attacker
openssl req -x509 -new -key private/attacker.key -subj /CN=attacker -days 36500 -out private/attacker.crt 2>/dev/null
printf 'secret-key-for-rainbow21\n' > keys_priv/key_secret_for_hmac.txt

"${PYTHON:-/usr/bin/python3}" - <<'PY'
import base64, hashlib, hmac, json
import jwt
from jwt.api_jws import PyJWS
from jwt.algorithms import OKPAlgorithm
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, utils

NOW = 1700000100          # the clock a test must pin ("now", seconds)
IAT, EXP = 1700000000, 1700000180
AUD = "udp.socket.server.for.jwt"
COLOURS = ["RED", "ORANGE", "YELLOW", "GREEN", "BLUE", "INDIGO", "VIOLET"]

def b64u(b): return base64.urlsafe_b64encode(b).rstrip(b"=").decode()
def b64u_int(n): return b64u(n.to_bytes((n.bit_length() + 7) // 8, "big"))
def unb64u(s): return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))

def key(name):
    data = open(f"private/{name}.key", "rb").read()
    if data.startswith(b"-----BEGIN OPENSSH"):
        return serialization.load_ssh_private_key(data, None)
    return serialization.load_pem_private_key(data, None)

def rsa_jwk(name, **extra):
    pub = key(name).public_key().public_numbers()
    return {"kty": "RSA", "n": b64u_int(pub.n), "e": b64u_int(pub.e), **extra}

def ed_x(name):
    return b64u(key(name).public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))

def thumbprint(jwk):
    """RFC 7638: the required members, sorted, compact, SHA-256, base64url."""
    req = {"RSA": ["e", "kty", "n"], "EC": ["crv", "kty", "x", "y"], "OKP": ["crv", "kty", "x"]}[jwk["kty"]]
    text = json.dumps({k: jwk[k] for k in req}, sort_keys=True, separators=(",", ":"))
    return b64u(hashlib.sha256(text.encode()).digest())

def write(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")

# The JWK files of keys_pub/.
JWKS = {
    "pss256.jwk": rsa_jwk("pss256", alg="PS256", kid="pss-2026", key_ops=["verify"]),
    "pss384.jwk": rsa_jwk("pss384", alg="PS384", use="sig"),
    "pss512.jwk": rsa_jwk("pss512", alg="PS512"),
    "rs384.jwk": rsa_jwk("rs384", alg="RS384", use="sig"),
    "rs512.jwk": rsa_jwk("rs512", alg="RS512"),
}
for f, j in JWKS.items(): write(f"keys_pub/{f}", j)
ROT = {"keys": [
    {"kty": "OKP", "crv": "Ed25519", "x": ed_x("rotation-old"), "kid": "2026-old", "alg": "EdDSA", "use": "sig"},
    {"kty": "OKP", "crv": "Ed25519", "x": ed_x("rotation-new"), "kid": "2026-new", "alg": "EdDSA", "use": "sig"},
]}
write("keys_pub/rotation.jwks", ROT)

def pub_jwk(name):
    """The public JWK of a private key (for thumbprints and header jwk)."""
    pub = key(name).public_key()
    if hasattr(pub, "public_numbers"):
        n = pub.public_numbers()
        if hasattr(n, "curve"):
            size = (n.curve.key_size + 7) // 8
            crv = {"secp384r1": "P-384", "secp521r1": "P-521", "secp256r1": "P-256"}[n.curve.name]
            return {"kty": "EC", "crv": crv, "x": b64u(n.x.to_bytes(size, "big")), "y": b64u(n.y.to_bytes(size, "big"))}
        return {"kty": "RSA", "n": b64u_int(n.n), "e": b64u_int(n.e)}
    return {"kty": "OKP", "crv": "Ed25519", "x": ed_x(name)}

# What `udpjwt keys` must show: every file loads; kid is the JWK's kid, else
# the RFC 7638 thumbprint.
GROUPS = {  # group -> (file, private key(s), algorithm)
    "EDSSH": ("edssh.pub", "edssh", "EdDSA"),
    "EDSPKI": ("edspki.pem", "edspki", "EdDSA"),
    "P384SSH": ("p384ssh.ssh", "p384ssh", "ES384"),
    "P521RFC": ("p521rfc.ssh", "p521rfc", "ES512"),
    "PSS256": ("pss256.jwk", "pss256", "PS256"),
    "PSS384": ("pss384.jwk", "pss384", "PS384"),
    "PSS512": ("pss512.jwk", "pss512", "PS512"),
    "RS384": ("rs384.jwk", "rs384", "RS384"),
    "RS512": ("rs512.jwk", "rs512", "RS512"),
    "ROTATION": ("rotation.jwks", "rotation-new", "EdDSA"),
}
KEYS = []
for g, (f, k, alg) in GROUPS.items():
    if g == "ROTATION":
        for j, name in zip(ROT["keys"], ["rotation-old", "rotation-new"]):
            KEYS.append({"file": f, "group": g, "alg": alg, "kid": j["kid"], "kid_source": "kid", "thumbprint": thumbprint(j)})
        continue
    j = JWKS.get(f) or pub_jwk(k)
    KEYS.append({"file": f, "group": g, "alg": alg, "kid": j.get("kid", thumbprint(j)),
                 "kid_source": "kid" if "kid" in j else "thumbprint", "thumbprint": thumbprint(j)})
KID = {k["group"]: k["kid"] for k in KEYS}

# PyJWT knows EdDSA; the header spelling Ed25519 (RFC 9864) and odd spellings
# are the same OKP algorithm registered under other names.
jws = PyJWS()
for name in ["Ed25519", "eddsa", "ED25519"]:
    jws.register_algorithm(name, OKPAlgorithm())

def claims(group, n, **kw):
    c = {"sub": group, "aud": AUD, "iat": IAT, "exp": EXP,
         "jti": hashlib.md5(f"{group}{n}{sorted(kw.items())}".encode()).hexdigest(),
         "seq_state_number": n, "seq_state": COLOURS[n % 7], "seq_max": 2, "registration": 20230000 + n}
    c.update(kw)
    return c

def sign(c, keyname, alg, headers=None):
    payload = json.dumps(c, separators=(",", ":")).encode()
    return jws.encode(payload, key(keyname), algorithm=alg, headers=headers)

def sign_ed25519_raw(header, c, keyname):
    """For headers PyJWT refuses to write (a kid that is not a string)."""
    si = b64u(json.dumps(header, separators=(",", ":")).encode()) + "." + b64u(json.dumps(c, separators=(",", ":")).encode())
    return si + "." + b64u(key(keyname).sign(si.encode()))

def payload_sha(tok):
    return hashlib.sha256(unb64u(tok.split(".")[1])).hexdigest()

def resign(tok, sig):
    return tok.rsplit(".", 1)[0] + "." + b64u(sig)

V = []
def add(name, token, expect, group=None, note=None):
    e = {"name": name, "token": token, "now": NOW, "expect": expect}
    if group: e["group"] = group
    if note: e["note"] = note
    if expect == "ok": e["id_request"] = payload_sha(token)
    V.append(e)

# ok walks, one per algorithm: EdDSA (header EdDSA, and Ed25519), ES384,
# ES512, PS256/384/512, RS384/512, and the rotation set's new key by kid.
WALK = {"EDSSH": "EdDSA", "EDSPKI": "Ed25519", "P384SSH": "ES384", "P521RFC": "ES512",
        "PSS256": "PS256", "PSS384": "PS384", "PSS512": "PS512", "RS384": "RS384", "RS512": "RS512"}
for g, alg in WALK.items():
    for n in range(7):
        add(f"{g.lower()}-seq{n}", sign(claims(g, n), GROUPS[g][1], alg), "ok", g)
for n in range(7):
    add(f"rotation-seq{n}", sign(claims("ROTATION", n), "rotation-new", "EdDSA", {"kid": "2026-new"}), "ok", "ROTATION")

add("edssh-header-ed25519", sign(claims("EDSSH", 0), "edssh", "Ed25519"), "ok", "EDSSH", "Ed25519 is EdDSA under its RFC 9864 name")
add("edspki-header-eddsa", sign(claims("EDSPKI", 0), "edspki", "EdDSA"), "ok", "EDSPKI")
add("rotation-header-ed25519-kid-old", sign(claims("ROTATION", 0), "rotation-old", "Ed25519", {"kid": "2026-old"}), "ok", "ROTATION")

# Choosing the key by kid.
R = "ROTATION"
add("rotation-kid-old", sign(claims(R, 0), "rotation-old", "EdDSA", {"kid": "2026-old"}), "ok", R)
add("rotation-kid-new", sign(claims(R, 1), "rotation-new", "EdDSA", {"kid": "2026-new"}), "ok", R)
add("rotation-no-kid-old-key", sign(claims(R, 0), "rotation-old", "EdDSA"), "ok", R, "no kid: every EdDSA key of the set is tried")
add("rotation-no-kid-new-key", sign(claims(R, 1), "rotation-new", "EdDSA"), "ok", R, "no kid: the first key fails, the second verifies")
add("rotation-kid-old-signed-by-new", sign(claims(R, 0), "rotation-new", "EdDSA", {"kid": "2026-old"}), "BAD_SIGNATURE", R, "a kid names the only key tried")
add("rotation-no-kid-stranger", sign(claims(R, 0), "stranger", "EdDSA"), "BAD_SIGNATURE", R, "no key of the set verifies")
add("rotation-kid-unknown", sign(claims(R, 0), "rotation-new", "EdDSA", {"kid": "2025-retired"}), "UNKNOWN_KEY", R)
add("rotation-kid-wrong-case", sign(claims(R, 0), "rotation-old", "EdDSA", {"kid": "2026-OLD"}), "UNKNOWN_KEY", R, "key ids are compared exactly")
add("rotation-kid-thumbprint", sign(claims(R, 0), "rotation-old", "EdDSA", {"kid": KEYS[-2]["thumbprint"]}), "UNKNOWN_KEY", R,
    "a key with a kid is known by it, not by its thumbprint")
add("rotation-kid-number", sign_ed25519_raw({"alg": "EdDSA", "typ": "JWT", "kid": 2026}, claims(R, 0), "rotation-old"), "UNKNOWN_KEY", R, "a kid that is not a string")
add("rotation-kid-empty", sign(claims(R, 0), "rotation-old", "EdDSA", {"kid": ""}), "UNKNOWN_KEY", R)
add("rotation-kid-unknown-and-es256", sign(claims(R, 0), "other-p256", "ES256", {"kid": "2025-retired"}), "UNKNOWN_KEY", R,
    "UNKNOWN_KEY comes before ALG_NOT_ALLOWED for the group's keys")
add("rotation-kid-old-es256", sign(claims(R, 0), "other-p256", "ES256", {"kid": "2026-old"}), "ALG_NOT_ALLOWED", R, "the kid's key verifies EdDSA")
add("rotation-no-kid-es256", sign(claims(R, 0), "other-p256", "ES256"), "ALG_NOT_ALLOWED", R, "no key of the set verifies ES256")
add("rotation-hs256-kid-unknown", jws.encode(json.dumps(claims(R, 0), separators=(",", ":")).encode(), b"secret-key-for-rainbow21\n", algorithm="HS256", headers={"kid": "2025-retired"}),
    "ALG_NOT_ALLOWED", R, "an algorithm the server never allows is refused before the kid is looked at")
add("edssh-kid-thumbprint", sign(claims("EDSSH", 0), "edssh", "EdDSA", {"kid": KID["EDSSH"]}), "ok", "EDSSH", "a key without kid is known by its RFC 7638 thumbprint")
add("rs512-kid-thumbprint", sign(claims("RS512", 0), "rs512", "RS512", {"kid": KID["RS512"]}), "ok", "RS512")
add("p521rfc-kid-thumbprint", sign(claims("P521RFC", 0), "p521rfc", "ES512", {"kid": KID["P521RFC"]}), "ok", "P521RFC")
add("pss256-kid-own", sign(claims("PSS256", 0), "pss256", "PS256", {"kid": "pss-2026"}), "ok", "PSS256")
add("edssh-kid-unknown", sign(claims("EDSSH", 0), "edssh", "EdDSA", {"kid": "laptop-2024"}), "UNKNOWN_KEY", "EDSSH")
add("edssh-kid-of-another-group", sign(claims("EDSSH", 0), "edssh", "EdDSA", {"kid": KID["EDSPKI"]}), "UNKNOWN_KEY", "EDSSH")
add("unknown-group-with-kid", sign(claims("NOBODY", 0), "rotation-old", "EdDSA", {"kid": "2026-old"}), "UNKNOWN_GROUP", None,
    "UNKNOWN_GROUP comes before UNKNOWN_KEY")

# A token never brings its own key: jwk, jku, x5u and x5c are ignored.
att_jwk = pub_jwk("attacker")
cert = x509.load_pem_x509_certificate(open("private/attacker.crt", "rb").read())
x5c = [base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()]
BRING = {"jwk": att_jwk, "jku": "http://127.0.0.1:9/jwks.json", "x5u": "http://127.0.0.1:9/attacker.crt", "x5c": x5c}
for member, value in BRING.items():
    add(f"header-{member}-ignored", sign(claims("EDSSH", 0), "edssh", "EdDSA", {member: value}), "ok", "EDSSH",
        f"signed by the group's key; the header's {member} plays no part")
    add(f"header-{member}-attacker", sign(claims("EDSSH", 0), "attacker", "EdDSA", {member: value}), "BAD_SIGNATURE", "EDSSH",
        f"signed by the key the header's {member} names, not the group's")
add("header-jwk-and-kid-attacker", sign(claims("ROTATION", 0), "attacker", "EdDSA", {"kid": "2026-new", "jwk": {**att_jwk, "kid": "2026-new"}}),
    "BAD_SIGNATURE", R)

# alg mismatches: the key decides the algorithm.
MISMATCH = [
    ("EDSSH", "p384ssh", "ES384"), ("EDSSH", "pss256", "RS256"), ("EDSPKI", "other-p256", "ES256"),
    ("P384SSH", "other-p256", "ES256"), ("P384SSH", "p521rfc", "ES512"), ("P384SSH", "edssh", "EdDSA"),
    ("P521RFC", "p384ssh", "ES384"), ("P521RFC", "other-p256", "ES256K"),
    ("PSS256", "pss256", "RS256"), ("PSS256", "pss256", "PS384"), ("PSS384", "pss384", "PS256"), ("PSS512", "pss512", "PS384"),
    ("RS384", "rs384", "RS256"), ("RS384", "rs384", "PS384"), ("RS512", "rs512", "RS256"), ("RS512", "rs512", "PS512"),
    ("EDSSH", "edssh", "eddsa"), ("EDSSH", "edssh", "ED25519"),
]
for g, k, alg in MISMATCH:
    add(f"{g.lower()}-{alg}", sign(claims(g, 0), k, alg), "ALG_NOT_ALLOWED", g)
jwk_text = open("keys_pub/rs512.jwk", "rb").read()
add("rs512-hs256-keyed-with-jwk-file", jws.encode(json.dumps(claims("RS512", 0), separators=(",", ":")).encode(), jwk_text, algorithm="HS256"),
    "ALG_NOT_ALLOWED", "RS512", "the key-confusion attack with the JWK file's bytes")
body = b64u(b'{"alg":"none","kid":"2026-new"}') + "." + b64u(json.dumps(claims(R, 0)).encode())
add("rotation-alg-none-with-kid", body + ".", "ALG_NOT_ALLOWED", R)

# Bad signatures.
t = sign(claims("EDSSH", 0), "edssh", "EdDSA")
sig = unb64u(t.split(".")[2])
add("edssh-wrong-key", sign(claims("EDSSH", 0), "edspki", "EdDSA"), "BAD_SIGNATURE", "EDSSH")
add("edssh-signature-63-bytes", resign(t, sig[:63]), "BAD_SIGNATURE", "EDSSH")
add("edssh-signature-flipped", resign(t, sig[:10] + bytes([sig[10] ^ 1]) + sig[11:]), "BAD_SIGNATURE", "EDSSH")
L = 2**252 + 27742317777372353535851937790883648493
s = int.from_bytes(sig[32:], "little")
add("edssh-signature-s-plus-l", resign(t, sig[:32] + (s + L).to_bytes(32, "little")), "BAD_SIGNATURE", "EDSSH",
    "S >= L: RFC 8032 5.1.7 rejects this non-canonical signature")
t = sign(claims("P384SSH", 0), "p384ssh", "ES384")
parts = t.split(".")
add("p384ssh-tampered-payload", parts[0] + "." + b64u(json.dumps(claims("P384SSH", 5), separators=(",", ":")).encode()) + "." + parts[2],
    "BAD_SIGNATURE", "P384SSH")
t = sign(claims("P521RFC", 0), "p521rfc", "ES512")
raw = unb64u(t.split(".")[2])
r, s = int.from_bytes(raw[:66], "big"), int.from_bytes(raw[66:], "big")
add("p521rfc-der-signature", resign(t, utils.encode_dss_signature(r, s)), "BAD_SIGNATURE", "P521RFC", "DER instead of JWS's raw r || s")
add("p521rfc-signature-131-bytes", resign(t, raw[:131]), "BAD_SIGNATURE", "P521RFC")
add("p521rfc-signed-as-es256", resign(t, key("p521rfc").sign(t.rsplit(".", 1)[0].encode(), ec.ECDSA(hashes.SHA256()))), "BAD_SIGNATURE", "P521RFC",
    "a DER ES256-style signature under an ES512 header")
si = sign(claims("PSS256", 0), "pss256", "PS256").rsplit(".", 1)[0].encode()
for salt, label in [(padding.PSS.MAX_LENGTH, "max"), (0, "0")]:
    p = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=salt)
    add(f"pss256-salt-{label}", si.decode() + "." + b64u(key("pss256").sign(si, p, hashes.SHA256())), "BAD_SIGNATURE", "PSS256",
        "JWS prescribes a salt as long as the hash (32 bytes for PS256)")
add("pss256-pkcs1-signature", si.decode() + "." + b64u(key("pss256").sign(si, padding.PKCS1v15(), hashes.SHA256())), "BAD_SIGNATURE", "PSS256",
    "an RS256 signature under a PS256 header")
add("rs384-signed-with-sha512", (lambda s_: s_.decode() + "." + b64u(key("rs384").sign(s_, padding.PKCS1v15(), hashes.SHA512())))(
    sign(claims("RS384", 0), "rs384", "RS384").rsplit(".", 1)[0].encode()), "BAD_SIGNATURE", "RS384")
add("pss512-wrong-key", sign(claims("PSS512", 0), "pss384", "PS512"), "BAD_SIGNATURE", "PSS512")

write("vectors.json", {"now": NOW, "leeway_seconds": 30, "secret_file": "keys_priv/key_secret_for_hmac.txt",
           "note": "expect is 'ok' or the docs/protocol.md error code; id_request is given for ok vectors",
           "keys": KEYS, "vectors": V})
print(len(V), "vectors,", len(KEYS), "keys")
PY

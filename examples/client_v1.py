#!/usr/bin/env python3
"""A profile v1 client for the udpjwt lab in Python, with PyJWT.

Speaks the June 2023 lab's protocol to a server started with
`--profile v1`: it walks one group through the events 0..M, one signed
request per event with the claims group, seq_number, seq_max and matricula,
and exits 0 when every event was acknowledged, 1 otherwise, 2 on a usage
error. See docs/protocol.md, "Profile v1".

    python3 examples/client_v1.py 127.0.0.1 44555 old2023 old2023.key \\
        --secret keys_priv/key_secret_for_hmac.txt \\
        --registration 20230001 --registration 20230002

Like the 2023 clients it sends only those four claims, so the same event
always makes the same RS256 token; --exp adds aud, iat, exp and jti, and
the server then answers a resent token from its cache. The HMAC secret of a
v1 lab has no trailing newline: the file's bytes are used as they are.

Needs PyJWT with its crypto extra: Debian's python3-jwt and
python3-cryptography, or pip install "pyjwt[crypto]".
"""

import argparse
import base64
import hashlib
import random
import secrets
import socket
import sys
import time

import jwt  # PyJWT
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key

AUDIENCE = "udp.socket.server.for.jwt"
LIFETIME = 60  # seconds between iat and exp, with --exp
FIRST_WAIT = 0.5  # seconds; doubled on each retry, up to MAX_WAIT
MAX_WAIT = 4.0
RETRIES = 10  # retransmissions of one event before giving up


class WalkError(Exception):
    """A failed walk: printed as one line, then exit code 1."""


def load_key(path):
    """The private key and the algorithm its type fixes: RS256 or ES256."""
    with open(path, "rb") as f:
        key = load_pem_private_key(f.read(), password=None)
    if isinstance(key, rsa.RSAPrivateKey):
        return key, "RS256"
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1":
        return key, "ES256"
    raise WalkError(f"{path}: not an RSA or EC P-256 key")


def matricula(args, n):
    """Member n's registration (the first for event 0), or the only one."""
    regs = args.registration or [0]
    return regs[0] if len(regs) == 1 else regs[max(n, 1) - 1]


def request(args, n, key, alg):
    """A signed request for event n and its id_request."""
    claims = {
        "group": args.group,
        "seq_number": n,
        "seq_max": args.seq_max,
        "matricula": matricula(args, n),
    }
    if args.exp:
        now = int(time.time())
        claims.update(aud=AUDIENCE, iat=now, exp=now + LIFETIME,
                      jti=secrets.token_hex(16))
    token = jwt.encode(claims, key, algorithm=alg, headers={"typ": "JWT"})
    # id_request is the SHA-256 of the payload bytes exactly as signed.
    middle = token.split(".")[1]
    signed = base64.urlsafe_b64decode(middle + "=" * (-len(middle) % 4))
    return token.encode("ascii"), hashlib.sha256(signed).hexdigest()


def read_answer(datagram, secret):
    """The verified (or, without a secret, decoded) claims of an answer."""
    if secret is None:
        return jwt.decode(datagram, options={"verify_signature": False})
    try:
        # A v1 answer has no exp; an error answer has one, checked here.
        return jwt.decode(datagram, secret, algorithms=["HS256"], leeway=30)
    except jwt.InvalidTokenError as e:
        raise WalkError(f"an answer does not verify with the secret ({e}): "
                        "is it the lab's file, byte for byte, without a "
                        "trailing newline?")


def exchange(sock, server, args, n, key, alg, secret):
    """Sends event n until an answer to it arrives, the same datagram again
    after each timeout. Returns the answer's claims and the retries."""
    datagram, id_request = request(args, n, key, alg)
    for attempt in range(RETRIES + 1):
        wait = min(FIRST_WAIT * 2 ** attempt, MAX_WAIT) * random.uniform(0.75, 1.25)
        sock.sendto(datagram, server)
        deadline = time.monotonic() + wait
        while (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            try:
                answer, source = sock.recvfrom(2048)
            except (socket.timeout, ConnectionError):
                break  # lost (or nothing listens yet): send again
            if source[:2] != server[:2]:
                continue  # not from the server
            claims = read_answer(answer, secret)
            # A late answer to an earlier event is not ours: keep waiting.
            if claims.get("id_request") == id_request:
                return claims, attempt
    raise WalkError(f"event {n}: no answer after {RETRIES} retries (a v1 "
                    "server sends nothing for an event out of order)")


def walk(args):
    key, alg = load_key(args.key)
    secret = None
    if args.secret:
        with open(args.secret, "rb") as f:
            secret = f.read()  # raw bytes, exactly as stored
    else:
        print("no --secret: answers are decoded, not verified")
    family, kind, proto, _, server = socket.getaddrinfo(
        args.host, args.port, type=socket.SOCK_DGRAM)[0]
    last = args.seq_max
    with socket.socket(family, kind, proto) as sock:
        for n in range(last + 1):
            answer, retries = exchange(sock, server, args, n, key, alg, secret)
            if "error" in answer:
                raise WalkError(f"event {n}: {answer['error']}: {answer.get('response')}")
            expected = 0 if n == last else n + 1
            print(f"{n} matricula {matricula(args, n)} -> next_number "
                  f"{answer.get('next_number')} otp {answer.get('otp_number')} "
                  f"(retries {retries})", flush=True)
            if answer.get("next_number") != expected:
                raise WalkError(f"event {n}: expected next_number {expected}, "
                                f"got {answer.get('next_number')}")
    print(f"walk complete: {args.group} acknowledged events 0-{last}")


def main():
    parser = argparse.ArgumentParser(
        description="Walk a group of a --profile v1 udpjwt server once.")
    parser.add_argument("host", help="the server's address")
    parser.add_argument("port", type=int, help="the server's UDP port")
    parser.add_argument("group", help="your group name (sent as group)")
    parser.add_argument("key", help="your group's private key (PEM)")
    parser.add_argument("--secret", help="the lab's HMAC secret file, to verify answers")
    parser.add_argument("--registration", type=int, action="append",
                        help="a member's registration number, sent as matricula; "
                             "once for all events, or once per member in order")
    parser.add_argument("--seq-max", type=int,
                        help="your group's member count M (default: the "
                             "number of --registration flags)")
    parser.add_argument("--exp", action="store_true",
                        help="also send aud, iat, exp and jti")
    args = parser.parse_args()  # exits 2 on a usage error
    count = len(args.registration or [0])
    if args.seq_max is None:
        args.seq_max = count
    if args.seq_max < 1 or count not in (1, args.seq_max):
        parser.error("give one --registration, or exactly --seq-max of them")
    try:
        walk(args)
    except (WalkError, OSError, ValueError) as e:
        print(f"walk failed: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

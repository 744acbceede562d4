#!/usr/bin/env python3
"""A student client for the udpjwt lab in Python, with PyJWT.

It walks one group through the seven states once and exits 0 when every
event was acknowledged, 1 otherwise, 2 on a usage error. See
docs/students.md.

    python3 examples/client.py 127.0.0.1 44555 heartbeat \\
        examples/heartbeat_demo.key --secret keys_priv/key_secret_for_hmac.txt

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
COLOURS = ["RED", "ORANGE", "YELLOW", "GREEN", "BLUE", "INDIGO", "VIOLET"]
FINAL = len(COLOURS) - 1  # the last state: its answer is next_number 0
LIFETIME = 60  # seconds between iat and exp of each request
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


def request(args, n, key, alg):
    """A signed request for event n, its id_request, and its exp."""
    now = int(time.time())
    claims = {
        "sub": args.group,
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + LIFETIME,
        "jti": secrets.token_hex(16),  # 32 random hex digits, new every token
        "seq_state_number": n,
        "seq_state": COLOURS[n],
        "seq_max": args.seq_max,
        "registration": args.registration,
    }
    token = jwt.encode(claims, key, algorithm=alg, headers={"typ": "JWT"})
    # id_request is the SHA-256 of the payload bytes exactly as signed.
    middle = token.split(".")[1]
    signed = base64.urlsafe_b64decode(middle + "=" * (-len(middle) % 4))
    return token.encode("ascii"), hashlib.sha256(signed).hexdigest(), claims["exp"]


def read_answer(datagram, secret):
    """The verified (or, without a secret, decoded) claims of an answer."""
    if secret is None:
        return jwt.decode(datagram, options={"verify_signature": False})
    try:
        return jwt.decode(datagram, secret, algorithms=["HS256"],
                          issuer=AUDIENCE, leeway=30)
    except jwt.InvalidTokenError as e:
        raise WalkError(f"an answer does not verify with the secret ({e}): "
                        "is it the lab's file, byte for byte?")


def exchange(sock, server, args, n, key, alg, secret):
    """Sends event n until an answer to it arrives: the same datagram again
    after each timeout, a new token only when the old one would expire in
    flight. Returns the answer's claims and the number of retries."""
    datagram, id_request, exp = request(args, n, key, alg)
    mine = {id_request}  # every token signed for this event
    for attempt in range(RETRIES + 1):
        wait = min(FIRST_WAIT * 2 ** attempt, MAX_WAIT) * random.uniform(0.75, 1.25)
        if time.time() + wait > exp - 5:
            datagram, id_request, exp = request(args, n, key, alg)  # new jti
            mine.add(id_request)
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
            if claims.get("id_request") in mine:
                return claims, attempt
    raise WalkError(f"event {n}: no answer after {RETRIES} retries")


def walk(args):
    key, alg = load_key(args.key)
    secret = None
    if args.secret:
        with open(args.secret, "rb") as f:
            secret = f.read()  # raw bytes, a trailing newline included
    else:
        print("no --secret: answers are decoded, not verified")
    family, kind, proto, _, server = socket.getaddrinfo(
        args.host, args.port, type=socket.SOCK_DGRAM)[0]
    with socket.socket(family, kind, proto) as sock:
        for n in range(FINAL + 1):
            answer, retries = exchange(sock, server, args, n, key, alg, secret)
            if "error" in answer:
                raise WalkError(f"event {n}: {answer['error']}: {answer.get('response')}")
            expected = 0 if n == FINAL else n + 1
            print(f"{n} {COLOURS[n]} -> next_number {answer.get('next_number')} "
                  f"(retries {retries})", flush=True)
            if answer.get("next_number") != expected:
                raise WalkError(f"event {n}: expected next_number {expected}, "
                                f"the server waits for {answer.get('next_number')}")
    print(f"walk complete: {args.group} acknowledged events 0-{FINAL}, "
          f"final state {FINAL} {COLOURS[FINAL]}")


def main():
    parser = argparse.ArgumentParser(
        description="Walk a group through the udpjwt states once.")
    parser.add_argument("host", help="the server's address")
    parser.add_argument("port", type=int, help="the server's UDP port")
    parser.add_argument("group", help="your group name (sent as sub)")
    parser.add_argument("key", help="your group's private key (PEM)")
    parser.add_argument("--secret", help="the lab's HMAC secret file, to verify answers")
    parser.add_argument("--registration", type=int, default=0,
                        help="your registration number (default 0)")
    parser.add_argument("--seq-max", type=int, default=1,
                        help="your group's member count (default 1)")
    args = parser.parse_args()  # exits 2 on a usage error
    try:
        walk(args)
    except (WalkError, OSError, ValueError) as e:
        # An error answer, no answer, a wrong next_number, an answer that
        # does not verify, an unreadable file: one line and exit code 1.
        print(f"walk failed: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

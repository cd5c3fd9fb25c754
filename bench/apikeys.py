#!/usr/bin/env python3
"""Helper of bench/gate.sh for the uncached verify_api_key workload (passlib side).

  apikeys.py gen N OUT.tsv [EXCLUDE.txt]
      N random Odoo-style keys (40 lowercase hex) with distinct 8-character indexes, none of
      them in EXCLUDE.txt (one index per line), hashed exactly as Odoo 19 does
      (CryptContext(['pbkdf2_sha512'], pbkdf2_sha512__rounds=6000)). Writes key, index, hash
      as tab-separated lines.

  apikeys.py time IN.tsv REPS
      Verifies every key against its hash with passlib's ctx.verify, REPS passes over all the
      keys; prints the median pass's cost per key in microseconds. Fails if a key does not verify.
"""
from __future__ import annotations

import secrets
import statistics
import sys
import time

from passlib.context import CryptContext

# Odoo 19, odoo/addons/base/models/res_users.py: KEY_CRYPT_CONTEXT
CTX = CryptContext(["pbkdf2_sha512"], pbkdf2_sha512__rounds=6000)
INDEX_SIZE = 8


def gen(n: int, out: str, exclude: str | None) -> None:
    taken = set()
    if exclude:
        with open(exclude) as f:
            taken = {line.strip() for line in f if line.strip()}
    rows = []
    while len(rows) < n:
        key = secrets.token_hex(20)
        if key[:INDEX_SIZE] in taken:
            continue
        taken.add(key[:INDEX_SIZE])
        rows.append((key, key[:INDEX_SIZE], CTX.hash(key)))
    with open(out, "w") as f:
        for row in rows:
            f.write("\t".join(row) + "\n")


def time_verify(path: str, reps: int) -> None:
    with open(path) as f:
        rows = [line.rstrip("\n").split("\t") for line in f if line.strip()]
    if not rows:
        sys.exit(f"apikeys.py: no keys in {path}")
    # One untimed verification so that imports and backend selection are out of the way.
    CTX.verify(rows[0][0], rows[0][2])
    passes = []
    for _ in range(reps):
        t0 = time.perf_counter()
        ok = sum(1 for key, _idx, h in rows if CTX.verify(key, h))
        passes.append(time.perf_counter() - t0)
        if ok != len(rows):
            sys.exit(f"apikeys.py: passlib verified {ok} of {len(rows)} keys")
    print(f"{statistics.median(passes) / len(rows) * 1e6:.1f}")


def main(argv: list[str]) -> None:
    if len(argv) >= 3 and argv[0] == "gen":
        gen(int(argv[1]), argv[2], argv[3] if len(argv) > 3 else None)
    elif len(argv) == 3 and argv[0] == "time":
        time_verify(argv[1], int(argv[2]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])

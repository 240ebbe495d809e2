"""People: what a password check costs (argon2id with Setpoint's parameters, beside the scrypt hashes of
earlier versions, measured side by side), and what the role check adds to an authenticated request (a key
cache hit with the role computed at load time: no database work).

    python benchmarks/people.py [--rounds 20] [--record]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from _report import add_record_option, cpu_model, load_average, record_section

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(1, str(REPO_ROOT))  # `python benchmarks/people.py` from a checkout without an install


def _ms(samples: list[float]) -> str:
    return f"{statistics.median(samples) * 1000:.1f} ms (p90 {sorted(samples)[int(len(samples) * 0.9) - 1] * 1000:.1f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=20)
    add_record_option(parser)
    args = parser.parse_args()
    from setpoint._server.auth import Principal, require_role
    from setpoint._server.security import hash_password, scrypt_hash, verify_password
    from setpoint._server.services.people.roles import EDITOR

    load_before = load_average()
    argon2_hash, old_hash = hash_password("benchmark password"), scrypt_hash("benchmark password")
    argon2_s: list[float] = []
    scrypt_s: list[float] = []
    for _ in range(args.rounds):  # interleaved, so both see the same load
        start = time.perf_counter()
        verify_password("benchmark password", argon2_hash)
        argon2_s.append(time.perf_counter() - start)
        start = time.perf_counter()
        verify_password("benchmark password", old_hash)
        scrypt_s.append(time.perf_counter() - start)
    principal = Principal(1, "k", 1, "p", frozenset({"read", "write"}), "h", 2, "Alice", "admin")
    n = 200_000
    start = time.perf_counter()
    for _ in range(n):
        require_role(principal, EDITOR)
    role_check_ns = (time.perf_counter() - start) / n * 1e9
    ratio = statistics.median(argon2_s) / statistics.median(scrypt_s)
    body = f"""Machine: {cpu_model()}, load average {load_before:.1f} -> {load_average():.1f} (shared with other work).

| what | median |
|---|---|
| password check, argon2id (19 MiB, t=2, p=1) | {_ms(argon2_s)} |
| password check, scrypt of earlier versions (16 MiB, n=2^14, r=8) | {_ms(scrypt_s)} |
| argon2id / scrypt, side by side | {ratio:.2f}x |
| role check on a request (`require_role`, key cache hit) | {role_check_ns:.0f} ns |

A login costs one password check (a failed one too: an unknown login is checked against a dummy hash).
The role of a key is computed when the key is loaded into the cache, so an authenticated request adds only the
in-memory comparison above."""
    print(body)
    if args.record:
        record_section(Path(args.record), "## People (benchmarks/people.py)", body)


if __name__ == "__main__":
    main()

"""Per-trial seeds: a pure function of (base seed, example id, trial), so retries differ and reruns repeat."""

import hashlib


def trial_seed(base_seed: int, example_id: str, trial: int) -> int:
    """A 31-bit seed that every engine accepts."""
    digest = hashlib.blake2b(f"{base_seed}\x1f{example_id}\x1f{trial}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % (2**31 - 1)

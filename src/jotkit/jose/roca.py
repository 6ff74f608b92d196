"""The ROCA fingerprint (CVE-2017-15361): RSA moduli made by Infineon's RSALib.

RSALib built each prime as ``p = k·M + (65537^a mod M)``, with ``M`` the product of the first
39, 71, 126 or 225 primes by key size (Nemec et al., "The Return of Coppersmith's Attack",
CCS 2017, Table 1). Such primes are so few that the private key can be computed from the
public modulus. The structure shows in the modulus: for every prime ``r`` dividing ``M``,
``n mod r`` lies in the subgroup of ``(Z/rZ)*`` that 65537 generates, because ``p`` and ``q``
both do (the paper's discrete-logarithm fingerprint). An element lies in that subgroup when
raising it to the subgroup's order gives 1.

The published detector tests the 38 odd primes up to 167, which divide ``M`` at every size;
a modulus made any other way passes it with a probability of about 2^-28. Testing every odd
prime of the ``M`` for the modulus's size keeps every RSALib key and lowers that to 2^-167
for the 2048 to 3936-bit keys jotkit accepts (2^-281 from 3968 bits).
"""

from __future__ import annotations

import functools

__all__ = ["has_roca_fingerprint"]

_GENERATOR = 65537
# (smallest modulus size in bits, how many primes M multiplies), largest size first.
_PRIME_COUNTS = ((3968, 225), (1984, 126), (992, 71), (0, 39))
_SIEVE_LIMIT = 1428  # the 225th prime is 1427


@functools.cache
def _subgroup_orders(count: int) -> tuple[tuple[int, int], ...]:
    """(r, order of 65537 mod r) for the odd primes among the first ``count`` primes.
    Computed on first use (~1 ms), so that importing jotkit costs nothing for it."""
    sieve = bytearray([1]) * _SIEVE_LIMIT
    for number in range(2, _SIEVE_LIMIT):
        if sieve[number]:
            sieve[number * number :: number] = bytes(
                len(range(number * number, _SIEVE_LIMIT, number))
            )
    primes = [number for number in range(2, _SIEVE_LIMIT) if sieve[number]][:count]
    orders = []
    for prime in primes[1:]:
        # The order of 65537 divides r - 1 (Lagrange): the smallest divisor that gives 1.
        order = next(
            d for d in range(1, prime) if (prime - 1) % d == 0 and pow(_GENERATOR, d, prime) == 1
        )
        orders.append((prime, order))
    return tuple(orders)


def has_roca_fingerprint(modulus: int) -> bool:
    """Whether an RSA ``modulus`` has the ROCA fingerprint. A modulus without it is told
    apart after a few remainders; one with it costs ~125 of them (~60 µs at 2048 bits)."""
    bits = modulus.bit_length()
    count = next(count for smallest, count in _PRIME_COUNTS if bits >= smallest)
    return all(pow(modulus % prime, order, prime) == 1 for prime, order in _subgroup_orders(count))

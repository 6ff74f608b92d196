"""RSA moduli and keys with the ROCA fingerprint, built the way Infineon's RSALib built them.

Each prime is ``p = k·M + (65537^a mod M)`` with ``M`` the product of the first 39, 71, 126
or 225 primes by key size (Nemec et al., CCS 2017, Table 1), ``a`` and ``k`` drawn from a
seeded generator, so the same keys come out on every run. The keys are real: ``cryptography``
checks them (the primality of p and q included) when they load.
"""

from __future__ import annotations

import math
import random

from cryptography.hazmat.primitives.asymmetric import rsa

E = 65537
# (smallest key size in bits, how many primes M multiplies): RSALib's table.
PRIME_COUNTS = ((3968, 225), (1984, 126), (992, 71), (0, 39))


def first_primes(count: int) -> list[int]:
    primes: list[int] = []
    candidate = 2
    while len(primes) < count:
        if all(candidate % prime for prime in primes):
            primes.append(candidate)
        candidate += 1
    return primes


def primorial_for(key_bits: int, prime_count: int | None = None) -> int:
    """RSALib's M for a key of ``key_bits`` (or the product of ``prime_count`` primes)."""
    if prime_count is None:
        prime_count = next(count for smallest, count in PRIME_COUNTS if key_bits >= smallest)
    return math.prod(first_primes(prime_count))


def roca_number(rng: random.Random, bits: int, m: int) -> int:
    """A ``bits``-bit number k·M + (65537^a mod M): RSALib's candidate prime."""
    while True:
        k = rng.randrange((1 << (bits - 1)) // m + 1, (1 << bits) // m)
        number = k * m + pow(E, rng.randrange(1, 1 << 64), m)
        if number.bit_length() == bits:
            return number


def _is_probable_prime(n: int) -> bool:
    """Two Miller-Rabin rounds: enough to pick candidates, since OpenSSL tests each prime
    again (fully) when the key loads."""
    d, s = n - 1, 0
    while d % 2 == 0:
        d, s = d // 2, s + 1
    for base in (2, 3):
        x = pow(base, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = x * x % n
            if x == n - 1:
                break
        else:
            return False
    return True


def roca_modulus(bits: int, seed: int, prime_count: int | None = None) -> int:
    """A product of two RSALib-form numbers (not checked for primality: the fingerprint is
    a property of the form), for testing the detector at sizes jotkit does not import."""
    rng, m = random.Random(seed), primorial_for(bits, prime_count)
    while True:
        n = roca_number(rng, bits // 2, m) * roca_number(rng, bits // 2, m)
        if n.bit_length() == bits:
            return n


def roca_private_key(bits: int = 2048, seed: int = 2017) -> rsa.RSAPrivateKey:
    """A real ``bits``-bit RSA key whose primes both have RSALib's form (~1 s for 2048)."""
    rng, m = random.Random(seed), primorial_for(bits)
    primes: list[int] = []
    while len(primes) < 2 or (primes[0] * primes[1]).bit_length() != bits:
        if len(primes) == 2:
            primes.pop()
        p = roca_number(rng, bits // 2, m)
        if p % E != 1 and p not in primes and _is_probable_prime(p):
            primes.append(p)
    p, q = primes
    d = pow(E, -1, math.lcm(p - 1, q - 1))
    numbers = rsa.RSAPrivateNumbers(
        p,
        q,
        d,
        rsa.rsa_crt_dmp1(d, p),
        rsa.rsa_crt_dmq1(d, q),
        rsa.rsa_crt_iqmp(p, q),
        rsa.RSAPublicNumbers(E, p * q),
    )
    return numbers.private_key()

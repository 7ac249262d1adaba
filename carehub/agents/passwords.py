"""Agents' console passwords: argon2id (argon2-cffi's defaults, RFC 9106's second recommended profile), hashed
and checked off the event loop, since each costs tens of milliseconds of CPU by design."""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_HASHER = PasswordHasher()
MIN_LENGTH = 12

# Checked when an address is unknown too, so a wrong address takes as long as a wrong password.
_DUMMY_HASH = _HASHER.hash("carehub: no such agent")


class WeakPassword(ValueError):
    pass


def check_strength(password: str) -> None:
    if len(password) < MIN_LENGTH:
        raise WeakPassword(f"a password needs at least {MIN_LENGTH} characters (a few words make a good one)")


async def hash_password(password: str) -> str:
    check_strength(password)
    return await asyncio.to_thread(_HASHER.hash, password)


async def verify(password_hash: str | None, password: str) -> bool:
    def check() -> bool:
        try:
            return _HASHER.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
        except (VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(check)

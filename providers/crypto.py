"""Encryption at rest for provider API keys: MultiFernet over settings.AURAX_ENCRYPTION_KEYS.

The first key encrypts; every key decrypts, so a new key is added in front, then
`manage.py rotate_encryption_keys` re-encrypts everything, then the old key can be dropped.
"""

from __future__ import annotations

from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings


class SecretUnreadable(Exception):
    """The stored secret was encrypted with a key no longer configured."""


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise RuntimeError("AURAX_ENCRYPTION_KEYS is empty")
    return MultiFernet([Fernet(key.encode()) for key in keys])


def _current() -> MultiFernet:
    return _fernet(tuple(settings.AURAX_ENCRYPTION_KEYS))


def secret_encrypt(plaintext: str) -> str:
    return _current().encrypt(plaintext.encode()).decode() if plaintext else ""


def secret_decrypt(token: str) -> str:
    if not token:
        return ""
    try:
        return _current().decrypt(token.encode()).decode()
    except InvalidToken:
        raise SecretUnreadable(
            "stored secret cannot be decrypted with the configured keys"
        ) from None


def secret_rotate(token: str) -> str:
    """The same secret re-encrypted under the first configured key."""
    if not token:
        return ""
    try:
        return _current().rotate(token.encode()).decode()
    except InvalidToken:
        raise SecretUnreadable(
            "stored secret cannot be decrypted with the configured keys"
        ) from None

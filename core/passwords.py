"""Password hashing and the password policy, shared by the API and the CLI.

Argon2id through pwdlib's recommended parameters: slow on purpose, so a stolen
database does not give the passwords away.
"""

from __future__ import annotations

from functools import cache

from pwdlib import PasswordHash

MIN_PASSWORD_LENGTH = 10

_hasher = PasswordHash.recommended()


class WeakPasswordError(ValueError):
    """The password does not meet the policy; the message says what to change."""


def check_password_strength(password: str) -> None:
    """Raise WeakPasswordError unless ``password`` meets the policy."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise WeakPasswordError(
            f"password is too short: use at least {MIN_PASSWORD_LENGTH} characters "
            "(a few unrelated words are easy to remember)"
        )
    if password.strip() != password:
        raise WeakPasswordError("password must not start or end with whitespace")
    if len(set(password)) < 4:
        raise WeakPasswordError("password repeats too few characters: use at least 4 different")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password: str, password_hash: str) -> bool:
    return _hasher.verify(password, password_hash)


# Verifying against this when the user does not exist keeps the time of a failed
# login the same, so response times do not reveal which usernames exist.
@cache
def _dummy_hash() -> str:
    return _hasher.hash("not-a-real-password-used-for-timing")


def burn_verify_time(password: str) -> None:
    _hasher.verify(password, _dummy_hash())

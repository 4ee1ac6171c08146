"""Secrets: sealed at rest under a master key, named in handler configs as
``{{ secrets.NAME }}``, opened only when an attempt renders, masked in what it hands back."""

from neoactions.server.secrets.crypto import Keyring, MasterKeyError, key_id
from neoactions.server.secrets.masking import LOG_VALUES, MASK, NO_MASK, Masker
from neoactions.server.secrets.references import (
    attempt_secret_names,
    check_sensitive,
    is_reference_only,
    referenced_secrets,
    secret_names,
)
from neoactions.server.secrets.service import MAX_VALUE_BYTES, Secrets, SecretUnavailable, check_name

__all__ = [
    "LOG_VALUES",
    "MASK",
    "MAX_VALUE_BYTES",
    "NO_MASK",
    "Keyring",
    "Masker",
    "MasterKeyError",
    "SecretUnavailable",
    "Secrets",
    "attempt_secret_names",
    "check_name",
    "check_sensitive",
    "is_reference_only",
    "key_id",
    "referenced_secrets",
    "secret_names",
]

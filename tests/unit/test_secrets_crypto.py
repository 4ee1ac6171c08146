"""Sealing secrets: AES-GCM under the master key, with the key's id in every sealed value."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest

from neoactions.server.secrets.crypto import (
    Keyring,
    MasterKeyError,
    decode_key,
    encode_key,
    key_id,
    new_key,
    previous_keys,
    sealed_key_id,
    write_key_file,
)
from neoactions.server.secrets.keys import load_keys
from neoactions.server.settings import Settings

OLD, NEW = new_key(), new_key()


def test_a_sealed_value_opens_and_does_not_hold_the_value() -> None:
    ring = Keyring(OLD)
    sealed = ring.seal("shop", "api_token", "tok_live_abcdef")
    assert b"tok_live_abcdef" not in sealed
    assert sealed_key_id(sealed) == key_id(OLD) == ring.current_id
    assert len(ring.current_id) == 8 and int(ring.current_id, 16) >= 0
    assert ring.open("shop", "api_token", sealed) == "tok_live_abcdef"
    # a fresh nonce each time: the same value seals differently
    assert ring.seal("shop", "api_token", "tok_live_abcdef") != sealed


def test_a_sealed_value_is_bound_to_its_tenant_and_name_and_to_its_bytes() -> None:
    ring = Keyring(OLD)
    sealed = ring.seal("shop", "api_token", "v")
    with pytest.raises(MasterKeyError, match="does not open"):
        ring.open("other", "api_token", sealed)
    with pytest.raises(MasterKeyError, match="does not open"):
        ring.open("shop", "another_name", sealed)
    flipped = sealed[:-1] + bytes([sealed[-1] ^ 1])
    with pytest.raises(MasterKeyError, match="does not open"):
        ring.open("shop", "api_token", flipped)
    with pytest.raises(MasterKeyError, match="not a sealed secret"):
        ring.open("shop", "api_token", b"plain text")


def test_rotation_keeps_old_values_readable_and_seals_under_the_new_key() -> None:
    old_ring = Keyring(OLD)
    sealed_old = old_ring.seal("t", "n", "value")
    ring = old_ring.rotated_to(NEW)
    assert ring.current == NEW and ring.previous == (OLD,)
    assert ring.open("t", "n", sealed_old) == "value"
    assert ring.needs_reseal(sealed_old)
    sealed_new = ring.seal("t", "n", "value")
    assert sealed_key_id(sealed_new) == key_id(NEW) and not ring.needs_reseal(sealed_new)
    # a server without the new key says which key it lacks
    with pytest.raises(MasterKeyError, match=key_id(NEW)):
        old_ring.open("t", "n", sealed_new)


def test_keys_in_settings_are_base64_of_32_bytes(tmp_path: Path) -> None:
    assert decode_key(encode_key(OLD)) == OLD
    with pytest.raises(MasterKeyError, match="not base64"):
        decode_key("not a key!")
    with pytest.raises(MasterKeyError, match="16 bytes"):
        decode_key(base64.b64encode(os.urandom(16)).decode())
    key_file = tmp_path / "old.key"
    write_key_file(key_file, OLD)
    assert previous_keys([encode_key(NEW), str(key_file), " "]) == (NEW, OLD)


def test_the_embedded_store_generates_its_key_once_mode_0600(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    first = load_keys(settings)
    path = tmp_path / "data" / "master.key"
    assert first.file == path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_keys(settings).keyring.current == first.keyring.current


def test_where_the_key_comes_from(tmp_path: Path) -> None:
    assert load_keys(Settings(master_key=encode_key(NEW), data_dir=tmp_path)).keyring.current == NEW
    assert not (tmp_path / "master.key").exists()
    key_file = tmp_path / "configured.key"
    write_key_file(key_file, OLD)
    source = load_keys(Settings(master_key_file=str(key_file), master_key_previous=[encode_key(NEW)]))
    assert (source.keyring.current, source.keyring.previous, source.file) == (OLD, (NEW,), key_file)
    # PostgreSQL processes share the database, so they must be given the key
    with pytest.raises(MasterKeyError, match="NEOACTIONS_MASTER_KEY"):
        load_keys(Settings(database_url="postgresql://localhost/x", data_dir=tmp_path / "unused"))
    assert not (tmp_path / "unused").exists()

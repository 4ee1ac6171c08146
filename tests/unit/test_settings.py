from __future__ import annotations

from pathlib import Path

import pytest

from neoactions.server.settings import Settings


def test_precedence_file_then_env_then_flags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "neoactions.yaml"
    config.write_text("port: 6000\nconcurrency: 8\nrunner_settings: {a: 1}\n")
    monkeypatch.setenv("NEOACTIONS_PORT", "7000")
    monkeypatch.setenv("NEOACTIONS_RUNNER_SETTINGS", '{"http_allow_networks": ["127.0.0.0/8"]}')
    s = Settings.load(config, host="0.0.0.0", data_dir=None)
    assert (s.port, s.concurrency, s.host) == (7000, 8, "0.0.0.0")
    assert s.runner_settings == {"a": 1, "http_allow_networks": ["127.0.0.0/8"]}
    assert s.data_dir == Path(".neoactions")
    assert Settings.load(port=9).port == 9


def test_unknown_settings_are_refused(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("prot: 1\n")
    with pytest.raises(ValueError, match="prot"):
        Settings.load(config)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"processes": 0}, "at least 1"),
        ({"processes": 2, "redis_url": "redis://r"}, "needs database_url"),
        ({"processes": 2, "database_url": "postgresql://db"}, "needs redis_url"),
        ({"processes": 2, "database_url": "postgresql://db", "redis_url": "redis://r", "port": 0}, "fixed port"),
    ],
)
def test_several_processes_need_a_shared_store_shared_limits_and_a_fixed_port(
    overrides: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        Settings.load(**overrides)


def test_several_processes_on_postgres_and_redis() -> None:
    s = Settings.load(processes=3, database_url="postgresql://db", redis_url="redis://r", port=6001)
    assert s.processes == 3

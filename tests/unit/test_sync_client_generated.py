"""The blocking client is generated from the asyncio one: the committed file is what the
generator writes (else: ``make client``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_blocking_client_is_what_the_generator_writes() -> None:
    run = subprocess.run(
        [sys.executable, "scripts/gen_sync_client.py", "--check"], cwd=ROOT, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stdout + run.stderr


def test_the_check_sees_drift(tmp_path: Path) -> None:
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import gen_sync_client
    finally:
        sys.path.pop(0)
    text = gen_sync_client.render()
    assert "async def" not in text and "await " not in text and "grpc.aio" not in text
    assert "class Client:" in text
    drifted = tmp_path / "_sync.py"
    drifted.write_text(text.replace("def publish(", "def publish_one(", 1))
    gen_sync_client.TARGET, saved = drifted, gen_sync_client.TARGET
    try:
        assert gen_sync_client.main(["--check"]) == 1
    finally:
        gen_sync_client.TARGET = saved

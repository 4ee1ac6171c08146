"""The harness itself: a stopped or frozen server must fail its checks."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tests.adversarial.harness import assert_alive, rss_bytes, start_server, stays_responsive


async def test_a_frozen_server_fails_the_responsiveness_check(tmp_path: Path) -> None:
    with start_server(tmp_path) as server:
        await assert_alive(server)
        assert rss_bytes(server.pid) > 10 * 1024 * 1024
        with pytest.raises(AssertionError, match="probes failed"):
            async with stays_responsive(server, within=0.5):
                os.kill(server.pid, signal.SIGSTOP)
                try:
                    with pytest.raises(AssertionError):
                        await assert_alive(server, within=0.5)
                finally:
                    os.kill(server.pid, signal.SIGCONT)
        await assert_alive(server)


async def test_an_exited_server_fails_the_alive_check(tmp_path: Path) -> None:
    with start_server(tmp_path) as server:
        assert server.proc is not None
        server.proc.kill()
        server.proc.wait()
        with pytest.raises(AssertionError, match="exited"):
            await assert_alive(server)

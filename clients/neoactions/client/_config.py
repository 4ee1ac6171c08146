"""Connection defaults shared by both clients and the CLI."""

from __future__ import annotations

DEFAULT_TARGET = "127.0.0.1:50051"
#: seconds a unary call may take (publishing with ``wait`` included)
DEFAULT_TIMEOUT = 60.0
CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", 32 * 1024 * 1024),
    ("grpc.max_send_message_length", 32 * 1024 * 1024),
]

__all__ = ["CHANNEL_OPTIONS", "DEFAULT_TARGET", "DEFAULT_TIMEOUT"]

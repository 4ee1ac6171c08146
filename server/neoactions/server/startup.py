"""Start-up checks whose failures a person can act on, each said in one line with a hint:
the port is taken, PostgreSQL or Redis does not answer, the database does not exist
(created here when the role may create databases)."""

from __future__ import annotations

import errno
import logging
import socket
from urllib.parse import urlsplit

import asyncpg

log = logging.getLogger("neoactions")


class StartupError(Exception):
    """The service cannot start; ``str()`` is one line saying why and what to do."""


def where(url: str) -> str:
    """``scheme://host:port/path`` of a service URL, without user or password."""
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def _bind_error(host: str, port: int) -> OSError | None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gRPC binds
            probe.bind((host.strip("[]"), port))
    except OSError as exc:
        return exc
    return None


def port_free(host: str, port: int) -> bool:
    """Whether ``host:port`` can be listened on right now."""
    return _bind_error(host, port) is None


def port_taken(host: str, port: int) -> StartupError:
    """Why ``host:port`` cannot be listened on (probed with a plain socket)."""
    exc = _bind_error(host, port)
    reason = "the address cannot be used"
    if exc is not None:
        reason = "the port is in use" if exc.errno == errno.EADDRINUSE else (exc.strerror or str(exc))
    return StartupError(
        f"cannot listen on {host}:{port}: {reason}"
        " (hint: stop the process using it, or choose another port with --port, NEOACTIONS_PORT or `make run PORT=...`)"
    )


def redis_unreachable(url: str, detail: str) -> StartupError:
    return StartupError(
        f"cannot reach Redis at {where(url)}: {detail}"
        " (hint: start Redis, or fix --redis-url / NEOACTIONS_REDIS_URL; leave it unset to run without Redis)"
    )


async def prepare_database(url: str) -> None:
    """Connect once to the database of ``url``; create it when it does not exist and the role may.
    Raises :class:`StartupError` for what a person must fix."""
    parts = urlsplit(url)
    role = parts.username or "(the default role)"
    target = where(url)
    try:
        conn = await asyncpg.connect(url, timeout=10)
    except asyncpg.InvalidCatalogNameError:
        await _create_database(url, (parts.path or "/").lstrip("/"), role)
        return
    except (asyncpg.InvalidPasswordError, asyncpg.InvalidAuthorizationSpecificationError) as exc:
        raise StartupError(
            f"PostgreSQL at {target} refused role {role}: {exc}"
            " (hint: check the user and password in --database-url / NEOACTIONS_DATABASE_URL)"
        ) from None
    except (OSError, TimeoutError, asyncpg.PostgresConnectionError, asyncpg.CannotConnectNowError) as exc:
        raise StartupError(
            f"cannot reach PostgreSQL at {target}: {exc or type(exc).__name__}"
            " (hint: is it running? check --database-url / NEOACTIONS_DATABASE_URL)"
        ) from None
    await conn.close()


async def _create_database(url: str, name: str, role: str) -> None:
    ident = '"' + name.replace('"', '""') + '"'
    last: Exception | None = None
    for maintenance in ("postgres", "template1"):
        try:
            conn = await asyncpg.connect(url, database=maintenance, timeout=10)
        except (asyncpg.PostgresError, OSError, TimeoutError) as exc:
            last = exc
            continue
        try:
            await conn.execute(f"CREATE DATABASE {ident}")
            log.info("created the database %s", name)
            return
        except asyncpg.DuplicateDatabaseError:
            return  # another process made it meanwhile
        except asyncpg.InsufficientPrivilegeError:
            raise StartupError(
                f"the database {name} does not exist and role {role} may not create it"
                f" (hint: create it as a role that may: CREATE DATABASE {ident} OWNER {role})"
            ) from None
        finally:
            await conn.close()
    raise StartupError(
        f"the database {name} does not exist and it could not be created: {last}"
        f" (hint: create it as a role that may: CREATE DATABASE {ident} OWNER {role})"
    )


__all__ = ["StartupError", "port_free", "port_taken", "prepare_database", "redis_unreachable", "where"]

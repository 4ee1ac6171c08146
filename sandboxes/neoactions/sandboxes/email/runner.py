"""The ``email`` runner: one SMTP session per attempt with aiosmtplib.

The SMTP host is tenant input like an http URL, so it goes through the same
SSRF guard: the name is resolved once, checked, and the socket connected to
that address before aiosmtplib takes it over (with the host name kept for
TLS SNI and certificate checks).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiosmtplib

from neoactions.domain.model import JSON, ExecutionError, JSONObject
from neoactions.sandboxes.email.message import MessageConfigError, build_message
from neoactions.sandboxes.http.guard import AddressPolicy, AddressRefused
from neoactions.server.runners import ExecutionContext, Failure, Log, Result, RunnerUpdate

DEFAULT_TIMEOUT_SECONDS = 30.0
_DEFAULT_PORTS = {"tls": 465, "starttls": 587, "none": 25}


class EmailRunner:
    """Sends one message per attempt; SMTP 4xx and connection trouble are retryable."""

    def __init__(self, policy: AddressPolicy, *, local_hostname: str | None = None) -> None:
        self._policy = policy
        # EHLO name: aiosmtplib would otherwise call getfqdn(), a DNS round trip per send
        self._local_hostname = local_hostname or socket.gethostname()

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> EmailRunner:
        return cls(AddressPolicy.from_settings(settings), local_hostname=settings.get("smtp_local_hostname"))

    async def execute(self, config: JSONObject, data: JSON, ctx: ExecutionContext) -> AsyncIterator[RunnerUpdate]:
        outcome = await self.send(config, ctx)
        if isinstance(outcome, Result) and outcome.output.get("refused"):
            yield Log(f"some recipients were refused: {', '.join(outcome.output['refused'])}", "warning")
        yield outcome

    async def send(self, config: JSONObject, ctx: ExecutionContext) -> Result | Failure:
        """One attempt: build, connect (guarded), authenticate, send."""
        try:
            envelope = build_message(config, ctx.idempotency_key or ctx.execution_id)
            tls_context = _tls_context(config)
        except (MessageConfigError, ssl.SSLError, ValueError) as exc:
            return Failure.of("invalid_config", str(exc))
        security = str(config.get("security", "starttls"))
        host = str(config["host"])
        port = int(config.get("port") or _DEFAULT_PORTS[security])
        configured = float(config.get("timeout_seconds", DEFAULT_TIMEOUT_SECONDS))
        remaining = ctx.remaining_seconds()
        limit = min(configured, remaining)
        if limit <= 0:
            return _timeout(limit, remaining <= configured)
        try:
            async with asyncio.timeout(limit):
                sock = await self._connect(host, port)
                smtp = aiosmtplib.SMTP(
                    hostname=host,
                    sock=sock,
                    use_tls=security == "tls",
                    start_tls=security == "starttls",
                    validate_certs=bool(config.get("validate_certs", True)),
                    tls_context=tls_context,
                    timeout=limit,
                    local_hostname=str(config.get("local_hostname") or self._local_hostname),
                )
                # not ``async with smtp``: its exit says QUIT and waits for the answer even when
                # the task is cancelled, so a stalled server would hold a cancelled attempt
                await smtp.connect()
                try:
                    if config.get("username"):
                        await smtp.login(str(config["username"]), str(config.get("password", "")))
                    refused, response = await smtp.send_message(
                        envelope.message, sender=envelope.sender, recipients=envelope.recipients
                    )
                except (ConnectionError, TimeoutError):
                    raise
                except Exception:
                    await _quit(smtp)
                    raise
                else:
                    await _quit(smtp)
                finally:
                    smtp.close()
        except AddressRefused as exc:
            return Failure.of("ssrf_refused", str(exc))
        except (TimeoutError, aiosmtplib.SMTPTimeoutError):
            return _timeout(limit, remaining <= configured)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            return _refused_all(exc)
        except aiosmtplib.SMTPResponseException as exc:
            # 4xx is "try again later" in SMTP; 5xx (incl. bad credentials) is final
            return Failure.of(
                "smtp_error", f"{type(exc).__name__}: {exc.code} {exc.message}", retryable=400 <= exc.code < 500
            )
        except (aiosmtplib.SMTPConnectError, aiosmtplib.SMTPServerDisconnected, ConnectionError) as exc:
            return Failure.of("smtp_connection_error", f"{type(exc).__name__}: {exc}", retryable=True)
        except ssl.SSLError as exc:
            return Failure.of("smtp_tls_error", f"{type(exc).__name__}: {exc}")
        except aiosmtplib.SMTPException as exc:  # e.g. STARTTLS or AUTH not offered: configuration
            return Failure.of("smtp_error", f"{type(exc).__name__}: {exc}")
        except OSError as exc:
            return Failure.of("smtp_connection_error", f"{type(exc).__name__}: {exc}", retryable=True)
        accepted = [r for r in envelope.recipients if r not in refused]
        return Result(
            {
                "message_id": envelope.message_id,
                "accepted": accepted,
                "refused": {r: f"{resp.code} {resp.message}" for r, resp in refused.items()},
                "response": response,
            }
        )

    async def _connect(self, host: str, port: int) -> socket.socket:
        """A socket connected to an address of ``host`` that the guard allows."""
        loop = asyncio.get_running_loop()
        last: OSError | None = None
        for address in await self._policy.resolve(host, port):
            family = socket.AF_INET6 if ":" in address else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.setblocking(False)
            try:
                await loop.sock_connect(sock, (address, port))
            except OSError as exc:
                sock.close()
                last = exc
                continue
            except BaseException:
                sock.close()
                raise
            return sock
        raise last or OSError(f"cannot connect to {host}:{port}")


async def _quit(smtp: aiosmtplib.SMTP) -> None:
    """End the session politely; its failure changes nothing about the attempt."""
    if smtp.is_connected:
        with contextlib.suppress(aiosmtplib.SMTPException, OSError):
            await smtp.quit()


def _tls_context(config: JSONObject) -> ssl.SSLContext | None:
    """A context trusting ``ca_cert`` (a PEM), for servers with a private CA."""
    pem = config.get("ca_cert")
    if not pem:
        return None
    return ssl.create_default_context(cadata=str(pem))


def _refused_all(exc: aiosmtplib.SMTPRecipientsRefused) -> Failure:
    details = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in exc.recipients)
    # retry only if every refusal was temporary (4xx)
    retryable = bool(exc.recipients) and all(400 <= r.code < 500 for r in exc.recipients)
    return Failure.of("smtp_recipients_refused", f"every recipient was refused: {details}", retryable=retryable)


def _timeout(limit: float, deadline_bound: bool) -> Failure:
    message = f"the SMTP exchange did not finish within {max(limit, 0.0):g}s"
    return Failure(ExecutionError("timeout", message, retryable=True), timed_out=deadline_bound)


__all__ = ["EmailRunner"]

"""One webhook POST to an address that was already checked, bounded in time and in size.

The connection goes to `address` (not to a new lookup of the host), while the Host header and
the TLS server name (SNI and certificate check) stay the URL's host. Redirects are not
followed: a 3xx answer is just an unsuccessful attempt. A watchdog shuts the socket down when
the whole exchange, from connect to the answer's last byte read, exceeds `timeout`, so a
receiver that trickles bytes cannot hold a sender.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import ssl
import threading
from dataclasses import dataclass

from .urls import WebhookTarget


@dataclass(frozen=True)
class Answer:
    """The receiver's status code and the first bytes of its body."""

    status_code: int
    body: bytes


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self.address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self.address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self.address = address

    def connect(self) -> None:
        raw = socket.create_connection((self.address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(raw, server_hostname=self.host)  # type: ignore[attr-defined]


def post(target: WebhookTarget, address: str, body: bytes, headers: dict[str, str], *,
         timeout: float, max_response_bytes: int) -> Answer:
    """POST `body` to `target` at `address`; OSError (TimeoutError past `timeout`) when no
    answer came."""
    kind = _PinnedHTTPSConnection if target.scheme == "https" else _PinnedHTTPConnection
    connection = kind(target.host, target.port, address, timeout)
    expired = threading.Event()

    def abort() -> None:
        expired.set()
        if connection.sock is not None:
            with contextlib.suppress(OSError):
                connection.sock.shutdown(socket.SHUT_RDWR)

    watchdog = threading.Timer(timeout, abort)
    watchdog.start()
    try:
        connection.request("POST", target.path, body=body,
                           headers={**headers, "Content-Type": "application/json"})
        response = connection.getresponse()
        return Answer(response.status, response.read(max_response_bytes))
    except (OSError, http.client.HTTPException) as error:
        if expired.is_set():
            raise TimeoutError(f"no complete answer within {timeout:g} s") from None
        if isinstance(error, OSError):
            raise
        raise OSError(f"invalid HTTP answer: {type(error).__name__}: {error}") from None
    finally:
        watchdog.cancel()
        connection.close()

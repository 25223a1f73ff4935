"""An HTTP/1.1 keep-alive transport for httpx whose cost per request does not grow with the pool.

httpcore's ``AsyncConnectionPool`` (1.0.x) re-examines every pooled connection twice per
request, and its idle check is quadratic in the number of connections; each examination of an
idle connection asks anyio for the socket's attributes (a dict with ``getpeername`` and a
``poll``). With the 64 connections a payout batch keeps open this cost ~2 ms of CPU per request
on the benchmark machine, more than the request itself. ``RailTransport`` keeps the idle
connections of each origin on a stack instead: taking one checks only that one (expired or
closed by the server), returning one is a push. Everything else is httpcore's own per-connection
code (``AsyncHTTPConnection``: connect, TLS, h11), and errors are mapped to httpx's classes as
``httpx.AsyncHTTPTransport`` maps them, so the rail adapters' error mapping
(``adapters.rails._transport``) is unchanged:

- a request waits for a free connection at most the request's ``pool`` timeout
  (``httpx.PoolTimeout``: certainly not sent);
- a connection the server closed while idle is discarded before use; one that turns out to be
  unusable at the start of a request (``ConnectionNotAvailable``) is replaced, as httpcore's
  pool does.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections import deque
from collections.abc import AsyncIterator, Iterator

import httpcore
import httpx

__all__ = ["RailTransport", "rail_client"]

_EXC: tuple[tuple[type[Exception], type[httpx.HTTPError]], ...] = (
    # Most specific first: the first match wins.
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.ProxyError, httpx.ProxyError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.ProtocolError, httpx.ProtocolError),
)


@contextlib.contextmanager
def _mapped() -> Iterator[None]:
    try:
        yield
    except httpcore.ConnectionNotAvailable:
        raise
    except Exception as exc:
        for source, target in _EXC:
            if isinstance(exc, source):
                raise target(str(exc)) from exc
        raise


class _Slots:
    """At most ``n`` connections in use; waiters are served in order."""

    def __init__(self, n: int) -> None:
        self.free = n
        self._waiters: deque[asyncio.Future[None]] = deque()

    async def acquire(self, timeout: float | None) -> None:
        if self.free > 0 and not self._waiters:
            self.free -= 1
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await asyncio.wait_for(asyncio.shield(waiter), timeout)
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.release()  # handed a slot just as we gave up: pass it on
            else:
                waiter.cancel()
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)
            raise

    def release(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot passes straight to the waiter
                return
        self.free += 1


class _Body(httpx.AsyncByteStream):
    def __init__(self, transport: RailTransport, origin: httpcore.Origin,
                 conn: httpcore.AsyncHTTPConnection, response: httpcore.Response) -> None:
        self._transport = transport
        self._origin = origin
        self._conn = conn
        self._response = response
        self._closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _mapped():
            async for part in self._response.aiter_stream():
                yield part

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            with _mapped():
                await self._response.aclose()
        finally:
            await self._transport._checkin(self._origin, self._conn)


class RailTransport(httpx.AsyncBaseTransport):
    """HTTP/1.1 keep-alive connections per origin, at most ``max_connections`` in use."""

    def __init__(self, *, max_connections: int = 100, keepalive_expiry: float = 5.0,
                 verify: ssl.SSLContext | bool = True) -> None:
        self._ssl = httpx.create_ssl_context(verify=verify)
        self._expiry = keepalive_expiry
        self._slots = _Slots(max_connections)
        self._idle: dict[tuple[bytes, bytes, int], list[httpcore.AsyncHTTPConnection]] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.AsyncByteStream)
        url = request.url
        if url.scheme not in ("http", "https"):
            raise httpx.UnsupportedProtocol(f"unsupported URL scheme {url.scheme!r}")
        timeouts = request.extensions.get("timeout", {})
        try:
            await self._slots.acquire(timeouts.get("pool"))
        except TimeoutError as exc:
            raise httpx.PoolTimeout("no free connection within the pool timeout") from exc
        origin = httpcore.Origin(url.raw_scheme, url.raw_host,
                                 url.port or (443 if url.scheme == "https" else 80))
        req = httpcore.Request(
            method=request.method,
            url=httpcore.URL(scheme=url.raw_scheme, host=url.raw_host, port=url.port,
                             target=url.raw_path),
            headers=request.headers.raw, content=request.stream, extensions=request.extensions,
        )
        try:
            for _ in range(3):
                conn = await self._checkout(origin)
                try:
                    with _mapped():
                        response = await conn.handle_async_request(req)
                except httpcore.ConnectionNotAvailable:
                    await conn.aclose()  # never used for this request: take another
                    continue
                except BaseException:
                    await self._discard(conn)
                    raise
                return httpx.Response(status_code=response.status, headers=response.headers,
                                      stream=_Body(self, origin, conn, response),
                                      extensions=response.extensions)
            raise httpx.ConnectError("no usable connection")
        except BaseException:
            self._slots.release()
            raise

    async def _checkout(self, origin: httpcore.Origin) -> httpcore.AsyncHTTPConnection:
        stack = self._idle.get(_key(origin))
        while stack:
            conn = stack.pop()  # the most recently used: the fewest connections stay warm
            if conn.is_idle() and not conn.has_expired():
                return conn
            await conn.aclose()
        return httpcore.AsyncHTTPConnection(origin, ssl_context=self._ssl,
                                            keepalive_expiry=self._expiry)

    async def _discard(self, conn: httpcore.AsyncHTTPConnection) -> None:
        with contextlib.suppress(Exception):
            await conn.aclose()

    async def _checkin(self, origin: httpcore.Origin,
                       conn: httpcore.AsyncHTTPConnection) -> None:
        try:
            if conn.is_idle():
                # At most max_connections are ever kept; one the server closed meanwhile is
                # found and dropped when it comes up again (``_checkout``).
                self._idle.setdefault(_key(origin), []).append(conn)
            elif not conn.is_closed():
                await self._discard(conn)
        finally:
            self._slots.release()

    async def aclose(self) -> None:
        idle, self._idle = self._idle, {}
        for stack in idle.values():
            for conn in stack:
                await self._discard(conn)


def _key(origin: httpcore.Origin) -> tuple[bytes, bytes, int]:
    return origin.scheme, origin.host, origin.port


def rail_client(max_connections: int = 100, **kwargs: object) -> httpx.AsyncClient:
    """Return a client for rail calls whose per-request cost does not grow with its pool.

    httpcore's own pool re-examines every connection per request (the module docstring), which
    costs more than the request itself at the connections a payout batch keeps open; this
    client's ``RailTransport`` does not. Every call still sets its own explicit timeout.
    """
    return httpx.AsyncClient(transport=RailTransport(max_connections=max_connections),
                             **kwargs)  # type: ignore[arg-type]

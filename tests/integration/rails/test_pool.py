"""RailTransport (adapters/rails/_pool.py): keep-alive reuse, the connection limit, the pool
timeout, and httpx's error classes for failures (the adapters' error mapping relies on them)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest

from adapters.rails import rail_client

pytestmark = pytest.mark.anyio

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
OK = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"


class Server:
    """A raw loopback HTTP/1.1 server: counts connections, answers with ``answer``."""

    def __init__(self) -> None:
        self.connections = 0
        self.open_now = 0
        self.max_open = 0
        self.release = asyncio.Event()
        self.release.set()
        self.close_after_answer = False
        self.reset_on_request = False
        self.port = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.open_now += 1
        self.max_open = max(self.max_open, self.open_now)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                await reader.readexactly(length)
                if self.reset_on_request:
                    writer.close()
                    return
                await self.release.wait()
                writer.write(OK)
                await writer.drain()
                if self.close_after_answer:
                    writer.close()
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.open_now -= 1

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/x"


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    s = Server()
    srv = await asyncio.start_server(s.handle, "127.0.0.1", 0)
    s.port = srv.sockets[0].getsockname()[1]
    try:
        yield s
    finally:
        srv.close()
        with contextlib.suppress(Exception):
            await srv.wait_closed()


async def test_sequential_requests_reuse_one_connection(server: Server) -> None:
    async with rail_client() as client:
        for _ in range(5):
            r = await client.post(server.url, content=b"{}", timeout=5)
            assert (r.status_code, r.content) == (200, b"ok")
    assert server.connections == 1


async def test_concurrency_is_capped_at_max_connections(server: Server) -> None:
    async with rail_client(max_connections=2) as client:
        answers = await asyncio.gather(*(client.get(server.url, timeout=5) for _ in range(10)))
    assert [a.status_code for a in answers] == [200] * 10
    assert server.max_open <= 2


async def test_waiting_longer_than_the_pool_timeout_is_a_pool_timeout(server: Server) -> None:
    server.release.clear()  # the first request holds the only connection
    async with rail_client(max_connections=1) as client:
        first = asyncio.create_task(client.get(server.url, timeout=5))
        while server.connections == 0:
            await asyncio.sleep(0.01)
        with pytest.raises(httpx.PoolTimeout):
            await client.get(server.url, timeout=httpx.Timeout(5, pool=0.05))
        server.release.set()
        assert (await first).status_code == 200
        # The slot came back: the pool still works.
        assert (await client.get(server.url, timeout=5)).status_code == 200


async def test_a_connection_the_server_closed_is_not_reused(server: Server) -> None:
    server.close_after_answer = True
    async with rail_client() as client:
        for _ in range(3):
            assert (await client.get(server.url, timeout=5)).status_code == 200
    assert server.connections == 3


async def test_no_answer_after_sending_is_a_transport_error_not_a_connect_error(
    server: Server,
) -> None:
    server.reset_on_request = True
    async with rail_client(max_connections=1) as client:
        with pytest.raises(httpx.TransportError) as caught:
            await client.post(server.url, content=b"{}", timeout=5)
        assert not isinstance(caught.value, httpx.ConnectError | httpx.PoolTimeout)
        server.reset_on_request = False
        # The failed connection released its slot and is not reused.
        assert (await client.get(server.url, timeout=5)).status_code == 200


async def test_read_timeout_and_refused_connection_keep_httpx_classes(server: Server) -> None:
    server.release.clear()
    async with rail_client(max_connections=1) as client:
        with pytest.raises(httpx.ReadTimeout):
            await client.get(server.url, timeout=httpx.Timeout(5, read=0.05))
        server.release.set()
        assert (await client.get(server.url, timeout=5)).status_code == 200
        with pytest.raises(httpx.ConnectError):
            await client.get("http://127.0.0.1:1/x", timeout=5)

"""The API docs (/docs, /redoc) work on a machine that reaches nothing but the hub.

Their pages refer to no external URL (no CDN, no web fonts, no remote favicon) and every
asset they load is served by the hub itself (fastapi-offline's packaged swagger-ui and redoc).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from gateway.app import create_app
from gateway.config import Settings

pytestmark = pytest.mark.anyio

_REF = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']|url\s*:\s*["']([^"']+)["']|"""
                  r"""spec-url\s*=\s*["']([^"']+)["']""")


@pytest.fixture
async def docs_client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    # The pages need no hub and no database: the app is built, its lifespan never runs.
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path}/unused.db",
                              partners_file=tmp_path / "partners.toml"))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://hub.test") as c:
        yield c


@pytest.mark.parametrize(("page", "assets"), [
    ("/docs", {"swagger-ui-bundle.js": "javascript", "swagger-ui.css": "text/css",
               "favicon.png": "image/png"}),
    ("/redoc", {"redoc.standalone.js": "javascript", "favicon.png": "image/png"}),
])
async def test_the_docs_page_refers_to_no_external_url_and_its_assets_are_served(
        docs_client: httpx.AsyncClient, page: str, assets: dict[str, str]) -> None:
    r = await docs_client.get(page)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    assert "http://" not in html and "https://" not in html and "//cdn" not in html, html
    refs = {next(g for g in m.groups() if g) for m in _REF.finditer(html)}
    assert "/openapi.json" in refs, refs
    found = {ref.rsplit("/", 1)[-1]: ref for ref in refs if ref != "/openapi.json"}
    assert set(assets) <= set(found), refs
    for name, kind in assets.items():
        ref = found[name]
        assert ref.startswith("/"), ref
        asset = await docs_client.get(ref)
        assert asset.status_code == 200, ref
        assert kind in asset.headers["content-type"], (ref, asset.headers["content-type"])
        assert len(asset.content) > 1000, ref  # the real file, not an error page
    spec = await docs_client.get("/openapi.json")
    assert spec.status_code == 200 and spec.json()["info"]["title"] == "PX gateway"

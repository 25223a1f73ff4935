"""The floor for the intake benchmark: the least a signed-intake endpoint can do.

Same server stack as the gateway (uvicorn, FastAPI, SQLAlchemy Core async on the same driver):
read the body, verify one Ed25519 signature over it, insert one row, answer 202. Whatever the
gateway does beyond this (JWS parsing, envelope validation, idempotency, a signed receipt, the
outbox row) is what the ratio gateway/floor measures.
"""

from __future__ import annotations

import base64
import contextlib
import os
from collections.abc import AsyncIterator

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from fastapi import FastAPI, Request
from sqlalchemy import Column, Integer, LargeBinary, MetaData, Table, insert
from starlette.responses import Response

from gateway.config import Settings
from gateway.storage.engine import create_engine

metadata = MetaData()
floor_rows = Table("floor_rows", metadata, Column("pk", Integer, primary_key=True),
                   Column("body", LargeBinary, nullable=False))


def _b64(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    # The same pool as the gateway's (GATEWAY_DB_POOL_SIZE), so both pay the same for it.
    engine = create_engine(os.environ["FLOOR_DB_URL"], pool_size=Settings().db_pool_size)
    app.state.engine = engine
    app.state.key = Ed25519PublicKey.from_public_bytes(_b64(os.environ["FLOOR_PUBLIC_X"]))
    yield
    await engine.dispose()


app = FastAPI(lifespan=lifespan)


@app.post("/floor")
async def floor(request: Request) -> Response:
    body = await request.body()
    protected, _, sig = request.headers["x-jws-signature"].partition("..")
    signing_input = protected.encode() + b"." + base64.urlsafe_b64encode(body).rstrip(b"=")
    request.app.state.key.verify(_b64(sig), signing_input)
    async with request.app.state.engine.begin() as conn:
        await conn.execute(insert(floor_rows).values(body=body))
    return Response(b'{"status":"accepted"}', status_code=202, media_type="application/json")


async def create_schema(url: str) -> None:
    engine = create_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    await engine.dispose()

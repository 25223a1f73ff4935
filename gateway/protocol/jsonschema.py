"""JSON Schemas of PX/1, generated from the pydantic models and checked in under ``schemas/``.

One file per message type (``claim.notify.schema.json`` describes that type's *payload*), plus
``envelope.schema.json`` and ``receipt.schema.json``. Partners build against these files; a
test regenerates them and fails when the checked-in copies are stale, so the models and the
published schemas cannot drift apart. Write them with ``gateway schemas write``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from gateway.protocol.envelope import HUB_TO_PARTNER, PARTNER_TO_HUB, PAYLOADS, Envelope, Receipt

__all__ = ["SCHEMA_DIR", "render_schemas", "write_schemas"]

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas"
_BASE = "https://px.perkeso.example/schemas/px1/"


def _schema(model: type[BaseModel], name: str, description: str) -> dict[str, Any]:
    schema = model.model_json_schema(mode="validation")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": f"{_BASE}{name}", "description": description, **schema}


def render_schemas() -> dict[str, str]:
    """Return file name -> JSON text of every schema (deterministic)."""
    out: dict[str, Any] = {
        "envelope.schema.json": _schema(
            Envelope, "envelope.schema.json",
            "The PX/1 envelope; `payload` follows the schema of its `type`."),
        "receipt.schema.json": _schema(
            Receipt, "receipt.schema.json", "A signed receipt of one message."),
    }
    for type_, model in sorted(PAYLOADS.items()):
        direction = " and ".join(
            d for d, table in (("partner to hub", PARTNER_TO_HUB),
                               ("hub to partner", HUB_TO_PARTNER)) if type_ in table)
        name = f"{type_}.schema.json"
        out[name] = _schema(model, name, f"Payload of `{type_}` (version 1, {direction}).")
    return {name: json.dumps(s, indent=2, ensure_ascii=False, sort_keys=True) + "\n"
            for name, s in out.items()}


def write_schemas(folder: Path = SCHEMA_DIR) -> list[Path]:
    """Write every schema into ``folder``; remove stale ``*.schema.json``; return the files."""
    folder.mkdir(parents=True, exist_ok=True)
    rendered = render_schemas()
    for old in folder.glob("*.schema.json"):
        if old.name not in rendered:
            old.unlink()
    paths = []
    for name, text in rendered.items():
        path = folder / name
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths

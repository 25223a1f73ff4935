"""The NP-FEB partner adapter (wire profile in the package docstring)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date
from typing import Any

import httpx
import orjson
from lxml import etree

from adapters.partners.common.bikram_sambat import ad_to_bs, bs_to_ad, format_bs, parse_bs
from adapters.partners.common.codec import (
    Dialect,
    camel_to_snake,
    canonical_envelope,
    local_timestamp,
    snake_to_camel,
    to_wire,
)
from adapters.partners.common.config import ConfiguredAdapter
from adapters.partners.common.ctz import parse_ctz, split_ctz
from adapters.partners.common.digits import to_ascii_digits
from adapters.partners.common.transport import post_signed
from adapters.partners.common.wire import dump, schema_violation
from adapters.partners.np_feb.config import NpFebConfig
from gateway.errors import InvalidMessageError
from gateway.ports.partner import DecodedItem, DeliveryAnswer, ItemResult

__all__ = ["NS", "NpFebAdapter"]

NS = "urn:np-feb:px:1"
_HEADER = {
    "messageId": "id", "messageType": "type", "sender": "sender", "recipient": "recipient",
    "sentAt": "sent_at", "correlationId": "correlation_id",
}
_HEADER_OUT = {v: k for k, v in _HEADER.items()}
_RECEIPT = {
    "receiptId": "receipt_id", "messageId": "message_id", "sender": "sender",
    "status": "status", "receivedAt": "received_at", "bodySha256": "body_sha256",
}
_RECEIPT_OUT = {v: k for k, v in _RECEIPT.items()}

_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                          dtd_validation=False, huge_tree=False, remove_comments=True,
                          remove_pis=True)


def _date_in(text: str) -> str:
    # Certificates print BS dates in Devanagari digits (२०८१-०८-०६), as their numbers.
    return bs_to_ad(parse_bs(to_ascii_digits(text))).isoformat()


def _date_out(text: str) -> str:
    return format_bs(ad_to_bs(date.fromisoformat(text)))


def _ctz_in(nid: dict[str, Any]) -> dict[str, Any]:
    if nid.get("scheme") != "NP-CTZ":
        return nid
    extra = sorted(set(nid) - {"scheme", "district", "number"})
    if extra or not isinstance(nid.get("district"), str) or not isinstance(nid.get("number"),
                                                                         str):
        raise ValueError("an NP-CTZ nationalId has exactly <scheme>, <district> and <number>")
    return {"scheme": "NP-CTZ", "value": parse_ctz(nid["district"], nid["number"])}


def _ctz_out(nid: dict[str, Any]) -> dict[str, Any]:
    if nid.get("scheme") != "NP-CTZ":
        return nid
    district, number = split_ctz(nid["value"])
    return {"scheme": "NP-CTZ", "district": district, "number": number}


def _q(name: str) -> str:
    return f"{{{NS}}}{name}"


def _to_xml(parent: etree._Element, name: str, value: Any, path: str) -> None:
    el = etree.SubElement(parent, _q(name))
    if value is None:
        el.set("nil", "true")
    elif isinstance(value, dict):
        if not value:
            el.set("object", "true")
        for k, v in value.items():
            _to_xml(el, k, v, f"{path}.{k}")
    elif isinstance(value, list):
        el.set("list", "true")
        for i, v in enumerate(value):
            _to_xml(el, "item", v, f"{path}[{i}]")
    elif isinstance(value, str):
        try:
            el.text = value
        except ValueError:
            raise ValueError(f"{path}: text has characters XML 1.0 cannot carry") from None
    else:
        raise ValueError(f"{path}: {type(value).__name__} values are not part of the profile")


_MARKERS = frozenset({"nil", "list", "object"})
_XML_DECLARATION = re.compile(rb"""^<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")


def _check_attributes(el: etree._Element, path: str, allowed: frozenset[str]) -> None:
    # An attribute the profile does not define would otherwise be dropped without a trace.
    for name, value in el.attrib.items():
        if name not in allowed:
            raise ValueError(f"{path}: attribute {name!r} is not part of the NP-FEB profile "
                             f"(only {', '.join(sorted(allowed))})")
        if name in _MARKERS and value != "true":
            raise ValueError(f'{path}: attribute {name}="{value}"; the only value is "true"')


def _from_xml(el: etree._Element, path: str, allowed: frozenset[str] = _MARKERS) -> Any:
    _check_attributes(el, path, allowed)
    if el.get("nil") == "true":
        return None
    children = [c for c in el if isinstance(c.tag, str)]
    if el.get("list") == "true":
        for c in children:
            if etree.QName(c).localname != "item":
                raise ValueError(f"{path}: list entries must be <item>")
        return [_from_xml(c, f"{path}[{i}]") for i, c in enumerate(children)]
    if children or el.get("object") == "true":
        if el.text and el.text.strip():
            raise ValueError(f"{path}: an element with children cannot also have text")
        out: dict[str, Any] = {}
        for c in children:
            qn = etree.QName(c)
            if qn.namespace != NS:
                raise ValueError(f"{path}: element {c.tag} is not in namespace {NS}")
            if qn.localname in out:
                raise ValueError(f"{path}.{qn.localname}: element is given twice")
            out[qn.localname] = _from_xml(c, f"{path}.{qn.localname}")
        return out
    return el.text or ""


def _parse(wire: bytes, root_name: str) -> etree._Element:
    declared = _XML_DECLARATION.match(wire)
    if declared is not None and declared.group(1).lower() not in (b"utf-8", b"utf8"):
        # lxml would decode by the declaration: UTF-8 Devanagari read as Latin-1 is mojibake.
        raise schema_violation(f"the XML declaration names encoding "
                               f"{declared.group(1).decode()!r}; NP-FEB documents are UTF-8")
    try:
        wire.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidMessageError("malformed_json", f"the body is not UTF-8: byte "
                                  f"{exc.start} is invalid") from None
    try:
        doc = etree.fromstring(wire, _PARSER).getroottree()
    except etree.XMLSyntaxError as exc:
        raise InvalidMessageError("malformed_json", f"the body is not well-formed XML: "
                                  f"{exc}") from None
    if doc.docinfo.doctype:
        raise schema_violation("a DOCTYPE is not allowed in NP-FEB documents")
    root = doc.getroot()
    if root.tag != _q(root_name):
        raise schema_violation(f"the root element must be <{root_name} xmlns=\"{NS}\">, "
                               f"not {root.tag}")
    return root


class NpFebAdapter(ConfiguredAdapter):
    """NP-FEB's XML documents, Bikram Sambat dates, district-issued citizenship numbers."""

    name = "np_feb"
    batch = False

    # A frozen config: one shared default instance is safe.
    def __init__(self, config: NpFebConfig = NpFebConfig()) -> None:  # noqa: B008
        super().__init__(config)
        self.config = config
        self._dialect = Dialect(offset=config.offset, date_in=_date_in, date_out=_date_out,
                                national_id_in=_ctz_in, national_id_out=_ctz_out,
                                key_in=camel_to_snake, key_out=snake_to_camel)

    def decode(self, wire: bytes) -> list[DecodedItem]:
        root = _parse(wire, "febMessage")
        message_id = root.findtext(_q("messageId"))
        try:
            data = _from_xml(root, "febMessage", _MARKERS | {"version"})
        except ValueError as exc:
            raise schema_violation(str(exc), message_id) from None
        if not isinstance(data, dict):
            raise schema_violation("febMessage must have child elements", message_id)
        payload = data.pop("payload", None)
        unknown = sorted(set(data) - set(_HEADER))
        if unknown:
            raise schema_violation(f"febMessage: unknown elements {unknown}", message_id)
        version = root.get("version")
        header: dict[str, Any] = {"version": 1 if version == "1" else version}
        for name, value in data.items():
            header[_HEADER[name]] = value
        try:
            env = canonical_envelope(header, payload, self._dialect, header_path="febMessage",
                                     payload_path="febMessage.payload")
        except ValueError as exc:
            raise schema_violation(str(exc), message_id) from None
        return [DecodedItem(wire=wire, envelope=dump(env))]

    def encode(self, envelope: bytes) -> bytes:
        env = orjson.loads(envelope)
        root = etree.Element(_q("febMessage"), nsmap={None: NS})
        root.set("version", str(env.get("version")))
        try:
            for key in _HEADER.values():
                if key not in env:
                    continue
                value = env[key]
                if key == "sent_at" and isinstance(value, str):
                    value = local_timestamp(value, self.config.offset)
                _to_xml(root, _HEADER_OUT[key], value, key)
            _to_xml(root, "payload", to_wire(env.get("payload", {}), self._dialect, "payload"),
                    "payload")
        except ValueError as exc:
            raise schema_violation(f"cannot write for NP-FEB: {exc}") from None
        return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))

    def render_receipt(self, receipt: dict[str, Any]) -> bytes:
        root = etree.Element(_q("febReceipt"), nsmap={None: NS})
        for key, value in receipt.items():
            etree.SubElement(root, _q(_RECEIPT_OUT[key])).text = value
        return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))

    def parse_receipt(self, body: bytes) -> dict[str, Any]:
        root = _parse(body, "febReceipt")
        out: dict[str, Any] = {}
        for c in root:
            name = etree.QName(c).localname
            if name not in _RECEIPT:
                raise schema_violation(f"febReceipt: unknown element {name}")
            out[_RECEIPT[name]] = c.text or ""
        return out

    def render_batch(self, results: Sequence[ItemResult]) -> bytes:
        raise NotImplementedError("NP-FEB sends one document per request")

    async def deliver(self, client: httpx.AsyncClient, endpoint: str, wire: bytes,
                      signature: str, *, timeout: float) -> DeliveryAnswer:
        return await post_signed(client, endpoint, wire, signature,
                                 media_type=self.wire_media_type, timeout=timeout)

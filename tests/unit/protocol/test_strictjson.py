"""The strict JSON reader and text policy (gateway.protocol.strictjson), rule by rule."""

from __future__ import annotations

import pytest

from gateway.errors import InvalidMessageError
from gateway.protocol import strictjson
from gateway.protocol.strictjson import MAX_DEPTH


def _refused(raw: bytes, code: str, needle: str) -> None:
    with pytest.raises(InvalidMessageError) as info:
        strictjson.loads(raw)
    assert info.value.code == code
    assert needle in info.value.detail, info.value.detail


def test_duplicate_keys_refused_at_any_depth() -> None:
    _refused(b'{"id": 1, "id": 2}', "schema_violation", "'id' appears twice")
    _refused(b'{"a": {"b": [{"c": 1, "c": 1}]}}', "schema_violation", "'c' appears twice")


def test_depth_bound_is_exact_and_never_recurses() -> None:
    ok = b"[" * MAX_DEPTH + b"]" * MAX_DEPTH
    assert strictjson.loads(ok) is not None
    _refused(b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1), "schema_violation",
             f"nested deeper than {MAX_DEPTH}")
    _refused(b'{"x":' * 200_000, "schema_violation", "nested deeper")


def test_brackets_inside_strings_are_not_nesting() -> None:
    text = '{"s": "' + "[{" * 100 + '\\"", "t": ["a\\\\"]}'
    assert strictjson.loads(text.encode())["t"] == ["a\\"]


@pytest.mark.parametrize("raw", [b'{"n": 9223372036854775808}', b'{"n": -9223372036854775809}',
                                 b'{"n": 1' + b"0" * 400 + b"}"])
def test_integers_beyond_64_bits_refused(raw: bytes) -> None:
    _refused(raw, "schema_violation", "beyond 64 bits")


def test_64_bit_integers_accepted() -> None:
    assert strictjson.loads(b"[9223372036854775807, -9223372036854775808]") == [
        2**63 - 1, -(2**63)]


@pytest.mark.parametrize("constant", [b"NaN", b"Infinity", b"-Infinity"])
def test_non_json_constants_refused(constant: bytes) -> None:
    _refused(b'{"n": ' + constant + b"}", "schema_violation", "is not JSON")


@pytest.mark.parametrize(("raw", "where", "char"), [
    (b'{"a": {"b": "x\\u0000y"}}', "a.b", "U+0000"),
    (b'{"a": ["ok", "\\u001b[31m"]}', "a.1", "U+001B"),
    ('{"name": "Siti\u202eRahayu"}'.encode(), "name", "U+202E"),
    ('{"name": "a\u2066b"}'.encode(), "name", "U+2066"),
    (b'{"name": "a\x7fb"}', "name", "U+007F"),
    (b'{"name": "a\\u0085b"}', "name", "U+0085"),
])
def test_control_and_bidi_characters_refused_naming_the_field(raw: bytes, where: str,
                                                              char: str) -> None:
    _refused(raw, "schema_violation", f"{where}: control or bidi-override character {char}")


def test_control_character_in_a_key_refused() -> None:
    _refused(b'{"a": {"k\\u0000": 1}}', "schema_violation", "a: a key holds")


def test_free_text_keeps_tab_cr_lf_and_scripts() -> None:
    text = '{"d": "line 1\\nline 2\\ttab\\r", "bn": "মোহাম্মদ রহিম", "my": "ဒေါ်ခင်မြင့်"}'
    data = strictjson.loads(text.encode())
    assert data["d"] == "line 1\nline 2\ttab\r"
    assert strictjson.check_text(data["bn"], "bn") == data["bn"]


def test_names_refuse_line_breaks() -> None:
    assert strictjson.forbidden_character("a\nb", free_text=False) == "U+000A"
    assert strictjson.forbidden_character("a\nb") is None


def test_not_utf8_or_not_json_is_malformed() -> None:
    _refused(b'{"a": "\xff"}', "malformed_json", "not UTF-8")
    _refused(b'{"a": ', "malformed_json", "not JSON")

"""Body encoding: what each kind of value becomes on the wire, and how it decodes back."""

from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from qfan import DecodeError, EncodeError
from qfan._wire._codec import BYTES, JSON, MSGPACK, TEXT, Decoder, Encoder
from qfan._wire._limits import utf8_size


class Point(msgspec.Struct):
    x: int
    y: int


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4),
    max_leaves=12,
)


def test_struct_is_json() -> None:
    body, content_type = Encoder().encode(Point(1, 2))
    assert (body, content_type) == ('{"x":1,"y":2}', JSON)
    assert Decoder(Point).decode(body, content_type) == Point(1, 2)


def test_str_passes_through_as_text() -> None:
    assert Encoder().encode("héllo") == ("héllo", TEXT)
    assert Decoder(str).decode("héllo", TEXT) == "héllo"
    assert Decoder().decode("héllo", TEXT) == "héllo"


def test_bytes_are_base64() -> None:
    body, content_type = Encoder().encode(b"\x00\xff")
    assert (body, content_type) == ("AP8=", BYTES)
    assert Decoder(bytes).decode(body, content_type) == b"\x00\xff"


@given(json_values)
def test_json_round_trip(value: Any) -> None:
    body, content_type = Encoder().encode(value)
    expected_type = TEXT if isinstance(value, str) else JSON
    assert content_type == expected_type
    assert Decoder().decode(body, content_type) == value


@given(json_values)
def test_msgpack_round_trip(value: Any) -> None:
    body, content_type = Encoder("msgpack").encode(value)
    if not isinstance(value, str):
        assert content_type == MSGPACK
        body.encode("ascii")  # base64: always valid as an SQS body
    assert Decoder().decode(body, content_type) == value


@given(st.binary())
def test_bytes_round_trip(value: bytes) -> None:
    assert Decoder(bytes).decode(*Encoder().encode(value)) == value


def test_body_without_content_type_is_json_or_raw_text_for_str() -> None:
    assert Decoder(Point).decode('{"x":1,"y":2}', None) == Point(1, 2)
    assert Decoder(str).decode("not json", None) == "not json"


@pytest.mark.parametrize(
    ("body", "content_type", "wanted"),
    [
        ("{", JSON, Point),
        ('{"x":"a","y":2}', JSON, Point),
        ("text", TEXT, int),
        ("!!!not base64", BYTES, bytes),
        ("!!!", MSGPACK, Point),
    ],
)
def test_undecodable_body_keeps_raw_body(body: str, content_type: str, wanted: Any) -> None:
    with pytest.raises(DecodeError) as caught:
        Decoder(wanted).decode(body, content_type)
    assert caught.value.raw_body == body
    assert caught.value.content_type == content_type


def test_unknown_content_type() -> None:
    with pytest.raises(DecodeError, match="unknown content type"):
        Decoder().decode("x", "application/xml")


def test_unencodable_value() -> None:
    with pytest.raises(EncodeError, match="object"):
        Encoder().encode(object())


def test_unknown_format() -> None:
    with pytest.raises(EncodeError, match="yaml"):
        Encoder("yaml")  # type: ignore[arg-type]


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",))))
def test_utf8_size_is_the_encoded_length(text: str) -> None:
    assert utf8_size(text) == len(text.encode())

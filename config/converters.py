"""Path converters for business codes (SKUs, order numbers, customer, location and source codes).

The spec allows any characters in a code (``FIT-1/2IN``, ``SO-2026/001``, ``A B%20#?``,
``ÄØ-ü/1``, even ``..`` or ``/``). Percent-encoding alone cannot carry them in a path: the
server decodes ``%2F`` back to ``/`` before Django sees the path (so ``SO-2026%2F001`` and
``SO-2026/001`` are the same request and an order numbered ``A/lines/1/why`` would land on
order ``A``'s Why page), and browsers collapse a ``.`` or ``..`` segment (also ``%2E%2E``)
before sending. So a code is first escaped into one segment that has no ``/`` and is never a
dot segment, with ``~`` as the escape character:

- ``~`` becomes ``~7E`` and ``/`` becomes ``~2F``;
- a code that is exactly ``.`` or ``..`` becomes ``~2E`` / ``~2E~2E``.

Every other character is left to ``reverse()``, which percent-encodes ``%``, ``#``, ``?``,
spaces and non-ASCII as UTF-8; the server decodes them and the converter undoes its escapes,
so the view receives the exact code. Codes without ``~`` or ``/`` (nearly all of them) keep
the URLs they always had. A ``~`` not followed by one of the three escapes is no code: the
route does not match (404).

``code`` matches one segment and is safe anywhere in a route. ``trailing_code`` also accepts
raw slashes, for a route that ends with the code (the webhook ``webhooks/<source>``), so a
sender that percent-encodes ``/`` as ``%2F`` (decoded to ``/`` by the server) is understood.
"""
from __future__ import annotations

from django.urls import register_converter

ESCAPE = "~"
_UNESCAPE = {"7E": "~", "2F": "/", "2E": "."}
_DOT_SEGMENTS = frozenset({".", ".."})


def encode_code(code: str) -> str:
    """The path segment for ``code``: no ``/``, never ``.`` or ``..``; inverse of ``decode_code``."""
    if code in _DOT_SEGMENTS:
        return "~2E" * len(code)
    return code.replace(ESCAPE, "~7E").replace("/", "~2F")


def decode_code(segment: str) -> str:
    """The code a path segment stands for; ``ValueError`` when an escape is malformed."""
    head, *escaped = segment.split(ESCAPE)
    parts = [head]
    for part in escaped:
        character = _UNESCAPE.get(part[:2].upper())
        if character is None:
            raise ValueError(f"malformed escape in {segment!r}")
        parts.append(character + part[2:])
    return "".join(parts)


class CodeConverter:
    """One path segment holding any business code (see the module docstring)."""

    regex = r"[^/]+"

    def to_python(self, value: str) -> str:
        return decode_code(value)

    def to_url(self, value: object) -> str:
        return encode_code(str(value))


class TrailingCodeConverter(CodeConverter):
    """A code at the end of a route: also accepts raw ``/`` (a decoded ``%2F``)."""

    regex = r".+"


register_converter(CodeConverter, "code")
register_converter(TrailingCodeConverter, "trailing_code")

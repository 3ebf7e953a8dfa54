"""JSON request bodies, parsed in one place with size and nesting limits (issue 8).

``parse_json`` is the only way a JSON body becomes Python in this project: the events API
and the webhooks call it on the raw body, and ``LimitedJSONParser`` (the default DRF
parser, ``REST_FRAMEWORK["DEFAULT_PARSER_CLASSES"]``) calls it for every other endpoint.
A body over ``ALLOT_MAX_BATCH_BYTES``, nested deeper than ``ALLOT_JSON_MAX_DEPTH`` levels,
or not JSON at all raises ``JSONBodyError`` with a message for a 400 — never a
``RecursionError`` (the C decoder gives up around a thousand levels) and never a 500.
"""
from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


class JSONBodyError(ValueError):
    """A request body that is not acceptable JSON; ``message`` is meant for the client."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def nesting_depth(value: Any, *, stop_after: int | None = None) -> int:
    """How many arrays/objects deep ``value`` goes (a scalar is 0), level by level, without
    recursion. With ``stop_after`` the walk ends as soon as that depth is exceeded."""
    depth = 0
    level = [value] if type(value) in (dict, list) else []
    while level:
        depth += 1
        if stop_after is not None and depth > stop_after:
            return depth
        below: list[Any] = []
        keep = below.append
        for node in level:
            for child in node.values() if type(node) is dict else node:
                kind = type(child)
                if kind is dict or kind is list:
                    keep(child)
        level = below
    return depth


def parse_json(body: bytes | str, *, max_bytes: int | None = None, max_depth: int | None = None) -> Any:
    """Decode a JSON request body within the size and depth limits, or raise ``JSONBodyError``.

    ``NaN`` and ``Infinity`` are refused (they are not JSON); bytes must be UTF-8.
    """
    max_bytes = settings.ALLOT_MAX_BATCH_BYTES if max_bytes is None else max_bytes
    max_depth = settings.ALLOT_JSON_MAX_DEPTH if max_depth is None else max_depth
    if len(body) > max_bytes:
        raise JSONBodyError(f"the request body is larger than {max_bytes} bytes")
    too_deep = f"the JSON body is nested more than {max_depth} levels deep"
    try:
        value = json.loads(body, parse_constant=_reject_constant)
    except RecursionError:
        raise JSONBodyError(too_deep) from None
    except (ValueError, UnicodeDecodeError) as error:
        raise JSONBodyError(f"malformed JSON: {error}") from None
    if nesting_depth(value, stop_after=max_depth) > max_depth:
        raise JSONBodyError(too_deep)
    return value


class LimitedJSONParser(JSONParser):
    """DRF's JSON parser with this project's limits: over them, a 400 ``{"detail": ...}``."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: dict | None = None) -> Any:
        limit = settings.ALLOT_MAX_BATCH_BYTES
        body = stream.read(limit + 1) if stream is not None else b""
        try:
            return parse_json(body, max_bytes=limit)
        except JSONBodyError as error:
            raise ParseError(error.message) from None

"""Strict input for every DRF write: serializers that refuse what they do not declare.

A misspelt field (``{"scop": ...}`` for ``{"items": ...}``) used to be dropped silently, so a
request meant for two SKUs started a full run. ``StrictSerializer`` answers 400 naming every
unknown field instead, nested serializers included (``parts[0].bogus``). The fields here also
keep values the database or the model cannot hold out: integers are JSON integers (not
strings, booleans or ``1e30``) within the column's range, and slugs are checked as text
(no NUL, no lone surrogate) before they reach a query. ``SurrogateSafeJSONRenderer`` sends
an error that echoes a lone surrogate as a 400, not a 500.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from django.http import QueryDict
from rest_framework import serializers
from rest_framework.renderers import JSONRenderer

from config import bounds

# What a browser form adds to a form-encoded body (the browsable API): not an input field.
FORM_KEYS = frozenset({"csrfmiddlewaretoken"})
# The largest value of a BigAutoField / bigint column.
MAX_BIGINT = 2**63 - 1


def unknown_fields(serializer: serializers.Serializer, data: Any) -> list[str]:
    """The keys of ``data`` that ``serializer`` has no writable field for, sorted."""
    if not isinstance(data, Mapping):
        return []
    allowed = {name for name, field in serializer.fields.items() if not field.read_only}
    ignored = FORM_KEYS if isinstance(data, QueryDict) else frozenset()
    return sorted(str(key) for key in data if key not in allowed and key not in ignored)


class StrictSerializerMixin:
    """Refuse unknown fields with a 400 that names each of them (``{"scop": ["Unknown field."]}``)."""

    def to_internal_value(self, data: Any) -> Any:
        unknown = unknown_fields(self, data)  # type: ignore[arg-type]
        if unknown:
            raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        return super().to_internal_value(data)  # type: ignore[misc]


class StrictSerializer(StrictSerializerMixin, serializers.Serializer):
    """A plain input serializer that refuses unknown fields."""


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer only: ``"5"``, ``true``, ``5.0`` and ``1e30`` are refused, not coerced.

    Form-encoded bodies carry every value as text, so a string of digits is accepted when the
    request body was a form (``QueryDict``); JSON bodies must send numbers.
    """

    default_error_messages = {"not_integer": "Must be a whole number (a JSON integer)."}

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_value", MAX_BIGINT)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool):
            self.fail("not_integer")
        if isinstance(data, str) and not self._from_form():
            self.fail("not_integer")
        if not isinstance(data, (int, str)):
            self.fail("not_integer")
        return super().to_internal_value(data)

    def _from_form(self) -> bool:
        root = self.root
        return isinstance(getattr(root, "initial_data", None), QueryDict)


class CleanSlugRelatedField(serializers.SlugRelatedField):
    """A SlugRelatedField that refuses text the database cannot compare (NUL, lone surrogates)
    or longer than ``max_length`` before it runs the lookup."""

    def __init__(self, *, max_length: int = 150, **kwargs: Any) -> None:
        self.max_length = max_length
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, str):
            self.fail("invalid")
        problem = bounds.text_problem(data)
        if problem is not None:
            raise serializers.ValidationError(problem)
        if len(data) > self.max_length:
            raise serializers.ValidationError(f"Must be at most {self.max_length} characters.")
        return super().to_internal_value(data)


class SurrogateSafeJSONRenderer(JSONRenderer):
    """DRF's JSON renderer, except that an answer holding an unpaired surrogate is still sent.

    Error messages echo the input (``"bad\\ud800" is not a valid choice``); UTF-8 cannot encode a
    lone surrogate, so the default renderer would turn a 400 into a 500. Such an answer is
    rendered with ASCII escapes instead (``\\ud800``, valid JSON); every other answer is unchanged.
    """

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: dict | None = None) -> bytes:
        try:
            return super().render(data, accepted_media_type, renderer_context)
        except UnicodeEncodeError:
            if data is None:
                return b""
            return json.dumps(data, cls=self.encoder_class, ensure_ascii=True, allow_nan=not self.strict).encode("ascii")

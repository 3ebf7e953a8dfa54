"""The base of every HTML form: text the database cannot store is a form error, never a 500.

Django's ``CharField`` refuses NUL but lets an unpaired surrogate through (a request body or
query string declared as ``charset=utf-7`` decodes to one), and every other field type echoes
what it was given in its error message ("… is not one of the available choices"). Storing,
comparing or rendering such a value fails in the UTF-8 encoder (SQLite, psycopg, the
response), so a form built on ``StorableTextForm`` checks its bound data once against
``config.bounds.text_problem``: each offending field gets that problem as its error, and the
form keeps a copy of its data with those characters replaced by U+FFFD, so neither its
cleaning (lookups, choices) nor the re-rendered page ever sees them.
"""
from __future__ import annotations

from typing import Any

from django import forms
from django.utils.datastructures import MultiValueDict

from config import bounds


def _sentence(problem: str) -> str:
    return problem[:1].upper() + problem[1:]


class StorableTextForm(forms.Form):
    """A ``Form`` whose fields never take NUL or an unpaired surrogate: such a value is an error
    on its field (a 400 naming it), and the form works on a copy of its data without them."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.unstorable: dict[str, str] = {}
        if self.is_bound and self.data:
            self.data = self._storable_data(self.data)

    def _storable_data(self, data: Any) -> Any:
        names = {self.add_prefix(name): name for name in self.fields}
        multi = isinstance(data, MultiValueDict)
        cleaned = None
        for key in list(data.keys()):
            values = data.getlist(key) if multi else [data[key]]
            problems = [bounds.text_problem(v) for v in values if isinstance(v, str)]
            problem = next((p for p in problems if p is not None), None)
            if problem is None:
                continue
            if key in names:
                self.unstorable.setdefault(names[key], _sentence(problem))
            if cleaned is None:
                cleaned = data.copy()
            replaced = [bounds.storable_text(v) if isinstance(v, str) else v for v in values]
            if multi:
                cleaned.setlist(key, replaced)
            else:
                cleaned[key] = replaced[0]
        return data if cleaned is None else cleaned

    def full_clean(self) -> None:
        super().full_clean()
        if not self.unstorable or not hasattr(self, "cleaned_data"):
            return
        for name, problem in self.unstorable.items():
            # This error replaces any other on the field: those are about the stand-in characters.
            self._errors[name] = self.error_class([problem], renderer=self.renderer)
            self.cleaned_data.pop(name, None)

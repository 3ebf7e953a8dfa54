"""Explanations are data: the texts rendered from a decision's facts equal the stored goldens.

``tests/data/engine/explanations.json`` holds, for two synthetic workloads, every line's
supply path and constraints and every exception's message and details as the engine wrote
them when it still built text for every line. The engine now keeps facts and renders text
when it is read; the rendered text must not change.
"""

import json
from pathlib import Path

import pytest

from allocation.engine import allocate
from allocation.engine.synthetic import synthetic_input

GOLDEN = json.loads((Path(__file__).resolve().parents[1] / "data" / "engine" / "explanations.json").read_text())


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_rendered_explanations_equal_the_stored_texts(name):
    case = GOLDEN[name]
    options = dict(case["input"])
    result = allocate(synthetic_input(options.pop("n_lines"), **options))

    lines = {
        str(decision.line_key): {"path": list(decision.path), "constraints": list(decision.constraints)}
        for decision in result.lines
        if decision.path or decision.constraints
    }
    exceptions = {e.key: {"message": e.message, "details": e.details} for e in result.exceptions}

    assert lines == case["lines"]
    assert exceptions == case["exceptions"]

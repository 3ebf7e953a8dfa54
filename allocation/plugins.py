"""Custom score factors ("factor plugins", policies-v1.md ``factor_plugins``; issue 15).

**Registering a factor.** A factor plugin is a Python callable that takes one engine line
(:class:`allocation.engine.types.Line`: customer, tier, segment, region, channel,
``order_kind``, item and class, open quantity, prices, dates, ship-from, credit hold...) and
returns a number in [0, 1]. It is registered under a name in either place:

- the setting ``ALLOT_FACTOR_PLUGINS`` (environment variable of the same name): a comma-separated
  list of ``name=dotted.module.path:callable`` (or ``name=dotted.module.path.callable``);
  the default registers the sample ``expedite_flag`` (:mod:`allocation.plugins_sample`);
- the Python entry-point group ``allot.factors`` of an installed distribution
  (``[project.entry-points."allot.factors"] my_factor = "my_package.factors:my_factor"``).
  A name given in the setting wins over an entry point of the same name.

A callable may also carry a ``bulk`` attribute: a function taking the list of lines and
returning their values in the same order (or a mapping of line key to value), for a factor
that reads something for all lines at once. A policy weights a registered factor per scope:
``"factor_plugins": {"expedite_flag": 0.2}`` adds ``0.2 × value`` to the score of the lines the
rule matches. Names are checked against this registry when a policy is imported, edited or
compiled for a run (:func:`document_errors`).

**In a run.** :func:`compute` calls each named plugin once per run, in bulk, for the lines
whose settings name it (lines of other scopes never reach it), within a time budget per plugin
(``ALLOT_FACTOR_PLUGIN_BUDGET_SECONDS``, 2 s; checked after every call). A plugin that raises,
returns anything but a number in [0, 1] for any line, or overruns its budget is skipped
whole for that run (its lines get no value, so its weight adds nothing): the run records a
warning (``AllocationRun.warnings``) and a data-quality exception ``factor_plugin_failed`` is
opened for it (:func:`record_problems`); the run itself goes on. A call that never returns
cannot be interrupted from Python: the budget bounds plugins that are slow, not ones that hang.
"""
from __future__ import annotations

import dataclasses
import functools
import importlib
import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "allot.factors"
DEFAULT_PLUGINS = (
    "expedite_flag=allocation.plugins_sample:expedite_flag,strategic_item=allocation.plugins_sample:strategic_item"
)
DEFAULT_BUDGET_SECONDS = 2.0
PROBLEM_TYPE = "factor_plugin_failed"  # exceptions.choices.ExceptionType.FACTOR_PLUGIN_FAILED


@dataclass(frozen=True)
class FactorPlugin:
    """One registered factor: its name, the callable, where it was registered and what it says."""

    name: str
    function: Callable[..., Any]
    target: str  # "module:callable"
    source: str  # "setting ALLOT_FACTOR_PLUGINS" or "entry point allot.factors (distribution)"
    description: str = ""

    @property
    def is_bulk(self) -> bool:
        return callable(getattr(self.function, "bulk", None))


@dataclass(frozen=True)
class Registry:
    """The registered factors by name, and the registrations that could not be loaded."""

    plugins: dict[str, FactorPlugin]
    errors: tuple[str, ...] = ()

    def names(self) -> tuple[str, ...]:
        return tuple(sorted(self.plugins))


def _load(target: str) -> Callable[..., Any]:
    module_name, _, attribute = target.partition(":")
    if not attribute:
        module_name, _, attribute = target.rpartition(".")
    if not module_name or not attribute:
        raise ImportError(f"{target!r} is not module:callable")
    value: Any = importlib.import_module(module_name)
    for part in attribute.split("."):
        value = getattr(value, part)
    if not callable(value):
        raise TypeError(f"{target} is not callable")
    return value


def _description(function: Callable[..., Any]) -> str:
    doc = (getattr(function, "__doc__", None) or "").strip()
    return doc.split("\n\n")[0].replace("\n", " ")[:300]


def _entries(text: str) -> list[tuple[str, str]]:
    entries = []
    for chunk in text.split(","):
        chunk = chunk.strip()
        if not chunk:
            continue
        name, _, target = chunk.partition("=")
        entries.append((name.strip(), target.strip()))
    return entries


def _configured() -> str:
    value = getattr(settings, "ALLOT_FACTOR_PLUGINS", DEFAULT_PLUGINS)
    if isinstance(value, Mapping):
        return ",".join(f"{name}={target}" for name, target in value.items())
    if isinstance(value, (list, tuple)):
        return ",".join(value)
    return str(value or "")


@functools.cache
def _registry_for(configured: str) -> Registry:
    plugins: dict[str, FactorPlugin] = {}
    errors: list[str] = []
    try:
        from importlib.metadata import entry_points

        points = list(entry_points(group=ENTRY_POINT_GROUP))
    except Exception as error:  # a broken installed distribution must not stop runs
        points = []
        errors.append(f"entry points {ENTRY_POINT_GROUP}: {type(error).__name__}: {error}")
    for point in points:
        distribution = getattr(getattr(point, "dist", None), "name", None) or "?"
        try:
            function = point.load()
        except Exception as error:
            errors.append(f"{point.name} (entry point of {distribution}): {type(error).__name__}: {error}")
            continue
        plugins[point.name] = FactorPlugin(
            point.name, function, point.value, f"entry point {ENTRY_POINT_GROUP} ({distribution})", _description(function)
        )
    for name, target in _entries(configured):
        if not name or not target:
            errors.append(f"{name or '?'}={target}: give name=module:callable")
            continue
        try:
            function = _load(target)
        except Exception as error:
            errors.append(f"{name}={target}: {type(error).__name__}: {error}")
            continue
        plugins[name] = FactorPlugin(name, function, target, "setting ALLOT_FACTOR_PLUGINS", _description(function))
    for problem in errors:
        logger.warning("factor plugin not registered: %s", problem)
    return Registry(plugins=plugins, errors=tuple(errors))


def registry() -> Registry:
    """The factor plugins registered now (loaded once per distinct configuration)."""
    return _registry_for(_configured())


def reset() -> None:
    """Forget loaded registrations (tests, or after installing a distribution)."""
    _registry_for.cache_clear()


# --- policies ---------------------------------------------------------------------------------


def unknown_names(names: Iterable[str]) -> list[str]:
    known = registry().plugins
    return sorted({name for name in names if name not in known})


def document_errors(document: Any) -> list[dict[str, str]]:
    """Errors for every ``factor_plugins`` name of a policy document that is not registered,
    each naming its field (``rules[2].settings.factor_plugins.my_factor``)."""
    if not isinstance(document, Mapping) or not isinstance(document.get("rules"), list):
        return []
    errors: list[dict[str, str]] = []
    registered = registry().names()
    for index, rule in enumerate(document["rules"]):
        rule_settings = rule.get("settings") if isinstance(rule, Mapping) else None
        chosen = rule_settings.get("factor_plugins") if isinstance(rule_settings, Mapping) else None
        if not isinstance(chosen, Mapping):
            continue
        for name in unknown_names(n for n in chosen if isinstance(n, str)):
            errors.append({
                "field": f"rules[{index}].settings.factor_plugins.{name}",
                "message": "unknown factor plugin; registered: " + (", ".join(registered) or "none") + ".",
            })
    return errors


# --- runs -------------------------------------------------------------------------------------


@dataclass
class PluginOutcome:
    """Each line's plugin values (line key -> ((name, value), ...)) and the run's warnings."""

    values: dict[int, tuple[tuple[str, float], ...]] = field(default_factory=dict)
    warnings: list[dict[str, Any]] = field(default_factory=list)


class PluginProblem(Exception):
    def __init__(self, problem: str, message: str) -> None:
        super().__init__(message)
        self.problem = problem
        self.message = message


def _budget() -> float:
    return float(getattr(settings, "ALLOT_FACTOR_PLUGIN_BUDGET_SECONDS", DEFAULT_BUDGET_SECONDS))


def _checked(value: Any, line: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or not 0 <= value <= 1:
        raise PluginProblem("out_of_range", f"returned {value!r} for line {line.order}/{line.line}; a factor is a number in [0, 1]")
    return float(value)


def _values(plugin: FactorPlugin, lines: Sequence[Any], budget: float) -> list[float]:
    started = time.perf_counter()

    def check_time() -> None:
        elapsed = time.perf_counter() - started
        if elapsed > budget:
            raise PluginProblem("slow", f"took more than its budget of {budget:g} s ({elapsed:.2f} s so far)")

    if plugin.is_bulk:
        raw = plugin.function.bulk(list(lines))
        check_time()
        if isinstance(raw, Mapping):
            found = [raw.get(line.key) for line in lines]
        else:
            found = list(raw)
            if len(found) != len(lines):
                raise PluginProblem("failed", f"bulk returned {len(found)} values for {len(lines)} lines")
        return [_checked(value, line) for value, line in zip(found, lines, strict=True)]
    values = []
    for line in lines:
        values.append(_checked(plugin.function(line), line))
        check_time()
    return values


def compute(lines: Sequence[Any], *, budget_seconds: float | None = None) -> PluginOutcome:
    """Call every plugin some line's settings name, once, for those lines (see the module doc)."""
    wanted: dict[str, list[Any]] = {}
    for line in lines:
        for name, _weight in line.settings.factor_plugins:
            wanted.setdefault(name, []).append(line)
    outcome = PluginOutcome()
    if not wanted:
        return outcome
    known = registry().plugins
    budget = _budget() if budget_seconds is None else budget_seconds
    per_line: dict[int, list[tuple[str, float]]] = {}
    for name in sorted(wanted):
        chosen = wanted[name]
        plugin = known.get(name)
        try:
            if plugin is None:
                raise PluginProblem("unregistered", "is named by the policy but not registered")
            values = _values(plugin, chosen, budget)
        except PluginProblem as problem:
            outcome.warnings.append(_warning(name, problem.problem, problem.message, len(chosen), plugin))
            continue
        except Exception as error:  # a plugin's bug must not fail the run
            outcome.warnings.append(_warning(name, "failed", f"raised {type(error).__name__}: {error}", len(chosen), plugin))
            continue
        for line, value in zip(chosen, values, strict=True):
            per_line.setdefault(line.key, []).append((name, value))
    outcome.values = {key: tuple(found) for key, found in per_line.items()}
    return outcome


def _warning(name: str, problem: str, message: str, lines: int, plugin: FactorPlugin | None) -> dict[str, Any]:
    text = f"Factor plugin {name} {message}: skipped for this run ({lines} lines scored without it)."
    logger.warning(text)
    return {
        "kind": "factor_plugin", "plugin": name, "problem": problem, "message": text[:500], "lines": lines,
        "target": plugin.target if plugin is not None else None,
    }


def with_values(lines: Sequence[Any], outcome: PluginOutcome) -> tuple[Any, ...]:
    """The lines with their plugin values (engine ``Line.plugin_factors``); only lines that got
    values are copied. An engine without the field is given the lines unchanged."""
    if not outcome.values or "plugin_factors" not in getattr(type(lines[0]) if lines else object, "__dataclass_fields__", {}):
        return tuple(lines)
    values = outcome.values
    return tuple(
        dataclasses.replace(line, plugin_factors=values[line.key]) if line.key in values else line for line in lines
    )


def apply(lines: Sequence[Any]) -> tuple[tuple[Any, ...], list[dict[str, Any]]]:
    """:func:`compute` then :func:`with_values`: the lines for the engine and the run's warnings."""
    outcome = compute(lines)
    return with_values(lines, outcome), outcome.warnings


def record_problems(warnings: Sequence[Mapping[str, Any]]) -> None:
    """Open one data-quality exception ``factor_plugin_failed`` per plugin a run skipped
    (unless one is active for it already), through the data-quality exception service."""
    from integrations.services import DataQualityIssue, _open_exceptions

    issues = [
        DataQualityIssue(
            kind=PROBLEM_TYPE,
            key=f"{PROBLEM_TYPE}:{warning['plugin']}",
            message=str(warning["message"]),
            details={k: warning.get(k) for k in ("plugin", "problem", "lines", "target")},
            source="allocation",
        )
        for warning in warnings
        if warning.get("kind") == "factor_plugin"
    ]
    if issues:
        _open_exceptions(issues)


def listing() -> list[dict[str, str]]:
    """Every registered plugin with its source, for the Why page and the policy editor."""
    found = registry()
    return [
        {"name": p.name, "target": p.target, "source": p.source, "description": p.description, "mode": "bulk" if p.is_bulk else "per line"}
        for p in sorted(found.plugins.values(), key=lambda p: p.name)
    ]

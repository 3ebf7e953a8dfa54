"""The policy document contract (policies-v1.md): settings catalogue, defaults and validation.

Plain Python (only config.bounds reads a setting): the same checks run on import, in the editor, the API and before a
policy is compiled. ``validate_document`` returns every problem at once, each naming the
field by its path in the document (``rules[1].settings.strategy``), so nothing invalid is
ever saved and the person editing sees all the errors together.

Everything accepted can be stored and read back (config.bounds): the effective date lies
within ten years of now, text holds no NUL or unpaired surrogate and fits its column (names
200 characters, codes and scope values 64), quantities fit ``DecimalField(14, 3)`` and every
number setting has an upper bound.
"""
from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from config import bounds

# Scope dimensions in precedence order (first = highest precedence).
DIMENSIONS: tuple[str, ...] = (
    "customer",
    "customer_segment",
    "customer_tier",
    "channel",
    "order_kind",
    "item",
    "item_class",
    "location",
    "region",
)
STRATEGIES: tuple[str, ...] = ("win", "gain", "redistribute", "fill", "lose")
WEIGHT_FACTORS: tuple[str, ...] = ("tier", "urgency", "margin", "value", "age", "penalty", "risk")
DEFAULT_WEIGHTS: dict[str, float] = {
    "tier": 0.35,
    "urgency": 0.25,
    "margin": 0.15,
    "value": 0.10,
    "age": 0.10,
    "penalty": 0.05,
    "risk": 0.0,
}
PERIODS: tuple[str, ...] = ("day", "week", "month")
# The values of the order_kind dimension (events-v1 order.upserted ``kind``).
ORDER_KINDS: tuple[str, ...] = ("order", "quote")
DOCUMENT_KEYS = ("name", "effective_from", "rules", "protections", "quotas")
# Column sizes of policies.models: PolicyVersion.name, the code columns, Protection/Quota.quantity.
NAME_MAX_LENGTH = 200
CODE_MAX_LENGTH = 64
QUANTITY_DIGITS, QUANTITY_PLACES = 14, 3
# Upper bounds of open-ended settings: far beyond any real policy, small enough to compute with.
MAX_DAYS = 3650
MAX_MINUTES = 60 * 24 * 365
MAX_LOCATIONS = 1000
MAX_MONEY = 1e12
MAX_WEIGHT = 1000.0

Errors = list[dict[str, str]]


def key_text(key: Any) -> str:
    """An object key as it appears in an error's field path: escaped when it holds NUL or a
    lone surrogate (the path is shown on pages and must encode as UTF-8), cut at 80 characters."""
    text = str(key)
    if bounds.text_problem(text) is not None:
        text = text.encode("unicode_escape", "backslashreplace").decode("ascii")
    return text if len(text) <= 80 else text[:79] + "…"


def _is_number(value: Any) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and not (isinstance(value, float) and not math.isfinite(value))
    )


def _is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class SettingSpec:
    """One setting of the catalogue: its default, a one-line meaning and its checker."""

    name: str
    default: Any
    help: str
    check: Callable[[Any, str, Errors], None]


def _choice(choices: tuple[str, ...]) -> Callable[[Any, str, Errors], None]:
    def check(value: Any, path: str, errors: Errors) -> None:
        if not isinstance(value, str) or value not in choices:
            errors.append({"field": path, "message": f"must be one of {', '.join(choices)}; got {bounds.short_repr(value)}."})

    return check


def _integer(minimum: int, maximum: int | None = None) -> Callable[[Any, str, Errors], None]:
    def check(value: Any, path: str, errors: Errors) -> None:
        if not _is_integer(value):
            errors.append({"field": path, "message": f"must be a whole number; got {bounds.short_repr(value)}."})
        elif value < minimum or (maximum is not None and value > maximum):
            bound = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
            errors.append({"field": path, "message": f"must be {bound}; got {value}."})

    return check


def _optional_integer(minimum: int, maximum: int) -> Callable[[Any, str, Errors], None]:
    whole = _integer(minimum, maximum)

    def check(value: Any, path: str, errors: Errors) -> None:
        if value is not None:
            whole(value, path, errors)

    return check


def _number(minimum: float, maximum: float | None = None, nullable: bool = False) -> Callable[[Any, str, Errors], None]:
    def check(value: Any, path: str, errors: Errors) -> None:
        if value is None and nullable:
            return
        if not _is_number(value):
            kind = "a number or null" if nullable else "a number"
            errors.append({"field": path, "message": f"must be {kind}; got {bounds.short_repr(value)}."})
        elif value < minimum or (maximum is not None and value > maximum):
            bound = f"between {minimum:g} and {maximum:g}" if maximum is not None else f"at least {minimum:g}"
            errors.append({"field": path, "message": f"must be {bound}; got {value}."})

    return check


def _boolean(value: Any, path: str, errors: Errors) -> None:
    if not isinstance(value, bool):
        errors.append({"field": path, "message": f"must be true or false; got {bounds.short_repr(value)}."})


def _weights(value: Any, path: str, errors: Errors) -> None:
    if not isinstance(value, dict):
        errors.append({"field": path, "message": "must be an object of factor to weight."})
        return
    for factor, weight in value.items():
        if factor not in WEIGHT_FACTORS:
            errors.append(
                {"field": f"{path}.{key_text(factor)}", "message": f"unknown factor; known: {', '.join(WEIGHT_FACTORS)}."}
            )
        elif not _is_number(weight) or not 0 <= weight <= MAX_WEIGHT:
            errors.append(
                {"field": f"{path}.{factor}", "message": f"must be a number between 0 and {MAX_WEIGHT:g}; got {bounds.short_repr(weight)}."}
            )


SHARE_MODES: tuple[str, ...] = ("rank", "pro_rata", "equal")
EXECUTION_MODES: tuple[str, ...] = ("auto", "recommend")
PLUGIN_NAME_MAX_LENGTH = 64


def _factor_plugins(value: Any, path: str, errors: Errors) -> None:
    """``null`` or an object of registered factor name to weight (allocation.plugins checks
    the names against the registry when a policy is compiled for a run)."""
    if value is None:
        return
    if not isinstance(value, dict):
        errors.append({"field": path, "message": "must be null or an object of factor name to weight."})
        return
    for name, weight in value.items():
        field = f"{path}.{key_text(name)}"
        if not isinstance(name, str) or not name.strip():
            errors.append({"field": field, "message": "factor name must be a non-empty text."})
        elif not _text_fits(name, field, PLUGIN_NAME_MAX_LENGTH, errors):
            continue
        elif not _is_number(weight) or not 0 <= weight <= MAX_WEIGHT:
            errors.append({"field": field, "message": f"must be a number between 0 and {MAX_WEIGHT:g}; got {bounds.short_repr(weight)}."})


SETTINGS: dict[str, SettingSpec] = {
    spec.name: spec
    for spec in (
        SettingSpec("strategy", "redistribute", "win, gain, redistribute, fill or lose", _choice(STRATEGIES)),
        SettingSpec("priority_class", 5, "1 (first) to 9; ranks before the score", _integer(1, 9)),
        SettingSpec("weights", dict(DEFAULT_WEIGHTS), "factor to weight; named factors replace defaults", _weights),
        SettingSpec("urgency_horizon_days", 14, "days ahead at which urgency reaches 0", _integer(1, MAX_DAYS)),
        SettingSpec("allow_partial", True, "may a line be filled partly", _boolean),
        SettingSpec("max_split_locations", 2, "most locations one line may be sourced from", _integer(1, MAX_LOCATIONS)),
        SettingSpec("inbound_min_confidence", 0.7, "inbound counts only at or above this confidence", _number(0, 1)),
        SettingSpec("allow_substitutes", True, "may substitutes be used when the line allows them", _boolean),
        SettingSpec("substitute_needs_approval", True, "substitution is proposed until approved", _boolean),
        SettingSpec("auto_release_max_value", None, "line value above which release needs approval", _number(0, MAX_MONEY, nullable=True)),
        SettingSpec("override_approval_min_value", 10000, "override of a line worth at least this needs an approver", _number(0, MAX_MONEY)),
        SettingSpec("margin_floor_pct", None, "a line below this margin (%) raises an exception", _number(0, 100, nullable=True)),
        SettingSpec("stale_feed_minutes", 60, "a source silent longer than this is stale", _integer(1, MAX_MINUTES)),
        SettingSpec("stale_feed_buffer_pct", 10, "on-hand discounted by this % while its feed is stale", _number(0, 100)),
        SettingSpec(
            "promise_risk_tolerance_days", 0,
            "days after the due date a confirmation may fall before the promise is at risk", _integer(0, MAX_DAYS),
        ),
        SettingSpec(
            "exception_min_value", 0,
            "line value below which a line's exceptions raise no case (KPIs still count them)", _number(0, MAX_MONEY),
        ),
        SettingSpec(
            "allocation_horizon_days", None,
            "lines due further ahead than this take nothing yet", _optional_integer(0, MAX_DAYS),
        ),
        SettingSpec("freeze_days", 0, "reservations confirmed within this many days are fixed", _integer(0, MAX_DAYS)),
        SettingSpec("min_fill_pct", 0, "a line covered below this share (%) of its open quantity takes nothing", _number(0, 100)),
        SettingSpec("share_mode", "rank", "rank, pro_rata or equal within a strategy and priority class", _choice(SHARE_MODES)),
        SettingSpec("factor_plugins", None, "extra score factors by registered name, each with its weight", _factor_plugins),
        SettingSpec(
            "execution_mode", "auto",
            "auto: reserve, release and publish; recommend: propose until a planner accepts", _choice(EXECUTION_MODES),
        ),
    )
}
SETTING_NAMES: tuple[str, ...] = tuple(SETTINGS)


def defaults() -> dict[str, Any]:
    """A fresh copy of every setting's default (the weights object included)."""
    return {name: (dict(spec.default) if isinstance(spec.default, dict) else spec.default) for name, spec in SETTINGS.items()}


def scope_value_text(value: Any) -> str:
    """The canonical text of a scope value: tiers may be written 1 or "1"."""
    return str(value)


def validate_scope(scope: Any, path: str) -> Errors:
    """Check a rule's ``scope`` or a protection's/quota's ``for``: known dimensions, non-empty values."""
    errors: Errors = []
    if not isinstance(scope, dict):
        return [{"field": path, "message": "must be an object of dimension to value."}]
    for dimension, value in scope.items():
        field = f"{path}.{key_text(dimension)}"
        if dimension not in DIMENSIONS:
            errors.append({"field": field, "message": f"unknown scope dimension; known: {', '.join(DIMENSIONS)}."})
        elif dimension == "customer_tier":
            if not ((_is_integer(value) and 1 <= value <= 4) or (isinstance(value, str) and value in {"1", "2", "3", "4"})):
                errors.append({"field": field, "message": f"must be a customer tier 1 to 4; got {bounds.short_repr(value)}."})
        elif dimension == "order_kind":
            if not isinstance(value, str) or value not in ORDER_KINDS:
                errors.append({"field": field, "message": f"must be one of {', '.join(ORDER_KINDS)}; got {bounds.short_repr(value)}."})
        elif not isinstance(value, str) or not value.strip():
            errors.append({"field": field, "message": f"must be a non-empty text; got {bounds.short_repr(value)}."})
        else:
            _text_fits(value, field, CODE_MAX_LENGTH, errors)
    return errors


def validate_settings(settings: Any, path: str) -> Errors:
    """Check a rule's settings against the catalogue: unknown names, types and ranges."""
    if not isinstance(settings, dict):
        return [{"field": path, "message": "must be an object of setting to value."}]
    errors: Errors = []
    for name, value in settings.items():
        spec = SETTINGS.get(name)
        if spec is None:
            errors.append({"field": f"{path}.{key_text(name)}", "message": "unknown setting."})
        else:
            spec.check(value, f"{path}.{name}", errors)
    return errors


def _unknown_keys(obj: Mapping, allowed: tuple[str, ...], path: str) -> Errors:
    return [
        {"field": f"{path}.{key_text(key)}" if path else key_text(key), "message": f"unknown field; expected {', '.join(allowed)}."}
        for key in obj
        if key not in allowed
    ]


def _text_fits(value: str, field: str, max_length: int, errors: Errors) -> bool:
    """Text that can be stored in its column: no NUL or lone surrogate, at most ``max_length``."""
    problem = bounds.text_problem(value)
    if problem is None and len(value) > max_length:
        problem = f"must be at most {max_length} characters; got {len(value)}."
    if problem is not None:
        errors.append({"field": field, "message": problem})
    return problem is None


def _required_text(obj: Mapping, key: str, path: str, errors: Errors) -> None:
    value = obj.get(key)
    if not isinstance(value, str) or not value.strip():
        errors.append({"field": f"{path}.{key}", "message": "is required (non-empty text)."})
    else:
        _text_fits(value, f"{path}.{key}", CODE_MAX_LENGTH, errors)


def _quantity(obj: Mapping, path: str, errors: Errors) -> None:
    if "quantity" not in obj:
        errors.append({"field": f"{path}.quantity", "message": "is required."})
    elif not _is_number(obj["quantity"]) or obj["quantity"] < 0:
        errors.append({"field": f"{path}.quantity", "message": f"must be a number at least 0; got {bounds.short_repr(obj['quantity'])}."})
    else:
        problem = bounds.decimal_problem(obj["quantity"], max_digits=QUANTITY_DIGITS, decimal_places=QUANTITY_PLACES)
        if problem is not None:
            errors.append({"field": f"{path}.quantity", "message": problem})


def _for_scope(obj: Mapping, path: str, errors: Errors) -> None:
    if "for" not in obj:
        errors.append({"field": f"{path}.for", "message": "is required (an object of dimension to value; {} = every line)."})
    else:
        errors.extend(validate_scope(obj["for"], f"{path}.for"))


def validate_rule(rule: Any, path: str) -> Errors:
    """Check one rule ``{"scope": {...}, "settings": {...}}``."""
    if not isinstance(rule, dict):
        return [{"field": path, "message": "must be an object with scope and settings."}]
    errors = _unknown_keys(rule, ("scope", "settings"), path)
    if "scope" not in rule:
        errors.append({"field": f"{path}.scope", "message": "is required ({} for the global rule)."})
    else:
        errors.extend(validate_scope(rule["scope"], f"{path}.scope"))
    if "settings" not in rule:
        errors.append({"field": f"{path}.settings", "message": "is required."})
    else:
        errors.extend(validate_settings(rule["settings"], f"{path}.settings"))
    return errors


def validate_protection(protection: Any, path: str) -> Errors:
    """Check one protection ``{"sku", "location", "quantity", "for"}``."""
    if not isinstance(protection, dict):
        return [{"field": path, "message": "must be an object with sku, location, quantity and for."}]
    errors = _unknown_keys(protection, ("sku", "location", "quantity", "for"), path)
    _required_text(protection, "sku", path, errors)
    _required_text(protection, "location", path, errors)
    _quantity(protection, path, errors)
    _for_scope(protection, path, errors)
    return errors


def validate_quota(quota: Any, path: str) -> Errors:
    """Check one quota: exactly one of ``sku``/``item_class``, ``for``, ``period`` and ``quantity``."""
    if not isinstance(quota, dict):
        return [{"field": path, "message": "must be an object with sku or item_class, for, period and quantity."}]
    errors = _unknown_keys(quota, ("sku", "item_class", "for", "period", "quantity"), path)
    has_sku, has_class = "sku" in quota, "item_class" in quota
    if has_sku == has_class:
        errors.append({"field": f"{path}.sku", "message": "give exactly one of sku or item_class."})
    else:
        _required_text(quota, "sku" if has_sku else "item_class", path, errors)
    _for_scope(quota, path, errors)
    if "period" not in quota:
        errors.append({"field": f"{path}.period", "message": f"is required: one of {', '.join(PERIODS)}."})
    elif not isinstance(quota["period"], str) or quota["period"] not in PERIODS:
        errors.append({"field": f"{path}.period", "message": f"must be one of {', '.join(PERIODS)}; got {bounds.short_repr(quota['period'])}."})
    _quantity(quota, path, errors)
    return errors


def parse_effective_from(value: Any) -> dt.datetime | None:
    """An ISO 8601 datetime with a time zone ("Z" allowed), or None when it is not one."""
    if not isinstance(value, str) or len(value) > 64:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00") if value.endswith("Z") else value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None and parsed.utcoffset() is not None else None


def effective_from_problem(value: dt.datetime) -> str | None:
    """Why an effective date cannot be stored (outside the ten-year window), or None."""
    if value.tzinfo is None or value.utcoffset() is None:
        return "needs a time zone."
    return bounds.datetime_problem(value)


def validate_document(doc: Any) -> Errors:
    """Every problem of a policy document, each as ``{"field": path, "message": text}``.

    Checks the top-level keys, the name and effective date, every rule (known scope
    dimensions, known settings with the right types and ranges), the presence of the
    global rule ``{}``, and every protection and quota. An empty list means valid.
    """
    if not isinstance(doc, dict):
        return [{"field": "", "message": "The document must be a JSON object."}]
    errors = _unknown_keys(doc, DOCUMENT_KEYS, "")
    name = doc.get("name")
    if not isinstance(name, str) or not name.strip():
        errors.append({"field": "name", "message": "is required (non-empty text)."})
    else:
        _text_fits(name, "name", NAME_MAX_LENGTH, errors)
    if "effective_from" in doc and doc["effective_from"] is not None:
        effective_from = parse_effective_from(doc["effective_from"])
        if effective_from is None:
            errors.append({"field": "effective_from", "message": "must be an ISO 8601 date-time with a time zone, e.g. 2026-06-01T00:00:00Z."})
        elif (problem := effective_from_problem(effective_from)) is not None:
            errors.append({"field": "effective_from", "message": problem})
    rules = doc.get("rules")
    if not isinstance(rules, list):
        errors.append({"field": "rules", "message": "is required: a list of rules including the global rule {}."})
    else:
        for index, rule in enumerate(rules):
            errors.extend(validate_rule(rule, f"rules[{index}]"))
        if not any(isinstance(rule, dict) and rule.get("scope") == {} for rule in rules):
            errors.append({"field": "rules", "message": "The global rule (scope {}) is required."})
    for key, check in (("protections", validate_protection), ("quotas", validate_quota)):
        items = doc.get(key, [])
        if not isinstance(items, list):
            errors.append({"field": key, "message": "must be a list."})
            continue
        for index, item in enumerate(items):
            errors.extend(check(item, f"{key}[{index}]"))
    return errors

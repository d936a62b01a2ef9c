"""Config value parsers: raw YAML or CLI values in, typed values out, or a one-line `ConfigError`.

This module owns how one value is read — booleans, bounded numbers, strings and paths, integer and string
lists (comma strings, YAML lists, `{start, stop, step}` ranges), JSON-like trees, mappings and flag
mappings, environments, objectives, constraints, plugin names and the `profile_models` forms — and `Where`,
the key path and source that every error message names. It knows no config key: which parser a key uses is
the field table's business (`kernel/config_fields.py`), which flags a flag mapping accepts is
`kernel/config_whitelists.py`'s.
"""

from __future__ import annotations

import difflib
import math
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, NoReturn

import attrs

from modelyzer.kernel import metrics
from modelyzer.kernel.errors import ConfigError
from modelyzer.kernel.models import Constraint, Objective

MAX_LIST_LENGTH = 100_000
"""Longest list a range may expand to (a typo like `stop: 10000000000` must not eat the memory)."""

#: the longest file name and path the file systems take (Linux's NAME_MAX and PATH_MAX - 1)
NAME_MAX = 255
PATH_MAX = 4095

TRUE_WORDS = frozenset({"true", "yes", "on", "1"})
FALSE_WORDS = frozenset({"false", "no", "off", "0"})


def one_line(text: str) -> str:
    """`text` on one line of a terminal: line breaks and other control characters (\\x1e, \\u2028, escape
    sequences, …) escaped."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)


def show(value: Any) -> str:
    """A short repr of a user value for error messages."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def did_you_mean(name: object, choices: Iterable[str]) -> str:
    key = str(name).strip().replace("-", "_")
    match = difflib.get_close_matches(key, sorted(choices), n=1, cutoff=0.6)
    return f"; did you mean '{match[0]}'?" if match else ""


@attrs.frozen
class Where:
    """Where a value came from: its dotted key path and a source suffix (file or CLI flag) for messages."""

    path: str
    source: str = ""

    def child(self, key: object) -> Where:
        return Where(f"{self.path}.{key}", self.source)

    def fail(self, problem: str) -> NoReturn:
        raise ConfigError(one_line(f"{self.path}: {problem}{self.source}"))


# ---- scalar parsers ---------------------------------------------------------------------------------


def parse_bool(value: Any, where: Where) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in TRUE_WORDS | FALSE_WORDS:
        return value.strip().lower() in TRUE_WORDS
    where.fail(f"must be true or false, got {show(value)}")


def _to_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    number: float
    if isinstance(value, float):
        number = value
    elif isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
        try:
            number = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return int(number) if math.isfinite(number) and number.is_integer() else None


def _to_float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = float(value.strip()) if isinstance(value, str) else float(value)
    except (ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def _bound_text(noun: str, minimum: float | None, maximum: float | None) -> str:
    if minimum is not None and maximum is not None:
        return f"must be {noun} between {minimum:g} and {maximum:g}"
    if minimum == 1 and noun == "an integer":
        return "must be a positive integer"
    if minimum == 0:
        return f"must be {'a non-negative integer' if noun == 'an integer' else 'a number >= 0'}"
    if minimum is not None:
        return f"must be {noun} >= {minimum:g}"
    return f"must be {noun}"


def parse_int(value: Any, where: Where, minimum: float | None = None, maximum: float | None = None) -> int:
    number = _to_int(value)
    if number is None:
        where.fail(f"must be an integer, got {show(value)}")
    if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
        where.fail(f"{_bound_text('an integer', minimum, maximum)}, got {number}")
    return number


def parse_float(value: Any, where: Where, minimum: float | None = None, maximum: float | None = None,
                exclusive_min: bool = False) -> float:
    number = _to_float(value)
    if number is None:
        where.fail(f"must be a number, got {show(value)}")
    if minimum is not None and (number < minimum or (exclusive_min and number == minimum)):
        where.fail(f"must be a number {'>' if exclusive_min else '>='} {minimum:g}, got {number:g}")
    if maximum is not None and number > maximum:
        where.fail(f"must be a number <= {maximum:g}, got {number:g}")
    return number


def parse_str(value: Any, where: Where) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    where.fail(f"must be a string, got {show(value)}")


def parse_path(value: Any, where: Where) -> Path:
    text = parse_str(value, where).strip()
    if not text:
        where.fail("must be a path, got an empty string")
    if "\0" in text:
        where.fail("must be a path, got a string with a NUL byte")
    path = Path(os.path.expanduser(text))
    if len(os.fsencode(path)) > PATH_MAX or any(len(os.fsencode(part)) > NAME_MAX for part in path.parts):
        where.fail(f"is too long for a path ({show(text)}: at most {NAME_MAX} bytes per name, {PATH_MAX} in all)")
    return path


# ---- list parsers -----------------------------------------------------------------------------------


def _expand_range(value: Mapping[Any, Any], where: Where, minimum: int) -> list[int]:
    unknown = [k for k in value if k not in ("start", "stop", "step")]
    if unknown:
        where.fail(f"a range takes keys start, stop, step; got {show(unknown[0])}")
    if "start" not in value or "stop" not in value:
        where.fail("a range needs both 'start' and 'stop' (stop is inclusive), e.g. {start: 1, stop: 64, step: 2}")
    start = parse_int(value["start"], where.child("start"), minimum)
    stop = parse_int(value["stop"], where.child("stop"), minimum)
    step = parse_int(value.get("step", 1), where.child("step"), 1)
    if start > stop:
        where.fail(f"range start ({start}) is greater than stop ({stop})")
    if (stop - start) // step + 1 > MAX_LIST_LENGTH:
        where.fail(f"range expands to more than {MAX_LIST_LENGTH} values; use a larger step")
    return list(range(start, stop + 1, step))


def parse_int_list(value: Any, where: Where, minimum: int = 1) -> list[int]:
    """Comma string, YAML list, single number, or `{start, stop, step}` range with an inclusive stop."""
    noun = "positive integers" if minimum == 1 else f"integers >= {minimum}"
    if value is None:
        return []
    if isinstance(value, Mapping):
        return _expand_range(value, where, minimum)
    items: list[Any]
    if isinstance(value, str):
        items = [part.strip() for part in value.split(",") if part.strip()]
    elif isinstance(value, list | tuple):
        items = list(value)
    else:
        items = [value]
    if len(items) > MAX_LIST_LENGTH:
        where.fail(f"has more than {MAX_LIST_LENGTH} values")
    out: list[int] = []
    for item in items:
        number = _to_int(item)
        if number is None or number < minimum:
            where.fail(f"must be a list of {noun} (comma string, list or {{start, stop, step}}), got {show(item)}")
        out.append(number)
    return out


def parse_str_list(value: Any, where: Where) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    items = list(value) if isinstance(value, list | tuple) else [value]
    out = []
    for item in items:
        if isinstance(item, bool) or not isinstance(item, str | int | float):
            where.fail(f"must be a list of strings (comma string or YAML list), got {show(item)}")
        out.append(str(item).strip())
    return [item for item in out if item]


# ---- mappings ---------------------------------------------------------------------------------------

SCALARS = (str, int, float, bool)


def check_tree(value: Any, where: Where, budget: list[int] | None = None) -> Any:
    """Validate a JSON-like tree (str keys; scalars, lists, mappings) and return a plain copy of it."""
    budget = budget if budget is not None else [0]
    budget[0] += 1
    if budget[0] > MAX_LIST_LENGTH:
        where.fail(f"is too large (more than {MAX_LIST_LENGTH} values)")
    if where.path.count(".") + where.path.count("[") > 64:
        where.fail("is nested more than 64 levels deep")
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            where.fail(f"must be a finite number, got {show(value)}")
        return value
    if isinstance(value, list | tuple):
        return [check_tree(item, Where(f"{where.path}[{i}]", where.source), budget) for i, item in enumerate(value)]
    if isinstance(value, Mapping):
        return {str(k): check_tree(v, where.child(k), budget) for k, v in parse_mapping(value, where).items()}
    where.fail(f"must be a string, number, boolean, list or mapping, got {show(value)}")


def parse_mapping(value: Any, where: Where) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        where.fail(f"must be a mapping of keys to values, got {show(value)}")
    for key in value:
        if not isinstance(key, str) or not key.strip():
            where.fail(f"keys must be non-empty strings, got {show(key)}")
    return dict(value)


def parse_flag_dict(value: Any, where: Where, allowed: frozenset[str] | None = None, kebab: bool = False,
                    hint: str = "") -> dict[str, Any]:
    """Command-line flag mappings: scalar or list-of-scalar values; keys checked against `allowed`."""
    out: dict[str, Any] = {}
    for raw_key, item in parse_mapping(value, where).items():
        key = raw_key.strip().replace("_", "-") if kebab else raw_key.strip()
        at = where.child(raw_key)
        if allowed is not None and key not in allowed:
            match = difflib.get_close_matches(key.replace("_", "-"), sorted(allowed), n=1, cutoff=0.6)
            suggestion = f"; did you mean '{match[0]}'?" if match else ""
            at.fail(f"is not an accepted flag{hint}{suggestion}")
        if item is None:
            continue
        if isinstance(item, list):
            if not all(isinstance(x, SCALARS) for x in item):
                at.fail(f"must be a value or a list of values, got {show(item)}")
        elif not isinstance(item, SCALARS):
            at.fail(f"must be a value or a list of values, got {show(item)}")
        out[key] = check_tree(item, at)
    return out


def parse_environment(value: Any, where: Where) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, item in parse_mapping(value, where).items():
        if isinstance(item, bool):
            out[key] = str(item).lower()
        elif item is None:
            out[key] = ""
        else:
            out[key] = parse_str(item, where.child(key))
    return out


# ---- objectives and constraints --------------------------------------------------------------------


def _metric_tag(tag: Any, where: Where) -> str:
    if not isinstance(tag, str) or not metrics.is_known(tag):
        where.fail(f"unknown metric tag {show(tag)}{did_you_mean(tag, metrics.all_metrics())}")
    return tag


def parse_objectives(value: Any, where: Where) -> tuple[Objective, ...]:
    """`{tag: weight}`, a list of tags (each weight 10) or a comma string of tags."""
    if isinstance(value, Mapping):
        objectives = tuple(
            Objective(_metric_tag(tag, where), parse_float(weight, where.child(tag), 0, exclusive_min=True))
            for tag, weight in value.items()
        )
    elif isinstance(value, str | list | tuple):
        objectives = tuple(Objective(_metric_tag(tag, where), 10.0) for tag in parse_str_list(value, where))
    else:
        where.fail(f"must be a mapping of metric tag to weight or a list of metric tags, got {show(value)}")
    if not objectives:
        where.fail("must name at least one metric, e.g. {perf_throughput: 10}")
    return objectives


def parse_constraints(value: Any, where: Where) -> tuple[Constraint, ...]:
    """`{tag: {min|max: value}}`: `min` for higher-is-better metrics, `max` for lower-is-better ones."""
    out = []
    for tag, bounds in parse_mapping(value, where).items():
        at = where.child(tag)
        _metric_tag(tag, where)
        info = metrics.get(tag)
        bound = "min" if info is None or info.direction == metrics.HIGHER else "max"
        bounds = parse_mapping(bounds, at)
        if not bounds:
            at.fail(f"needs a bound, e.g. {{{bound}: 100}}")
        for key in bounds:
            if key not in ("min", "max"):
                at.fail(f"takes 'min' or 'max', got {show(key)}")
            if key != bound:
                better = "higher" if bound == "min" else "lower"
                at.fail(f"takes '{bound}' ({better} is better for {tag}), not '{key}'")
        limit = parse_float(bounds[bound], at.child(bound), 0)
        out.append(Constraint(tag, min=limit) if bound == "min" else Constraint(tag, max=limit))
    return tuple(out)


# ---- plugin names and model lists ---------------------------------------------------------------

_PLUGIN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")


def parse_plugin_name(value: Any, where: Where) -> str:
    text = parse_str(value, where).strip()
    if not _PLUGIN_NAME.match(text):
        where.fail(f"must be a plugin name (letters, digits, _ . -), got {show(value)}")
    return text


def parse_model_entries(value: Any, where: Where) -> list[tuple[str, dict[str, Any], Where]]:
    """`profile_models` forms → [(name, per-model settings, where)]: comma string, list, or mapping."""
    entries: list[tuple[str, dict[str, Any], Where]] = []
    seen: set[str] = set()

    def add(raw_name: Any, settings: Any) -> None:
        if isinstance(raw_name, bool) or not isinstance(raw_name, str | int):
            where.fail(f"model names must be strings, got {show(raw_name)}")
        name = str(raw_name).strip()
        if not name or "/" in name or "\\" in name or name in (".", ".."):
            where.fail(f"{show(raw_name)} is not a model name (a directory name in model_repository)")
        if name in seen:
            where.fail(f"model {name!r} is listed twice")
        seen.add(name)
        if settings is not None and not isinstance(settings, Mapping):
            where.child(name).fail(f"must be a mapping of per-model settings (e.g. parameters, objectives), "
                                   f"got {show(settings)}")
        entries.append((name, parse_mapping(settings, where.child(name)), where.child(name)))

    if value is None:
        return entries
    if isinstance(value, str):
        for name in value.split(","):
            if name.strip():
                add(name, None)
    elif isinstance(value, list | tuple):
        for item in value:
            if isinstance(item, Mapping):
                for name, settings in item.items():
                    add(name, settings)
            else:
                add(item, None)
    elif isinstance(value, Mapping):
        for name, settings in value.items():
            add(name, settings)
    else:
        where.fail(f"must be a comma list, a list of model names or a mapping name → settings, got {show(value)}")
    return entries

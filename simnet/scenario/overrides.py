"""Overrides: ``KEY=VALUE`` settings applied to a scenario's TOML before it is checked.

KEY is a dotted path into the scenario (``training.learning_rate``,
``network.layers``, ``script[0].at``, ``seed``), VALUE a TOML value (``0.1``,
``[2, 8, 1]``, ``"adam"``; a bare word such as ``adam`` is taken as a string).
The scenario with its overrides is written out again as TOML, the
*effective scenario text*, and loaded like any file: an unknown key or a
wrong type is the usual ScenarioError naming the key path.
"""
import datetime
import json
import math
import re
import tomllib

from ..errors import ScenarioError

__all__ = ["KEY_PATH", "apply", "dumps", "key_parts", "parse_assignment", "parse_value", "toml_value"]

# name, then [index]...; names joined by dots: training.learning_rate, script[0].at, expect.at_step[1].step
_PART = r"[A-Za-z0-9_-]+(?:\[\d+\])*"
KEY_PATH = re.compile(rf"{_PART}(?:\.{_PART})*")
_BARE_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def key_parts(key, file="--set"):
    """The steps of dotted path `key`: names (str) and array indexes (int), in order.

    >>> key_parts("script[0].at")
    ['script', 0, 'at']
    """
    if not isinstance(key, str) or not KEY_PATH.fullmatch(key):
        raise ScenarioError(file, key if isinstance(key, str) else repr(key),
                            "not a key path; expected names joined by dots, arrays indexed as [0] "
                            "(training.learning_rate, script[0].at)")
    parts = []
    for name, indexes in re.findall(r"([A-Za-z0-9_-]+)((?:\[\d+\])*)", key):
        parts.append(name)
        parts += [int(i) for i in re.findall(r"\d+", indexes)]
    return parts


def parse_value(text, where="--set"):
    """The TOML value `text` stands for (a bare word is a string); ScenarioError naming `where` otherwise.

    >>> parse_value("[2, 8, 1]"), parse_value("0.1"), parse_value("adam")
    ([2, 8, 1], 0.1, 'adam')
    """
    try:
        return tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError:
        if _BARE_WORD.fullmatch(text.strip()):
            return text.strip()
        raise ScenarioError("--set", where, f"{text[:40]!r} is not a TOML value (a number, true/false, "
                            "\"text\", [an, array])") from None


def parse_assignment(text):
    """(key, value) of a ``KEY=VALUE`` command-line setting; ScenarioError if it is not one.

    >>> parse_assignment("training.learning_rate=0.1")
    ('training.learning_rate', 0.1)
    """
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not value.strip():
        raise ScenarioError("--set", text[:60], "expected KEY=VALUE, a dotted key path and a TOML value "
                            "(training.learning_rate=0.1)")
    key_parts(key)
    return key, parse_value(value.strip(), key)


def apply(document, overrides, file):
    """A copy of TOML `document` (a dict) with each (key, value) of `overrides` set at its key path.

    Tables on the way that are missing are created (the loader then says
    whether such a key exists); an array index must name an existing entry.
    ScenarioError in `file` otherwise.
    """
    document = _copy(document)
    for key, value in overrides:
        parts = key_parts(key)
        here = document
        for i, part in enumerate(parts[:-1]):
            shown = _shown(parts[:i + 1])
            _check_place(here, part, shown, file)
            if not isinstance(part, int) and part not in here:
                if isinstance(parts[i + 1], int):
                    raise ScenarioError(file, shown, f"the scenario has no array {shown} to index")
                here[part] = {}
            here = here[part]
        _check_place(here, parts[-1], key, file)
        here[parts[-1]] = _copy(value)
    return document


def _check_place(here, part, shown, file):
    """ScenarioError unless `part` (a name or an index) can be looked up or set in `here`."""
    if isinstance(part, int):
        _check_index(here, part, shown, file)
    elif not isinstance(here, dict):
        raise ScenarioError(file, shown, "is not in a table")


def _check_index(here, index, shown, file):
    if not isinstance(here, list):
        raise ScenarioError(file, shown, "is not an array; only arrays are indexed with [N]")
    if index >= len(here):
        raise ScenarioError(file, shown, f"no such entry; the array has {len(here)} "
                            f"entr{'y' if len(here) == 1 else 'ies'}")


def _shown(parts):
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts).lstrip(".")


def _copy(value):
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


# ---- writing TOML ----------------------------------------------------------------

def dumps(document):
    """TOML text for `document` (a dict as tomllib gives): keys in their order, tables after values.

    >>> print(dumps({"name": "xor", "training": {"steps": 10}}), end="")
    name = "xor"
    <BLANKLINE>
    [training]
    steps = 10
    """
    lines = []
    _table(document, [], lines)
    return "\n".join(lines).lstrip("\n") + "\n"


def _array_of_tables(value):
    return isinstance(value, list) and value and all(isinstance(v, dict) for v in value)


def _table(table, path, lines):
    nested = []
    for key, value in table.items():
        if isinstance(value, dict) or _array_of_tables(value):
            nested.append((key, value))
        else:
            lines.append(f"{_key(key)} = {toml_value(value)}")
    for key, value in nested:
        inner = path + [key]
        if isinstance(value, dict):
            lines += ["", f"[{'.'.join(map(_key, inner))}]"]
            _table(value, inner, lines)
        else:
            for entry in value:
                lines += ["", f"[[{'.'.join(map(_key, inner))}]]"]
                _table(entry, inner, lines)


def _key(key):
    return key if _BARE_KEY.fullmatch(key) else json.dumps(key, ensure_ascii=False)


def toml_value(value):
    """`value` (as tomllib gives it) written as TOML.

    >>> toml_value([2, 8, 1]), toml_value("adam")
    ('[2, 8, 1]', '"adam"')
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return repr(value) if math.isfinite(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(map(toml_value, value)) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_key(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    raise TypeError(f"cannot write {type(value).__name__} as TOML")

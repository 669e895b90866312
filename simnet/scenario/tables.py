"""Reading a scenario's TOML tables with key paths: every value passes a check that says what it
expected and names the key (``training.learning_rate``, ``script[2].name``) when it fails."""
import difflib
import math
import re
import unicodedata

from ..errors import ScenarioError, excerpt

__all__ = ["NEURON_NAME", "REQUIRED", "SCENARIO_NAME", "Table", "array_of", "boolean", "choice", "integer",
           "neuron_name", "number", "printable_text", "scenario_name", "string"]

# A name becomes a directory under output/: one path component, no separators, no dot files.
SCENARIO_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
NEURON_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}")
REQUIRED = object()  # the default of a key that must be given


class Table:
    """A TOML table being read key by key; remembers its key path and which keys were read."""

    def __init__(self, file, path, table):
        self.file, self.path, self.table, self.used = file, path, table, set()

    def where(self, key):
        return f"{self.path}.{key}" if self.path else key

    def error(self, key, why):
        return ScenarioError(self.file, self.where(key) if key else self.path or "file", why)

    def get(self, key, check, default=REQUIRED):
        """The value at `key` passed through `check(value) -> value` (which raises ValueError(why))."""
        self.used.add(key)
        if key not in self.table:
            if default is REQUIRED:
                # a required key that is missing is most often a misspelt one
                close = difflib.get_close_matches(key, [k for k in self.table if k not in self.used], n=1)
                if close:
                    raise self.error(close[0], f"unknown key; did you mean {key!r}?")
                raise self.error(key, f"missing; expected {check.expects}")
            return default
        try:
            return check(self.table[key])
        except ValueError as e:
            raise self.error(key, str(e)) from None

    def table_at(self, key, required=False):
        """The sub-table at `key` as a Table (empty if absent and not required)."""
        value = self.get(key, _is_table, REQUIRED if required else {})
        return Table(self.file, self.where(key), value)

    def tables_at(self, key):
        """The array of tables at `key` as a list of Table, with [i] in their paths."""
        values = self.get(key, _is_array_of_tables, [])
        return [Table(self.file, f"{self.where(key)}[{i}]", v) for i, v in enumerate(values)]

    def finish(self):
        """Raise for the first key that was not read (an unknown key)."""
        allowed = sorted(self.used)
        for key in self.table:
            if key not in self.used:
                close = difflib.get_close_matches(key, allowed, n=1)
                hint = f"did you mean {close[0]!r}?" if close else f"expected one of {', '.join(allowed)}"
                raise self.error(key, f"unknown key; {hint}")


def _type_name(value):
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "an array",
            dict: "a table"}.get(type(value), type(value).__name__)


def _found(value):
    text = repr(value) if isinstance(value, (int, float, str, bool)) else _type_name(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _typed(text, accepts, then=None):
    """A check: `accepts(v)` must hold, else 'expected <text>'; `then(v)` may refine the value further."""
    def check(v):
        if not accepts(v):
            raise ValueError(f"expected {text}, got {_found(v)}")
        return then(v) if then else v
    check.expects = text
    check.__doc__ = f"The value if it is {text}; ValueError saying what was found otherwise."
    return check


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


_is_table = _typed("a table", lambda v: isinstance(v, dict))
_is_array_of_tables = _typed("an array of tables ([[...]] entries)",
                             lambda v: isinstance(v, list) and all(isinstance(x, dict) for x in v))
string = _typed("a string", lambda v: isinstance(v, str))
boolean = _typed("true or false", lambda v: isinstance(v, bool))


def printable_text(*, lines=False):
    """A check for strings of printable text (tabs, and newlines if `lines`, allowed): it ends up in
    pictures, pages and exports, which control characters would break."""
    allowed = "\t\n" if lines else "\t"

    def printable(v):
        bad = next((ch for ch in v if ch not in allowed and unicodedata.category(ch) in ("Cc", "Cs")), None)
        if bad is not None:
            raise ValueError(f"{excerpt(v)} holds control character U+{ord(bad):04X}; expected printable text")
        return v
    return _typed("a string", lambda v: isinstance(v, str), printable)


def integer(low=None, high=None):
    """A check for integers in [low, high] (either end may be open)."""
    text = (f"an integer from {low} to {high}" if low is not None and high is not None else
            {1: "a positive integer", 0: "a non-negative integer"}.get(low, "an integer"))

    def in_range(v):
        if (low is not None and v < low) or (high is not None and v > high):
            raise ValueError(f"expected {text}, got {v}")
        return v
    return _typed(text, _is_int, in_range)


def number(low=None, *, strict=False, high=None):
    """A check for finite numbers > low (strict) or >= low, and <= high; gives a float."""
    text = ("a finite number" if low is None else
            ("a positive number" if strict else "a non-negative number") if low == 0 else
            f"a number {'>' if strict else '>='} {low}")
    if high is not None:
        text += f" no larger than {high}"

    def in_range(v):
        v = float(v)
        if (not math.isfinite(v) or (low is not None and (v <= low if strict else v < low))
                or (high is not None and v > high)):
            raise ValueError(f"expected {text}, got {v}")
        return v
    return _typed(text, _is_number, in_range)


def choice(options):
    """A check for one of the strings `options`, suggesting the closest one to a misspelt value."""
    text = f"one of {', '.join(options)}"

    def known(v):
        if v not in options:
            close = difflib.get_close_matches(v, options, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(f"unknown {v!r}{hint}; expected {text}")
        return v
    return _typed(text, lambda v: isinstance(v, str), known)


def _matching(pattern, what, first):
    rule = f"{first}, then letters, digits, '_', '.' or '-', at most 64 characters"

    def valid(v):
        if not pattern.fullmatch(v):
            raise ValueError(f"{_found(v)} is not a valid {what}; expected {rule}")
        return v
    return _typed(f"a {what}", lambda v: isinstance(v, str), valid)


neuron_name = _matching(NEURON_NAME, "neuron name", "a letter or '_'")
scenario_name = _matching(SCENARIO_NAME, "scenario name", "a letter or a digit")


def array_of(check, *, min_length=0):
    """A check for arrays whose every entry passes `check`; gives a tuple."""
    def entries(v):
        if len(v) < min_length:
            raise ValueError(f"expected at least {min_length} entries, got {len(v)}")
        out = []
        for i, item in enumerate(v):
            try:
                out.append(check(item))
            except ValueError as e:
                raise ValueError(f"entry [{i}]: {e}") from None
        return tuple(out)
    return _typed(f"an array, each entry {check.expects}", lambda v: isinstance(v, list), entries)

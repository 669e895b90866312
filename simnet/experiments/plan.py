"""A sweep's plan: the grid of settings times the seeds, every run named and checked before any starts.

The grid comes from the scenario's ``[sweep]`` table and the command line
(``--grid KEY=[V1, V2]`` adds a key or replaces the table's; ``--seeds``
replaces its seeds).  Each run is the scenario with its settings and its
seed set as overrides (``--set KEY=VALUE --set seed=S``), so it is the run
``simnet run`` gives with those, bit for bit.
"""
import itertools
import math
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from ..core.graph import MAX_SEED
from ..errors import InputError, ScenarioError
from ..runner import check_drawable
from ..scenario import load, loads
from ..scenario.overrides import apply, dumps, key_parts, parse_value
from ..scenario.reading import read_bounded

__all__ = ["MAX_RUNS", "Plan", "RunSpec", "parse_grid", "parse_seeds", "plan", "value_text"]

MAX_RUNS = 100_000
_UNSAFE = re.compile(r"[^A-Za-z0-9._,=+-]")


@dataclass(frozen=True)
class RunSpec:
    """One run of a sweep: its id (its directory's name), configuration id, settings and seed."""

    run: str
    config: str
    settings: tuple  # (key path, value) pairs of the grid
    seed: int

    @property
    def overrides(self):
        """The run's overrides: its settings and its seed."""
        return self.settings + (("seed", self.seed),)


@dataclass(frozen=True)
class Plan:
    """What a sweep runs: the scenario (path, text and files it reads), the grid, the seeds and each run."""

    scenario: object        # the Scenario as loaded, without overrides
    grid: tuple             # (key path, values) pairs
    seeds: tuple
    attachments: dict       # path relative to the scenario's directory -> bytes: the CSV files it reads

    @property
    def keys(self):
        return tuple(key for key, _ in self.grid)

    def configurations(self):
        """(config id, settings) of each point of the grid, in grid order."""
        names = _short_names(self.keys)
        for values in itertools.product(*(values for _, values in self.grid)):
            settings = tuple(zip(self.keys, values))
            yield _safe(",".join(f"{names[k]}={value_text(v)}" for k, v in settings)) or "default", settings

    def runs(self):
        """Every RunSpec, configuration by configuration, seed by seed (generated, never all held)."""
        for config, settings in self.configurations():
            for seed in self.seeds:
                run = f"{config},seed={seed}" if self.grid else f"seed={seed}"
                yield RunSpec(run, config, settings, seed)

    def __len__(self):
        return math.prod(len(values) for _, values in self.grid) * len(self.seeds)

    def effective_text(self, spec):
        """The scenario text a run of `spec` records (as ``simnet run --set`` makes it)."""
        return dumps(apply(self._document, spec.overrides, self.scenario.path))

    @property
    def _document(self):
        return tomllib.loads(self.scenario.text)


def value_text(value):
    """A setting's value as a run id shows it: 0.1, adam, 2-8-1 for [2, 8, 1].

    >>> value_text([2, 8, 1]), value_text(0.1), value_text("adam")
    ('2-8-1', '0.1', 'adam')
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "-".join(value_text(v) for v in value)
    if isinstance(value, dict):
        return "-".join(f"{k}.{value_text(v)}" for k, v in value.items())
    return str(value)


def _safe(text):
    return _UNSAFE.sub("_", text)[:180]


def _short_names(keys):
    """A run id names a key by its last name when that is unambiguous and plain, else by its whole path."""
    last = [key.rsplit(".", 1)[-1] for key in keys]
    return {key: short if last.count(short) == 1 and "[" not in key else re.sub(r"\[(\d+)\]", r".\1", key)
            for key, short in zip(keys, last)}


def parse_grid(texts):
    """(key path, values) pairs of ``--grid KEY=[V1, V2]`` arguments; InputError naming the one that is wrong.

    >>> parse_grid(["training.learning_rate=[0.1, 1.0]"])
    [('training.learning_rate', (0.1, 1.0))]
    """
    grid = []
    for text in texts:
        key, sep, values = text.partition("=")
        key = key.strip()
        if not sep:
            raise InputError("--grid", text[:60], "expected KEY=[V1, V2, ...]")
        try:
            key_parts(key)
            values = parse_value(values.strip(), key)
        except ScenarioError as e:
            raise InputError("--grid", key or text[:60], e.why) from None
        if not isinstance(values, list):
            raise InputError("--grid", key, f"expected an array of values [V1, V2, ...], got {values!r}"[:160])
        if not values:
            raise InputError("--grid", key, "is empty; expected at least one value to sweep")
        if key == "seed":
            raise InputError("--grid", key, "seeds are swept with --seeds")
        grid.append((key, tuple(values)))
    return grid


def parse_seeds(text):
    """The seeds of ``--seeds``: a range 0-9 (both ends included), a list 0,3,7, or one seed.

    >>> parse_seeds("0-3"), parse_seeds("0,3,7")
    ((0, 1, 2, 3), (0, 3, 7))
    """
    def seed(part):
        if not re.fullmatch(r"\s*\d+\s*", part):
            raise InputError("--seeds", text[:60], f"{part.strip()[:20]!r} is not a seed; expected 0-9, 0,3,7 or 5")
        value = int(part)
        if value > MAX_SEED:
            raise InputError("--seeds", text[:60], f"seed {value} is out of range; seeds are 0 to {MAX_SEED}")
        return value

    if "-" in text:
        first, _, last = text.partition("-")
        first, last = seed(first), seed(last)
        if last < first:
            raise InputError("--seeds", text, f"the range ends ({last}) before it starts ({first})")
        if last - first >= MAX_RUNS:
            raise InputError("--seeds", text, f"{last - first + 1} seeds; a sweep has at most {MAX_RUNS:,} runs")
        return tuple(range(first, last + 1))
    seeds = tuple(seed(part) for part in text.split(","))
    if len(set(seeds)) != len(seeds):
        raise InputError("--seeds", text, "a seed is given twice")
    return seeds


def plan(scenario, grid=None, seeds=None, gifs=False):
    """The Plan of a sweep of `scenario` (a path); every configuration is loaded and checked first.

    grid: (key path, values) pairs or a dict, added to the scenario's [sweep]
    grid (a key given here replaces its values); seeds: seeds replacing the
    scenario's [sweep] seeds (default: the scenario's own seed).  Raises
    InputError/ScenarioError before anything runs.

    >>> p = plan("scenarios/xor.toml", grid={"training.learning_rate": [0.1, 1.0]}, seeds=[0, 1])
    >>> [r.run for r in p.runs()][:2], len(p)
    (['learning_rate=0.1,seed=0', 'learning_rate=0.1,seed=1'], 4)
    """
    path = Path(scenario)
    base = load(path)
    sweep = base.sweep
    combined = dict(sweep.grid if sweep else ())
    given = list(grid.items()) if isinstance(grid, dict) else list(grid or ())
    for key, values in given:
        values = tuple(values)
        if not values:
            raise InputError("grid", key, "is empty; expected at least one value to sweep")
        combined[key] = values
    if seeds is None:
        seeds = sweep.seeds if sweep and sweep.seeds else (base.seed,)
    seeds = tuple(seeds)
    for s in seeds:
        if isinstance(s, bool) or not isinstance(s, int) or not 0 <= s <= MAX_SEED:
            raise InputError("seeds", repr(s), f"expected seeds from 0 to {MAX_SEED}")
    if not seeds:
        raise InputError("seeds", "", "no seeds; expected at least one")
    attachments = {}
    if base.data.kind == "csv":
        relative = base.data.path.relative_to(path.parent)
        attachments[relative.as_posix()] = read_bounded(base.data.path, 1 << 30, "a CSV data file")
    result = Plan(base, tuple(combined.items()), seeds, attachments)
    if len(result) > MAX_RUNS:
        raise InputError(path, "sweep", f"{len(result):,} runs; a sweep has at most {MAX_RUNS:,}")
    # every configuration is checked as `simnet run --set` would check it, before anything starts
    for _, settings in result.configurations():
        try:
            configured = loads(base.text, path, settings + (("seed", seeds[0]),))
            if gifs:
                check_drawable(configured)
        except ScenarioError as e:
            shown = ", ".join(f"{k}={value_text(v)}" for k, v in settings)
            raise ScenarioError(e.file, e.where, f"{e.why} (in the sweep's configuration {shown})") from None
    _check_unique(result)
    return result


def _check_unique(result):
    seen = {}
    for config, settings in result.configurations():
        if config in seen:
            raise InputError("grid", config, f"two configurations get the same run id ({seen[config]} and "
                             f"{settings}); give values that differ in letters or digits")
        seen[config] = settings

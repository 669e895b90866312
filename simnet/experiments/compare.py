"""Comparing runs: the settings that differ, the first step after which a weight or a bias differs (and
which), topology that differs over time, the connections that differ most at the end, and compare.png.

Runs are read from their directories (summary.json and the trace); a
sweep's directory stands for all its runs.  Each run is compared with the
first one given.
"""
import base64
import json
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputError, SimnetError
from ..files import written_whole
from ..progress import log_scale
from ..runner import read_summary
from ..trace import open_trace
from .report import aligned, band
from .sweep import read_csv

__all__ = ["Comparison", "MOST_DIFFERENT", "MOST_PAGES", "NO_COUNTERPART", "PAGES_SHARE", "compare", "compare_figure",
           "compare_page", "differences", "flatten", "page_run_data", "run_directories", "write_compare_page",
           "write_compare_png"]

MOST_DIFFERENT = 5
MOST_PAGES = 4  # replay pages side by side in compare.html
# of the replay page's budget, for the pages: each connection's difference (a quarter of what a page keeps of
# it) takes the rest
PAGES_SHARE = 0.8
NO_COUNTERPART = "#8c8c8c"  # a connection run 0 does not have, drawn dashed
_RUN_DATA = '<script type="application/json" id="run-data">'


@dataclass
class Comparison:
    """What :func:`compare` found; `as_dict()` is what ``--format json`` prints."""

    runs: list                      # {"path", "settings", "loss", "accuracy", "steps"} per run
    settings_differ: dict           # key path -> its value in each run
    first_divergence: dict | None   # {"step", "what", "runs"} or None (identical up to the shorter run's end)
    identical_until: int | None     # the last step compared, when no divergence was found
    topology_differ: list           # {"what", "only_in", "from_step", "runs"}
    most_different: list            # {"connection", "weights", "spread"}
    notes: list = field(default_factory=list)
    written: list = field(default_factory=list)  # the files compare wrote (compare.png, compare.html)

    def as_dict(self) -> dict:
        """The comparison as plain data (JSON)."""
        return {"runs": self.runs, "settings_differ": self.settings_differ,
                "first_divergence": self.first_divergence, "topology_differ": self.topology_differ,
                "most_different": self.most_different, "notes": self.notes}

    def text(self) -> str:
        """The comparison in words, for a terminal."""
        lines = ["runs:"]
        for i, run in enumerate(self.runs):
            accuracy = "" if run["accuracy"] is None else f", accuracy {run['accuracy']:.1%}"
            loss = "none" if run["loss"] is None else f"{run['loss']:.4g}"
            lines.append(f"  [{i}] {run['path']}: loss {loss}{accuracy}, {run['steps']} steps")
        lines.append("settings that differ:" if self.settings_differ else "settings: the same")
        lines += [f"  {key}: {' | '.join(_shown(v) for v in values)}" for key, values in self.settings_differ.items()]
        if self.first_divergence is not None:
            d = self.first_divergence
            what = ", ".join(d["what"][:8]) + (f" and {len(d['what']) - 8} more" if len(d["what"]) > 8 else "")
            after = "at the start (step 0)" if d["step"] == 0 else f"after step {d['step']}"
            lines.append(f"first divergence {after} (run {d['runs'][1]} against run {d['runs'][0]}): {what}")
        elif self.identical_until is not None:
            lines.append(f"weights and biases identical bit for bit up to step {self.identical_until} "
                         "(the shorter run's last)")
        lines += [f"note: {note}" for note in self.notes]
        if self.topology_differ:
            lines.append("topology that differs:")
            lines += [f"  {t['what']} only in run {t['only_in']}, from step {t['from_step']}"
                      for t in self.topology_differ]
        if self.most_different:
            lines.append("connections that differ most at the end:")
            lines += [f"  {m['connection']}: {' | '.join(f'{w:.4g}' for w in m['weights'])} "
                      f"(spread {m['spread']:.4g})" for m in self.most_different]
        return "\n".join(lines)


def _shown(value):
    return json.dumps(value) if not isinstance(value, str) else value


def run_directories(paths):
    """The run directories `paths` name: a run's directory as it is, a sweep's as each of its runs."""
    runs = []
    for path in map(Path, paths):
        if (path / "runs.csv").is_file() and (path / "runs").is_dir():
            runs += [path / row["path"] for row in read_csv(path / "runs.csv") if row.get("path")]
        elif (path / "trace.sqlite").is_file() or (path / "summary.json").is_file():
            runs.append(path)
        else:
            raise InputError(path, "RUN_DIR", "is neither a run's directory nor a sweep's (no trace.sqlite, "
                             "summary.json or runs.csv)")
    if len(runs) < 2:
        raise InputError(paths[0] if paths else "compare", "RUN_DIR", f"{len(runs)} run given; compare needs "
                         "at least two")
    return runs


def flatten(document, prefix=""):
    """{dotted key path: value} of a TOML document; arrays of tables by index (script[0].at)."""
    out = {}
    for key, value in document.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, path + "."))
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for i, entry in enumerate(value):
                out.update(flatten(entry, f"{path}[{i}]."))
        else:
            out[path] = value
    return out


def _settings(summary, trace):
    """(the run's own settings: its overrides and seed, every key path of its effective scenario), from its
    summary.json (a dict) and its trace (or None)."""
    text = summary.get("scenario_text") or (trace.metadata.get("scenario_text") if trace is not None else None)
    try:
        everything = flatten(tomllib.loads(text)) if text else {}
    except tomllib.TOMLDecodeError:
        everything = {}
    for key in ("steps", "seed", "engine"):  # what --steps, --seed and --engine replaced
        given = ((trace.metadata.get("overrides") or {}) if trace is not None else {}).get(key)
        if given is not None:
            everything[{"steps": "training.steps", "engine": "training.engine"}.get(key, key)] = given
    own = dict(summary.get("overrides") or {})
    own.setdefault("seed", summary.get("seed", everything.get("seed")))
    return own, everything


def _state(graph):
    """{"weight a->b" or "bias n": value} of a snapshot graph."""
    values = {f"bias {n}": d["bias"] for n, d in graph.nodes(data=True) if d.get("role") != "input"}
    values.update({f"weight {u}->{v}": d["weight"] for u, v, d in graph.edges(data=True)})
    return values


def _topology(graph):
    return {f"neuron {n}" for n in graph.nodes} | {f"connection {u}->{v}" for u, v in graph.edges}


def compare(paths: list[str | os.PathLike], output: str | os.PathLike | None = None) -> Comparison:
    """Compare the runs in `paths` (run or sweep directories); write compare.png into `output` if given.

    Raises InputError for a path that holds no run.

    >>> import tempfile, simnet.runner as runner
    >>> a, b = tempfile.mkdtemp(), tempfile.mkdtemp()
    >>> _ = runner.run("scenarios/xor.toml", a, steps=5, gifs=False)
    >>> _ = runner.run("scenarios/xor.toml", b, steps=5, gifs=False)
    >>> compare([a, b]).first_divergence is None
    True
    """
    run_dirs = run_directories(paths)
    traces, runs, everything = [], [], []
    try:
        for run_dir in run_dirs:
            try:
                trace = open_trace(run_dir)
            except SimnetError:
                trace = None
            traces.append(trace)
            summary = read_summary(run_dir)
            own, settings = _settings(summary, trace)
            runs.append({"path": str(run_dir), "settings": own, "loss": summary.get("loss"),
                         "accuracy": summary.get("accuracy"),
                         "steps": summary.get("steps", trace.last_step if trace is not None else None)})
            everything.append(settings)
        keys = list(dict.fromkeys(k for s in everything for k in s))
        differ = {k: [s.get(k) for s in everything] for k in keys
                  if any(s.get(k) != everything[0].get(k) for s in everything)}
        result = Comparison(runs, differ, None, None, [], [], [])
        _walk(traces, result)
        if output is not None:
            result.written.append(write_compare_png(traces, runs, Path(output) / "compare.png"))
            if 2 <= len(runs) <= MOST_PAGES and all(t is not None and t.last_step is not None for t in traces):
                result.written.append(write_compare_page(traces, runs, differ, Path(output) / "compare.html"))
            else:
                result.notes.append(f"compare.html shows {MOST_PAGES} runs at most, each with a readable trace; "
                                    "give the runs to see side by side")
        return result
    finally:
        for trace in traces:
            if trace is not None:
                trace.close()


def _walk(traces, result):
    """Step through every run against the first: first divergence, topology differences, final spread."""
    reference = traces[0]
    if reference is None or reference.last_step is None:
        result.notes.append("the first run has no readable trace: nothing to compare step by step")
        return
    earliest, identical_until = None, None
    for index, trace in enumerate(traces[1:], 1):
        if trace is None or trace.last_step is None:
            result.notes.append(f"run {index} has no readable trace")
            continue
        last = min(reference.last_step, trace.last_step)
        first = max(reference.first_step, trace.first_step)
        steps = range(first, last + 1)
        found, seen = None, set()
        pairs = zip(reference.snapshots(steps), trace.snapshots(steps))
        for (step, a), (_, b) in pairs:
            top_a, top_b = _topology(a), _topology(b)
            if step == first and top_a != top_b:
                result.notes.append(f"run {index} starts with another topology than run 0: no first divergence "
                                    "is looked for")
                found = "topology"
            for what, only in [(w, 0) for w in sorted(top_a - top_b)] + [(w, index) for w in sorted(top_b - top_a)]:
                if what not in seen:
                    seen.add(what)
                    result.topology_differ.append({"what": what, "only_in": only, "from_step": step,
                                                   "runs": [0, index]})
            if found is None:
                va, vb = _state(a), _state(b)
                differing = [k for k in va if k in vb and va[k] != vb[k]]
                if differing:
                    found = (step, differing)
        if isinstance(found, tuple) and (earliest is None or found[0] < earliest["step"]):
            earliest = {"step": found[0], "what": found[1], "runs": [0, index]}
        if found is None:
            identical_until = last if identical_until is None else min(identical_until, last)
    result.first_divergence = earliest
    result.identical_until = identical_until if earliest is None else None
    finals = [_state(t.snapshot(t.last_step)) for t in traces if t is not None and t.last_step is not None]
    if len(finals) == len(traces):
        common = [k for k in finals[0] if k.startswith("weight ") and all(k in f for f in finals)]
        spread = sorted(((max(f[k] for f in finals) - min(f[k] for f in finals), k) for k in common), reverse=True)
        result.most_different = [{"connection": k.removeprefix("weight "), "weights": [f[k] for f in finals],
                                  "spread": s} for s, k in spread[:MOST_DIFFERENT] if s > 0]


def compare_figure(traces, runs):
    """Loss and accuracy per step of every run overlaid; runs that share all settings but the seed are drawn
    as one mean line with a min-max band.  A matplotlib Figure."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    groups = {}
    for trace, run in zip(traces, runs):
        if trace is None:
            continue
        settings = {k: v for k, v in run["settings"].items() if k != "seed"}
        label = ", ".join(f"{k.rsplit('.', 1)[-1]}={_shown(v)}" for k, v in settings.items()) or Path(run["path"]).name
        groups.setdefault(label, []).append(trace.history())
    classification = any(np.isfinite(h["accuracy"]).any() for g in groups.values() for h in g)
    fig = Figure(figsize=(9, 7 if classification else 4.5), dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(2 if classification else 1, 1, sharex=True, squeeze=False)[:, 0]
    for i, (label, histories) in enumerate(groups.items()):
        colour = f"C{i % 10}"
        for ax, quantity in zip(axes, ("loss", "accuracy")):
            steps, values = aligned(histories, quantity)
            if len(histories) == 1:
                ax.plot(steps, values[0], color=colour, linewidth=1.3, label=label)
                continue
            mean, low, high = band(values)
            ax.fill_between(steps, low, high, color=colour, alpha=0.2, linewidth=0)
            ax.plot(steps, mean, color=colour, linewidth=1.5,
                    label=f"{label}: mean of {len(histories)} seeds, band min-max")
    axes[0].set_ylabel("batch loss")
    finite = np.concatenate([h["loss"][np.isfinite(h["loss"])] for g in groups.values() for h in g] or [[]])
    if finite.size and log_scale(finite.min(), finite.max()):
        axes[0].set_yscale("log")
    if classification:
        axes[1].set_ylabel("accuracy")
        axes[1].set_ylim(-0.02, 1.02)
    axes[-1].set_xlabel("step")
    for ax in axes:
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8, loc="best", framealpha=0.85)
    fig.suptitle(f"{len(runs)} runs compared", fontsize=11, x=0.08, ha="left")
    return fig


def write_compare_png(traces, runs, path):
    """Write :func:`compare_figure` of `traces` to `path`, whole; returns the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with written_whole(path) as temp:
        compare_figure(traces, runs).savefig(temp, format="png")
    return path


# one slider for every page: each page shows the last step it kept at or before the slider's; the connection
# colouring can switch to each weight minus the same connection's weight in run 0 at the step the panel shows
_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font: 13px system-ui, sans-serif; margin: 8px; }}
#bar {{ position: sticky; top: 0; background: #fff; padding: 6px 0 8px; z-index: 1; border-bottom: 1px solid #ddd; }}
#step {{ width: 50%; vertical-align: middle; }}
#difference-legend .bar {{ display: inline-block; width: 140px; height: 10px; vertical-align: middle; margin: 0 4px;
  border: 1px solid #aaa; }}
#difference-legend .none {{ display: inline-block; width: 22px; vertical-align: middle; margin: 0 4px;
  border-top: 2px dashed {none}; }}
.runs {{ display: grid; grid-template-columns: repeat({columns}, 1fr); gap: 8px; margin-top: 8px; }}
.run h2 {{ font-size: 13px; margin: 2px 0 4px; }}
.run p {{ margin: 0 0 4px; color: #444; }}
iframe {{ width: 100%; height: 1000px; border: 1px solid #ccc; }}
</style></head><body>
<div id="bar"><b>{title}</b> &nbsp; <label>step <input id="step" type="range" min="0" max="{last}" value="0"
aria-label="step of every run"> <span id="shown">0</span></label> &nbsp;
<label>connection colour <select id="colouring" aria-label="connection colour">
<option value="own">each run's own</option><option value="difference">weight − run 0's weight</option>
</select></label>
<div id="difference-legend" hidden>connection: its weight − the same connection's weight in run 0 at the step each
panel shows, <span id="difference-low"></span><span class="bar" style="background: linear-gradient(to right,
{stops})"></span><span id="difference-high"></span> (one scale for every panel, the largest difference at this step
at the ends) · <span class="none"></span> no counterpart in run 0</div></div>
<div class="runs">{cells}</div>
<script type="application/json" id="differences">{differences}</script>
<script>
const frames = Array.from(document.querySelectorAll("iframe"));
const slider = document.getElementById("step");
const colouring = document.getElementById("colouring");
const DIFF = JSON.parse(document.getElementById("differences").textContent);
function floats(b64) {{
  const s = atob(b64), view = new DataView(new ArrayBuffer(s.length));
  for (let i = 0; i < s.length; i++) view.setUint8(i, s.charCodeAt(i));
  return Float64Array.from({{length: s.length / 8}}, (_, i) => view.getFloat64(8 * i, true));
}}
for (const panel of DIFF.panels) panel.values = floats(panel.values);
function keptSteps(frame) {{
  if (!frame.keptSteps) frame.keptSteps = JSON.parse(frame.contentDocument.getElementById("run-data").textContent).steps;
  return frame.keptSteps;
}}
function ready(frame) {{
  const page = frame.contentDocument;
  return page && page.getElementById("slider") && page.getElementById("run-data") && frame.contentWindow.simnetReplay;
}}
function show(step) {{
  document.getElementById("shown").textContent = String(step);
  for (const frame of frames) {{
    if (!ready(frame)) continue;
    const steps = keptSteps(frame);
    let i = 0;
    while (i + 1 !== steps.length && steps[i + 1] <= step) i++;
    const own = frame.contentDocument.getElementById("slider");
    own.value = String(i);
    own.dispatchEvent(new Event("input"));
  }}
}}
// the differences of the step each panel shows now: one row of its connections
function shownRow(p) {{
  const frame = frames[p], panel = DIFF.panels[p];
  if (!ready(frame)) return null;
  const k = panel.steps.indexOf(frame.contentWindow.simnetReplay.step());
  return k < 0 ? null : panel.values.subarray(k * panel.edges, (k + 1) * panel.edges);
}}
const fmt = (x) => x === 0 ? "0"
  : Math.abs(x) >= 1e5 || Math.abs(x) < 1e-3 ? x.toExponential(2) : String(Number(x.toPrecision(4)));
// every panel's connections on one scale symmetric around 0: blue below, grey at 0, red above
function recolour() {{
  if (colouring.value !== "difference") return;
  const rows = frames.map((_, p) => shownRow(p));
  let scale = 0;
  for (const row of rows) if (row) for (const d of row) if (!Number.isNaN(d)) scale = Math.max(scale, Math.abs(d));
  document.getElementById("difference-low").textContent = "−" + fmt(scale);
  document.getElementById("difference-high").textContent = "+" + fmt(scale);
  rows.forEach((row, p) => {{
    if (!row) return;
    const page = frames[p].contentDocument;
    row.forEach((d, j) => {{
      const line = page.querySelector(`#network line.edge[data-edge="${{j}}"]`);
      const u = Number.isNaN(d) ? 0.5 : scale > 0 ? (d / scale + 1) / 2 : 0.5;
      line.setAttribute("stroke", Number.isNaN(d) ? DIFF.none : DIFF.lut[Math.round(u * 255)]);
      line.setAttribute("stroke-opacity", "1");
      line.setAttribute("stroke-width", (1 + 3 * Math.abs(2 * u - 1)).toFixed(2));
      line.setAttribute("stroke-dasharray", Number.isNaN(d) ? "5 4" : "none");
      line.dataset.difference = String(d);
    }});
    // the page's own legend speaks of its own connection colours: say what they are now instead
    const legend = page.getElementById("legend");
    if (!legend.querySelector(".difference")) {{
      for (const span of legend.children) if (/^(connection|width)/.test(span.textContent)) span.hidden = true;
      legend.insertAdjacentHTML("beforeend", '<span class="difference">connection: weight − run 0’s weight ' +
        "(scale at the top)</span>");
    }}
  }});
}}
colouring.addEventListener("change", () => {{
  document.getElementById("difference-legend").hidden = colouring.value !== "difference";
  if (colouring.value === "difference") recolour();
  // each page redraws in its own colours
  else for (const frame of frames) {{
    if (ready(frame)) frame.contentDocument.getElementById("mode").dispatchEvent(new Event("change"));
  }}
}});
slider.addEventListener("input", () => show(Number(slider.value)));
for (const frame of frames) frame.addEventListener("load", () => {{
  // a page rewrites its legend whenever it redraws its network, by this slider or by its own controls
  new MutationObserver(recolour).observe(frame.contentDocument.getElementById("legend"), {{childList: true}});
  show(Number(slider.value));
}});
</script>
</body></html>
"""


def compare_page(traces, runs, differ):
    """compare.html: the replay pages of `traces` side by side in one self-contained file, one step slider
    driving them all; each page is headed by its run's path and the settings that differ.  A control colours
    every connection by its weight minus the same connection's weight in the first run (:func:`differences`)."""
    import html
    from matplotlib.colors import to_hex
    from ..viz.frames import CHANGES
    from ..viz.page import PAGE_BUDGET, pack, render_page
    cells, pages = [], []
    for i, (trace, run) in enumerate(zip(traces, runs)):
        page = render_page(trace, budget=int(PAGE_BUDGET * PAGES_SHARE) // len(traces))
        pages.append(page_run_data(page))
        settings = ", ".join(f"{key}={_shown(values[i])}" for key, values in differ.items()) or "the same settings"
        cells.append(f'<div class="run"><h2>[{i}] {html.escape(run["path"])}</h2><p>{html.escape(settings)}</p>'
                     f'<iframe title="run {i}" srcdoc="{html.escape(page, quote=True)}"></iframe></div>')
    # the weight changes' map, continuous: grey at 0, so a connection equal to run 0's still shows
    diverging = CHANGES.resampled(256)
    lut = [to_hex(diverging(i / 255)) for i in range(256)]
    panels = [{"steps": data["steps"], "edges": len(data["edges"]),
               "values": pack(differences(traces[0], data))} for data in pages]
    payload = json.dumps({"lut": lut, "none": NO_COUNTERPART, "panels": panels}, separators=(",", ":"))
    return _PAGE.format(title=f"{len(runs)} runs compared", columns=len(runs), cells="\n".join(cells),
                        last=max(t.last_step for t in traces), none=NO_COUNTERPART, differences=payload,
                        stops=", ".join(lut[::16] + lut[-1:]))


def page_run_data(page):
    """The run's data a replay page carries (its #run-data element), as a dict."""
    start = page.index(_RUN_DATA) + len(_RUN_DATA)
    return json.loads(page[start:page.index("</script>", start)])


def differences(reference, data):
    """weight − the same connection's weight in `reference` after the same step, for each step and connection
    of a replay page's run data `data`: float64 array (steps, connections).

    NaN where the connection is not in the page's network at that step or has no counterpart in `reference`
    (missing from its network, or the step beyond its run).
    """
    names = [n["name"] for n in data["nodes"]]
    edges = [(names[s], names[t]) for s, t in data["edges"]]
    values = np.frombuffer(base64.b64decode(data["edgeValues"]), dtype="<f8")
    weights = values.reshape(len(data["steps"]), len(edges), len(data["edgeFields"]))[
        :, :, data["edgeFields"].index("weight")]
    out = np.full(weights.shape, np.nan)
    for k, step in enumerate(data["steps"]):
        if not reference.first_step <= step <= reference.last_step:
            continue
        theirs = reference.snapshot(step)
        for j, edge in enumerate(edges):
            if theirs.has_edge(*edge):
                out[k, j] = weights[k, j] - theirs.edges[edge]["weight"]
    return out


def write_compare_page(traces, runs, differ, path):
    """Write :func:`compare_page` to `path`, whole; returns the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with written_whole(path) as temp:
        temp.write_text(compare_page(traces, runs, differ), encoding="utf-8")
    return path

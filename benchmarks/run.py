"""Run every benchmark section and rewrite benchmarks/RESULTS.md.

    python3 benchmarks/run.py [--quick] [-q] [--only NAME ...]

Each ``benchmarks/bench_<topic>.py`` defines ``section(quick=False)``, which
returns a markdown section whose figures are ratios against references
measured in the same run.  RESULTS.md gets the machine, the date and the
command at the top, then the sections in name order.  A section that fails is
written as its error, so one broken benchmark does not hide the others.
"""
import argparse
import datetime
import importlib.util
import os
import platform
import sys
import traceback
from pathlib import Path

# one BLAS thread for every section, before anything loads numpy (see bench_engine.py)
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

from tqdm import tqdm  # noqa: E402

HERE = Path(__file__).resolve().parent


def modules(only=None):
    """The bench_*.py files, by name; only those whose topic is in `only` when given."""
    found = sorted(HERE.glob("bench_*.py"))
    return [path for path in found if not only or path.stem[len("bench_"):] in only]


def load(path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def cpu_name():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine():
    """One line saying what ran the benchmarks."""
    import numpy as np
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        blas = f"{blas.get('name', '?')} {blas.get('version', '')}".strip()
    except Exception:  # the layout of numpy's build report varies between versions
        blas = "BLAS unknown"
    return (f"{cpu_name()}, {os.cpu_count()} logical CPUs, {platform.system()} {platform.release()}; "
            f"Python {platform.python_version()}, numpy {np.__version__} ({blas}, "
            f"{os.environ['OPENBLAS_NUM_THREADS']} BLAS thread)")


def micrograd_note():
    try:
        import micrograd  # noqa: F401
        from importlib.metadata import version
        return f"micrograd {version('micrograd')} (`pip install micrograd==0.1.0`)"
    except ImportError:
        return "micrograd not installed: its comparisons are left out (`pip install micrograd==0.1.0`)"


def main(argv=None):
    parser = argparse.ArgumentParser(description="Run the benchmarks and rewrite benchmarks/RESULTS.md.")
    parser.add_argument("--quick", action="store_true", help="shorter runs, rougher figures")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="only these sections (bench_NAME.py)")
    parser.add_argument("-o", "--output", type=Path, default=HERE / "RESULTS.md", help="where to write")
    args = parser.parse_args(argv)
    paths = modules(args.only)
    if not paths:
        parser.error(f"no benchmark section called {' or '.join(args.only)}")
    command = "python3 benchmarks/run.py" + (" --quick" if args.quick else "") + \
        (f" --only {' '.join(args.only)}" if args.only else "")
    started = datetime.datetime.now(datetime.timezone.utc)
    sections = []
    bar = tqdm(paths, unit="section", disable=args.quiet or not sys.stderr.isatty())
    for path in bar:
        bar.set_description(path.name)
        try:
            sections.append(load(path).section(quick=args.quick).rstrip())
        except Exception:
            sections.append(f"## {path.stem}\n\nThis section failed:\n\n```\n{traceback.format_exc()}```")
    header = [
        "# Benchmark results",
        "",
        f"- Machine: {machine()}",
        f"- Date: {started:%Y-%m-%d %H:%M} UTC; the whole run took "
        f"{(datetime.datetime.now(datetime.timezone.utc) - started).total_seconds():.0f} s",
        f"- Command: `{command}`" + (" (quick: shorter runs, rougher figures)" if args.quick else ""),
        f"- References: {micrograd_note()}; every figure is a ratio against a reference measured in the same "
        "run, on the same machine.",
        "",
    ]
    text = "\n".join(header) + "\n" + "\n\n".join(sections) + "\n"
    partial = args.output.with_suffix(".md.partial")
    partial.write_text(text, encoding="utf-8")
    partial.replace(args.output)  # never a half-written RESULTS.md
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Every malformed scenario in tests/bad_scenarios/ gives exit 2 and one precise line, and writes nothing.

Each corpus file starts with `# where: <key path>` (and `# file: <name>` when
the error is in a file the scenario points to); the few files that cannot
carry a comment (empty, binary, not UTF-8) are listed here.
"""
import re
import subprocess
import sys
from pathlib import Path

import pytest

from simnet.cli import main

CORPUS = Path(__file__).resolve().parent / "bad_scenarios"
FILES = sorted(CORPUS.glob("*.toml"))
WHOLE_FILE = {"empty.toml", "comments_only.toml", "binary.toml", "latin1.toml"}


def expected(path):
    """(file, where) the error line must name for corpus file `path`."""
    if path.name in WHOLE_FILE:
        return path, "file"
    header = dict(re.findall(r"^# (where|file): (.*)$", path.read_text(), flags=re.M))
    return (path.parent / header["file"] if "file" in header else path), header["where"]


def one_error_line(stderr):
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    match = re.fullmatch(r"simnet: error: (.+?): (.+): (.+)", lines[0])
    assert match, lines[0]
    return lines[0]


def test_the_corpus_covers_enough_kinds_of_error():
    assert len(FILES) >= 30
    assert WHOLE_FILE <= {p.name for p in FILES}
    assert len({expected(p)[1] for p in FILES}) >= 25


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_run_refuses_a_malformed_scenario_with_one_line_and_no_output(path, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["run", str(path), "-o", str(out), "--no-gif", "-q"]) == 2
    captured = capsys.readouterr()
    file, where = expected(path)
    assert one_error_line(captured.err).startswith(f"simnet: error: {file}: {where}: ")
    assert captured.out == ""
    assert list(tmp_path.iterdir()) == []  # no run directory, finished or half-written


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_check_reports_the_same_line(path, capsys):
    assert main(["check", str(path)]) == 2
    file, where = expected(path)
    assert one_error_line(capsys.readouterr().err).startswith(f"simnet: error: {file}: {where}: ")


def test_a_missing_file_and_a_directory_are_bad_input(tmp_path, capsys):
    missing = tmp_path / "nope.toml"
    assert main(["run", str(missing), "-o", str(tmp_path / "out")]) == 2
    assert one_error_line(capsys.readouterr().err) == f"simnet: error: {missing}: file: does not exist"
    folder = tmp_path / "folder.toml"
    folder.mkdir()
    assert main(["run", str(folder), "-o", str(tmp_path / "out")]) == 2
    assert ": file: is a directory" in one_error_line(capsys.readouterr().err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder.toml"]


def test_a_real_process_prints_one_line_and_exits_2(tmp_path):
    for name in ("binary.toml", "billion_neurons.toml", "script_name_not_yet.toml"):
        done = subprocess.run([sys.executable, "-m", "simnet", "run", str(CORPUS / name), "-o", str(tmp_path / "o")],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 2
        file, where = expected(CORPUS / name)
        assert one_error_line(done.stderr).startswith(f"simnet: error: {file}: {where}: ")
        assert not (tmp_path / "o").exists()

"""The README's examples run, and CI runs the README's test command."""
import re
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def code_blocks(language):
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def test_python_examples_run_in_order(capsys, tmp_path, monkeypatch):
    from simnet.cli import main

    monkeypatch.chdir(tmp_path)  # examples that record a run write there, not into the checkout
    shutil.copytree(ROOT / "scenarios", tmp_path / "scenarios")  # as in a checkout, which the examples run in
    # the examples read the runs that the quick start's commands leave in output/
    for name in ("xor", "moons"):
        assert main(["run", str(ROOT / "scenarios" / f"{name}.toml"), "--no-gif", "-q", "--steps", "60"]) == 0
    namespace = {}
    for block in code_blocks("python"):
        exec(compile(block, "README.md", "exec"), namespace)
    printed = capsys.readouterr().out
    assert "accuracy 100%" in printed


def test_ci_runs_the_readme_test_command():
    test_command = next(block.strip() for block in code_blocks("sh") if "pytest" in block)
    assert test_command in (ROOT / ".ci" / "run").read_text()


def test_readme_runs_a_scenario_that_exists():
    main_job = next(block.strip() for block in code_blocks("sh") if "simnet run" in block)
    scenario = re.search(r"simnet run (\S+)", main_job).group(1)
    assert (ROOT / scenario).is_file()

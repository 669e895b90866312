"""The browser tests skip, saying why, where no chromium is installed; CI turns that skip into a failure."""
import os
import subprocess
import sys
from pathlib import Path

BROWSER_TESTS = Path(__file__).with_name("test_html_browser.py")


def run_browser_tests(tmp_path, require):
    environment = {k: v for k, v in os.environ.items() if k != "SIMNET_REQUIRE_BROWSER"}
    environment["SIMNET_CHROMIUM"] = str(tmp_path / "no-chromium")
    if require:
        environment["SIMNET_REQUIRE_BROWSER"] = "1"
    return subprocess.run([sys.executable, "-m", "pytest", str(BROWSER_TESTS), "-p", "no:cacheprovider",
                           "-q", "-rs"], capture_output=True, text=True, env=environment, timeout=120,
                          cwd=BROWSER_TESTS.parent)


def test_without_chromium_the_browser_tests_skip_and_say_why(tmp_path):
    done = run_browser_tests(tmp_path, require=False)
    assert done.returncode == 0, done.stdout
    reasons = [line for line in done.stdout.splitlines() if line.startswith("SKIPPED")]
    assert reasons and all(line.endswith("no-chromium is missing: apt-get install chromium") for line in reasons)
    assert done.stdout.startswith("s") and set(done.stdout.split()[0]) == {"s"}  # every test skipped


def test_when_the_browser_is_required_a_missing_chromium_fails(tmp_path):
    done = run_browser_tests(tmp_path, require=True)
    assert done.returncode == 1, done.stdout
    assert "SKIPPED" not in done.stdout
    assert "no-chromium is missing" in done.stdout

"""Starting `simnet serve` / `simnet play` as real processes on a free port, and talking to them."""
import json
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 60  # seconds for anything to happen: a loaded 2-core machine is slow, never this slow


def simnet(*args, **kwargs):
    """A `simnet` process (this tree's) with its standard output piped."""
    return subprocess.Popen([sys.executable, "-m", "simnet", *map(str, args)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kwargs)


@contextmanager
def simnet_running(*args, **kwargs):
    """`simnet` with `args` running within the block, killed at its end if still there."""
    process = simnet(*args, **kwargs)
    try:
        yield process
    finally:
        process.kill()
        process.wait()
        process.stdout.close()
        process.stderr.close()


class Server:
    """`simnet serve|play ... --port 0 --no-browser` running until stopped; .url once it listens."""

    def __init__(self, *args):
        self.process = simnet(*args, "--port", "0", "--no-browser")
        deadline = time.monotonic() + TIMEOUT
        for line in self.process.stdout:
            found = re.search(r"serving at (http://\S+/)", line)
            if found:
                self.url = found.group(1)
                return
            if time.monotonic() > deadline:
                break
        self.stop()
        raise AssertionError(f"the server did not start: {self.process.stderr.read()}")

    def get(self, path):
        with urllib.request.urlopen(self.url + path.lstrip("/"), timeout=TIMEOUT) as response:
            body = response.read()
        return json.loads(body) if response.headers.get("content-type", "").startswith("application/json") \
            else body.decode()

    def post(self, path, body=None):
        """(status, answer) of a JSON POST."""
        request = urllib.request.Request(self.url + path.lstrip("/"), data=json.dumps(body or {}).encode(),
                                         headers={"content-type": "application/json"}, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    def status(self, path):
        """The HTTP status of GET `path`, sent exactly as written (no normalising of `..`)."""
        import http.client
        host, port = self.url[len("http://"):-1].split(":")
        connection = http.client.HTTPConnection(host, int(port), timeout=TIMEOUT)
        connection.request("GET", path)
        response = connection.getresponse()
        body = response.read()
        connection.close()
        return response.status, body

    def stop(self):
        """Ctrl-C, as a person would; returns the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(TIMEOUT)
        finally:
            self.process.stdout.close()
            self.process.stderr.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def until(condition, what, timeout=TIMEOUT):
    """Poll `condition()` until it gives something true; that value.  AssertionError naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def listening_address(pid_port):
    """The local IPv4 address (dotted) a socket listening on `pid_port` is bound to, from /proc/net/tcp."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        address, port = fields[1].split(":")
        if int(port, 16) == pid_port and fields[3] == "0A":  # LISTEN
            return ".".join(str(int(address[i:i + 2], 16)) for i in (6, 4, 2, 0))
    return None

"""The web applications of ``simnet serve`` and ``simnet play`` (Starlette), and running one (uvicorn).

Pages are one HTML file each with their style and script inlined: they need
no network beyond this server.  Everything a page shows comes from the JSON
API, which scripts can use as well.  Names that come from runs go into pages
HTML-escaped, or as text through the DOM.
"""
import errno
import html
import ipaddress
import socket
import sys
import threading
import webbrowser
from importlib import resources

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, PlainTextResponse
from starlette.routing import Route

from ..errors import InputError, SimnetError
from ..trace import open_trace
from ..viz.page import fill_placeholders, render_page, script_json
from .runs import (ENDED, STEPS_PER_ANSWER, find_runs, find_sweeps, finite_or_none, resolve_under, run_info,
                   steps_after)
from .session import SessionClosed

__all__ = ["LOCAL_NAMES", "REPLAY_PAGES_KEPT", "listen", "page", "play_app", "serve_app", "start"]

REPLAY_PAGES_KEPT = 8  # replay pages a server keeps made, the last asked for
LOCAL_NAMES = ("127.0.0.1", "localhost", "[::1]")  # Host headers a server listening on this machine only answers


def page(name, title, config, scripts=("draw",), **html_parts):
    """The page `name`: ``<name>.html`` with ``serving.css``, the `scripts` and ``<name>.js`` inlined, and
    `config` as JSON; `html_parts` fill ``{{NAME}}`` placeholders with HTML already escaped."""
    assets = resources.files(__package__)
    text = assets.joinpath(f"{name}.html").read_text(encoding="utf-8")
    parts = {"TITLE": html.escape(title), "STYLE": assets.joinpath("serving.css").read_text(encoding="utf-8"),
             "SCRIPT": "\n".join(assets.joinpath(f"{script}.js").read_text(encoding="utf-8")
                                   for script in (*scripts, name)),
             "CONFIG": script_json(config)}
    return fill_placeholders(text, {**parts, **html_parts})


def _error(error, status=400):
    return JSONResponse({"error": " ".join(str(error).split())}, status_code=status)


def serve_app(root):
    """The Starlette app of ``simnet serve`` over the directory `root`: index, run pages, files, JSON API."""

    def index(request):
        runs, sweeps = find_runs(root), find_sweeps(root)
        return HTMLResponse(page("index", f"simnet runs in {root}", {"root": str(root)}, scripts=(),
                                 RUNS=_run_rows(runs), SWEEPS=_sweep_tables(sweeps)))

    def api_runs(request):
        return JSONResponse([{key: info[key] for key in ("name", "path", "status", "last_step", "loss", "accuracy")}
                             for info in find_runs(root)])

    def api_sweeps(request):
        return JSONResponse(find_sweeps(root))

    def api_steps(request):
        try:
            after = int(request.query_params.get("after", "-1"))
            return JSONResponse(steps_after(root, request.path_params["name"], after))
        except ValueError:
            return _error("after: expected a step number")
        except SimnetError as error:
            return _error(error, 404)

    def live_page(request):
        return run_page(request, live=True)

    def run_page(request, live=False):
        name = request.path_params["name"]
        try:
            path = resolve_under(root, name)
            info = run_info(root, name)
        except SimnetError as error:
            return _error(error, 404)
        if not live and info["status"] in ENDED:
            try:
                return HTMLResponse(replay_page(path))
            except (SimnetError, OSError):
                pass  # a run that ended without a readable trace: the live page says what there is
        return HTMLResponse(page("live", name, {"name": name}))

    pages = {}  # run directory -> (its trace files' sizes and times, its replay page): made once per trace

    def replay_page(path):
        stamp = tuple((s.st_size, s.st_mtime_ns) for s in (f.stat() for f in sorted(path.glob("trace.sqlite*"))))
        if pages.get(path, (None,))[0] != stamp:
            with open_trace(path) as trace:
                page = render_page(trace)
            if len(pages) >= REPLAY_PAGES_KEPT:
                pages.pop(next(iter(pages)))
            pages[path] = (stamp, page)
        return pages[path][1]

    def files(request):
        try:
            path = resolve_under(root, request.path_params["path"])
        except SimnetError as error:
            return _error(error, 404)
        if not path.is_file():
            return _error(f"{request.path_params['path']}: not a file", 404)
        return FileResponse(path)

    return Starlette(routes=[
        Route("/", index), Route("/api/runs", api_runs), Route("/api/sweeps", api_sweeps),
        Route("/api/runs/{name:path}/steps", api_steps),
        Route("/runs/{name:path}/live", live_page), Route("/runs/{name:path}/", run_page),
        Route("/files/{path:path}", files),
    ])


def _cell(value):
    return "" if value is None else html.escape(f"{value:.4g}" if isinstance(value, float) else str(value))


def _run_rows(runs):
    rows = []
    for info in runs:
        link = html.escape(info["name"], quote=True)
        rows.append(f'<tr data-name="{link}"><td><a href="/runs/{link}/">{_cell(info["name"])}</a> '
                    f'<a class="small" href="/runs/{link}/live">live</a></td>'
                    f'<td class="status {html.escape(info["status"])}">{_cell(info["status"])}</td>'
                    f'<td class="num">{_cell(info["last_step"])}</td><td class="num">{_cell(info["loss"])}</td>'
                    f'<td class="num">{_cell(info["accuracy"])}</td></tr>')
    return "\n".join(rows) or '<tr><td colspan="5">no runs here yet</td></tr>'


def _sweep_tables(sweeps):
    out = []
    for sweep in sweeps:
        head = "".join(f"<th>{_cell(c)}</th>" for c in sweep["columns"])
        body = "".join("<tr>" + "".join(
            f'<td><a href="/runs/{html.escape(link, quote=True)}/">{_cell(cell)}</a></td>' if link else
            f"<td>{_cell(cell)}</td>" for cell, link in zip(row, links)) + "</tr>"
            for row, links in zip(sweep["rows"], sweep["links"]))
        out.append(f'<h3>{_cell(sweep["name"])}</h3><table class="sortable"><thead><tr>{head}</tr></thead>'
                   f"<tbody>{body}</tbody></table>")
    return "\n".join(out) or "<p>no sweeps here</p>"


def play_app(session):
    """The Starlette app of ``simnet play`` driving `session` (a :class:`~simnet.serving.session.PlaySession`)."""

    def body(request_json):
        return request_json if isinstance(request_json, dict) else {}

    async def read(request):
        # JSON only: a page elsewhere cannot send that without the browser asking this server first, which
        # it does not answer, so no other site can steer the session
        if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
            return None
        try:
            return body(await request.json())
        except ValueError:
            return None

    def play_page(request):
        sc = session.scenario
        return HTMLResponse(page("play", sc.name, {"name": sc.name, "directory": str(session.directory),
                                                   "inputs": sc.network.layers[0] if sc.network.layers else None}))

    async def run(request):
        given = await read(request)
        if given is None:
            return _error("the body must be JSON (content-type application/json)", 415)
        try:
            return JSONResponse(session.run(given.get("steps"), speed=given.get("speed")))
        except SimnetError as error:
            return _error(error, 409 if isinstance(error, SessionClosed) else 400)

    def pause(request):
        return JSONResponse(session.pause())

    async def action(request):
        given = await read(request)
        if given is None:
            return _error("the body must be JSON (content-type application/json): a [[script]] entry's keys", 415)
        return await run_in_threadpool(_act, given)

    def _act(given):
        try:
            return JSONResponse(session.act(given))
        except SimnetError as error:
            return _error(error, 409 if isinstance(error, SessionClosed) else 400)

    async def state(request):
        return JSONResponse(session.state())

    async def network(request):
        return JSONResponse(session.network())

    # the answers that only read what the session has published are async: no thread hand-over per frame
    def steps_after(request):
        after = int(request.query_params.get("after", "0"))
        return [[s, finite_or_none(loss), finite_or_none(acc)]
                for s, loss, acc in list(session.history) if s > after][:STEPS_PER_ANSWER]

    async def history(request):
        try:
            return JSONResponse(steps_after(request))
        except ValueError:
            return _error("after: expected a step number")

    async def frame(request):
        """What the page draws, in one answer: state, network and the steps after `after`."""
        try:
            return JSONResponse({"state": session.state(), "network": session.network(),
                                 "history": steps_after(request)})
        except ValueError:
            return _error("after: expected a step number")

    async def data(request):
        X, Y = session.data
        return JSONResponse({"points": [[float(x[0]), float(x[1]), float(y[0])] for x, y in zip(X, Y)]
                             if X.shape[1] == 2 else None})

    def scenario(request):
        try:
            return PlainTextResponse(session.scenario_text(), media_type="application/toml")
        except SimnetError as error:
            return _error(error, 409)

    def save(request):
        try:
            return JSONResponse({"path": str(session.save())})
        except SimnetError as error:
            return _error(error, 409)

    return Starlette(routes=[
        Route("/", play_page), Route("/api/session/run", run, methods=["POST"]),
        Route("/api/session/pause", pause, methods=["POST"]), Route("/api/session/action", action, methods=["POST"]),
        Route("/api/session/state", state), Route("/api/session/network", network),
        Route("/api/session/history", history), Route("/api/session/frame", frame), Route("/api/session/data", data),
        Route("/api/session/scenario", scenario), Route("/api/session/save", save, methods=["POST"]),
    ])


def listen(host, port):
    """A socket bound to (host, port) and listening; InputError naming --host or --port if it cannot be."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError as error:
        sock.close()
        where = "--port" if error.errno in (errno.EADDRINUSE, errno.EACCES) else "--host"
        raise InputError(f"{host}:{port}", where, f"cannot listen there: {error.strerror or error}") from None
    return sock


def start(app, sock, *, open_browser=True, what="simnet", on_exit=None):
    """Serve `app` on `sock` (from :func:`listen`) until Ctrl-C; says its address on standard output once it
    listens, and opens it in a browser unless `open_browser` is false.  `on_exit` is called when the server
    has stopped."""
    import uvicorn
    try:
        host, port = sock.getsockname()[:2]
        local = ipaddress.ip_address(host).is_loopback
        if local:
            # a name that some site points at 127.0.0.1 gets nothing: only this machine's own names are served
            app = TrustedHostMiddleware(app, allowed_hosts=list(LOCAL_NAMES))
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off"))
        url = f"http://{host if local or not ipaddress.ip_address(host).is_unspecified else '127.0.0.1'}:{port}/"

        def announce():
            while not server.started:
                if server.should_exit:
                    return
                threading.Event().wait(0.02)
            print(f"{what}: serving at {url} (Ctrl-C to stop)", flush=True)
            if not local:
                print(f"{what}: warning: listening on {host}: anyone who can reach this machine can see it",
                      file=sys.stderr, flush=True)
            if open_browser:
                webbrowser.open(url)

        threading.Thread(target=announce, daemon=True).start()
        server.run(sockets=[sock])
    finally:
        if on_exit is not None:
            on_exit()
    return 0

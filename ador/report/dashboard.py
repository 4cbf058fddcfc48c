"""optuna-dashboard on ador studies, showing the front ador shows (`ador study dashboard`).

optuna-dashboard (0.21, the newest) lists as "best trials" the Pareto set of *every* completed
trial, constraints ignored (optuna/optuna-dashboard#772): on an ador study that is mostly designs
over the reticle or missing an SLO. It reads constraints only in Optuna's older list layout, and
sends its study payload uncompressed (about 4 kB per trial with 19 knobs, most of it the
parameters' distributions). The app this module builds is optuna-dashboard itself with three
changes:

- its best trials are ador's front (``front_trials``: feasible, non-dominated, one trial per
  distinct design), so the dashboard, ``optuna.load_study(...).best_trials`` (the same designs,
  repeats of a design included) and ``ador study status/best`` agree;
- each trial's named constraints are also given in the list layout its plots read, so they grey
  out infeasible trials;
- JSON responses are gzip-compressed for browsers that accept it.

optuna-dashboard is optional: ``pip install optuna-dashboard`` (or ``ador[dashboard]``).
"""
from __future__ import annotations

import copy
import gzip
from typing import Any, Callable, Iterable

from optuna.trial import FrozenTrial

from ador.errors import ConfigError
from ador.explore.pareto import front_trials

LEGACY_CONSTRAINTS = "constraints"     # the system attribute optuna-dashboard reads constraints from
MIN_GZIP_BYTES = 1400


def _listed(trial: FrozenTrial) -> FrozenTrial:
    """The trial with its named constraints also in the list layout (a copy)."""
    named = {k: v for k, v in trial.system_attrs.items() if k.startswith(LEGACY_CONSTRAINTS + ":")}
    if not named or LEGACY_CONSTRAINTS in trial.system_attrs:
        return trial
    out = copy.copy(trial)
    out._system_attrs = {**trial.system_attrs, LEGACY_CONSTRAINTS: list(named.values())}
    return out


def _front(trials: list[FrozenTrial], directions: list[Any]) -> list[FrozenTrial]:
    return front_trials(trials, [d.name.lower() for d in directions])


def app(storage: Any) -> Callable[..., Iterable[bytes]]:
    """The WSGI app of optuna-dashboard on ``storage`` (an opened ador storage), with the changes
    above."""
    try:
        import optuna_dashboard
        from optuna_dashboard import _app
    except ImportError:
        raise ConfigError("dashboard", "optuna-dashboard", "is not installed: pip install optuna-dashboard") from None
    if not callable(getattr(_app, "get_pareto_front_trials", None)):
        raise ConfigError("dashboard", getattr(optuna_dashboard, "__version__", "?"),
                          "this optuna-dashboard computes its best trials elsewhere; ador supports 0.21")
    _app.get_pareto_front_trials = _front          # the dashboard's best trials: the feasible front
    inner_all, inner_one = storage.get_all_trials, storage.get_trial
    storage.get_all_trials = lambda *a, **k: [_listed(t) for t in inner_all(*a, **k)]
    storage.get_trial = lambda *a, **k: _listed(inner_one(*a, **k))
    return gzipped(optuna_dashboard.wsgi(storage))


def gzipped(inner: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
    """WSGI middleware: JSON bodies gzip-compressed when the client accepts gzip."""
    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if "gzip" not in environ.get("HTTP_ACCEPT_ENCODING", ""):
            return inner(environ, start_response)
        captured: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
            captured.update(status=status, headers=headers, exc_info=exc_info)
            return lambda data: None
        chunks = inner(environ, capture)
        try:
            body = b"".join(chunks)
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
        headers = [(k, v) for k, v in captured["headers"] if k.lower() != "content-length"]
        kind = next((v for k, v in headers if k.lower() == "content-type"), "")
        if "json" in kind and len(body) >= MIN_GZIP_BYTES:
            body = gzip.compress(body, 6)
            headers += [("Content-Encoding", "gzip"), ("Vary", "Accept-Encoding")]
        headers.append(("Content-Length", str(len(body))))
        start_response(captured["status"], headers, captured["exc_info"])
        return [body]
    return wrapped


def server(storage: Any, host: str, port: int) -> Any:
    """A threaded HTTP server of the dashboard (port 0: any free port; ``server_port`` says which)."""
    import socketserver
    from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

    class Server(socketserver.ThreadingMixIn, WSGIServer):
        daemon_threads = True

    class Quiet(WSGIRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass
    try:
        return make_server(host, port, app(storage), server_class=Server, handler_class=Quiet)
    except OSError as err:
        raise ConfigError("--port", port, f"cannot listen on {host}:{port} ({err.strerror or err})") from None


def serve(storage: Any, host: str, port: int, announce: Callable[[str], None]) -> None:
    """Serve the dashboard until interrupted."""
    with server(storage, host, port) as running:
        announce(f"http://{host}:{running.server_port}/")
        running.serve_forever()

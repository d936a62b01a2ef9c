"""`modelyzer ui`: serve the web dashboard of a results DB (a second frontend on the CLI's Profile/Store API).

Safe by default: it binds 127.0.0.1; any other `--host` gets a random token, printed once with the URL, that every
request must carry. It only reads the DB (in-memory snapshots taken through SQLite's backup API, never the
profile's lock), so it can watch a profile that is writing it. Bad input is one line with exit code 2: a missing
file, a file that is not a modelyzer results DB, a port already in use, the `ui` extra not installed.
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import secrets
import socket
from pathlib import Path
from typing import Any

import click

from modelyzer.kernel.errors import ConfigError
from modelyzer.kernel.hookspecs import hookimpl

log = logging.getLogger("modelyzer")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on (host, port); ConfigError (one line) when the port is taken or the host unknown."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as err:
        raise ConfigError(f"--host: cannot resolve {host!r} ({err.strerror}); give an address of this host") from None
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(128)
    except OSError as err:
        sock.close()
        if err.errno == errno.EADDRINUSE:
            raise ConfigError(f"--port: {host}:{port} is already in use; give another --port (or 0 for a free "
                              "one)") from None
        raise ConfigError(f"--host/--port: cannot listen on {host}:{port} ({err.strerror}); give another address "
                          "or port") from None
    return sock


def open_db(path: Path) -> Any:
    """The ResultsDB at `path`; one-line ConfigError when it is missing or no modelyzer results DB."""
    from modelyzer.frontends.web.snapshot import ResultsDB
    from modelyzer.kernel.store import NotAResultsDB

    if not path.is_file():
        raise ConfigError(f"--results-db: {path} does not exist; give the results DB of a profile (`modelyzer "
                          f"profile --results-db {path}`), or start the profile first")
    try:
        return ResultsDB(path)
    except NotAResultsDB as err:
        raise ConfigError(f"--results-db: {path} is not a modelyzer results DB ({err})") from None


def url(host: str, port: int, token: str | None) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/" + (f"?token={token}" if token else "")


@click.command("ui")
@click.option("--results-db", type=click.Path(path_type=Path, dir_okay=False), default=Path("results.db"),
              show_default=True, help="Results DB to show (read-only; it may be one a running profile writes).")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True,
              help="TCP port to listen on (0: a free one).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. Anything but loopback requires a token, printed once with the URL.")
def ui(results_db: Path, port: int, host: str) -> None:
    """Serve the web dashboard of a results DB (docs/ui.md).

    Runs, each model's ranked configs, the throughput/latency frontier, compare, downloads; it follows a
    profile writing the DB live. Read-only: it never blocks or locks a running profile.
    """
    try:
        import uvicorn

        from modelyzer.frontends.web.app import LOOPBACK_NAMES, Dashboard, make_app
    except ImportError as err:
        raise ConfigError(f"ui: the web dashboard needs its extra ({err.name} is missing); install it with "
                          "`pip install 'modelyzer[ui]'`") from None
    db = open_db(results_db)
    token = None if is_loopback(host) else secrets.token_urlsafe(24)
    sock = bind(host, port)
    port = sock.getsockname()[1]
    if token:
        click.echo(f"modelyzer ui: {host} is not a loopback address, so every request needs this token (shown "
                   "once; it changes at every start)")
    click.echo(f"modelyzer ui: serving {db.path} (read-only) at {url(host, port, token)}  (Ctrl-C stops)", err=False)
    dashboard = Dashboard(db, token, hosts=(*LOOPBACK_NAMES, host))
    config = uvicorn.Config(make_app(dashboard), log_level="warning", access_log=False,
                            timeout_graceful_shutdown=1, lifespan="off")
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()


@hookimpl
def register_commands(cli: Any) -> None:
    cli.add_command(ui)

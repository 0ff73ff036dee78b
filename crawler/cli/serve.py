"""The ``serve`` command: the web UI, JSON API and Atom feeds (``crawler.web``) under uvicorn."""

from __future__ import annotations

import socket
import sys
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from crawler.cli.main import App


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. Anything but loopback requires serve.users (a login for every URL).")
@click.option("--port", type=click.IntRange(min=0, max=65535), default=8000, show_default=True,
              help="Port to listen on.")
@click.pass_obj
def serve(app: App, host: str, port: int) -> None:
    """The web UI, JSON API and Atom feeds over the store."""
    import uvicorn

    from crawler.cli.daemon import config_file
    from crawler.cli.main import fail, usage_error
    from crawler.read.search import QueryError, parse
    from crawler.web.access import AccessError, access_for, raw_config
    from crawler.web.app import LOOPBACK_HOSTS, create_app

    config = app.config
    path = config_file(app)
    try:
        access = access_for(host, config.serve, raw_config(path), app.config_name)
    except AccessError as exc:
        usage_error(str(exc))
    topics = list(app.labels.topics)
    for i, saved in enumerate(config.searches):
        try:
            parse(saved.query, topics=topics)
        except QueryError as exc:
            usage_error(f"{app.config_name}: searches[{i}].query: {exc}")
    web = create_app(config, app.db, access, allowed_hosts=LOOPBACK_HOSTS if access.open else None)
    shown = f"[{host}]" if ":" in host else host
    problem = _cannot_listen(host, port)
    if problem:
        fail(f"cannot listen on {shown}:{port}: {problem}")
    click.echo(f"borderwatch: serving http://{shown}:{port}/ "
               f"({'no login: loopback' if access.open else f'{len(access.users)} user(s), login required'})",
               err=True)
    try:
        uvicorn.run(web, host=host, port=port, log_level="warning" if app.verbose == 0 else "info",
                    proxy_headers=False, server_header=False)
    except SystemExit as exc:  # uvicorn's own start-up failure (3): the command failed
        if exc.code not in (0, None):
            sys.exit(1)


def _cannot_listen(host: str, port: int) -> str | None:
    """Why ``host:port`` cannot be listened on (taken, not an address of this machine), or None."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        return str(exc.strerror or exc)
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            return str(exc.strerror or exc)
    return None

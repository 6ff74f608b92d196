"""``jotkit serve``, and the server settings options its siblings (``users``, ``keys rotate|list``)
share."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from typing import Any

import click

from jotkit.cli.sources import CliError, CliInputError
from jotkit.codes import ERR_LISTEN
from jotkit.extras import MissingExtra

__all__ = ["config_option", "database_option", "operator_errors", "serve", "server_settings"]

_SETTINGS_EPILOG = "Every setting, as TOML name / environment variable [default]: meaning"
# On SIGTERM uvicorn waits for in-flight requests up to this bound, then cancels them. Held
# GET /revocations long-polls are answered at once (server/runner.py); the bound is the rest's.
_GRACEFUL_SHUTDOWN_SECONDS = 3


def server_settings(config: str | None, **overrides: Any) -> Any:
    """Load the server's Settings (file, environment, options) or exit 2 with the reason."""
    from jotkit.server.settings import ConfigError, load_settings

    try:
        return load_settings(config_file=config, overrides=overrides)
    except ConfigError as exc:
        raise CliInputError(exc.code, str(exc)) from None


def _epilog() -> str:
    try:
        from jotkit.server.settings import describe
    except MissingExtra as exc:  # `jotkit serve --help` with only the core installed
        return f"\b\n{exc}"
    lines = describe().splitlines()
    return "\b\n" + _SETTINGS_EPILOG + ":\n" + "\n".join(f"  {line}" for line in lines)


config_option = click.option(
    "--config", type=click.Path(dir_okay=False), envvar="JOTKIT_CONFIG", help="TOML config file."
)
database_option = click.option(
    "--database", "database_url", help="sqlite:///path/file.db or postgresql://... URL."
)


class _SettingsHelp(click.Command):
    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        self.epilog = _epilog()
        super().format_epilog(ctx, formatter)


@click.command(cls=_SettingsHelp)
@config_option
@click.option("--host", help="Address to listen on [127.0.0.1].")
@click.option("--port", type=int, help="TCP port [8000].")
@database_option
@click.option("--issuer", help="Issuer URL (iss) [http://HOST:PORT].")
@click.option(
    "--workers",
    type=click.IntRange(1, 256),
    help="Server processes sharing the port [1]; the parent migrates and sets up keys once.",
)
@click.option(
    "--dpop",
    type=click.Choice(["optional", "required"]),
    help="DPoP proofs at /login and /token/refresh (RFC 9449) [optional].",
)
def serve(
    config: str | None,
    host: str | None,
    port: int | None,
    database_url: str | None,
    issuer: str | None,
    workers: int | None,
    dpop: str | None,
) -> None:
    """Run the auth server (SQLite and a generated key by default: nothing else to set up)."""
    from jotkit.server import build_service, create_app
    from jotkit.server.limits import HeaderLimitProtocol
    from jotkit.server.logs import configure_logging
    from jotkit.server.runner import Server

    settings = server_settings(
        config,
        host=host,
        port=port,
        database_url=database_url,
        issuer=issuer,
        workers=workers,
        dpop=dpop,
    )
    # After jotkit.server, which names the extra to install when the server's are missing.
    import uvicorn

    configure_logging(settings.log_level)
    _check_listen(settings.host, settings.port)
    with operator_errors():
        service = build_service(settings)
    click.echo(
        f"jotkit serving {settings.issuer} (store: {_redacted(settings.database_url)}"
        f"{f', {settings.workers} workers' if settings.workers > 1 else ''})",
        err=True,
    )
    options: dict[str, Any] = {
        "log_config": None,
        "access_log": False,
        "server_header": False,
        # X-Forwarded-* only from the proxies the operator names: believed from anyone else, a
        # client could pick its own address and walk past the per-address login throttle.
        "proxy_headers": bool(settings.trusted_proxies),
        "forwarded_allow_ips": list(settings.trusted_proxies),
        "timeout_graceful_shutdown": _GRACEFUL_SHUTDOWN_SECONDS,
        # uvicorn's 5 s default closed idle connections that a client (or a proxy) was
        # about to reuse: under load their queued requests died with a read error.
        "timeout_keep_alive": settings.keep_alive_timeout_seconds,
        "http": HeaderLimitProtocol.limited(settings.max_header_bytes, settings.max_header_count),
    }
    if settings.workers > 1:
        from jotkit.server.workers import run_workers

        # The workers open their own connections: none of the parent's may cross the fork.
        service.feed.close()
        service.store.close()
        run_workers(settings, options)
        return
    uvicorn_config = uvicorn.Config(
        create_app(settings, service=service, freeze_heap=True),
        host=settings.host,
        port=settings.port,
        **options,
    )
    server = Server(uvicorn_config, on_shutdown=service.feed.http.end_polls)
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C: uvicorn re-raises it once done
        server.run()
    if not server.started:  # as uvicorn.run: it could not start (the reason is logged)
        raise SystemExit(3)


def _check_listen(host: str, port: int) -> None:
    """Bind the address once before anything starts: uvicorn reports a port in use or an
    unknown host as a log line and exit 3; this is one ERR_LISTEN line and exit 1 instead."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
            probe.bind((host, port))
    except OSError as exc:  # gaierror included
        raise CliError(
            ERR_LISTEN, f"cannot listen on {host}:{port}: {exc.strerror or exc}"
        ) from None


@contextlib.contextmanager
def operator_errors() -> Iterator[None]:
    """Configuration and store failures end the command with one line and exit 1."""
    from jotkit.server.settings import ConfigError
    from jotkit.store import StoreError

    try:
        yield
    except (ConfigError, StoreError) as exc:
        raise CliError(exc.code, str(exc)) from None


def _redacted(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)

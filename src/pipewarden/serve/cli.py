"""``pipewarden serve``: a thin wrapper that runs :func:`pipewarden.serve.create_app` under
uvicorn."""

from __future__ import annotations

import logging

import click

from ..errors import InputError


@click.command("serve")
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("--host", help="Address to listen on [default: the config's serve.host, 127.0.0.1].")
@click.option("--port", type=click.IntRange(0, 65535), help="Port [default: serve.port, 8000].")
@click.option("--log-level", type=click.Choice(["warning", "info", "debug"]), default="info",
              show_default=True)  # fmt: skip
def serve_command(config, host, port, log_level):
    """Serve the store's datasets over HTTP: typed lookups by key, filtered pages, verdicts."""
    try:
        import uvicorn

        from .app import create_app
    except ModuleNotFoundError as exc:
        raise InputError(
            f"pipewarden serve needs the serve extra ({exc.name} is missing)",
            hint="pip install 'pipewarden[serve]'",
        ) from None
    app = create_app(config)
    host = host or app.settings_host
    port = app.settings_port if port is None else port
    if not app.settings.keys and host not in ("127.0.0.1", "localhost", "::1"):
        raise InputError(
            f"refusing to serve on {host} without an API key",
            key="serve.keys",
            hint="configure serve.keys (with ${ENV} values), or listen on 127.0.0.1",
        )
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(name)s %(message)s")
    # uvicorn's access log prints query strings (filter values may be PII): ours prints routes
    uvicorn.run(app, host=host, port=port, access_log=False, log_level=log_level,
                lifespan="on", server_header=False)  # fmt: skip
    return 0


COMMANDS = [serve_command]

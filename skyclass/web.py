"""The web app factory (FastAPI): the EPG pull API now, the operator console later.

`skyclass serve` runs it with uvicorn. Each package contributes a router; this
module only wires them to one Runtime.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Annotated

import typer

from skyclass import __version__

if TYPE_CHECKING:
    from fastapi import FastAPI

    from epg.context import EpgRuntime
    from skyclass.runtime import Runtime

logger = logging.getLogger(__name__)


def create_app(runtime: EpgRuntime, *, guide_cache_size: int = 64) -> FastAPI:
    """The skyclass HTTP app over one runtime (guide_cache_size=0 renders every request).

    Typed by the slices the routers need, so tests and benchmarks can pass a
    lightweight runtime; the shell's Runtime satisfies them all. FastAPI and the
    routers are imported here, not at module level: other commands start faster.
    """
    from fastapi import FastAPI

    from epg.api import make_router
    from epg.context import EpgServices

    app = FastAPI(title="skyclass", version=__version__, docs_url=None, redoc_url=None)
    app.include_router(make_router(EpgServices(runtime), cache_size=guide_cache_size))

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


def register(app: typer.Typer) -> None:
    @app.command("serve")
    def serve(
        ctx: typer.Context,
        host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
        port: Annotated[int, typer.Option("--port", min=1, max=65535)] = 8080,
        guide_cache: Annotated[
            int, typer.Option("--guide-cache", min=0, help="Rendered guides kept (0: none).")
        ] = 64,
    ) -> None:
        """Serve the EPG pull API (and later the operator console) over HTTP."""
        import uvicorn

        runtime: Runtime = ctx.obj
        runtime.sessions()  # migrate before the first request, not during it
        logger.info("serving on http://%s:%d", host, port)
        uvicorn.run(
            create_app(runtime, guide_cache_size=guide_cache),
            host=host,
            port=port,
            log_level="warning",
        )

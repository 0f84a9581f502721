"""`skyclass demo`: the main job, end to end on this machine.

It initializes the database and prints the channel lineup; later stages
(ingest, EPG, playout) run after it unless --lineup-only is given.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from channels.cli import lineup_table
from skyclass.database import current_revisions, upgrade
from skyclass.runtime import Runtime


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo(
        ctx: typer.Context,
        lineup_only: Annotated[
            bool, typer.Option("--lineup-only", help="Only set up the database and show channels.")
        ] = False,
    ) -> None:
        """Initialize the database and show the channel lineup."""
        runtime: Runtime = ctx.obj
        console = Console()
        upgrade(runtime.engine)
        revisions = ", ".join(current_revisions(runtime.engine)) or "base"
        console.print(
            f"database ready: {runtime.engine.url.render_as_string()} (revision {revisions})"
        )
        console.print(lineup_table(runtime.registry))
        if lineup_only:
            return

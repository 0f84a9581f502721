"""`skyclass demo`: the main job, end to end on this machine.

At this stage it initializes the database and prints the channel lineup; the
ingest, EPG and playout stages extend it.
"""

from __future__ import annotations

import typer
from rich.console import Console

from channels.cli import lineup_table
from skyclass.database import current_revisions, upgrade
from skyclass.runtime import Runtime


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo(ctx: typer.Context) -> None:
        """Initialize the database and show the channel lineup."""
        runtime: Runtime = ctx.obj
        console = Console()
        upgrade(runtime.engine)
        console.print(
            f"database ready: {runtime.engine.url.render_as_string()} "
            f"(revision {', '.join(current_revisions(runtime.engine)) or 'base'})"
        )
        console.print(lineup_table(runtime.registry))

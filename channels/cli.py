"""`skyclass channels list|show`: the channel lineup."""

from __future__ import annotations

import json
from typing import Annotated, Protocol, cast

import typer
from rich.console import Console
from rich.table import Table

from channels.registry import ChannelRegistry


class ChannelsRuntime(Protocol):
    @property
    def registry(self) -> ChannelRegistry: ...


def lineup_table(registry: ChannelRegistry) -> Table:
    table = Table(title=f"{registry.network.name_zh} channel lineup ({registry.source.name})")
    for column in ("id", "频道", "service", "年级", "profile", "mux rate", "outputs"):
        table.add_column(column)
    for channel in registry.channels:
        table.add_row(
            channel.id,
            channel.name_zh,
            str(channel.service_id),
            "专题 *" if channel.thematic else ",".join(channel.grades),
            channel.profile.name,
            f"{channel.mux_rate / 1e6:g} Mb/s",
            "\n".join(f"{o.kind.value}: {o.url}" for o in channel.outputs),
        )
    return table


channels_app = typer.Typer(help="The channel registry (频道).", no_args_is_help=True)


@channels_app.command("list")
def list_channels(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List every channel in the registry."""
    registry = cast(ChannelsRuntime, ctx.obj).registry
    if as_json:
        typer.echo(json.dumps([c.as_json() for c in registry], ensure_ascii=False, indent=2))
        return
    Console().print(lineup_table(registry))


@channels_app.command("show")
def show_channel(
    ctx: typer.Context,
    channel_id: Annotated[
        str, typer.Argument(metavar="ID", help="Channel id, e.g. g03.skyclass.cn")
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show one channel with its house profile."""
    channel = cast(ChannelsRuntime, ctx.obj).registry.get(channel_id)
    data = channel.as_json() | {"profile_detail": channel.profile.as_json()}
    if as_json:
        typer.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return
    console = Console()
    for key, value in data.items():
        console.print(f"[bold]{key}[/bold]: {value}")


def register(app: typer.Typer) -> None:
    app.add_typer(channels_app, name="channels")

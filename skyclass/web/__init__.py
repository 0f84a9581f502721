"""The web app: the operator console, its JSON API, /metrics and the EPG pull API.

``create_app(runtime)`` builds the FastAPI app (``skyclass serve`` runs it with
uvicorn); ``register(app)`` adds ``serve`` and ``users`` to the CLI. FastAPI,
Jinja2 and argon2 load only when the app is built, so other commands start fast.

Modules, one concern each: ``app`` (factory, middleware, error pages), ``auth``
(sessions, CSRF, roles), ``users``/``sessions``/``audit`` (their tables),
``console`` (pages), ``api`` (JSON), ``metrics``, ``multiviewer`` (live channel
status and pictures), ``findings`` (compliance plug-in), ``grid``, ``uploads``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from skyclass.web.cli import register

if TYPE_CHECKING:
    from skyclass.web.app import create_app


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from skyclass.web.app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["create_app", "register"]

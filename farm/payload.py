"""An IngestRequest as the JSON a job carries, and back.

Workers on other machines rebuild the request from this alone, so every path is
absolute (the sources and the media store must be mounted at the same path on
every worker) and the house profile travels by name.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from channels.ads import AdCategory
from channels.profiles import profile_by_name
from ingest.asset import AssetKind, LessonMetadata
from ingest.pipeline import IngestRequest

__all__ = ["request_from_json", "request_to_json"]

VERSION = 1


def request_to_json(request: IngestRequest) -> dict[str, Any]:
    return {
        "version": VERSION,
        "source": str(request.source.absolute()),
        "metadata": asdict(request.metadata),
        "profile": request.profile.name,
        "kind": request.kind.value,
        "lesson_id": request.lesson_id,
        "package": str(request.package.absolute()) if request.package else None,
        "ad_category": request.ad_category.value if request.ad_category else None,
    }


def request_from_json(data: dict[str, Any]) -> IngestRequest:
    if data.get("version") != VERSION:
        raise ValueError(f"ingest job payload version {data.get('version')!r}, expected {VERSION}")
    package = data.get("package")
    category = data.get("ad_category")
    return IngestRequest(
        source=Path(data["source"]),
        metadata=LessonMetadata(**data["metadata"]),
        profile=profile_by_name(data["profile"]),
        kind=AssetKind(data["kind"]),
        lesson_id=data.get("lesson_id"),
        package=Path(package) if package else None,
        ad_category=AdCategory(category) if category else None,
    )

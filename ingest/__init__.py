"""Ingest: lesson files to the broadcast house format, with QC, loudness and review."""

from ingest.asset import (
    Asset,
    AssetKind,
    Attachment,
    AttachmentKind,
    LessonMetadata,
    NewAsset,
    Review,
    ReviewCheck,
    ReviewState,
)
from ingest.library import (
    AssetLibrary,
    DuplicateAssetError,
    UnknownAssetError,
    content_path,
)

__all__ = [
    "Asset",
    "AssetKind",
    "AssetLibrary",
    "Attachment",
    "AttachmentKind",
    "DuplicateAssetError",
    "LessonMetadata",
    "NewAsset",
    "Review",
    "ReviewCheck",
    "ReviewState",
    "UnknownAssetError",
    "content_path",
]

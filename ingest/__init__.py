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
from ingest.errors import (
    DuplicateAssetError,
    IngestError,
    IngestInputError,
    UnknownAssetError,
)
from ingest.library import AssetLibrary, content_path

__all__ = [
    "Asset",
    "AssetKind",
    "AssetLibrary",
    "Attachment",
    "AttachmentKind",
    "DuplicateAssetError",
    "IngestError",
    "IngestInputError",
    "LessonMetadata",
    "NewAsset",
    "Review",
    "ReviewCheck",
    "ReviewState",
    "UnknownAssetError",
    "content_path",
]

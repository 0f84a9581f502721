"""Imports every package's ORM rows so Base.metadata is complete for Alembic."""

from core.orm import Base

__all__ = ["Base"]

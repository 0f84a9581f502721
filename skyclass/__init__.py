"""The skyclass shell: settings, database, CLI entry point and web app factory.

It may import every domain package; nothing imports it.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]

"""Tables, plots and published numbers side by side."""

from .tables import to_markdown, write_table

__all__ = ["to_markdown", "write_table"]

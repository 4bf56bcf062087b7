"""The one error type of the data package (defined with semfed's other input errors)."""

from __future__ import annotations

from semfed.errors import DataError

__all__ = ["DataError"]

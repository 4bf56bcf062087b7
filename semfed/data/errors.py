"""The one error type of the data package."""

from __future__ import annotations


class DataError(Exception):
    """No data source worked, or a data source is unusable.

    The message is one self-contained paragraph (what was tried, what is wrong,
    how to fix it); the CLI prints it without a traceback.
    """

"""Errors the library raises for bad user input; the command line prints them as one line."""

from __future__ import annotations


class UserError(Exception):
    """An error caused by the user's input (a path, an option, a selection of runs)."""


__all__ = ["UserError"]

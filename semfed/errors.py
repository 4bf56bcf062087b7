"""The errors semfed raises for bad input, in one place; the command line prints them as one line.

Every type here means "the user asked for something that cannot be done" (a bad
config value, a missing or foreign data set, an impossible partition, a bad
path or option), never a bug: :data:`USER_ERRORS` is what ``semfed`` turns into
``semfed COMMAND: error: MESSAGE`` and exit status 2, without a traceback. The
library raises them and never imports :mod:`semfed.cli`. Subclasses live where
they are raised (``RunDirError`` in :mod:`semfed.train`, ``SweepError`` in
:mod:`semfed.sweep`, ``ExperimentError`` in :mod:`semfed.experiment`: all
:class:`ConfigError`). The radio's own :class:`phy.config.LinkConfigError` is
defined in ``phy``, which knows nothing of semfed.
"""

from __future__ import annotations

from phy.config import LinkConfigError


class UserError(Exception):
    """An error caused by the user's input (a path, an option, a selection of runs)."""


class ConfigError(ValueError):
    """A bad configuration value; the message names the key."""


class DataError(Exception):
    """No data source worked, or a data source is unusable.

    The message is one self-contained paragraph (what was tried, what is wrong,
    how to fix it); the CLI prints it without a traceback.
    """


class PartitionError(ValueError):
    """A partition that cannot be made from the data; the message gives the numbers."""


USER_ERRORS: tuple[type[Exception], ...] = (
    UserError,
    ConfigError,
    LinkConfigError,
    DataError,
    PartitionError,
)

__all__ = ["USER_ERRORS", "ConfigError", "DataError", "PartitionError", "UserError"]

"""The one exception hierarchy of edgebench.

Every error the harness raises on purpose derives from :class:`EdgebenchError`, so the CLI can
turn it into a one-line message and an exit status instead of a traceback.
"""

from __future__ import annotations


class EdgebenchError(Exception):
    """Base class of every error edgebench raises on purpose."""

    exit_status = 1


class UsageError(EdgebenchError):
    """The user asked for something that does not exist or does not fit together."""

    exit_status = 2


class UnknownDistroError(UsageError):
    """A distro or provider name that no driver is registered for."""


class InputError(UsageError):
    """A result file or run folder that cannot be read as edgebench results."""


class ToolError(EdgebenchError):
    """A required binary is missing or could not be built."""


class ToolchainMissingError(ToolError):
    """The Go toolchain needed to build a tool is not installed."""


class BuildError(ToolError):
    """Building a tool from its Go module failed."""


class FaultError(EdgebenchError):
    """A fault could not be applied or removed."""


class ClusterError(EdgebenchError):
    """A cluster could not be stood up, reached or torn down."""


class ClusterTimeoutError(ClusterError):
    """A cluster did not reach an expected state within its time bound."""


class NotSupportedError(EdgebenchError):
    """The chosen distro driver does not support an operation."""


class EnvironmentUnavailableError(EdgebenchError):
    """A driver cannot run on this machine (no images, no lab, no ISO); tests skip on it."""

    exit_status = 2  # the user must supply something (an engine, an image, a lab file)


class HostError(EdgebenchError):
    """A command on a host failed, or the host could not be reached."""

"""User-facing errors.

Every error a user can cause (bad path, corrupt file, wrong option) is raised as
:class:`EOEdgeError`; the CLI prints its message on one line and exits non-zero,
never with a traceback (set ``EO_EDGE_DEBUG=1`` to see one).
"""


class EOEdgeError(Exception):
    """A clear, one-line, user-facing error. ``str(err)`` is the message printed by the CLI."""

    exit_code = 2


class BackendUnavailable(EOEdgeError):
    """An optional runtime (TensorRT, pycuda, NVML, ...) is not installed or not usable here."""

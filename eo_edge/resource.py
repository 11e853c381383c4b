"""A base for objects that hold a runtime resource (sessions, engines, power sources)."""

from __future__ import annotations


class Closeable:
    """``close()`` releases the resource (safe to call twice); usable as a context manager."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the resource; the default holds none."""

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

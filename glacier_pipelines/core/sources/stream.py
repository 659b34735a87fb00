"""``SourceStream``: an opened source read in one pass, its bytes counted against the expected size so that a
truncated or grown body is never taken as complete."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from glacier_pipelines.core.sources.errors import SourceError, SourceUnavailable, redact_url, wrap


class SourceStream:
    """A source opened for exactly one pass; the byte count is checked against ``size``."""

    def __init__(self, url: str, size: int | None, read: Callable[[int], Iterable[bytes]], close: Callable[[], None]) -> None:
        self._url = url
        self.size = size
        self._read = read
        self._close = close
        self._used = False
        self._closed = False

    @property
    def url(self) -> str:
        """The URL as errors and logs may show it; redacted when asked, which is only when something went wrong."""
        return redact_url(self._url)

    def chunks(self, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        """Yield the body in chunks of at most ``chunk_size`` bytes; only one pass is possible."""
        if chunk_size <= 0:
            raise ValueError("chunk_size must be positive")
        if self._used or self._closed:
            raise SourceError(self.url, "stream already consumed or closed; a source is read only once")
        self._used = True
        return self._iterate(chunk_size)

    def _iterate(self, chunk_size: int) -> Iterator[bytes]:
        got = 0
        try:
            for chunk in self._read(chunk_size):
                for start in range(0, len(chunk), chunk_size):
                    piece = chunk[start : start + chunk_size]
                    got += len(piece)
                    if self.size is not None and got > self.size:
                        raise SourceUnavailable(
                            self.url, f"body longer than the expected {self.size} bytes (source changed while reading?)"
                        )
                    yield piece
        except SourceError:
            raise
        except Exception as exc:
            err = wrap(self.url, exc)
            if isinstance(err, SourceUnavailable) and self.size is not None and got < self.size:
                err = SourceUnavailable(self.url, f"truncated: got {got} of {self.size} bytes ({err.reason})")
            raise err from None
        if self.size is not None and got < self.size:
            raise SourceUnavailable(self.url, f"truncated: got {got} of {self.size} bytes")

    def close(self) -> None:
        """Release the file/connection; safe to call twice, never raises."""
        if not self._closed:
            self._closed = True
            try:
                self._close()
            except Exception:
                pass  # nothing useful to do with a failed close of a read-only source

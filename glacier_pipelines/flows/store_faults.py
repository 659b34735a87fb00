"""A store's faults in the words the restore and vault steps have always used.

The port (core/objectstore) wraps what boto3 raises in a ``StoreError`` whose text starts with
the operation and key. The catalog messages, reports and logs of these steps quote what S3 said,
as they did before the port: :func:`said` gives the wrapped exception's own text. :func:`answered`
keeps the one distinction some steps draw between S3 refusing a request (it answered) and no
answer at all (connection refused, timeout, credentials missing).
"""

from __future__ import annotations

from botocore.exceptions import ClientError

from glacier_pipelines.core import faults
from glacier_pipelines.core.objectstore import StoreError


def cause(exc: BaseException) -> BaseException:
    """What the store raised under a StoreError (boto3's error, or the OS's), else the exception itself: what
    core/faults.py's ``describe`` and ``error_code`` read."""
    wrapped = exc.__cause__ if isinstance(exc, StoreError) else None
    return wrapped if wrapped is not None and not isinstance(wrapped, StoreError) else exc


def described(exc: BaseException) -> str:
    """``faults.describe`` of what the store raised (``ClientError: ... (SlowDown) ...``), the words reports and answers quote."""
    return faults.describe(cause(exc))


def said(exc: BaseException) -> str:
    """What the store said: the text of the exception a StoreError wraps, else the exception's own."""
    return str(cause(exc))


def answered(exc: StoreError) -> bool:
    """Whether S3 answered the request with an error (boto3's ClientError under the StoreError), rather than not at all."""
    return isinstance(exc.__cause__, ClientError)

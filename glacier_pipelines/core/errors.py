"""Errors more than one part of the archive path raises or catches, defined once."""


class ChecksumMismatch(Exception):
    """Bytes (or what S3 reports about them) differ from the checksum they must match: the request's fault, never retried."""

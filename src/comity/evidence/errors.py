"""Errors of the evidence package format.

Every failure is an :class:`EvidenceError` (a
:class:`~comity.problems.Problem`, so the HTTP layer can report it), and each
subclass names its own ``slug``:

* :class:`ManifestError`: the signed manifest is malformed, inconsistent or
  not signed by the sender. :class:`UnsafeNameError` is the special case of a
  file name that could escape or confuse the output directory; the builder
  raises it for the sender's own input too.
* :class:`TamperedError`: ciphertext on disk does not match what the verified
  manifest promised (missing, truncated, extended, altered, reordered or
  moved between files or packages), or its sealed key does not open.

Environment problems (an output file already exists, a disk is full) are
left as the builtin ``OSError`` family, because they say nothing about the
evidence itself.
"""

from __future__ import annotations

from comity.problems import Problem

__all__ = ["EvidenceError", "ManifestError", "TamperedError", "UnsafeNameError"]


class EvidenceError(Problem):
    """Base: an evidence package was rejected."""

    slug = "evidence"
    title = "Evidence package rejected"


class ManifestError(EvidenceError):
    """The manifest's structure, values or signature are not acceptable.

    Attributes:
        code: a short name for the failed check (``"signature"``, ``"keys"``,
            ``"type"``, ``"range"``, ``"format"``, ``"index"``,
            ``"cipher-size"``, ``"total-size"``, ``"version"``,
            ``"unsafe-name"``), for logs and tests; the wire form carries it too.
    """

    slug = "evidence-manifest"
    title = "Evidence manifest rejected"

    def __init__(self, detail: str, *, code: str = "invalid") -> None:
        super().__init__(detail, code=code)
        self.code = code


class UnsafeNameError(ManifestError):
    """A file name is empty, too long, duplicated or could address another path."""

    slug = "evidence-unsafe-name"
    title = "Evidence file name is not safe"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, code="unsafe-name")


class TamperedError(EvidenceError):
    """A package file does not match its verified manifest entry.

    Attributes:
        file_index: the file's index in the manifest.
        name: the file's name in the manifest.
        reason: which check failed, for logs and custody records.
    """

    slug = "evidence-tampered"
    status = 422
    title = "Evidence file does not match its manifest"

    def __init__(self, file_index: int, name: str, reason: str) -> None:
        super().__init__(f"file {file_index} ({name!r}): {reason}", file_index=file_index)
        self.file_index = file_index
        self.name = name
        self.reason = reason

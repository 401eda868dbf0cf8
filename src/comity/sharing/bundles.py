"""Reading STIX bundles of any size as a stream, and writing them the same way.

:func:`iter_objects` walks a bundle (or TAXII envelope) file object by
object, holding one object (at most ``max_object_bytes``) and one read
buffer in memory, whatever the file's size, and in whatever order the
top-level members come. :func:`write_bundle` emits a bundle from an iterator
of already-encoded objects.

Trust assumptions: the file is untrusted input; every object still goes
through :func:`comity.sharing.stix.check_object` when stored.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Iterator
from typing import IO, Any

from comity.sharing.stix import StixError

__all__ = ["iter_objects", "write_bundle"]

_WS = " \t\r\n"
_CHUNK = 1 << 20


class _Stream:
    def __init__(self, fp: IO[str], limit: int) -> None:
        self.fp = fp
        self.buf = ""
        self.pos = 0
        self.limit = limit
        self.eof = False
        self.consumed = 0  # characters before buf[0]

    def _more(self) -> bool:
        if self.eof:
            return False
        chunk = self.fp.read(_CHUNK)
        if not chunk:
            self.eof = True
            return False
        self.consumed += self.pos
        self.buf = self.buf[self.pos:] + chunk
        self.pos = 0
        return True

    def skip_ws(self) -> None:
        while True:
            while self.pos < len(self.buf) and self.buf[self.pos] in _WS:
                self.pos += 1
            if self.pos < len(self.buf) or not self._more():
                return

    def peek(self) -> str:
        self.skip_ws()
        return self.buf[self.pos] if self.pos < len(self.buf) else ""

    def expect(self, char: str) -> None:
        if self.peek() != char:
            got = self.peek() or "end of file"
            raise StixError("bundle", f"expected {char!r} at character {self.consumed + self.pos}, "
                            f"found {got!r}")
        self.pos += 1

    def value(self) -> Any:
        decoder = json.JSONDecoder()
        self.skip_ws()
        while True:
            try:
                obj, end = decoder.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as e:
                if len(self.buf) - self.pos > self.limit:
                    raise StixError("bundle", f"an object at character "
                                    f"{self.consumed + self.pos} is larger than "
                                    f"{self.limit} bytes") from e
                if not self._more():
                    raise StixError("bundle", f"invalid JSON at character {self.consumed + e.pos}: "
                                    f"{e.msg}") from e
                continue
            # A number may end exactly at the buffer's end: read on to be sure.
            if end == len(self.buf) and not self.eof and self._more():
                continue
            self.pos = end
            return obj


def iter_objects(fp: IO[str], *, max_object_bytes: int = 16 << 20) -> Iterator[Any]:
    """Each object of a STIX bundle or TAXII envelope in ``fp``, in order.

    Raises:
        StixError: the file is not a JSON object with an ``objects`` array,
            or an object is malformed or too large.
    """
    s = _Stream(fp, max_object_bytes)
    s.expect("{")
    seen_objects = False
    if s.peek() == "}":
        raise StixError("bundle", "it has no objects member")
    while True:
        key = s.value()
        if not isinstance(key, str):
            raise StixError("bundle", "member names must be strings")
        s.expect(":")
        if key == "objects":
            seen_objects = True
            s.expect("[")
            if s.peek() == "]":
                s.pos += 1
            else:
                while True:
                    yield s.value()
                    if s.peek() == ",":
                        s.pos += 1
                        continue
                    s.expect("]")
                    break
        else:
            s.value()
        if s.peek() == ",":
            s.pos += 1
            continue
        s.expect("}")
        break
    if not seen_objects:
        raise StixError("bundle", "it has no objects member")
    if s.peek():
        raise StixError("bundle", "data after its end")


def write_bundle(out: IO[bytes], objects: Iterable[bytes]) -> int:
    """Write a STIX 2.1 bundle holding ``objects`` (encoded JSON); returns how many."""
    out.write(b'{"type":"bundle","id":"bundle--' + str(uuid.uuid4()).encode() +
              b'","objects":[')
    n = 0
    for body in objects:
        if n:
            out.write(b",")
        out.write(body)
        n += 1
    out.write(b"]}")
    return n

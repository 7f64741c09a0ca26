"""AS4 payload compression: gzip (RFC 1952) at level 6, and decompression under a size limit.

The eDelivery AS4 profile makes compression mandatory, also for content that does not compress
(PDFs, images, archives, encrypted data): deflating a megabyte of such bytes costs tens of
milliseconds and saves nothing. A large part is therefore tried first on a few samples; when they do
not shrink, the part is written as gzip with *stored* deflate blocks (level 0): still one valid gzip
member with ``CompressionType=application/gzip``, decompressed by any receiver, for the price of a
copy and a CRC.

A part that does not decompress, is truncated, carries trailing bytes or grows past the limit
(a decompression bomb) is refused with ``EBMS:0303`` DecompressionFailure.
"""

from __future__ import annotations

import zlib
from typing import Final

from oots.errors import RemoteProtocolError
from oots.mediatypes import GZIP

__all__ = [
    "DEFAULT_MAX_DECOMPRESSED",
    "DEFAULT_MAX_DECOMPRESSED_TOTAL",
    "GZIP",
    "compress",
    "compressible",
    "decompress",
]

#: Largest decompressed part accepted unless the caller says otherwise.
DEFAULT_MAX_DECOMPRESSED: Final = 100 * 1024 * 1024
#: Largest size all the parts of one message may decompress to together.
DEFAULT_MAX_DECOMPRESSED_TOTAL: Final = 256 * 1024 * 1024
_LEVEL: Final = 6
_GZIP_WBITS: Final = 16 + zlib.MAX_WBITS
#: Parts at least this large are sampled before they are deflated.
_SAMPLED_FROM: Final = 64 * 1024
#: Size of each of the samples (start, middle, end of the part).
_SAMPLE: Final = 8 * 1024
#: Samples that do not shrink below this fraction of their size mean "does not compress".
_WORTH: Final = 0.9


def compressible(data: bytes) -> bool:
    """Whether deflating ``data`` is worth it: small parts always; large ones when three samples shrink."""
    if len(data) < _SAMPLED_FROM:
        return True
    view = memoryview(data)
    middle = (len(data) - _SAMPLE) // 2
    samples = b"".join((view[:_SAMPLE], view[middle : middle + _SAMPLE], view[-_SAMPLE:]))
    return len(zlib.compress(samples, 1)) < _WORTH * len(samples)


def compress(data: bytes) -> bytes:
    """``data`` as one gzip member (no file name, time stamp 0: the same input gives the same bytes).

    Level 6, or stored blocks (level 0) when :func:`compressible` says deflating would not pay.
    """
    compressor = zlib.compressobj(_LEVEL if compressible(data) else 0, zlib.DEFLATED, _GZIP_WBITS)
    return compressor.compress(data) + compressor.flush()


def decompress(
    data: bytes, *, max_size: int = DEFAULT_MAX_DECOMPRESSED, over: RemoteProtocolError | None = None
) -> bytes:
    """The content of the gzip member ``data``; at most ``max_size`` bytes, else ``EBMS:0303`` (``over``
    when given: the error saying which limit it was)."""
    decompressor = zlib.decompressobj(_GZIP_WBITS)
    try:
        out = decompressor.decompress(data, max_size + 1)
    except zlib.error as exc:
        raise RemoteProtocolError(f"a compressed part is not valid gzip ({exc})", code="EBMS:0303") from None
    if len(out) > max_size or decompressor.unconsumed_tail:
        if over is not None:
            raise over
        raise RemoteProtocolError(f"a compressed part expands beyond the limit of {max_size:,} bytes", code="EBMS:0303")
    if not decompressor.eof:
        raise RemoteProtocolError("a compressed part is truncated", code="EBMS:0303")
    if decompressor.unused_data:
        raise RemoteProtocolError("a compressed part has bytes after its gzip data", code="EBMS:0303")
    return out

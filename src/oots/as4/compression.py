"""AS4 payload compression: gzip (RFC 1952) at level 6, and decompression under a size limit.

A part that does not decompress, is truncated, carries trailing bytes or grows past the limit
(a decompression bomb) is refused with ``EBMS:0303`` DecompressionFailure.
"""

from __future__ import annotations

import zlib
from typing import Final

from oots.errors import RemoteProtocolError

__all__ = ["DEFAULT_MAX_DECOMPRESSED", "GZIP", "compress", "decompress"]

GZIP: Final = "application/gzip"
#: Largest decompressed part accepted unless the caller says otherwise.
DEFAULT_MAX_DECOMPRESSED: Final = 100 * 1024 * 1024
_LEVEL: Final = 6
_GZIP_WBITS: Final = 16 + zlib.MAX_WBITS


def compress(data: bytes) -> bytes:
    """``data`` as one gzip member (level 6, no file name, time stamp 0: the same input gives the same bytes)."""
    compressor = zlib.compressobj(_LEVEL, zlib.DEFLATED, _GZIP_WBITS)
    return compressor.compress(data) + compressor.flush()


def decompress(data: bytes, *, max_size: int = DEFAULT_MAX_DECOMPRESSED) -> bytes:
    """The content of the gzip member ``data``; at most ``max_size`` bytes, else ``EBMS:0303``."""
    decompressor = zlib.decompressobj(_GZIP_WBITS)
    try:
        out = decompressor.decompress(data, max_size + 1)
    except zlib.error as exc:
        raise RemoteProtocolError(f"a compressed part is not valid gzip ({exc})", code="EBMS:0303") from None
    if len(out) > max_size or decompressor.unconsumed_tail:
        raise RemoteProtocolError(f"a compressed part expands beyond the limit of {max_size:,} bytes", code="EBMS:0303")
    if not decompressor.eof:
        raise RemoteProtocolError("a compressed part is truncated", code="EBMS:0303")
    if decompressor.unused_data:
        raise RemoteProtocolError("a compressed part has bytes after its gzip data", code="EBMS:0303")
    return out

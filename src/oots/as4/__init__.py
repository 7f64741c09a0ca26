"""eDelivery AS4 1.15: the access point (message model, security, PModes, the MSH, transport, Domibus).

The public API of each part lives in its module's ``__all__`` (``oots.as4.pmode``, ``oots.as4.msh``...).
"""

from __future__ import annotations

__all__: list[str] = []

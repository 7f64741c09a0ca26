"""The Evidence Provider's core: registers, identity matching, evidence rendering.

See ``docs/provider.md``.
"""

from __future__ import annotations

__all__: list[str] = []

"""axe-core for the accessibility scans: the tarball ``scripts/sysdeps.sh`` fetched with npm."""

from __future__ import annotations

import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: Where ``make test`` (scripts/sysdeps.sh) puts ``axe-core-<version>.tgz``; a per-user cache as a fallback.
PLACES = (ROOT / ".cache" / "axe", Path.home() / ".cache" / "oots-axe")


def axe_source() -> str | None:
    """The text of ``axe.min.js``, or None when axe-core was not fetched (the scan then skips)."""
    for place in PLACES:
        for tarball in sorted(place.glob("axe-core-*.tgz")):
            with tarfile.open(tarball) as archive:
                member = archive.extractfile("package/axe.min.js")
                if member is not None:
                    return member.read().decode("utf-8")
    return None

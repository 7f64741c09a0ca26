"""Reduce the DejaVu Sans fonts the provider embeds in its PDFs to Latin, Greek and Cyrillic.

The PDF writer (``oots.provider.pdf``) embeds a subset of the font for each set of characters a
process sees; with the whole DejaVu Sans (6,253 glyphs) most of the time of making one went into
reading its tables. The reduced fonts keep every letter the EU languages need (Latin with its
extensions and combining diacritics, Greek, Cyrillic) and the punctuation, currency and letter-like
signs, without hinting and layout tables (the writer does no text shaping). The DejaVu licence
(``fonts/LICENSE.DejaVu.txt``) permits modified versions under names containing neither "Bitstream"
nor "Vera".

    python scripts/subset_fonts.py DejaVuSans.ttf DejaVuSans-Bold.ttf   # from the DejaVu 2.37 release
"""

from __future__ import annotations

import sys
from pathlib import Path

from fontTools import subset  # type: ignore[import-untyped]

OUT = Path(__file__).resolve().parent.parent / "src" / "oots" / "provider" / "fonts"

#: The Unicode blocks kept (inclusive ranges).
BLOCKS = (
    (0x0020, 0x007E),  # Basic Latin
    (0x00A0, 0x024F),  # Latin-1 Supplement, Latin Extended-A and -B
    (0x02B0, 0x036F),  # Spacing Modifier Letters, Combining Diacritical Marks
    (0x0370, 0x03FF),  # Greek and Coptic
    (0x0400, 0x052F),  # Cyrillic, Cyrillic Supplement
    (0x1E00, 0x1EFF),  # Latin Extended Additional
    (0x1F00, 0x1FFF),  # Greek Extended
    (0x2000, 0x206F),  # General Punctuation
    (0x20A0, 0x20CF),  # Currency Symbols
    (0x2100, 0x214F),  # Letterlike Symbols (№, ℮, …)
    (0xFFFD, 0xFFFD),  # the replacement character
)


def reduce(source: Path, target: Path) -> None:
    options = subset.Options()
    options.layout_features = []
    options.drop_tables += ["GSUB", "GPOS", "GDEF", "kern", "MATH", "FFTM"]
    options.hinting = False
    options.glyph_names = False
    options.name_IDs = ["*"]  # keep the copyright and licence records
    options.notdef_outline = True
    font = subset.load_font(str(source), options)
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=[u for lo, hi in BLOCKS for u in range(lo, hi + 1)])
    subsetter.subset(font)
    # One Windows Unicode cmap is all PDF readers and the writer need; a second copy only costs reading.
    font["cmap"].tables = [t for t in font["cmap"].tables if (t.platformID, t.platEncID) == (3, 1)]
    subset.save_font(font, str(target), options)


def main(argv: list[str]) -> None:
    for name in argv:
        source = Path(name)
        target = OUT / f"{source.stem}-LGC.ttf"
        reduce(source, target)
        print(f"{source} -> {target} ({target.stat().st_size} bytes)")


if __name__ == "__main__":
    main(sys.argv[1:])

"""Making hostile log text safe to show on a terminal.

Owns: `printable()`, which every display path (CLI tables, later the TUI)
uses before log text reaches a terminal. Control characters (C0 except tab,
DEL, C1) and so the start of every ESC/CSI/OSC sequence become visible,
inert escapes like `\\x1b`; nothing in the result can move the cursor, change
colours or the title, or ring the bell. Must not: touch markup (the TUI wraps
text in `rich.text.Text`, which never parses markup).
"""

from __future__ import annotations

import re

# Controls, plus what is not a terminal control but must not reach one
# either: lone surrogates (invalid UTF-8 decoded with surrogateescape) cannot
# be encoded, and bidi controls reorder the text around them (Trojan Source).
_CONTROL = re.compile(
    "[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff"
    "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _escape(m: re.Match[str]) -> str:
    code = ord(m.group())
    if 0xDC80 <= code <= 0xDCFF:  # a surrogateescape'd byte: show the byte
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """`text` with every control character (and lone surrogate, bidi control)
    shown as an inert escape; tabs become spaces."""
    if not text.isprintable():
        text = _CONTROL.sub(_escape, text.replace("\t", " "))
    return text

"""The one exception type that means "the user asked for something we cannot do", and errors as one line."""

from __future__ import annotations

import re


class UserError(Exception):
    """Bad input or a missing resource: the CLI prints it as one line and exits with status 2.

    The message says what is wrong and what to do about it.
    """

    def _render_traceback_(self) -> list[str]:
        """IPython and Jupyter show this instead of a traceback: the one line the command line would print."""
        return [f"UserError: {one_line(str(self), 10_000)}"]


def one_line(error: BaseException | str, limit: int = 240) -> str:
    """An exception ("Type: its message") or a text as one line of at most `limit` characters: line breaks and
    runs of spaces collapse, so a multi-line message (a torch error, a JSON decoder's, Ray's) fits in a sentence;
    a long one is cut after its last whole sentence that fits, or else with an ellipsis."""
    text = f"{type(error).__name__}: {error}" if isinstance(error, BaseException) else error
    text = printable(" ".join(str(text).split()))
    if isinstance(error, BaseException) and not str(error).strip():
        text = type(error).__name__
    if len(text) <= limit:
        return text
    cut = text.rfind(". ", 0, limit)
    return text[: cut + 1] if cut > limit // 2 else text[: limit - 3] + "..."


# C0 and C1 controls (ESC starts a terminal's escape sequences, BEL rings, CR rewrites the line), DEL, and the
# Unicode marks that reorder text on screen: shown as escapes, never obeyed.
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def printable(text) -> str:
    """Text from a file or a record as a terminal should show it: every control character escaped (\\x1b,
    \\n, \\u202e), so a results file can neither move the cursor, recolour the screen nor break a line."""
    return _CONTROLS.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100
                         else f"\\u{ord(m.group()):04x}", str(text))


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Ctrl-C raises KeyboardInterrupt (bench.signals), so both stop a run the same way:
    the cell in flight dropped, temporary files removed, one line saying how to resume; exit status 143."""

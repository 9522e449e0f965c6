"""The one exception type that means "the user asked for something we cannot do", and errors as one line."""

from __future__ import annotations


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
    text = " ".join(str(text).split())
    if isinstance(error, BaseException) and not str(error).strip():
        text = type(error).__name__
    if len(text) <= limit:
        return text
    cut = text.rfind(". ", 0, limit)
    return text[: cut + 1] if cut > limit // 2 else text[: limit - 3] + "..."

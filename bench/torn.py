"""What a crash leaves in a records file, told apart from a corrupt line: the rule that keeps a folder readable.

    is_torn(b'{"cell":{"dataset":"synth')  ->  True     is_torn(b'{"cell": garbage}')  ->  False

RecordWriter appends each record as one line, `{"cell":...}` ending in a newline, and when it finds the file
not ending in a newline (a writer killed mid-line before it) it writes a newline first, so the torn piece ends
there and its own record starts a line. A crash mid-append can therefore leave only:

- a prefix of a record line: the start of `{"cell":`, or a JSON text that begins so and stops before it is
  complete (mid-string, mid-number, after a comma...), as the last piece of the file or, once a later writer
  ended it, as a line of its own anywhere in the file;
- NUL bytes: a power cut can leave the end of a file zero-filled (its size was written, its data was not).
  A piece is torn from its first NUL on; what comes before the NUL is read as any piece (a whole record
  whose newline was lost with the append after it, a prefix, or nothing).

Both are torn, wherever they are: readers skip them with a warning naming file and line, so no sequence of
torn appends can make a folder unreadable. Everything else that is not a record is corrupt and refused,
naming file and line: a complete JSON text that is not a record, a line that does not start like a record,
a syntax error before the end of the text (`{"cell": garbage}`), text that is not UTF-8. A whole record
without its newline (a write that stopped one byte short) is read: it is complete.
"""

from __future__ import annotations

import json
import re

RECORD_START = '{"cell":'  # how every line Record.to_json writes begins (bench.records: `cell` is the first field)

_OPEN_STRING = re.compile(r'"(?:[^"\\\x00-\x1f]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*(?:\\(?:u[0-9a-fA-F]{0,3})?)?')
_CUT_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]*)?(?:[eE][+-]?[0-9]*)?")  # "1." or "1e+": read as 1
_CUT_VALUE = re.compile(r"-|t(?:r(?:ue?)?)?|f(?:a(?:l(?:se?)?)?)?|n(?:u(?:ll?)?)?")  # a literal or a sign alone
_NUMBER_CHARS = frozenset("0123456789+-.eE")


def is_torn(data: bytes) -> bool:
    """Whether one piece of a records file (a line without its newline, or the last piece) is what an
    interrupted append leaves: anything with NUL bytes, or a record line cut short."""
    if b"\0" in data:
        return True
    try:
        return cut_short(data.decode("ascii"))  # Record.to_json writes ASCII only (json's ensure_ascii)
    except UnicodeDecodeError:
        return False


def cut_short(text: str) -> bool:
    """Whether text is a proper prefix of a record line: it could be completed into one, but is not whole."""
    if len(text) < len(RECORD_START):
        return RECORD_START.startswith(text) and bool(text)
    if not text.startswith(RECORD_START):
        return False
    try:
        json.loads(text)
        return False  # complete: a record, or a corrupt line, never a torn one
    except RecursionError:
        return False
    except json.JSONDecodeError as exc:
        where, why = exc.pos, exc.msg
    rest = text[where:]
    if not rest.strip():
        return True  # the text ran out where the parser wanted more
    if why.startswith("Unterminated string"):  # the parser points at the opening quote
        return _OPEN_STRING.fullmatch(rest) is not None
    if why.startswith("Invalid \\uXXXX"):  # cut inside a \u escape: the parser points at its "u"
        return re.fullmatch(r"u[0-9a-fA-F]{0,4}(?:\\(?:u[0-9a-fA-F]{0,4})?)?", rest) is not None
    if why == "Expecting value":
        return _CUT_VALUE.fullmatch(rest) is not None
    if why == "Expecting ',' delimiter":  # a number cut after its "." or "e": the parser took the digits before
        start = where
        while start > 0 and text[start - 1] in _NUMBER_CHARS:
            start -= 1
        return start < where and _CUT_NUMBER.fullmatch(text, start) is not None
    return False  # a syntax error before the end: corrupt

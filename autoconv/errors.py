"""`ConversionError` and the catalogue of conversion messages."""

from __future__ import annotations

import linecache

__all__ = ["ConversionError", "MESSAGES"]

# Every conversion error message, by kind; tests assert on the kinds.
MESSAGES = {
    "no_source": "cannot read the source of {what}: {reason}. Define it in a file, not in a REPL or exec",
    "not_function": "{what} is not a Python function, method, lambda or nn.Module",
    "generator": "`{construct}` makes this a generator, which cannot become a graph. "
    "Return a tensor or a list instead",
    "async": "`{construct}` is not supported: graphs have no coroutines. Use a plain def",
    "crossing": "`{construct}` in a `finally` block would discard the exception in flight; a "
    "converted `{construct}` is lowered into flags and cannot do that. Assign what you need in "
    "the `finally` block and put the `{construct}` after the `try` statement",
    "lambda_ambiguous": "cannot tell which lambda on line {line} is meant: several have the same "
    "arguments. Put it on a line of its own or use a def",
    "syntax": "the source does not parse: {reason}",
    "unsupported": "{construct} is not supported: autoconv cannot convert it. Instead, {fix}",
}


class ConversionError(SyntaxError):
    """Code autoconv cannot convert.

    Like a `SyntaxError` it carries `filename`, `lineno`, `offset` and `text` (the user's source
    line), and prints them with a caret. `kind` is the catalogue key of the message.
    """

    def __init__(self, kind: str, filename: str | None = None, lineno: int | None = None,
                 offset: int | None = None, **details):
        message = MESSAGES[kind].format(**details)
        text = linecache.getline(filename, lineno) if filename and lineno else None
        super().__init__(message, (filename, lineno, offset, text))
        self.kind = kind

    def __str__(self) -> str:
        if self.filename and self.lineno:
            where = f"{self.filename}:{self.lineno}:{self.offset or 0}: "
        elif self.filename:
            where = f"{self.filename}: "
        else:
            where = ""
        return f"{where}{self.msg}"

"""Text made from traced tensors: `str(t)`, `repr(t)`, `format(t, spec)` and f-strings.

NOTE [text of traced tensors]
A traced tensor has no value while the graph is traced: its `str()` is the tracer's
("FakeTensor(..., size=())"), and text built from it would carry that into the program (a
`len(msg)` baked into the graph, an exception message naming a fake tensor). Converted code
calls `str_`, `repr_`, `format_` and `fstring_` instead of the builtins and f-strings; on a
traced tensor (or a number read from one) they give a `TracedText`, which keeps the pieces:

- Where its content would become a value (`len`, `==`, `in`, indexing, hashing, a str method,
  a graph output), it refuses: a StagingError at the user's line. The content is only known
  when the graph runs, and a graph cannot compute text.
- `+` with text gives a TracedText again; `print` of it prints the values when the graph runs
  (the print op, runtime/operators.py).
- An exception raised with it: at the top level of the function (the trace is for the inputs
  at hand) its message has the real values, computed as a specialised condition's are (NOTE
  [specialisation]); in a staged body (the graph's assertion message, written once while
  tracing) each value shows as the expression it came from, `positive sum {x.sum()}`.
- `str()` of it (code that is not converted: a library formatting the message) is that
  placeholder text.

On Python values and concrete tensors these are the builtins (one type check).
"""

from __future__ import annotations

import linecache

import torch
from torch.utils import _pytree as pytree

from .errors import (StagingError, dynamo_user_location, raise_at_under_dynamo, user_location,
                     users_file)
from .identity import type_in
from .values import RETURN_VALUE, is_staged, is_undefined

__all__ = ["TracedText", "str_", "repr_", "format_", "fstring_", "formatted_", "percent_",
           "returned_", "number_returned_", "str_format_"]


class _Value:
    """A traced value in a text: the value, its f-string conversion ('s', 'r', 'a' or ''),
    its format spec, and the expression it came from (for placeholders)."""

    __slots__ = ("value", "conversion", "spec", "source")

    def __init__(self, value, conversion, spec, source):
        self.value, self.conversion, self.spec, self.source = value, conversion, spec, source

    def placeholder(self) -> str:
        # (`!s` left out: str() is what a field shows anyway)
        conversion = f"!{self.conversion}" if self.conversion in ("r", "a") else ""
        spec = f":{self.spec}" if self.spec else ""
        return "{" + (self.source or "a traced value") + conversion + spec + "}"

    def text(self, value) -> str:
        if self.conversion == "r":
            value = repr(value)
        elif self.conversion == "a":
            value = ascii(value)
        elif self.conversion == "s":
            value = str(value)
        return _format(value, self.spec)


class TracedText:
    """Text some of whose pieces are traced values (NOTE [text of traced tensors])."""

    __slots__ = ("pieces", "location")

    def __init__(self, pieces, location=None):
        self.pieces = tuple(pieces)  # strs and _Values
        # The user's (file, line) that made it: a use outside the user's code (the trace
        # flattening a returned text) is reported there. Texts joined keep the first's.
        # (Under dynamo, which cannot trace the frame walk, the frame it traces.)
        if location is None:
            location = (dynamo_user_location() if torch.compiler.is_dynamo_compiling()
                        else user_location())
        self.location = location

    def placeholder(self) -> str:
        """The text, each traced value shown as the expression it came from."""
        return "".join(p if type(p) is str else p.placeholder() for p in self.pieces)

    def resolved(self) -> str:
        """The text with the real values where the trace can compute them (the top level of
        the function, NOTE [specialisation]); the placeholder text otherwise."""
        from .staging import context, specialize

        if context.in_staged_body() or torch.compiler.is_dynamo_compiling():
            return self.placeholder()
        out = []
        for piece in self.pieces:
            if type(piece) is str:
                out.append(piece)
                continue
            value = specialize.real_value(piece.value)
            if value is None:
                return self.placeholder()
            with specialize.untraced():  # (the real tensor's `.item()` must not be traced)
                out.append(piece.text(value))
        return "".join(out)

    def __str__(self):
        return self.placeholder()

    def __repr__(self):
        return f"TracedText({self.placeholder()!r})"

    def __format__(self, spec):
        return format(self.placeholder(), spec)

    def __add__(self, other):
        if isinstance(other, (str, TracedText)):
            return TracedText((*self.pieces, *_pieces(other)), self.location)
        return NotImplemented

    def __radd__(self, other):
        if isinstance(other, str):
            return TracedText((other, *self.pieces), self.location)
        return NotImplemented

    def _refuse(self, use: str, made_here: bool = False):
        problem = (f"the text {self.placeholder()!r} is made from a traced tensor, whose value "
                   f"is only known when the graph runs, and {use} needs its content (a graph "
                   "computes no text)")
        fix = ("Compute what you need from the tensor itself (keep it a tensor or a number), or "
               "build the text after the graph runs; a `print` or a `raise` of the text works "
               "as it is")
        if made_here and torch.compiler.is_dynamo_compiling():
            raise_at_under_dynamo(self.location, "text", problem, fix)
        if made_here:
            raise StagingError.at(self.location, "text", problem, fix)
        raise StagingError("text", problem, fix)

    def refuse_stored(self, where: str):
        """Refuse this text stored into the call's objects at `where` (NOTE [text stored
        into the call's objects] in autoconv/capture.py), at the line that made it."""
        self._refuse(f"storing it into {where}, which the caller keeps,", made_here=True)

    def __len__(self):
        self._refuse("len()")

    def __eq__(self, other):
        self._refuse("comparing it")

    __ne__ = __lt__ = __le__ = __gt__ = __ge__ = __eq__

    def __hash__(self):
        location = user_location()
        if location is not None and "warn" in linecache.getline(*location):
            # `warnings.warn(f"... {t}")`: the registry of warnings shown hashes the message
            # (tester t13 repro 23: linear_operator's psd_safe_cholesky; the message blamed a
            # dict or a set the code does not have)
            raise StagingError(
                "text",
                f"`warnings.warn` is given the text {self.placeholder()!r}, made from a traced "
                "tensor, whose value is only known when the graph runs: Python's warnings "
                "registry hashes the message, and a graph can neither compute text nor warn",
                "Warn with a text that formats no traced value (or warn after the graph runs, "
                "from its results); for library code, call it outside the autoconv function")
        self._refuse("hashing it (a dict key, a set)")

    def __bool__(self):
        self._refuse("its truth value")

    def __iter__(self):
        self._refuse("iterating over it")

    def __contains__(self, item):
        self._refuse("`in`")

    def __getitem__(self, key):
        self._refuse("indexing it")

    def __mul__(self, other):
        self._refuse("`*`")

    __rmul__ = __mul__

    def __mod__(self, other):
        self._refuse("`%`")

    def _number(self, call: str):
        # `float(f"{s:.3f}")` of a traced number (a float a staged loop carried): parsing the
        # text back is a number only the graph could make, and the TypeError Python gives an
        # object that is no str named autoconv's class (dynamo's: "Observed exception")
        problem = (f"`{call}` parses the text {self.placeholder()!r}, made from a traced value "
                   "whose digits are only known when the graph runs (a graph computes no text)")
        fix = ("Compute the number from the value itself: `round(s, 3)` for "
               "`float(f\"{s:.3f}\")`, `round(s)` for `int(f\"{s:.0f}\")`")
        if torch.compiler.is_dynamo_compiling():
            raise_at_under_dynamo(self.location, "text", problem, fix)
        raise StagingError.at(self.location, "text", problem, fix)

    def __float__(self):
        self._number("float()")

    def __int__(self):
        self._number("int()")

    def __complex__(self):
        self._number("complex()")



def _str_method(name):
    def refused(self, *args, **kwargs):
        self._refuse(f"`.{name}()`")

    refused.__name__ = name
    return refused


# A str method of the text (`.upper()`, `.split()`) needs its content too. (Methods rather than
# `__getattr__`: `hasattr` probes of the staging machinery must see an AttributeError.)
for _name in dir(str):
    if not _name.startswith("_") and not hasattr(TracedText, _name):
        setattr(TracedText, _name, _str_method(_name))


def _pieces(text):
    return text.pieces if isinstance(text, TracedText) else (text,)


_traced = is_staged


def _source_of(source):
    return source or None


def _check_kind_shown(value, spec="") -> None:
    """A StagingError for text of a number that is an int on some paths and a float on others
    (NOTE [numbers of two kinds] in runtime/augmented.py), where the text shows which: '1' or
    '1.0'. A float's presentation type (`:.2f`) shows the same text for both."""
    from .augmented import kind_seen, kinds_in

    if kinds_in(value) is not None and not (spec and spec[-1] in "eEfFgG%"):
        kinds = kinds_in(value)[0]
        kind_seen(value, "text of it", " and ".join(
            f"{_EXAMPLE_TEXT[k]!r} where it is a{'n' if k == 'int' else ''} {k}"
            for k in kinds))


_EXAMPLE_TEXT = {"bool": "True", "int": "1", "float": "1.0", "complex": "(1+0j)"}


def str_(value="", *args, source=None, **kwargs):
    """`str(value)`; a TracedText for a traced tensor or number."""
    if args or kwargs or not _traced(value):
        return str(value, *args, **kwargs)
    _check_kind_shown(value)
    return TracedText((_Value(value, "s", "", _source_of(source)),))


def repr_(value, /, source=None):
    """`repr(value)`; a TracedText for a traced tensor or number."""
    if not _traced(value):
        return repr(value)
    _check_kind_shown(value)
    return TracedText((_Value(value, "r", "", _source_of(source)),))


def _format(value, spec):
    # `format(v, "")` is `str(v)` for every type whose `__format__` is object's; torch.compile
    # traces `str` of a set or dict but fails inside `format` of one (a KeyError from dynamo).
    if not spec and type(value).__format__ is object.__format__:
        return str(value)
    return format(value, spec)


def format_(value, spec="", /, source=None):
    """`format(value, spec)`; a TracedText for a traced tensor or number."""
    if not _traced(value):
        return _format(value, spec)
    _check_kind_shown(value, spec)
    return TracedText((_Value(value, "", spec, _source_of(source)),))


def formatted_(value, conversion="", spec="", source=None):
    """One replacement field of an f-string (`{value!conversion:spec}`): its text, or a
    _Value for a traced tensor or number, which `fstring_` joins into a TracedText."""
    if isinstance(value, TracedText):
        if not conversion and not spec:
            return value
        value._refuse("formatting it with a conversion or a format spec")
    if _traced(value):
        _check_kind_shown(value, spec)
        return _Value(value, conversion, spec, source)
    if not spec and conversion != "a" and type_in(value, (tuple, list)) \
            and any(_traced(item) for item in value):
        return _items_shown(value, source)  # NOTE [text of a shape with traced sizes]
    if conversion == "r":
        value = repr(value)
    elif conversion == "a":
        value = ascii(value)
    elif conversion == "s":
        value = str(value)
    return _format(value, spec)


# NOTE [text of a shape with traced sizes]
# `f"... got {tuple(c.shape)}"` (torch-kmeans' `_check_centers`) of a tensor whose size is
# data-dependent (an unbacked SymInt: `torch.multinomial(..., num_samples=k.max().item())`) is
# a tuple holding a traced number: `str` of it is dynamo's unreadable "Failed to trace builtin
# operator `str` with argument types ['tuple']" under torch.compile, and the tracer's "u1" in
# the message elsewhere. Its text is the tuple's (or list's) own, made of one piece per item,
# a traced item as a traced number's field is shown.


def _items_shown(value, source) -> TracedText:
    """The text of the tuple or list `value` (str and repr alike), some of whose items are
    traced numbers or tensors: a TracedText with a field for each of those."""
    opening, closing = ("(", ")") if type(value) is tuple else ("[", "]")
    pieces = [opening]
    for i, item in enumerate(value):
        if i:
            pieces.append(", ")
        pieces.append(_Value(item, "", "", f"{source}[{i}]" if source else None)
                      if _traced(item) else repr(item))
    pieces.append("," + closing if type(value) is tuple and len(value) == 1 else closing)
    return TracedText(pieces)


def fstring_(*parts):
    """An f-string of `parts` (strs, and the `formatted_` fields): a str, or a TracedText
    where a field is a traced value."""
    if all(type(p) is str for p in parts):
        return "".join(parts)
    pieces = []
    for part in parts:
        pieces.extend(part.pieces if isinstance(part, TracedText) else (part,))
    return TracedText(pieces)


def str_format_(template, sources, /, *args, **kwargs):
    """`template.format(*args, **kwargs)` of a str constant: a TracedText, as an f-string's
    (`fstring_`), where a field shows a traced value; `sources` are the arguments' expressions
    (`((source, ...), {name: source})`) for the placeholders. Before this, str.format of a
    traced tensor put the tracer's "FakeTensor(..., size=())" into the user's assertion
    message (tester24 s04, torchdiffeq rk_common.py:245)."""
    values = (*args, *kwargs.values())
    if not any(_traced(v) or isinstance(v, TracedText) for v in values):
        return template.format(*args, **kwargs)
    positional, named = sources
    parts, automatic = [], 0
    for literal, field, first, rest, spec, conversion in _fields(template):
        if literal:
            parts.append(literal)
        if field is None:
            continue
        if first == "":
            first, automatic = automatic, automatic + 1
        if isinstance(first, int):
            value = args[first]
            source = positional[first] if first < len(positional) else None
        else:
            value, source = kwargs[first], named.get(first)
        for is_attribute, key in rest:
            value = getattr(value, key) if is_attribute else value[key]
            if source is not None:
                source = f"{source}.{key}" if is_attribute else f"{source}[{key!r}]"
        if spec and "{" in spec:  # a nested field (`{:{width}}`)
            spec = str_format_(spec, sources, *args, **kwargs)
            if isinstance(spec, TracedText):
                spec._refuse("formatting with it as a format spec")
        parts.append(formatted_(value, conversion or "", spec or "", source))
    return fstring_(*parts)


def _fields(template):
    """The fields of a format string, as string.Formatter().parse gives them but each field's
    name split: (literal, field, first name, ((is attribute, key), ...), spec, conversion).
    Python, not string.Formatter's C parser, which dynamo cannot trace."""
    out, literal, i, size = [], "", 0, len(template)
    while i < size:
        c = template[i]
        if c in "{}" and template[i + 1:i + 2] == c:  # `{{` / `}}`
            literal, i = literal + c, i + 2
            continue
        if c == "}":
            raise ValueError("Single '}' encountered in format string")
        if c != "{":
            literal, i = literal + c, i + 1
            continue
        depth, j = 1, i + 1
        while j < size and depth:
            depth += {"{": 1, "}": -1}.get(template[j], 0)
            j += 1
        if depth:
            raise ValueError("expected '}' before end of string")
        body = template[i + 1:j - 1]
        spec_at = _outside_brackets(body, ":")
        field, spec = (body, "") if spec_at < 0 else (body[:spec_at], body[spec_at + 1:])
        conversion = None
        bang = _outside_brackets(field, "!")
        if bang >= 0:
            field, conversion = field[:bang], field[bang + 1:]
        out.append((literal, field, *_field_name(field), spec, conversion))
        literal, i = "", j
    if literal:
        out.append((literal, None, None, (), None, None))
    return tuple(out)


def _outside_brackets(text, mark):
    """The index of the first `mark` in `text` outside `[...]`, or -1."""
    inside = False
    for k, c in enumerate(text):
        if c == "[":
            inside = True
        elif c == "]":
            inside = False
        elif c == mark and not inside:
            return k
    return -1


def _field_name(field):
    """(first, ((is attribute, key), ...)) of a field name (`0`, `name.attr[2]`)."""
    cut = len(field)
    for k, c in enumerate(field):
        if c in ".[":
            cut = k
            break
    first, rest, tail = field[:cut], [], field[cut:]
    first = int(first) if first.isdigit() else first
    while tail:
        if tail[0] == ".":
            end = len(tail)
            for k in range(1, len(tail)):
                if tail[k] in ".[":
                    end = k
                    break
            rest.append((True, tail[1:end]))
        else:
            end = tail.index("]") + 1
            key = tail[1:end - 1]
            rest.append((False, int(key) if key.isdigit() else key))
        tail = tail[end:]
    return first, tuple(rest)


def percent_(template, values):
    """`template % values` (printf-style formatting) of a str.

    Raises:
        StagingError: where a value is a traced tensor or number (a number a staged loop
            carries): Python would ask for its value, which the graph only has when it runs.
    """
    items = values if type(values) is tuple else (values,)
    if any(_traced(item) for item in items):
        raise StagingError(
            "text",
            f"the text {template!r} % ... is formatted with `%` from a traced value, whose "
            "value is only known when the graph runs (a graph computes no text)",
            "Write an f-string (`f\"{s:.2f}\"`), which `print` and `raise` show with the "
            "value when the graph runs, or format the value after the graph runs")
    return template % values


# NOTE [text returned under torch.compile]
# autoconv's trace flattens the function's result, which refuses a TracedText at the line that
# made it (`_flatten` below), and torch.export likewise. dynamo flattens nothing: it gave the
# TracedText object itself back to the caller, its placeholder text (`'loss {s:.2f}'`) where
# Python gives `'loss 3.00'`. A converted function that makes text returns through
# `returned_`, which under dynamo refuses a TracedText in its result (itself, or in a tuple,
# list or dict) where that function is the one dynamo compiles: no other user frame on the
# stack dynamo traces. A helper's text returned to its caller is the caller's to print or
# raise. Not seen: text a helper made, returned by a function that makes none itself.


def returned_(value):
    """`value`, which a converted function that makes text or stages a statement returns
    (NOTE [text returned under torch.compile]; NOTE [numbers of two kinds returned] in
    runtime/augmented.py).

    Raises:
        StagingError: under dynamo, for a TracedText in the result of the compiled function;
            in every mode, for a number of two kinds in the result of the outermost function
            (or a RuntimeError of the graph on the paths of its narrower kind).
    """
    if torch.compiler.is_dynamo_compiling():
        text = _text_in(value)
        if text is not None and _compiled_function_returns():
            text._refuse("returning it from the compiled function (torch.compile)",
                         made_here=True)
    # (None where the function fell off its end, as `number_returned_` says: tester50 s03,
    # linear_operator's `_check_args` returned the placeholder when it made text on its
    # other paths, so `if err is not None: raise ValueError(err)` raised on valid input)
    return number_returned_(value)


def number_returned_(value):
    """`value`, which a converted function that stages a statement returns: a StagingError
    for a number of two kinds in the result of the outermost function (or a RuntimeError of
    the graph on the paths of its narrower kind: NOTE [numbers of two kinds returned] in
    runtime/augmented.py).

    The return value still unbound (no return statement ran: the function fell off its end,
    or every path raised in a staged body) is None, as Python returns."""
    if is_undefined(value) and value.name == RETURN_VALUE:
        # NOTE [falling off the end]: a converted helper with an early return (`if k > 0:
        # return x`) that fell off its end returned autoconv's placeholder to its caller:
        # `r = h(x, 0)` then `if r is None:` took the other path, and the function returned
        # None (replay) or the placeholder object (torch.compile) where Python returns a
        # tensor. Where every path raised in a staged body (graph assertions, raise_ in
        # runtime/operators.py) no value is ever returned at run time; None there is what
        # the top level's trace returns too (autoconv/capture.py).
        return None
    return _number_returned(value)



def _number_returned(value):
    tagged = _tagged_in(value)
    if tagged is not None and _outermost_returns():
        from .augmented import kinds_returned

        kinds_returned(tagged)
    return value


def _tagged_in(value, depth=0):
    """A number of two kinds (`kinds_in`) in `value`, itself or in a tuple, list or dict."""
    from .augmented import kinds_in

    if isinstance(value, torch.Tensor):
        return value if kinds_in(value) is not None else None
    items = (value if type_in(value, (tuple, list)) else value.values()
             if type(value) is dict else ())
    if depth < 2:
        for item in items:
            found = _tagged_in(item, depth + 1)
            if found is not None:
                return found
    return None


def _outermost_returns() -> bool:
    """Whether the converted function returning (the caller's frame) is the one traced: under
    dynamo the one it compiles, else one no converted code called (autoconv's trace, and
    torch.export's non-strict one, run the Python frames)."""
    if torch.compiler.is_dynamo_compiling():
        return _compiled_function_returns()
    import sys

    from .calls import _generated_code

    frame = sys._getframe(4)  # (2: `returned_`, 3: the converted function)
    while frame is not None:
        if _generated_code(frame.f_code):
            return False
        frame = frame.f_back
    return True


def _text_in(value, depth=0):
    if isinstance(value, TracedText):
        return value
    if depth < 2 and type_in(value, (tuple, list)):
        for item in value:
            found = _text_in(item, depth + 1)
            if found is not None:
                return found
    if depth < 2 and type(value) is dict:
        for item in value.values():
            found = _text_in(item, depth + 1)
            if found is not None:
                return found
    return None


def _compiled_function_returns() -> bool:
    """Under dynamo: whether the user's code on the stack dynamo traces is one frame (the
    compiled function's)."""
    from torch._guards import TracingContext

    try:
        stack = TracingContext.extract_stack()
    except Exception:  # no tracing context: nothing known
        return False
    return sum(1 for frame in stack if users_file(frame.filename)) <= 1


_compiled_function_returns._dynamo_marked_constant = True  # (dynamo calls it for real)


def _flatten(text: TracedText):
    # (flattened by the trace, in autoconv's code: reported where the text was made)
    text._refuse("returning it from the graph", made_here=True)


def _unflatten(children, context):  # pragma: no cover - flattening always refuses
    raise AssertionError("a TracedText is never a graph output")


pytree.register_pytree_node(TracedText, _flatten, _unflatten)

"""autoconv's runtime: the operators converted code calls (imported as `autoconv_runtime`).

Converted code refers to this module as `ac`; every name it uses is listed in `__all__`.
"""

from .builtins import (
    all_,
    allclose_,
    any_,
    bool_,
    equal_,
    float_,
    int_,
    is_nonzero_,
    isinstance_,
    len_,
    reversed_,
    max_,
    min_,
    sum_,
)
from .augmented import aug_assign
from .calls import converted_call, converted_method_call, do_not_convert, set_converter, super_method
from .errors import StagingError
from .iteration import enumerate_, range_, zip_
from .subscripts import getitem, setitem, slice_
from .operators import (
    and_,
    assert_,
    assigns_outside,
    shares_cells,
    for_stmt,
    if_exp,
    if_stmt,
    list_append,
    list_extend,
    not_,
    or_,
    print_,
    raise_,
    reraise_staging_error,
    trips_bound,
    while_stmt,
)
from .staging.constants import is_, is_not
from .text import format_, formatted_, fstring_, repr_, str_
from .values import Undefined, eager, is_staged

__all__ = [
    "all_",
    "allclose_",
    "any_",
    "bool_",
    "equal_",
    "float_",
    "int_",
    "is_nonzero_",
    "isinstance_",
    "len_",
    "reversed_",
    "max_",
    "min_",
    "sum_",
    "StagingError",
    "Undefined",
    "and_",
    "assert_",
    "assigns_outside",
    "shares_cells",
    "aug_assign",
    "converted_call",
    "converted_method_call",
    "do_not_convert",
    "eager",
    "enumerate_",
    "for_stmt",
    "getitem",
    "if_exp",
    "if_stmt",
    "is_",
    "is_not",
    "is_staged",
    "format_",
    "formatted_",
    "fstring_",
    "repr_",
    "str_",
    "list_append",
    "list_extend",
    "not_",
    "or_",
    "print_",
    "raise_",
    "reraise_staging_error",
    "range_",
    "set_converter",
    "setitem",
    "slice_",
    "super_method",
    "trips_bound",
    "while_stmt",
    "zip_",
]

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
    getattr_,
    hasattr_,
    setattr_,
    delattr_,
    int_,
    is_nonzero_,
    isinstance_,
    len_,
    reversed_,
    max_,
    min_,
    sum_,
)
from .arithmetic import (binary, compare, invert, negative, number_call, number_method_call,
                         positive)
from .augmented import aug_assign, aug_assign_attribute
from .choices import refuse_choice_update, write_back_choice, write_back_item
from .calls import converted_call, converted_method_call, do_not_convert, set_converter, super_method
from .errors import DataDependentGuard, StagingError, data_dependent_error
from .fallible import fallible, try_call
from .gradients import grad_
from .iteration import enumerate_, range_, zip_
from .random_state import random_state_
from .subscripts import getitem, in_, setitem, slice_
from .operators import (
    and_,
    assert_,
    assigns_outside,
    enclosing_list_append,
    shares_cells,
    for_stmt,
    if_exp,
    if_stmt,
    ld,
    list_append,
    list_extend,
    not_,
    or_,
    print_,
    raise_,
    reread_item,
    reraise_staging_error,
    trips_bound,
    while_stmt,
)
from .staging.constants import is_, is_not
from .text import format_, formatted_, fstring_, repr_, str_
# `ac.Undefined(...)` in converted code builds the placeholder through a function (see
# values.undefined); the class is values.Undefined.
from .values import eager, is_staged
from .values import undefined as Undefined

__all__ = [
    "all_",
    "allclose_",
    "any_",
    "bool_",
    "equal_",
    "float_",
    "getattr_",
    "hasattr_",
    "setattr_",
    "delattr_",
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
    "binary",
    "compare",
    "negative",
    "positive",
    "invert",
    "number_call",
    "number_method_call",
    "aug_assign_attribute",
    "converted_call",
    "converted_method_call",
    "DataDependentGuard",
    "data_dependent_error",
    "do_not_convert",
    "eager",
    "enumerate_",
    "for_stmt",
    "getitem",
    "grad_",
    "if_exp",
    "if_stmt",
    "in_",
    "ld",
    "is_",
    "is_not",
    "is_staged",
    "format_",
    "formatted_",
    "fstring_",
    "repr_",
    "str_",
    "list_append",
    "enclosing_list_append",
    "list_extend",
    "not_",
    "or_",
    "print_",
    "raise_",
    "reread_item",
    "fallible",
    "reraise_staging_error",
    "random_state_",
    "refuse_choice_update",
    "write_back_choice",
    "write_back_item",
    "range_",
    "set_converter",
    "setitem",
    "slice_",
    "super_method",
    "trips_bound",
    "try_call",
    "while_stmt",
    "zip_",
]

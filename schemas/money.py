"""Money is an integer of minor units (token base units), never a float.

``MinorUnits`` accepts a JSON integer or a string of digits (producers in
languages without 64-bit integers send strings) and rejects floats, booleans,
signs and anything else with a clear message.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BeforeValidator, Field

_DIGITS = re.compile(r"[0-9]{1,30}")


def _minor_units(value: Any) -> int:
    if isinstance(value, bool | float):
        raise ValueError("amount must be an integer of minor units, not a float or boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and _DIGITS.fullmatch(value):
        return int(value)
    raise ValueError("amount must be an integer of minor units or a string of digits")


MinorUnits = Annotated[int, BeforeValidator(_minor_units), Field(ge=0, le=2**96 - 1)]

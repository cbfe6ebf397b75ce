"""Names the toy environment knows without a declaration: a sliver of Lean core and Mathlib.

A real environment holds every imported constant; the simulator cannot, yet it must tell
`exact congrArg f h` (fine) from `exact my_fake_premise` (``Unknown identifier``). Rule: hypotheses,
declarations of the environment, dotted names (`Nat.add_comm`, `h1.left`: assumed to be library
lemmas or projections) and the names below are known; any other plain identifier is unknown.
"""

from __future__ import annotations

__all__ = ["LIBRARY_TYPES", "is_library_name"]

# Types shown by `#check NAME` for the few constants a client is likely to probe after an import.
LIBRARY_TYPES: dict[str, str] = {
    "Nat": "Type",
    "Int": "Type",
    "Bool": "Type",
    "String": "Type",
    "Prop": "Type",
    "True": "Prop",
    "False": "Prop",
    "Unit": "Type",
    "ℕ": "Type",
    "ℤ": "Type",
    "ℝ": "Type",
    "ℚ": "Type",
    "rfl": "a✝ = a✝",
    "trivial": "True",
}

_PLAIN_NAMES = frozenset(
    {
        *LIBRARY_TYPES,
        "absurd",
        "add_assoc",
        "add_comm",
        "add_zero",
        "congrArg",
        "congrFun",
        "id",
        "le_refl",
        "le_rfl",
        "le_trans",
        "lt_irrefl",
        "mul_assoc",
        "mul_comm",
        "mul_one",
        "mul_pos",
        "one_mul",
        "pow_two",
        "sq_nonneg",
        "two_mul",
        "zero_add",
        "zero_lt_one",
        "propext",
        "funext",
        "trans",
        "symm",
        "not_not",
        "em",
        "Classical.em",
    }
)


def is_library_name(name: str) -> bool:
    """True for names the simulator treats as existing library constants."""
    return name in _PLAIN_NAMES or "." in name.strip(".")

"""A module that fails while it is imported (for the loader's tests)."""

raise ZeroDivisionError("division by zero while importing")

"""The check of every Python test: an assert statement is removed by
`python3 -O`, a check() call is not (tests/style's no-asserts test keeps
assert statements out of tests/)."""


def check(cond, msg):
    """Raises AssertionError(msg) when cond is false."""
    if not cond:
        raise AssertionError(msg)

"""The value-with-interval text used by the command line and the report."""

from medsafe.formatting import with_ci


def test_with_ci() -> None:
    assert with_ci(0.42, [0.15, 0.80123]) == "0.420 [0.150, 0.801]"
    assert with_ci(0.42, [0.15, 0.80123], ".3g") == "0.42 [0.15, 0.801]"
    assert with_ci(0.5, None) == "0.500"
    assert with_ci(0.5, [None, 0.7]) == "0.500"
    assert with_ci(None, [0.1, 0.2]) == "-"

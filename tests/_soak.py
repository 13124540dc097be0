"""The ``--soak`` factor where a fixture cannot reach: Hypothesis settings made at import."""

FACTOR = 1
"""Set from ``--soak`` by conftest.py before the test modules are imported."""

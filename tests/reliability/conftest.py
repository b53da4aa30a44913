"""Fixtures of the reliability tests: the HTTP client of tests/api (keys and tokens for every role)."""
from tests.api.conftest import caller  # noqa: F401 - re-exported as a fixture for tests/reliability

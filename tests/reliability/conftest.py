"""Fixtures of the reliability tests: the HTTP client of tests/api (keys and tokens for every role),
and the real NATS server with subjects of one's own from tests/stream."""
from tests.api.conftest import caller  # noqa: F401 - re-exported as a fixture for tests/reliability
from tests.stream.conftest import names, nats_url  # noqa: F401 - the stream path of the nesting test

from collections.abc import Iterator

import pytest

pytest.importorskip("ib_async")

from tradeloop.testing.ib.checks import DecoderErrors


@pytest.fixture(autouse=True)
def no_decoder_errors() -> Iterator[DecoderErrors]:
    """Every test fails if ib_async could not decode a message the fake sent."""
    with DecoderErrors() as errors:
        yield errors
    assert not errors.records, errors.records

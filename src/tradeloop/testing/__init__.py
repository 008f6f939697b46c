"""Test doubles of the outside world, for tests and dry runs with no account and no network.

``tradeloop.testing.alpaca``
    A loopback Alpaca-compatible server (REST, trade_updates and market-data streams) that
    replays bars and fills orders with tradeloop's own matching core.
"""

"""Binance spot through ccxt (pinned): :class:`~.broker.BinanceBroker` and its parts."""

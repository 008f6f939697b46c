"""Built-in strategies, addressable by name from a config file (``strategy: {name: sma_cross}``)."""

from tradeloop.strategies.sma_cross import BuyAndHold, SmaCross
from tradeloop.strategy import Strategy

REGISTRY: dict[str, type[Strategy]] = {
    "sma_cross": SmaCross,
    "buy_and_hold": BuyAndHold,
}

__all__ = ["REGISTRY", "BuyAndHold", "SmaCross"]

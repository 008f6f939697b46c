"""Brokers for the asynchronous engine. Each one *holds* its parts; none inherits from another."""

from tradeloop.execution.asynchronous.brokers.simulated import SimulatedBroker

__all__ = ["SimulatedBroker"]

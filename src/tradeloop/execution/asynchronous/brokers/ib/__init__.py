"""Interactive Brokers through ib_async: :class:`~.broker.IBBroker` (I/O) and :mod:`.mapping`
(pure). Needs ``pip install 'tradeloop[ib]'``."""

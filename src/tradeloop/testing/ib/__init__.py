"""A loopback fake of TWS / IB Gateway: tests and dry runs of the IB broker with no account.

:class:`~tradeloop.testing.ib.server.IBServer` speaks the TWS socket protocol
(:mod:`~tradeloop.testing.ib.wire`) on 127.0.0.1, fills with tradeloop's matching core
(:mod:`~tradeloop.testing.ib.venue`) and injects faults (:mod:`~tradeloop.testing.ib.faults`).
``tradeloop ib-server`` runs one (:func:`~tradeloop.testing.ib.cli.run_server`).
"""

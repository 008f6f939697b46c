"""``python -m tradeloop``: the same as the ``tradeloop`` command."""

from tradeloop.cli import main

if __name__ == "__main__":
    main()

"""The asynchronous (live) execution path: engine and brokers arrive in a later release."""

"""Paper venues: one broker-neutral engine and one Starlette app per broker wire format.

Nothing here imports from ``gateway.brokers``: a misread wire format cannot hide in both the
adapter and the venue.
"""

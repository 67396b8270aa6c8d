"""Delivery metrics from audit trails: deployment frequency, lead time, change failure rate, restore."""

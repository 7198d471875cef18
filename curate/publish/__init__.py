"""Immutable, hashed dataset versions: release rows, data card, registry versions and the Hub."""

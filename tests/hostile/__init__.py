"""Hostile and careless input, command by command."""

"""Blueprints: each parses and checks input, calls a service, and renders."""

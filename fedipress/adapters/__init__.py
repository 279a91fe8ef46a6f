"""Thin adapters from HTTP frameworks and platforms to fedipress's framework-free cores."""

"""The inbox function: a framework-free core (service.py) with thin adapters around it."""

"""fedipress: a static blog that is also a Fediverse account."""

__version__ = "0.1.0"

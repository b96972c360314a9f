"""bingobox: controller for unmanned convenience stores."""

__version__ = "0.1.0"

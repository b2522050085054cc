"""An on-premise engagement-consultation appliance."""

__version__ = "0.1.0"

"""mirror: keep Azure IoT Edge runtime images in your own registry."""

__version__ = "0.1.0"

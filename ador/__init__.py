"""ador: recommends accelerator hardware for serving large language models."""
__version__ = "0.1.0"

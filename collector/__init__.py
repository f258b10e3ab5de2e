"""pipewarden: governance and observability sidecar for existing data pipelines."""

__version__ = "0.1.0"

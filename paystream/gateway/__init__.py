"""The merchant gateway: a REST API for payments (``paystream gateway``, docs/api.md)."""

"""paystream adapters, composition root and command line."""

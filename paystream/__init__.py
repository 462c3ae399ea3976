"""paystream's entry points: the ``paystream`` command line (and, later, the HTTP gateway)."""

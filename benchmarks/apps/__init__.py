"""Apps the benchmark runs with ``qfan run`` (as users deploy them), rather than inside a client process."""

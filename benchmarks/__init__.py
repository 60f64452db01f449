"""qfan's benchmark harness: ``python -m benchmarks`` (or ``qfan bench`` from a checkout).

Layout: ``servers`` starts the server; ``resources`` creates and drains queues, topics and buckets;
``harness`` runs each client x scenario in its own process (``child``) and verifies delivery by id;
``clients/`` holds one module per library compared; ``report`` writes the table and the chart;
``profiling`` shows where one client's CPU goes, by layer. Not part of the installed package.
"""

"""Running handlers: the worker's definition, the engine (intake, scheduling, running), the pure settle
decision and its executor, the visibility heartbeat, backoff."""

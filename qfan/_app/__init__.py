"""The App: a registry of topology and workers plus the lifecycle facade that opens the connection."""

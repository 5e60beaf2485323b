"""PM Agent stub: a real coordinator (persistent board, leases, fencing) spoken over MCP."""

__version__ = "0.1.0"

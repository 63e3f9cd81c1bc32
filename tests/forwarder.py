"""The loopback TCP forwarder tests put between the gateway and a service they take away."""

from benchmarks.forwarder import TcpForwarder

__all__ = ["TcpForwarder"]

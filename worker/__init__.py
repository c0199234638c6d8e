"""The backup worker: snapshot -> check -> export -> publish, on a schedule."""

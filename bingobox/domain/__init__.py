"""Domain: state machines and rules. No blocking I/O; time is passed in."""

"""What stands in for the physical world: the hardware simulator (and, later, the mock wallet gateway)."""

"""One module per container operation; the CLI calls these, they call the executors."""

"""What every experiment shares: command line, result writing, data, training loop, plots."""

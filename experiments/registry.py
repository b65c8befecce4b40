"""The experiments `make report` runs, in the order of the course's seeds."""
EXPERIMENTS = []

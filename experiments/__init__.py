"""The course experiments: one script per part of the assignments in ../shared/seeds/."""

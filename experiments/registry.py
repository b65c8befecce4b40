"""The experiments `make report` runs, in the order of the course's seeds, with the numbers
the course reported for them (shown next to ours in the report's headline table)."""
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Experiment:
    """One script experiments/<name>.py and how the report presents it.

    references: {metric key in metrics.json: (the course's number, where it comes from)}.
    """

    name: str
    title: str
    seed: str
    references: dict = field(default_factory=dict)
    note: str = ""


EXPERIMENTS = [
    Experiment("olivetti_cnn", "Olivetti faces: a CNN against a fully-connected network", "001",
               {"CNN.parameters": (3405, "seed 001: CNN total parameters"),
                "FCNN.parameters": (16393, "seed 001: FCNN total parameters")}),
]

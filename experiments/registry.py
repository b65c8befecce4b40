"""The experiments `make report` runs, in the order of the course's seeds, with the numbers
the course reported for them (shown next to ours in the report's headline table)."""
from dataclasses import dataclass, field

RUN_TABLE = "run_table.json"  # in the results folder: {module: {ok, seconds, peak_rss_bytes, cpu_seconds}} per step


@dataclass(frozen=True)
class Experiment:
    """One script experiments/<name>.py and how the report presents it.

    references: {metric key in metrics.json: (the course's number, where it comes from)}.
    after: the experiments whose results this one reads (`make report` starts it once they have finished).
    seconds: about how long it runs on one core (its processor seconds in make report's run table on the course
    machine; part 2's include cropping every set of faces the later parts read): make report starts the longest
    chains of work first.
    """

    name: str
    title: str
    seed: str
    references: dict = field(default_factory=dict)
    note: str = ""
    after: tuple = ()
    seconds: float = 0.0


EXPERIMENTS = [
    Experiment("backprop_steps", "How backprop works: backward passes to step through", "",
               note="Open the pages linked below in a browser and press the right arrow key.", seconds=2),
    Experiment("tutorials", "Tutorials: the notebooks, run in a Jupyter kernel", "",
               note="Each page is a tutorial as it ran here; the `.ipynb` beside it opens in Jupyter or Colab "
                    "(tutorials/README.md).", seconds=21),
    Experiment("part1_mnist", "Part 1: MNIST and the course's 784-300-10 handout network rebuilt with tinynet", "000",
               note="Seed 000 gives no number for part 1; test_accuracy is after 5000 Adam steps from "
                    "snapshot50.pkl.", seconds=33),
    Experiment("part2_faces", "Part 2: FaceScrub: the six actors' data, rejected downloads, annotation quality", "000",
               seconds=10),
    Experiment("part3_mlp", "Part 3: faces with one hidden layer on 32x32 gray pixels (and seed 002's 64x64 RGB "
               "version)", "000",
               {"over_training_seeds.mean_test_accuracy": (0.85, "issue 7 target for seed 000 part 3, here the mean "
                                                                 "over 5 training seeds (course reports 77-90%)"),
                "test_accuracy": (0.85, "the same, the --seed run alone"),
                "seed002_variant.test_accuracy": (0.8333, "seed 002: 83.33% test, 64x64 RGB, 600 ReLU, Adam 1e-4")},
               after=("part2_faces",), seconds=48),
    Experiment("part4_weights", "Part 4: the weights of a face classifier with no hidden layer", "000",
               after=("part2_faces",), seconds=2),
    Experiment("part5_hidden_units", "Part 5: hidden units for two actors under L2 and input size", "000",
               after=("part2_faces",), seconds=12),
    Experiment("part6_overfitting", "Part 6: overfitting with many hidden units, and units that memorize photos",
               "000", after=("part2_faces",), seconds=13),
    Experiment("part7_features", "Part 7: classifying actors from a pretrained network's features", "000",
               {"error_reduction_vs_part3": (0.30, "seed 000 part 7: at least 30% lower test error than part 3")},
               note="AlexNet conv4 features are added with --alexnet-weights bvlc_alexnet.npy (233 MB, not "
                    "shipped); the face ResNet's descriptors are always used.",
               after=("part3_mlp",), seconds=11),
    Experiment("part8_gradients", "Part 8: the gradient of an actor's score with respect to the photo", "000",
               after=("part7_features",), seconds=7),
    Experiment("part9_guided_backprop", "Part 9: guided backpropagation of the head's hidden units", "000",
               after=("part7_features",), seconds=6),
    Experiment("olivetti_cnn", "Olivetti faces: a CNN against a fully-connected network", "001",
               {"CNN.parameters": (3405, "seed 001: CNN total parameters"),
                "FCNN.parameters": (16393, "seed 001: FCNN total parameters")}, seconds=8),
    Experiment("mnist_softmax", "MNIST without a hidden layer: hand-written gradient, gradient descent vs momentum",
               "002",
               {"gradient_descent.test_accuracy": (0.9257, "seed 002: test performance, gradient descent"),
                "gradient_descent.train_accuracy": (0.9324, "seed 002: training performance, gradient descent"),
                "momentum.test_accuracy": (0.9267, "seed 002: test performance, gradient descent with momentum")},
               note="Steps on a tenth of the training set (6,000 images) at the seed's per-image step size; "
                    "the seed used full batches (--batch-size 60000).", seconds=37),
    Experiment("rpn_faces", "Face detection with a Faster R-CNN region-proposal head on FaceScrub photos", "003",
               {"untrained.bce": (0.695076, "seed 003: BCE loss of the untrained network on its image 0")},
               note="The seed publishes no detection accuracy; its untrained BCE is for one image, ours is the "
                    "test-split mean, so that comparison is loose.", seconds=51),
    Experiment("cnn_filters", "Seed 004: the 91x91 filter CNN, its filters, and an occlusion test", "004",
               after=("part2_faces",), seconds=66),
]

"""The op base class: a forward on arrays and its vector-Jacobian product, side by side.

An op knows nothing of Tensor. `tinynet.tensor.apply(OpClass, *inputs, **params)` runs
`forward` on the inputs' arrays, and, when gradients are wanted, remembers the op, its
context and its parents so that `Tensor.backward` can later call `backward`.
"""


class Context:
    """Scratch space an op's forward fills for its backward (saved arrays, shapes, params).

    `needs_input_grad[i]` says whether input i wants a gradient, so backward may skip work.
    """

    def __init__(self, needs_input_grad):
        self.needs_input_grad = tuple(needs_input_grad)


class Function:
    """A differentiable primitive.

    Subclasses define two static methods:
      forward(ctx, *arrays, **params) -> array
      backward(ctx, grad_out) -> tuple with one array (or None) per array input of forward.
    and, if the op has kinks, `branch(ctx)` (see below).
    The gradient backward returns for an input may have the broadcast shape of the output:
    the graph core sums it back to the input's shape (see `unbroadcast`).
    """

    @staticmethod
    def forward(ctx, *arrays, **params):
        raise NotImplementedError

    @staticmethod
    def backward(ctx, grad_out):
        raise NotImplementedError

    @staticmethod
    def branch(ctx):
        """Which side of its kinks the forward took, as an array (ReLU: x > 0), or None.

        Ops that are not differentiable everywhere (ReLU at 0, max at a tie) define it, so that
        gradcheck can tell when a finite-difference step crossed a kink: the branches taken at
        x + h and at x - h then differ.
        """
        return None

"""Watching the engine from outside: callbacks on every op's forward and on every step of backward.

Tools that watch a computation (gradcheck's kink detector, tracing, anomaly mode, guided backprop)
observe it this way; outside such a block nothing is called, so watching costs nothing when nobody
watches.
"""
import contextlib

forward_observers = []  # what observe_forward blocks added, called by Function.apply
backward_observers = []  # what observe_backward blocks added, called by the reverse pass


@contextlib.contextmanager
def _observing(observers, observer):
    observers.append(observer)
    try:
        yield
    finally:
        observers.remove(observer)


def observe_forward(observer):
    """Inside this block, `observer(op, ctx, inputs, params, out)` is called after every op's forward.

    inputs are the op's input Tensors, out the Tensor it made.
    """
    return _observing(forward_observers, observer)


def observe_backward(observer):
    """Inside this block, `observer(tensor, grad_out, parent_grads)` is called at every step of backward.

    tensor: the tensor whose gradient grad_out is complete (hooks applied); parent_grads: what its
    op's backward returned for each parent, before un-broadcasting, or None for a leaf. Observers
    see arrays, also in a create_graph backward (where the gradients are Tensors).
    """
    return _observing(backward_observers, observer)

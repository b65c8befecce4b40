"""Activation checkpointing: trade time for memory by recomputing a piece of the forward in backward.

    out = tn.checkpoint(block, x)    # block(x), but nothing inside block is kept for backward
    out.sum().backward()             # backward runs block(x) once more, with a graph, and backpropagates through it

The model is PyTorch's reentrant checkpoint (torch.utils.checkpoint, use_reentrant=True): one op whose forward
runs fn under no_grad on its inputs' values, so that the graph holds only fn's inputs and output, and whose
backward runs fn again with a graph, on fresh leaves holding the same values, and takes the gradients of
<grad_out, fn(inputs)> with respect to them and to fn's parameters (tn.grad), which it returns as its own.

- Parameters: fn's parameters are inputs of the op, so their gradients flow as any other (into .grad, or to
  tn.grad). A Module's are found (fn.parameters()); a plain function names them: parameters=[w, b]. The
  recomputation raises when fn uses a tensor requiring grad that is neither an argument nor a parameter.
- Randomness: the recomputation must draw the same dropout masks. The random generators of a Module's
  sub-Modules (Dropout's rng) are found; a plain function names its own: generators=[rng]. Their states are
  put back for the recomputation and restored after it, as PyTorch does with its global generator.
- fn returns one Tensor. No double backward: create_graph=True through a checkpoint raises, naming it.
"""
import contextlib

import numpy as np

from .function import Function, once_differentiable
from .grad_mode import enable_grad, no_grad
from .nn.module import Module
from .tensor import Tensor, grad, topological_order


class Checkpoint(Function):
    """out = fn(*inputs), its graph recomputed in backward; the op's inputs are fn's arguments then parameters."""

    @staticmethod
    def forward(ctx, *arrays, fn, parameters, generators):
        ctx.fn, ctx.parameters, ctx.generators = fn, parameters, generators
        ctx.states = [generator.bit_generator.state for generator in generators]
        arguments = arrays[:len(arrays) - len(parameters)]
        ctx.save_for_backward(*arguments)
        with no_grad():
            return checked_output(fn(*(Tensor(a) for a in arguments)), fn)._data

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        arguments = [Tensor(a, requires_grad=needs) for a, needs in zip(ctx.saved_tensors, ctx.needs_input_grad)]
        with enable_grad(), states_restored(ctx.generators, ctx.states):
            out = checked_output(ctx.fn(*arguments), ctx.fn)
        inputs = arguments + list(ctx.parameters)
        check_all_inputs_known(out, inputs, ctx.fn)
        wanted = [t for t, needs in zip(inputs, ctx.needs_input_grad) if needs]
        if not out.requires_grad:
            return (None,) * len(inputs)
        found = iter(grad(out, wanted, grad_out, allow_unused=True))
        return tuple(values(next(found)) if needs else None for needs in ctx.needs_input_grad)


def checkpoint(fn, *args, parameters=None, generators=None) -> Tensor:
    """fn(*args) without keeping anything inside fn for backward, which recomputes it (see the module docstring).

    args: Tensors (or arrays: constants). parameters: the tensors fn uses besides args (default: fn.parameters()
    for a Module, else none). generators: the np.random.Generators fn draws from (default: those of a Module's
    sub-Modules, else none).
    """
    if parameters is None:
        parameters = fn.parameters() if isinstance(fn, Module) else ()
    if generators is None:
        generators = [value for module in fn.modules() for value in vars(module).values()
                      if isinstance(value, np.random.Generator)] if isinstance(fn, Module) else ()
    return Checkpoint.apply(*args, *parameters, fn=fn, parameters=tuple(parameters), generators=tuple(generators))


class Checkpointed(Module):
    """A Module whose forward is checkpointed: Checkpointed(block)(x) is tn.checkpoint(block, x).

    Its parameters are block's (named 'module.<name>'); PyTorch's counterpart is checkpoint_wrapper."""

    def __init__(self, module):
        self.module = module

    def forward(self, *inputs):
        return checkpoint(self.module, *inputs)


def checked_output(out, fn):
    """fn's result, or a TypeError when it is not one Tensor."""
    if not isinstance(out, Tensor):
        raise TypeError(f"checkpoint: {getattr(fn, '__name__', type(fn).__name__)} returned "
                        f"{type(out).__name__}; a checkpointed function returns one Tensor")
    return out


def check_all_inputs_known(out, inputs, fn):
    """Raise when fn's graph reaches a leaf requiring grad that checkpoint was not given: its gradient would be lost."""
    known = {id(t) for t in inputs}
    unknown = [t for t in topological_order([out]) if t.node is None and id(t) not in known]
    if unknown:
        raise RuntimeError(f"checkpoint: {getattr(fn, '__name__', type(fn).__name__)} uses {len(unknown)} "
                           f"tensor(s) requiring grad (shapes {[t.shape for t in unknown]}) that are neither its "
                           "arguments nor its parameters: pass them as arguments or as parameters=[...]")


@contextlib.contextmanager
def states_restored(generators, states):
    """Inside this block the generators are in the given states; after it, in the states they had before."""
    current = [generator.bit_generator.state for generator in generators]
    for generator, state in zip(generators, states):
        generator.bit_generator.state = state
    try:
        yield
    finally:
        for generator, state in zip(generators, current):
            generator.bit_generator.state = state


def values(gradient):
    """A gradient tn.grad returned (a Tensor, or None) as an array or None."""
    return None if gradient is None else gradient._data

"""Module: a callable that owns Parameters and sub-Modules, found by walking its attributes."""
from collections.abc import Mapping

import numpy as np

from ..tensor import HookHandle, Tensor, values_of


class Parameter(Tensor):
    """A Tensor that a Module trains: requires_grad is on.

    It owns a copy of `data`: optimizers update parameters in place, and that must not
    change the array the caller passed in (e.g. saved initial weights). The copy is made in dtype at once (seed
    004's float64 draw of its 35M fc weights would otherwise be copied as float64, 277 MB, before the cast).
    """

    def __init__(self, data, dtype=None):
        super().__init__(np.array(data, dtype=dtype, copy=True), requires_grad=True, dtype=dtype)


class Module:
    """Base class of layers and networks. Subclasses set attributes and define forward().

    Parameters are the Parameter attributes of self and of its sub-Modules (attributes, or
    lists/tuples of them), named by their attribute path: 'hidden.weight', 'layers.0.bias'.
    """

    training = True
    _forward_hooks = ()  # a tuple, so that a module without hooks pays one empty loop per call

    def forward(self, *inputs):
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self, *inputs, **options):
        output = self.forward(*inputs, **options)
        for hook in self._forward_hooks:
            replaced = hook(self, inputs, output)
            output = output if replaced is None else replaced
        return output

    def register_forward_hook(self, hook) -> HookHandle:
        """Call hook(module, inputs, output) after every forward of this module; a returned value replaces output.

        inputs: the tuple of positional inputs forward got. Returns a handle whose remove() unregisters
        the hook (torch.nn.Module.register_forward_hook).
        """
        return HookHandle.added(self, hook, "_forward_hooks")

    def named_children(self):
        """(name, sub-Module) pairs, in attribute order."""
        for name, value in vars(self).items():
            if isinstance(value, Module):
                yield name, value
            elif isinstance(value, (list, tuple)):
                yield from ((f"{name}.{i}", m) for i, m in enumerate(value) if isinstance(m, Module))

    def named_parameters(self, prefix=""):
        """(dotted name, Parameter) pairs of self (attributes, or lists/tuples of them) and every sub-Module."""
        for name, value in vars(self).items():
            if isinstance(value, Parameter):
                yield prefix + name, value
            elif isinstance(value, (list, tuple)):
                yield from ((f"{prefix}{name}.{i}", p) for i, p in enumerate(value) if isinstance(p, Parameter))
        for name, child in self.named_children():
            yield from child.named_parameters(f"{prefix}{name}.")

    def parameters(self):
        """Every Parameter of self and its sub-Modules."""
        return [p for _, p in self.named_parameters()]

    def modules(self):
        """self and every sub-Module, depth first."""
        yield self
        for _, child in self.named_children():
            yield from child.modules()

    def named_modules(self, prefix=""):
        """(dotted name, Module) pairs of self (named prefix, '' by default) and every sub-Module, depth first."""
        yield prefix, self
        for name, child in self.named_children():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def train(self, mode=True):
        """Switch self and sub-Modules to training (mode=True) or evaluation behaviour."""
        for module in self.modules():
            module.training = mode
        return self

    def eval(self):
        """Switch to evaluation behaviour (e.g. Dropout becomes the identity)."""
        return self.train(False)

    def to(self, dtype):
        """Convert every parameter to dtype in place (e.g. np.float64 for finite differences)."""
        for p in self.parameters():
            p.data = p._data.astype(dtype)
            p.grad = None
        return self

    def zero_grad(self):
        """Forget the accumulated gradients of every parameter."""
        for p in self.parameters():
            p.grad = None

    def state_dict(self):
        """{parameter name: a copy of its array}."""
        return {name: p._data.copy() for name, p in self.named_parameters()}

    def load_state_dict(self, state):
        """Copy arrays from state {parameter name: array} into the parameters, after checking them all.

        The names must be exactly the parameters' names, and each value (an array, a Tensor or
        nested lists) real numbers (bool, int, uint or float) of its parameter's shape; they are
        cast to the parameter's dtype. On any error nothing is changed: KeyError for missing or
        unexpected names, ValueError for shapes, TypeError for values that are not real numbers
        (None, strings, dates, complex, objects).
        """
        if not isinstance(state, Mapping):
            raise TypeError(f"load_state_dict expects a dict {{parameter name: array}}, got {type(state).__name__}")
        params = dict(self.named_parameters())
        missing, unexpected = sorted(set(params) - set(state)), sorted(set(state) - set(params), key=repr)
        if missing or unexpected:
            raise KeyError(f"state dict does not match {type(self).__name__}: missing {missing}, "
                           f"unexpected {unexpected}")
        arrays = {name: _real_array(name, state[name], p.shape) for name, p in params.items()}
        for name, p in params.items():
            p.data[...] = arrays[name]
        return self


def _real_array(name, value, shape):
    """value as an array of real numbers (bool, int, uint or float) of the given shape, or raise naming `name`."""
    try:
        array = np.asarray(values_of(value))
    except ValueError as error:  # ragged nested lists
        raise TypeError(f"{name}: expected an array of real numbers, got {type(value).__name__} ({error})") from None
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{name}: expected an array of real numbers (bool, int, uint or float), "
                        f"got dtype {array.dtype} from {type(value).__name__}")
    if array.shape != shape:
        raise ValueError(f"{name}: expected shape {shape}, got {array.shape}")
    return array

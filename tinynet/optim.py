"""Optimizers with PyTorch's update rules. Each updates `param.data` in place from `param.grad`."""
import numpy as np

from .kernels import threads
from .kernels.adam import adam_step
from .recorder import caller_outside_engine
from .tensor import HookHandle

# subtract_scaled works through a parameter this many elements at a time (256 KiB of float32).
BLOCK_ELEMENTS = 1 << 16


class Optimizer:
    """Holds the parameters; `zero_grad()` clears their gradients, `step()` updates them."""

    _step_pre_hooks = _step_post_hooks = ()  # tuples, so that an optimizer without hooks pays two empty loops a step

    def __init__(self, params, lr):
        self.params = list(params)
        if not self.params:
            raise ValueError("optimizer got an empty parameter list")
        if lr <= 0:
            raise ValueError(f"learning rate must be positive, got {lr}")
        self.lr = lr
        self.state = [{} for _ in self.params]

    def zero_grad(self):
        for p in self.params:
            p.grad = None

    def step(self):
        for hook in self._step_pre_hooks:
            hook(self, (), {})
        where = caller_outside_engine()  # the step's line, for the error of a backward that saved a parameter before it
        for p, state in zip(self.params, self.state):
            if p.grad is not None:
                self.move(p._data, p.grad, state)
                p.written_in_place(where)
        for hook in self._step_post_hooks:
            hook(self, (), {})

    def register_step_pre_hook(self, hook) -> HookHandle:
        """Call hook(optimizer, args, kwargs) before every step(): the gradients are there, the parameters not yet
        moved. args and kwargs are step()'s, always empty here (PyTorch's signature, whose step may take a closure).
        Returns a handle whose remove() unregisters the hook."""
        return HookHandle.added(self, hook, "_step_pre_hooks")

    def register_step_post_hook(self, hook) -> HookHandle:
        """Call hook(optimizer, args, kwargs) after every step(): the parameters have moved. Returns a handle whose
        remove() unregisters the hook."""
        return HookHandle.added(self, hook, "_step_post_hooks")

    def move(self, value, grad, state):
        """Update one parameter's value (its array, in place) from its gradient and its state (a dict)."""
        subtract_scaled(value, *self.update(grad, value, state))

    def update(self, grad, value, state):
        """(step_size, direction) for one parameter: its value moves by -step_size * direction."""
        raise NotImplementedError


def subtract_scaled(value, step_size, direction):
    """value -= step_size * direction, in place, BLOCK_ELEMENTS at a time.

    In one piece, step_size * direction would be a temporary as large as the parameter: for the
    seed-004 CNN's 35M-weight layer, 140 MB of fresh memory each step, whose page faults made the
    update 2-3x slower than working through it in blocks that stay in cache. A large parameter is shared out
    over the cores (kernels.threads), each its own range of blocks: the same numbers. A parameter of one block or
    less goes in one piece (the blocks' bookkeeping was a fifth of a 10-5-2 MLP's SGD step).
    """
    if value.size <= BLOCK_ELEMENTS or not (value.flags.c_contiguous and direction.flags.c_contiguous):
        value -= step_size * direction
        return
    flat_value, flat_direction = value.reshape(-1), direction.reshape(-1)  # views: both are contiguous

    def subtract_range(elements):
        for start in range(elements.start, elements.stop, BLOCK_ELEMENTS):
            block = slice(start, min(start + BLOCK_ELEMENTS, elements.stop))
            flat_value[block] -= step_size * flat_direction[block]

    large = flat_value.size >= threads.SPLIT_ELEMENTS
    ranges = threads.one_per_worker(flat_value.size) if large else [slice(0, flat_value.size)]
    threads.map_chunks(subtract_range, ranges)


class SGD(Optimizer):
    """Gradient descent with optional momentum, Nesterov momentum and L2 weight decay.

    g = grad + weight_decay * p;  b = momentum * b + (1 - dampening) * g  (b = g at step 1);
    p -= lr * (g + momentum * b if nesterov else b).
    """

    def __init__(self, params, lr, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0):
        super().__init__(params, lr)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum needs momentum > 0 and dampening = 0")
        self.momentum, self.dampening, self.nesterov, self.weight_decay = momentum, dampening, nesterov, weight_decay

    def update(self, grad, value, state):
        grad = grad + self.weight_decay * value if self.weight_decay else grad
        if self.momentum:
            if "buffer" in state:
                state["buffer"] = self.momentum * state["buffer"] + (1 - self.dampening) * grad
            else:
                state["buffer"] = grad.copy()
            grad = grad + self.momentum * state["buffer"] if self.nesterov else state["buffer"]
        return self.lr, grad


class Adam(Optimizer):
    """Adam (Kingma & Ba), with PyTorch's bias correction and eps outside the square root.

    m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
    p -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps).
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params, lr)
        self.betas, self.eps, self.weight_decay = betas, eps, weight_decay

    def move(self, value, grad, state):
        """One pass over the parameter (kernels.adam): a dozen NumPy passes took a third of part 3's training."""
        grad = grad + self.weight_decay * value if self.weight_decay else grad
        if not state:
            state.update(step=0, m=np.zeros(value.shape, grad.dtype), v=np.zeros(value.shape, grad.dtype))
        state["step"] += 1
        adam_step(value, state["m"], state["v"], grad, self.lr, self.betas, self.eps, state["step"])


class RMSprop(Optimizer):
    """RMSprop: v = alpha v + (1 - alpha) g^2;  p -= lr * g / (sqrt(v) + eps).

    Keras' default is RMSprop(lr=1e-3, alpha=0.9, eps=1e-7); PyTorch's alpha=0.99, eps=1e-8.
    """

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0):
        super().__init__(params, lr)
        self.alpha, self.eps, self.weight_decay = alpha, eps, weight_decay

    def update(self, grad, value, state):
        grad = grad + self.weight_decay * value if self.weight_decay else grad
        state["v"] = self.alpha * state.get("v", 0) + (1 - self.alpha) * grad * grad
        return 1.0, self.lr * grad / (np.sqrt(state["v"]) + self.eps)

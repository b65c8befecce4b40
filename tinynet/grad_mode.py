"""Whether ops record a graph: on by default, off inside `no_grad()` (as torch.no_grad)."""
import contextlib

_enabled = True


@contextlib.contextmanager
def _grad_mode(enabled: bool):
    """Inside this block, ops record a graph if and only if enabled; the previous mode comes back after."""
    global _enabled
    previous, _enabled = _enabled, enabled
    try:
        yield
    finally:
        _enabled = previous


def no_grad():
    """Inside this block ops record no graph: for evaluation and for optimizer updates."""
    return _grad_mode(False)


def enable_grad():
    """Inside this block ops record a graph again, even within no_grad() (as torch.enable_grad)."""
    return _grad_mode(True)


def is_grad_enabled() -> bool:
    """True unless inside `no_grad()`."""
    return _enabled

"""How tinynet notices in-place writes: a version counter for each tensor's memory, as PyTorch keeps one.

An op that saves an input (or its output) for backward reads the values of that array again when
backward runs. If they were changed in place in between (`w.data[0] = 9`, an optimizer step before
the backward, `x.data *= 2`), the gradient would silently be that of another computation. So each
tensor's memory has a Version: a count of the writes into it, and which write (of all tinynet counted)
was the last and where it came from. An op notes how many writes had been counted when it ran; before
backward calls the op's VJP, if any write came since, it checks that none went into an array the op
saved; if one did, it raises, naming the op, where it was called, and where the array was last written.

tinynet counts the writes it can see: through `tensor.data` (a TrackedArray view: item assignment,
in-place operators, ufuncs with out=, fill, sort and np.copyto/put/place/putmask), `zero_()`, and the
optimizers' steps. Tensors that view one memory (a reshape, a transpose, a slice, `detach()`) share one
Version. A write that goes around tinynet (into the NumPy array a Tensor was made from, which it uses
without copying) is not seen. Why count writes rather than refuse them: writing is often right (the
optimizer step after backward; a graph that was only evaluated and is never backpropagated), and only
the backward that would read a changed array is wrong; that is where the error is raised.
"""
import numpy as np

from .recorder import caller_outside_engine

# NumPy functions that write into their first argument (they reach TrackedArray through __array_function__)
WRITING_FUNCTIONS = {np.copyto, np.put, np.place, np.putmask}


class Version:
    """How many times a memory was written in place (count), the number of its last write among all the writes
    tinynet counted (last_number), and where that write was made (last_write: 'file:line in function')."""

    __slots__ = ("count", "last_number", "last_write")
    writes = 0  # the writes counted so far, into any tensor: an op notes it, so that backward knows if any came since

    def __init__(self):
        self.count, self.last_number, self.last_write = 0, 0, None

    def bump(self, where=None):
        """Count one write, made at where ('file:line in function'; default: the user's code running now)."""
        Version.writes += 1
        self.count, self.last_number = self.count + 1, Version.writes
        self.last_write = where or caller_outside_engine()


class TrackedArray(np.ndarray):
    """A Tensor's array as `tensor.data` hands it out: a view that counts each write into it in the tensor's Version.

    Reading works as for any array, and arithmetic on it gives plain arrays; slices and reshapes of it are
    TrackedArrays of the same tensor (they share its memory). `owner` is the tensor, `viewed` its own array.
    """

    owner = None
    viewed = None

    def __array_finalize__(self, source):
        if isinstance(source, TrackedArray) and np.may_share_memory(self, source):
            self.owner = source.owner

    def __setitem__(self, index, value):
        self._written()
        super().__setitem__(index, value)

    def fill(self, value):
        self._written()
        super().fill(value)

    def sort(self, *args, **kwargs):
        self._written()
        super().sort(*args, **kwargs)

    def copy(self, order="C"):
        """A plain array with these values (its writes are nobody's, and its arithmetic runs at NumPy's speed)."""
        return plain(self).copy(order)

    def astype(self, dtype, *args, **kwargs):
        """As ndarray.astype, as a plain array: when it copies, the copy is nobody's; when it does not, it is self."""
        converted = plain(self).astype(dtype, *args, **kwargs)
        return self if converted.base is not None and np.may_share_memory(converted, self) else converted

    def __array_ufunc__(self, ufunc, method, *inputs, out=None, **kwargs):
        """ufunc on plain arrays; a TrackedArray it writes into (out=, as in `x.data += 1`) counts a write."""
        inputs = tuple(plain(x) for x in inputs)
        if out is not None:
            for target in out:
                if isinstance(target, TrackedArray):
                    target._written()
            kwargs["out"] = tuple(plain(target) for target in out)
        result = getattr(ufunc, method)(*inputs, **kwargs)
        return out[0] if out is not None and len(out) == 1 else result  # in place: the array written, for `+=`

    def __array_function__(self, function, types, args, kwargs):
        if function in WRITING_FUNCTIONS and isinstance(args[0], TrackedArray):
            args[0]._written()
        return super().__array_function__(function, types, args, kwargs)

    def _written(self):
        if self.owner is not None:
            self.owner.written_in_place()


def plain(x):
    """x as a plain ndarray view if it is a TrackedArray, else as it is."""
    return x.view(np.ndarray) if isinstance(x, TrackedArray) else x


def tracked(tensor):
    """A TrackedArray view of tensor's array whose writes count in its version (a NumPy scalar, which nothing can
    write into, as it is: some ops' forward gives one). The Version itself is made at the first write."""
    array = tensor._data
    if not isinstance(array, np.ndarray):
        return array
    view = array.view(TrackedArray)
    view.owner, view.viewed = tensor, array
    return view

"""Shape arithmetic of a 2-D sliding window (convolution and pooling), written once.

`sliding_window` checks every argument (kernel, stride, dilation, padding) and that the window
fits the input, with errors that name the argument, so the kernels only ever see valid sizes;
`output_size` is the one formula for the number of window positions.
"""
import math
import numbers

PADDING_FORMS = "an int, (ph, pw), ((top, bottom), (left, right)), 'valid' or 'same'"


def output_size(size, kernel, stride, dilation, before, after):
    """Number of window positions along one axis: floor((size + pads - span) / stride) + 1."""
    span = (kernel - 1) * dilation + 1
    return (size + before + after - span) // stride + 1


def output_shape(size_hw, kernel_hw, stride_hw, dilation_hw, pads):
    """(Ho, Wo): output_size along each axis; pads is ((top, bottom), (left, right))."""
    return tuple(output_size(*args, *pad) for args, pad in zip(zip(size_hw, kernel_hw, stride_hw, dilation_hw), pads))


def same_padding(size, kernel, stride, dilation):
    """TensorFlow 'SAME' along one axis: output ceil(size / stride); the odd pixel goes after."""
    span = (kernel - 1) * dilation + 1
    total = max((math.ceil(size / stride) - 1) * stride + span - size, 0)
    return total // 2, total - total // 2


def is_int(value) -> bool:
    """A Python or NumPy integer (a bool is not a size)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def checked_int(value, name, minimum=1) -> int:
    """value as a Python int >= minimum; TypeError unless it is a Python or NumPy integer."""
    if not is_int(value):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return int(value)


def pair(value, name, minimum=1) -> tuple:
    """(h, w) as Python ints >= minimum, from one int (used for both) or a pair of ints."""
    values = (value, value) if is_int(value) else value
    if not isinstance(values, (tuple, list)) or len(values) != 2:
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")
    return tuple(checked_int(v, name, minimum) for v in values)


def resolve_padding(padding, size_hw, kernel_hw, stride_hw, dilation_hw):
    """((top, bottom), (left, right)) from padding given as:

    an int p (p on every side), (ph, pw), ((top, bottom), (left, right)), 'valid' (none) or
    'same' (TensorFlow: the output is ceil(input / stride), the extra pixel at bottom/right).
    """
    if isinstance(padding, str):
        if padding.lower() == "valid":
            return (0, 0), (0, 0)
        if padding.lower() == "same":
            return tuple(same_padding(*args) for args in zip(size_hw, kernel_hw, stride_hw, dilation_hw))
        raise ValueError(f"padding string must be 'valid' or 'same', got {padding!r}")
    if is_int(padding) or isinstance(padding, (tuple, list)) and all(is_int(p) for p in padding):
        return tuple((p, p) for p in pair(padding, f"padding ({PADDING_FORMS})", minimum=0))
    if isinstance(padding, (tuple, list)) and len(padding) == 2:
        return tuple(pair(p, f"padding ({PADDING_FORMS})", minimum=0) for p in padding)
    raise TypeError(f"padding must be {PADDING_FORMS}, got {padding!r}")


def sliding_window(size_hw, kernel, stride, padding, dilation, kernel_name="kernel_size"):
    """The checked settings of a window sliding over an input of spatial size (H, W).

    kernel, stride, dilation: an int or an (h, w) pair, each >= 1; padding: as resolve_padding takes it.
    Returns (kernel, stride, pads, dilation, (Ho, Wo)) as pairs of ints and ((top, bottom), (left, right)).
    Raises TypeError or ValueError naming the argument; ValueError when no window fits.
    """
    kernel, stride, dilation = pair(kernel, kernel_name), pair(stride, "stride"), pair(dilation, "dilation")
    if min(size_hw) < 1:
        raise ValueError(f"input height and width must be at least 1, got {tuple(size_hw)}")
    pads = resolve_padding(padding, size_hw, kernel, stride, dilation)
    out_hw = output_shape(size_hw, kernel, stride, dilation, pads)
    if min(out_hw) < 1:
        raise ValueError(f"{kernel_name} {kernel} (dilation {dilation}) does not fit input {tuple(size_hw)} "
                         f"with padding {pads}")
    return kernel, stride, pads, dilation, out_hw

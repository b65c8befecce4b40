"""Turning the ways people write `padding` into explicit ((top, bottom), (left, right))."""
import math


def output_size(size, kernel, stride, dilation, before, after):
    """Number of window positions along one axis: floor((size + pads - span) / stride) + 1."""
    span = (kernel - 1) * dilation + 1
    return (size + before + after - span) // stride + 1


def same_padding(size, kernel, stride, dilation):
    """TensorFlow 'SAME' along one axis: output ceil(size / stride); the odd pixel goes after."""
    span = (kernel - 1) * dilation + 1
    total = max((math.ceil(size / stride) - 1) * stride + span - size, 0)
    return total // 2, total - total // 2


def pair(value, name):
    """(value, value) for an int, else the two ints of a pair."""
    if isinstance(value, int):
        return value, value
    if len(value) == 2 and all(isinstance(v, int) for v in value):
        return tuple(value)
    raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")


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
    if isinstance(padding, int):
        pads = ((padding, padding), (padding, padding))
    elif len(padding) == 2 and all(isinstance(p, int) for p in padding):
        pads = ((padding[0], padding[0]), (padding[1], padding[1]))
    elif len(padding) == 2 and all(not isinstance(p, int) and len(p) == 2 for p in padding):
        pads = tuple(tuple(int(v) for v in p) for p in padding)
    else:
        raise ValueError(f"padding must be an int, (ph, pw), ((top, bottom), (left, right)), 'valid' or 'same', "
                         f"got {padding!r}")
    if min(min(p) for p in pads) < 0:
        raise ValueError(f"padding must not be negative, got {padding!r}")
    return pads

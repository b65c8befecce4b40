"""Pretrained networks built from tinynet's nn layers."""
from ..nn import Parameter


def holding(layer, weight, bias=None):
    """The nn layer with new Parameters holding the pretrained weight and bias (its initial values dropped).

    weight: the layer's weight shape, e.g. (O, C/groups, kh, kw) for nn.Conv2d.
    """
    if weight.shape != layer.weight.shape:
        raise ValueError(f"{type(layer).__name__} expects a weight of shape {layer.weight.shape}, got {weight.shape}")
    layer.weight = Parameter(weight)
    layer.bias = None if bias is None else Parameter(bias)
    return layer

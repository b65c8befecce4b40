"""Layers and containers with the names PyTorch uses (torch.nn).

One difference in parameter names: Sequential keeps its layers in the list `layers`, so its
parameters are 'layers.0.weight', where PyTorch says '0.weight' (saved weights use these names).
"""
from .conv import AvgPool2d, Conv2d, LocalResponseNorm, MaxPool2d
from .layers import Dropout, Flatten, Linear, ReLU, Sequential, Sigmoid, Tanh
from .module import Module, Parameter

__all__ = ["Module", "Parameter", "Linear", "Conv2d", "MaxPool2d", "AvgPool2d", "LocalResponseNorm", "ReLU", "Tanh",
           "Sigmoid", "Dropout", "Flatten", "Sequential"]

"""Layers and containers with the names PyTorch uses."""
from .conv import AvgPool2d, Conv2d, LocalResponseNorm, MaxPool2d
from .layers import Dropout, Flatten, Linear, ReLU, Sequential, Sigmoid, Tanh
from .module import Module, Parameter

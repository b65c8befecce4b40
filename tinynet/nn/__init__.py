"""Layers and containers with the names PyTorch uses."""
from .layers import Dropout, Flatten, Linear, ReLU, Sequential, Sigmoid, Tanh
from .module import Module, Parameter

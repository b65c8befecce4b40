"""Pretrained networks built from tinynet layers."""

"""Hooks on what forward saves for backward: PyTorch's `torch.autograd.graph.saved_tensors_hooks`.

    with tn.saved_tensors_hooks(pack, unpack):
        loss = model(x)          # every array an op saves (ctx.save_for_backward) is stored as pack(array)
    loss.backward()              # and read back as unpack(packed) each time backward asks for it

pack is called once per saved array (None is not packed), when the forward saves it; unpack at every
read of ctx.saved_tensors. Blocks nest: the innermost one's pair is used. Only save_for_backward goes
through the hooks; other ctx attributes (masks, argmax) stay as they are. The graph itself holds no
values but the leaves' (tinynet.tensor.GraphTensor), so packing what was saved lowers what a graph keeps
alive (tinynet.memory). Where no graph is recorded
(tn.no_grad, or no input requires grad) nothing is packed. A double backward (create_graph=True)
needs the saved inputs themselves and raises on packed saves.

This module sits at the bottom of the engine, beside the observers: Context (tinynet.function) reads
`active_hooks`; outside any block it is empty and saving costs one check.
"""
import contextlib

active_hooks = []  # (pack, unpack) of the enclosing saved_tensors_hooks blocks, innermost last


@contextlib.contextmanager
def saved_tensors_hooks(pack, unpack):
    """Inside this block, forward saves pack(array) for backward, which reads unpack(packed) instead."""
    active_hooks.append((pack, unpack))
    try:
        yield
    finally:
        active_hooks.pop()

"""Function transforms shaped like torch.func: grad, grad_and_value, vjp, jvp, jacrev, jacfwd, hessian, linearize,
vmap; and functional_call, a model run with other tensors as its parameters.

Each takes a function of Tensors and gives back a function (vjp, jvp and linearize evaluate it at the
primals). `tn.grad`, PyTorch's torch.autograd.grad, differentiates a graph already built; these
differentiate a function, so they compose: grad(grad(f)), jacfwd(jacrev(f)).

Reverse mode (grad, vjp, jacrev) runs tinynet's backward: one pass per output element, each giving a
row of the Jacobian. It differentiates with respect to a fresh alias of each input (a copy made by an
op, so that the graph still reaches the input): in grad(lambda x: x * grad(lambda y: x * y)(x))(x)
the inner gradient is d(x y)/dy = x and the whole 2x, where differentiating the inner product with
respect to x itself would give d(x x)/dx = 2x and 4x in all ("perturbation confusion"). When another
transform encloses it (an outer grad, a jvp), which will differentiate its result again, backward
records its own graph (create_graph); otherwise the result is a constant, as a plain backward's is,
so that ops whose backward is first-order only (GELU, LRN) serve, whatever requires grad.

Forward mode (jvp, jacfwd) carries a tangent beside each value through the ops, each op's jvp rule
(tinynet.function) taking its inputs' tangents to its output's: one pass per input element, each
giving a column of the Jacobian. So jacrev suits functions with few outputs (a loss), jacfwd those
with few inputs. Forward mode does not nest (jvp of jvp raises), but runs over reverse mode:
hessian(f) is jacfwd(jacrev(f)), the reverse pass's ops carrying tangents too; and reverse mode over
it, jacrev(jacfwd(f)): inside a reverse transform, the JVP rules run on Tensors (tinynet.function).

vmap(f) runs f, written for one example, on a batch in one pass: each op meets one example's batched tensor
and runs for all examples at once (tinynet.batching). It composes with the others: vmap(grad(loss)) gives
per-example gradients, vmap(jacrev(f)) a Jacobian per example, grad of a vmapped function the summed gradient.

Inputs may be Tensors or arrays; results are Tensors. A Jacobian has shape output.shape + input.shape;
argnums, an int or a tuple of ints, says which arguments to differentiate (a tuple gives a tuple).
"""
import numpy as np

from . import batching
from . import functional as F
from .batching import every_example
from .function import forward_level, is_forward_mode_active, set_tangent, tangent_of
from .grad_mode import enable_grad
from .tensor import Tensor, values_of
from .tensor import grad as gradients_of


def grad(f, argnums=0, has_aux=False):
    """The function x -> d f(x) / d x for f with a one-element output (torch.func.grad).

    With has_aux, f returns (output, aux) and the new function (gradient, aux).
    """
    def gradient(*args):
        gradients, value = grad_and_value(f, argnums, has_aux)(*args)
        return (gradients, value[1]) if has_aux else gradients
    return gradient


def grad_and_value(f, argnums=0, has_aux=False):
    """The function x -> (d f(x) / d x, f(x)); with has_aux, (gradient, (output, aux)) (torch.func.grad_and_value)."""
    def gradient_and_value(*args):
        inputs, chosen, several = arguments(args, argnums)
        output, aux, pullback = reverse_mode(f, inputs, chosen, has_aux)
        if not isinstance(output, Tensor) or output.size != 1:
            shape = output.shape if isinstance(output, Tensor) else f"a tuple of {len(output)}"
            raise ValueError(f"grad needs a function with one one-element output, got {shape}: use vjp or jacrev for "
                             "others")
        return structured(pullback([np.ones(output.shape, output.dtype)]), several), \
            ((output, aux) if has_aux else output)
    return gradient_and_value


def vjp(f, *primals, has_aux=False):
    """(f(*primals), vjp_fn): vjp_fn(cotangent) is the tuple of d <f, cotangent> / d primal (torch.func.vjp).

    cotangent has the output's shape (for an f that returns a tuple of Tensors, a tuple of one per output). With
    has_aux, f returns (output, aux) and vjp returns (output, vjp_fn, aux).
    """
    inputs, chosen, _ = arguments(primals, tuple(range(len(primals))))
    output, aux, pullback = reverse_mode(f, inputs, chosen, has_aux)
    outputs = output_list(output)

    def vjp_fn(cotangent):
        cotangents = list(cotangent) if isinstance(output, tuple) else [cotangent]
        shapes = [np.shape(values_of(c)) for c in cotangents]
        if shapes != [out.shape for out in outputs]:
            raise ValueError(f"the cotangents have shapes {shapes}, the outputs {[out.shape for out in outputs]}: one "
                             "cotangent per output, of its shape")
        return tuple(pullback([np.asarray(values_of(c), out.dtype) for c, out in zip(cotangents, outputs)]))
    return (output, vjp_fn, aux) if has_aux else (output, vjp_fn)


def jvp(f, primals, tangents, has_aux=False):
    """(f(*primals), d f along tangents): forward mode, one pass (torch.func.jvp).

    primals, tangents: tuples of the same length, each tangent of its primal's shape and dtype. For an f that
    returns a tuple of Tensors, the tangent is a tuple too. With has_aux, f returns (output, aux) and jvp returns
    (output, tangent_out, aux).
    """
    if not isinstance(primals, (tuple, list)) or not isinstance(tangents, (tuple, list)):
        raise TypeError("jvp(f, primals, tangents) takes primals and tangents as tuples, e.g. jvp(f, (x,), (v,))")
    if len(primals) != len(tangents):
        raise ValueError(f"jvp got {len(primals)} primals and {len(tangents)} tangents: one tangent per primal")
    inputs = [as_input(x) for x in primals]
    directions = {}
    for k, (x, tangent) in enumerate(zip(inputs, tangents)):
        tangent = tangent if isinstance(tangent, batching.BatchedTensor) else np.asarray(values_of(tangent))
        if tangent.shape != x.shape or tangent.dtype != x.dtype:
            raise ValueError(f"tangent {k} has shape {tangent.shape} and dtype {tangent.dtype}, primal {k} shape "
                             f"{x.shape} and dtype {x.dtype}: each tangent has its primal's shape and dtype")
        directions[k] = tangent
    output, aux, tangents_out = pushed_forward(f, inputs, directions, has_aux)
    tangent_out = structured(tangents_out, isinstance(output, tuple))
    return (output, tangent_out, aux) if has_aux else (output, tangent_out)


def linearize(f, *primals):
    """(f(*primals), jvp_fn): jvp_fn(*tangents) is d f along the tangents, at the primals (torch.func.linearize).

    Here jvp_fn runs f's forward again for each call (torch traces f once and replays only the linear part).
    """
    output = as_outputs(f(*primals))

    def jvp_fn(*tangents):
        return jvp(f, tuple(primals), tangents)[1]
    return output, jvp_fn


def jacrev(f, argnums=0):
    """The function x -> the Jacobian of f at x, by reverse mode: one backward pass per output element.

    For an f that returns a tuple of Tensors, a tuple of one Jacobian (or tuple, for a tuple argnums) per output.
    """
    def jacobian(*args):
        inputs, chosen, several = arguments(args, argnums)
        output, _, pullback = reverse_mode(f, inputs, chosen, has_aux=False)
        outputs = output_list(output)
        jacobians = []
        for i, out in enumerate(outputs):
            rows = [pullback([unit.reshape(out.shape) if j == i else None for j in range(len(outputs))])
                    for unit in np.eye(out.size, dtype=out.dtype)]
            jacobians.append(structured([stacked([row[k] for row in rows], 0, out.shape + inputs[j].shape,
                                                    inputs[j].dtype) for k, j in enumerate(chosen)], several))
        return structured(jacobians, isinstance(output, tuple))
    return jacobian


def jacfwd(f, argnums=0):
    """The function x -> the Jacobian of f at x, by forward mode: one jvp per element of each input.

    For an f that returns a tuple of Tensors, a tuple of one Jacobian (or tuple, for a tuple argnums) per output.
    """
    def jacobian(*args):
        inputs, chosen, several = arguments(args, argnums)
        by_input = []  # for each chosen input, the Jacobian of each output
        for k in chosen:
            x = inputs[k]
            columns = [pushed_forward(f, inputs, {k: unit.reshape(x.shape)}, has_aux=False)
                       for unit in np.eye(x.size, dtype=x.dtype)]
            output = columns[0][0] if columns else as_outputs(f(*inputs))  # x empty: f once for the output's shape
            by_input.append([stacked([tangents[i] for _, _, tangents in columns], out.ndim, out.shape + x.shape,
                                     x.dtype) for i, out in enumerate(output_list(output))])
        jacobians = [structured([of_input[i] for of_input in by_input], several) for i in range(len(by_input[0]))]
        return structured(jacobians, isinstance(output, tuple))
    return jacobian


def hessian(f, argnums=0):
    """The function x -> the Hessian of f (one-element output) at x: jacfwd(jacrev(f)), forward over reverse.

    Shape output.shape + x.shape + x.shape. tn.hessian (torch.autograd.functional.hessian) gives the same by
    double backward.
    """
    return jacfwd(jacrev(f, argnums), argnums)


def vmap(f, in_dims=0, out_dims=0):
    """The function that runs f, written for one example, on a batch of examples in one pass (torch.func.vmap).

    in_dims: for each argument, the axis that runs over the examples, or None for an argument every example
    shares; an int applies to every argument, a tuple gives one entry per argument (an entry for a tuple, list or
    dict of tensors applies to each of them). Tensors and float arrays become batched tensors, integer arrays
    (class labels) batched labels (tinynet.batching). out_dims: where the batch axis goes in each output (an int,
    or a tuple with one per output); an output that does not depend on the examples is repeated for each.

    Per-example gradients: vmap(grad(loss_of_one_example), in_dims=(None, 0, 0))(weights, x, labels) gives, for
    each example b, d loss(weights, x[b], labels[b]) / d weights, stacked along axis 0, in one batched pass.
    """
    def vectorized(*args):
        dims = in_dims if isinstance(in_dims, tuple) else (in_dims,) * len(args)
        if len(dims) != len(args):
            raise ValueError(f"in_dims has {len(dims)} entries for {len(args)} arguments: one per argument")
        sizes = {len_along(leaf, dim) for arg, dim in zip(args, dims) if dim is not None for leaf in tree_leaves(arg)}
        if len(sizes) != 1:
            raise ValueError("vmap needs at least one batched argument (in_dims not None)" if not sizes else
                             f"vmap's batched arguments hold different numbers of examples: {sorted(sizes)}")
        with batching.running(sizes.pop()) as running_vmap:
            output = f(*(arg if dim is None else tree_map(lambda leaf, dim=dim: running_vmap.argument(leaf, dim), arg)
                         for arg, dim in zip(args, dims)))
        several = isinstance(output, (tuple, list))
        out_axes = out_dims if isinstance(out_dims, tuple) else (out_dims,) * (len(output) if several else 1)
        results = [tree_map(lambda leaf, axis=axis: running_vmap.result(leaf, axis), out)
                   for out, axis in zip(output if several else [output], out_axes)]
        return type(output)(results) if several else results[0]
    return vectorized


def len_along(leaf, dim) -> int:
    """The size of axis dim of leaf, an argument vmap batches along dim; a ValueError if it has no such axis."""
    shape = leaf.shape if isinstance(leaf, Tensor) else np.shape(leaf)
    if not -len(shape) <= dim < len(shape):
        raise ValueError(f"in_dims asks for axis {dim} of an argument of shape {shape}: give None for an argument "
                         "every example shares")
    return shape[dim]


def functional_call(module, parameters, *args):
    """module(*args) computed with the given tensors in place of its parameters (torch.func.functional_call).

    parameters: {dotted name: Tensor}, names as module.named_parameters() gives them; those left out keep the
    module's own. Made for transforms of a model: grad(lambda p, x: loss(functional_call(model, p, x)))(params, x).
    """
    own = dict(module.named_parameters())
    unknown = sorted(set(parameters) - set(own))
    if unknown:
        raise KeyError(f"{type(module).__name__} has no parameters {unknown}; its parameters are {sorted(own)}")
    put = {name: parameter_setter(module, name) for name in parameters}
    try:
        for name, value in parameters.items():
            put[name](value)
        return module(*args)
    finally:
        for name in parameters:
            put[name](own[name])


def parameter_setter(module, name):
    """A function that puts a tensor where module keeps its parameter `name` ('layers.0.weight', 'weights.1')."""
    *path, last = name.split(".")
    owner = module
    for part in path:
        owner = owner[int(part)] if isinstance(owner, (list, tuple)) else getattr(owner, part)
    if isinstance(owner, tuple):
        raise TypeError(f"functional_call cannot replace {name}: it is kept in a tuple; keep parameters in a list")
    if isinstance(owner, list):
        return lambda value: owner.__setitem__(int(last), value)
    return lambda value: setattr(owner, last, value)


# ---- the two passes ----------------------------------------------------------------------------
def reverse_mode(f, inputs, chosen, has_aux):
    """(output, aux, pullback): f evaluated with each tensor of each chosen input (a Tensor, or a tuple, list or
    dict of them) replaced by a fresh alias (see the module docstring), and pullback(cotangents), for each chosen
    input the d sum_i <output_i, cotangents[i]> / d alias over f's outputs (output_list; a None cotangent leaves
    its output out), as Tensors in the input's structure, zeros for an alias they do not depend on. Inside a vmap
    the aliases hold one copy per example, and so the gradients are per example (tinynet.batching)."""
    global _reverse_transforms_evaluating
    create_graph = differentiated_again()
    aliases = [[fresh_alias(x, connected=create_graph) for x in tree_leaves(inputs[k])] for k in chosen]
    arguments_of_f = list(inputs)
    for k, alias_leaves in zip(chosen, aliases):
        arguments_of_f[k] = tree_rebuilt(inputs[k], iter(alias_leaves))
    _reverse_transforms_evaluating += 1
    try:
        with enable_grad():
            output, aux = split_aux(f(*arguments_of_f), has_aux)
    finally:
        _reverse_transforms_evaluating -= 1
    flat_aliases = [alias for alias_leaves in aliases for alias in alias_leaves]

    def pullback(cotangents):
        pairs = [(every_example(out), per_example(cotangent, out)) for out, cotangent in
                 zip(output_list(output), cotangents) if cotangent is not None and out.requires_grad]
        found = [None] * len(flat_aliases)
        if pairs:
            found = gradients_of([out for out, _ in pairs], [every_example(alias) for alias in flat_aliases],
                                 [cotangent for _, cotangent in pairs], create_graph=create_graph, allow_unused=True)
        gradients = iter([like(alias, Tensor(np.zeros(every_example(alias).shape, alias.dtype)) if gradient is None
                               else gradient) for alias, gradient in zip(flat_aliases, found)])
        return [tree_rebuilt(inputs[k], gradients) for k in chosen]
    return output, aux, pullback


def fresh_alias(x, connected):
    """A copy of x that requires grad. connected (another transform will differentiate the result): made by an
    op (Cast to x's dtype), so that the graph goes on to x and x's tangent comes along (a leaf of its own when x
    requires no grad); else a leaf, so that backward stops there. Inside a vmap, one copy per example (a
    batched tensor), the copies of an unbatched x sharing its memory when they are a leaf."""
    vmap = batching.current()
    if connected:
        with enable_grad():
            alias = x.clone() if vmap is None else vmap.per_example(x.clone())
        alias.requires_grad = True
    elif vmap is not None and not isinstance(x, batching.BatchedTensor):
        alias = batching.shared_copies(x, vmap.batch_size)
    else:
        alias = Tensor(every_example(x)._data.copy(), requires_grad=True)
    return alias if vmap is None else vmap.batched(alias)


_reverse_transforms_evaluating = 0  # how many reverse transforms are running their f: they differentiate what it makes


def differentiated_again() -> bool:
    """Whether another transform will differentiate what this one computes: a reverse transform evaluating its f
    encloses it (grad(grad(f))), or a jvp runs (whose tangents must flow through this reverse pass)."""
    return _reverse_transforms_evaluating > 0 or is_forward_mode_active()


def pushed_forward(f, inputs, directions, has_aux):
    """(output, aux, tangents): f(*inputs) and the tangent of each of its outputs (output_list), as Tensors, with
    input k moving along directions[k] (the others fixed); inside a reverse transform the tangents have a graph,
    for it to differentiate. Inside a vmap a direction may differ per example (a batched tensor)."""
    vmap = batching.current()
    with forward_level(differentiable=_reverse_transforms_evaluating > 0):
        duals = list(inputs)
        for k, tangent in directions.items():
            duals[k] = inputs[k].clone() if vmap is None else vmap.batched(vmap.per_example(inputs[k]).clone())
            set_tangent(every_example(duals[k]), per_example(tangent, duals[k]))
        output, aux = split_aux(f(*duals), has_aux)
        tangents = [tangent_of(every_example(out)) for out in output_list(output)]
    return output, aux, [like(out, tangent_tensor(tangent, every_example(out)))
                         for out, tangent in zip(output_list(output), tangents)]


def tangent_tensor(tangent, output):
    """output's tangent as a Tensor: zeros for None (output does not depend on the inputs that moved)."""
    if tangent is None:
        return Tensor(np.zeros(output.shape, output.dtype))
    return tangent if isinstance(tangent, Tensor) else Tensor(tangent)


# ---- arguments and results -----------------------------------------------------------------------
def as_input(x) -> Tensor:
    """x as a Tensor (an array or number as a constant one)."""
    return x if isinstance(x, Tensor) else Tensor(x)


def arguments(args, argnums):
    """(args with the differentiated ones as Tensors (arrays converted; a tuple, list or dict of them converted
    leaf by leaf), the differentiated positions as a tuple, whether argnums was a tuple), argnums checked. The
    other arguments are passed to f as they are (integer labels stay integers)."""
    several = isinstance(argnums, tuple)
    chosen = argnums if several else (argnums,)
    if not chosen or not all(isinstance(k, int) and -len(args) <= k < len(args) for k in chosen):
        raise ValueError(f"argnums must be an int or a non-empty tuple of ints indexing the {len(args)} arguments, "
                         f"got {argnums!r}")
    chosen = tuple(k % len(args) for k in chosen)
    return [tree_map(as_input, x) if k in chosen else x for k, x in enumerate(args)], chosen, several


def tree_leaves(tree) -> list:
    """The leaves of a tuple, list or dict of them (nested), in order (a dict's in its keys' order)."""
    if isinstance(tree, (tuple, list)):
        return [leaf for child in tree for leaf in tree_leaves(child)]
    if isinstance(tree, dict):
        return [leaf for child in tree.values() for leaf in tree_leaves(child)]
    return [tree]


def tree_rebuilt(tree, leaves):
    """tree's structure with its leaves taken in order from the iterator leaves."""
    if isinstance(tree, (tuple, list)):
        return type(tree)(tree_rebuilt(child, leaves) for child in tree)
    if isinstance(tree, dict):
        return {key: tree_rebuilt(child, leaves) for key, child in tree.items()}
    return next(leaves)


def tree_map(function, tree):
    """tree with function applied to each leaf."""
    return tree_rebuilt(tree, iter([function(leaf) for leaf in tree_leaves(tree)]))


def like(reference, value):
    """value, the physical tensor of all examples, as a batched tensor when reference is one; else value."""
    return reference.vmap.batched(value) if isinstance(reference, batching.BatchedTensor) else value


def per_example(value, reference):
    """A tangent or cotangent for reference, with a batch axis first when reference is batched: a batched value's
    physical array, or the same value for every example (a broadcast view); else value as it is."""
    if not isinstance(reference, batching.BatchedTensor):
        return value
    if isinstance(value, batching.BatchedTensor):
        return value.physical._data
    return np.broadcast_to(values_of(value), every_example(reference).shape)


def structured(results, several):
    """A tuple of the results when there are several (a tuple argnums, f returning a tuple), else the one result."""
    return tuple(results) if several else results[0]


def split_aux(result, has_aux):
    """(output, aux) from what f returned: (output, aux) when has_aux, else the output alone; the output as
    as_outputs makes it."""
    if has_aux:
        if not (isinstance(result, tuple) and len(result) == 2):
            raise ValueError("with has_aux=True, f must return a pair (output, aux)")
        return as_outputs(result[0]), result[1]
    return as_outputs(result), None


def as_outputs(output):
    """What f returned as a Tensor, or a tuple of Tensors when it returned a tuple or list."""
    return tuple(map(as_input, output)) if isinstance(output, (tuple, list)) else as_input(output)


def output_list(output):
    """The Tensors of an output as_outputs made: those of a tuple, or the one Tensor."""
    return list(output) if isinstance(output, tuple) else [output]


def stacked(pieces, axis, shape, dtype):
    """The Tensors pieces stacked along a new axis and reshaped to shape (zeros of shape and dtype if there are none):
    a Jacobian from its rows (axis 0) or its columns (axis output.ndim)."""
    return F.reshape(F.stack(pieces, axis=axis), shape) if pieces else Tensor(np.zeros(shape, dtype))

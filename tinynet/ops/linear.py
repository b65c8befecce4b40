"""Matrix products: MatMul, batched over leading axes (NumPy matmul broadcasting), and Linear, a
fully-connected layer's x @ W^T + b as one op."""
import numpy as np

from ..function import Bilinear, total
from ..kernels.threads import matmul


class MatMul(Bilinear):
    """a @ b with a: (..., n, k), b: (..., k, m) -> (..., n, m).

    d/da = grad_out @ b^T and d/db = a^T @ grad_out; the graph core sums the results over
    any batch axes that broadcasting added; the JVP is da @ b + a @ db (Bilinear). Each gradient is laid
    out in memory as its input is (see product_laid_out_as): in `x @ w.T` a parameter enters as a
    transposed view, and a gradient in the other layout would make the optimizer's in-place update a slow
    strided transpose.
    """

    @staticmethod
    def forward(ctx, a, b):
        if a.ndim < 2 or b.ndim < 2:
            raise ValueError(f"MatMul needs arrays with at least 2 dimensions, got {a.shape} and {b.shape}")
        need_a, need_b = ctx.needs_input_grad
        ctx.save_for_backward(a if need_b else None, b if need_a else None)  # each gradient reads the other input
        ctx.column_major = is_column_major(a), is_column_major(b)
        return product_taller_on_the_left(a, b)

    vjp_formulas = {"a": "g @ bᵀ", "b": "aᵀ @ g"}

    @staticmethod
    def backward(ctx, grad_out):
        a, b = ctx.saved_tensors
        a_column_major, b_column_major = ctx.column_major
        grad_a = product_laid_out_as(a_column_major, grad_out, matrix_transpose(b)) if ctx.needs_input_grad[0] else None
        grad_b = product_laid_out_as(b_column_major, matrix_transpose(a), grad_out) if ctx.needs_input_grad[1] else None
        return grad_a, grad_b


def is_column_major(array) -> bool:
    """Whether array is a column-major matrix (a transposed view of a C-order one, as `w.T`)."""
    return array.ndim == 2 and array.flags.f_contiguous and not array.flags.c_contiguous


def product_laid_out_as(column_major, left, right):
    """left @ right, laid out column-major (a transposed view of a C-order array) when column_major, the layout of
    the input whose gradient it is.

    (left @ right) = (right^T @ left^T)^T: BLAS reads transposed operands at no cost, so both orders
    cost the same, and the result's layout follows the input's. (Under create_graph the operands are
    Tensors and the plain product is taken.)
    """
    if column_major and isinstance(left, np.ndarray):
        return matrix_transpose(matmul(matrix_transpose(right), matrix_transpose(left)))
    if isinstance(left, np.ndarray) and left.shape[-1] == 1 and left.ndim > 2:
        return left * right  # stacked outer products (per-example weight gradients): NumPy's matmul is ~2x slower
    return product(left, right)


def product(left, right):
    """left @ right: split over the cores (kernels.threads.matmul) for arrays; recorded as an op for Tensors (a
    VJP under create_graph)."""
    return matmul(left, right) if isinstance(left, np.ndarray) and isinstance(right, np.ndarray) else left @ right


def product_taller_on_the_left(left, right):
    """left (n, k) @ right (k, m), as (right^T @ left^T)^T (a transposed view) when m > n; stacks of matrices as they
    are. OpenBLAS ran the product of a few examples with a large layer's weight faster with the weight on the left:
    seed 004's 33856 -> 1024 layer at batch 16 in 21 ms instead of 33, a 4096 -> 4096 layer at batch 32 in 19
    instead of 24, 9216 -> 4096 at batch 128 in 108 instead of 126 (one core, CPU time). Linear and MatMul both
    take it, so that a Linear is still a MatMul to the last bit."""
    if left.ndim == right.ndim == 2 and right.shape[1] > left.shape[0]:
        return matmul(right.T, left.T).T
    return matmul(left, right)


def matrix_transpose(x):
    """x (..., n, k) -> (..., k, n), a view: NumPy's swapaxes for an array, PyTorch's transpose for a Tensor."""
    return x.swapaxes(-1, -2) if isinstance(x, np.ndarray) else x.transpose(-1, -2)


class Linear(Bilinear):
    """x @ weight^T + bias with x: (N, in), weight: (out, in), bias: (out,) or left out -> (N, out).

    d/dx = grad_out @ weight (N, in), d/dweight = grad_out^T @ x (out, in), d/dbias = grad_out summed
    over the batch (out,). A layer's three ops (transpose, matmul, add) as one: the same arithmetic,
    recorded once.
    """

    @staticmethod
    def forward(ctx, x, weight, bias=None):
        ctx.save_for_backward(x if ctx.needs_input_grad[1] else None, weight if ctx.needs_input_grad[0] else None)
        out = product_taller_on_the_left(x, weight.T)
        return out if bias is None else out + bias

    vjp_formulas = {"x": "g @ weight", "weight": "gᵀ @ x", "bias": "g summed over the batch"}

    @staticmethod
    def backward(ctx, grad_out):
        x, weight = ctx.saved_tensors
        grad_x = product(grad_out, weight) if ctx.needs_input_grad[0] else None
        grad_weight = product(grad_out.T, x) if ctx.needs_input_grad[1] else None
        if len(ctx.needs_input_grad) == 2:  # no bias
            return grad_x, grad_weight
        return grad_x, grad_weight, grad_out.sum(axis=0) if ctx.needs_input_grad[2] else None

    @classmethod
    def jvp(cls, ctx, tangent_x, tangent_weight, tangent_bias=None):
        """dx @ weight^T + x @ dweight^T + dbias: the product rule for x @ weight^T (Bilinear), plus the bias's."""
        return total([super().jvp(ctx, tangent_x, tangent_weight), tangent_bias])

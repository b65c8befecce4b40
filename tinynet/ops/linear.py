"""Matrix multiplication, batched over leading axes (NumPy matmul broadcasting)."""
from ..function import Function


class MatMul(Function):
    """a @ b with a: (..., n, k), b: (..., k, m) -> (..., n, m).

    d/da = grad_out @ b^T and d/db = a^T @ grad_out; the graph core sums the results over
    any batch axes that broadcasting added.
    """

    double_backward, saved_inputs = True, ("a", "b")

    @staticmethod
    def forward(ctx, a, b):
        if a.ndim < 2 or b.ndim < 2:
            raise ValueError(f"MatMul needs arrays with at least 2 dimensions, got {a.shape} and {b.shape}")
        ctx.a, ctx.b = a, b
        return a @ b

    @staticmethod
    def backward(ctx, grad_out):
        grad_a = grad_out @ matrix_transpose(ctx.b) if ctx.needs_input_grad[0] else None
        grad_b = matrix_transpose(ctx.a) @ grad_out if ctx.needs_input_grad[1] else None
        return grad_a, grad_b


def matrix_transpose(x):
    """x (..., n, k) -> (..., k, n), a view; for arrays and Tensors alike."""
    return x.transpose(*range(x.ndim - 2), x.ndim - 1, x.ndim - 2)

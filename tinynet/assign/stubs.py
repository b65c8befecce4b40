"""Replace the bodies of named functions in Python source by `raise NotImplementedError(message)`."""
import ast
import threading

# Held by every grading thread that builds an AST: here, and around reading a child's .npz (NumPy parses each
# array's header with ast.literal_eval). CPython 3.11's AST builder keeps a recursion count that threads parsing
# at once corrupt (a spurious "SystemError: AST constructor recursion depth mismatch", CPython issue gh-106905).
parsing = threading.Lock()


def parse(source: str, filename: str = "<unknown>") -> ast.Module:
    """ast.parse, one thread at a time (see `parsing`): the grader grades tasks in threads."""
    with parsing:
        return ast.parse(source, filename=filename)


def function_nodes(tree) -> dict:
    """{qualified name: FunctionDef} for the module's functions and methods ("Mul.backward")."""
    found = {}

    def visit(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.ClassDef)):
                name = prefix + child.name
                if isinstance(child, ast.FunctionDef):
                    found[name] = child
                visit(child, name + ".")

    visit(tree, "")
    return found


def strip_functions(source: str, names, message: str) -> str:
    """source with each function in names keeping its signature and docstring, its body replaced by
    a raise of NotImplementedError(message). Raises KeyError naming a function that is not there."""
    nodes = function_nodes(parse(source))
    missing = [name for name in names if name not in nodes]
    if missing:
        raise KeyError(f"no function {', '.join(missing)} in this file")
    lines = source.splitlines(keepends=True)
    for node in sorted((nodes[name] for name in names), key=lambda n: n.lineno, reverse=True):
        body = node.body
        keep = 1 if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str) else 0
        first = body[keep] if keep < len(body) else None
        indent = " " * body[0].col_offset
        stub = f"{indent}raise NotImplementedError({message!r})\n"
        if first is None:
            lines.insert(body[0].end_lineno, stub)
        else:
            lines[first.lineno - 1:node.end_lineno] = [stub]
    return "".join(lines)


def strip_tasks(source: str, targets) -> str:
    """source with the functions of targets ((qualified name, message) pairs) stripped as strip_functions does,
    in one parse per message (a task's functions share theirs)."""
    for message in dict.fromkeys(message for _, message in targets):
        source = strip_functions(source, [name for name, said in targets if said == message], message)
    return source

"""The README's example runs and does what it says."""
import re

from coursedata.paths import PROJECT_ROOT


def test_readme_example_trains_and_gradchecks():
    source = (PROJECT_ROOT / "README.md").read_text()
    example = re.search(r"```python\n(.*?)```", source, re.S).group(1)
    namespace = {}
    exec(example, namespace)
    assert namespace["loss"].item() < 0.1

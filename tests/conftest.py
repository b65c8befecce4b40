"""Shared fixtures: the course data folder, which must exist in CI."""
import contextlib
import os

# Under pytest-xdist (setup.cfg's addopts) the workers share the cores: BLAS's and torch's OpenMP thread pools,
# sized for the whole machine, would only contend, and their spinning doubled the CPU time of the convolution
# tests. So each worker gets its share (set before numpy or torch is imported). Numba keeps its threads: they
# sleep between kernels, and the parallel kernels stay tested with more than one thread.
_workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _workers > 1:
    for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_name, str(max(1, (os.cpu_count() or 1) // _workers)))

import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402

from coursedata.paths import data_dir  # noqa: E402
from tinynet.tensor import read_only_grad_out  # noqa: E402

# CI replays the same examples every run (derandomize) so that main stays reproducibly green;
# local runs explore new examples each time.
settings.register_profile("tinynet", max_examples=25, deadline=None, derandomize=os.environ.get("CI") == "true")
settings.load_profile("tinynet")


@pytest.fixture(autouse=True)
def vjps_may_not_write_into_grad_out():
    """Every test's backward hands VJPs a read-only grad_out, so an op that writes into it fails the suite."""
    with read_only_grad_out():
        yield


def require_data(relative_path: str):
    """Return data_dir()/relative_path; fail in CI (CI=true) and skip elsewhere when it is missing."""
    path = data_dir() / relative_path
    require_or_skip(path.exists(), f"missing course data {path}: set TINYNET_DATA or put ../shared/data beside "
                                   "the project")
    return path


CHROMIUM = "/usr/bin/chromium"  # Debian's chromium package; .ci/run installs it when missing


def require_or_skip(available: bool, message: str):
    """Fail in CI (CI=true) and skip elsewhere when something a test needs is not available."""
    if not available:
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


@contextlib.contextmanager
def chromium_page():
    """A page of headless Chromium (offline: every request but file:// is refused), and its console errors."""
    require_or_skip(os.path.exists(CHROMIUM), f"{CHROMIUM} is missing: apt-get install chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        require_or_skip(False, "playwright is missing: pip install -e '.[test]'")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        page = browser.new_page(viewport={"width": 1300, "height": 800})
        page.errors, page.requests = [], []
        page.on("console", lambda message: page.errors.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda error: page.errors.append(str(error)))
        page.on("request", lambda request: page.requests.append(request.url))
        page.route("**/*", lambda route: route.continue_() if route.request.url.startswith("file://")
                   else route.abort())
        yield page
        browser.close()


@pytest.fixture
def browser_page():
    """A page of headless Chromium (chromium_page) for one test."""
    with chromium_page() as page:
        yield page


@pytest.fixture(scope="module")
def module_browser_page():
    """One page of headless Chromium (chromium_page) for a whole test module: load a page once, and let each test
    start by putting it in the state it needs."""
    with chromium_page() as page:
        yield page


@pytest.fixture
def shared_data():
    """The course data folder (see require_data)."""
    return require_data(".")

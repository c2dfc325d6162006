"""End to end, in a real browser: what a new learner does in the first minutes.

Debian's chromium, headless, a fresh profile, driven by Playwright (never a downloaded browser).
It opens the lab's JupyterLab, runs lesson 00 and reads the [OK]/[FAIL] table, opens the lesson 01
exercise, runs a check on a blank task (a red box with a hint), types an answer in the browser
(a green pass), then stops the emulator and runs a plain boto3 call (a short message, no traceback).
Screenshots of every failure land in ``<test lab>/screenshots``.
"""

from __future__ import annotations

import json
import re
import time

import pytest

from cloudlab.lab import ROOT, Lab, cli, emulators, jupyter, tools

pytestmark = [pytest.mark.lab, pytest.mark.timeout(240)]
CHROMIUM = tools.which("chromium")  # Debian's chromium (or the runner's chromium-browser / google-chrome)
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def solution_of(stem: str, marker: str) -> str:
    """The worked answer of the task whose cell contains ``marker`` (between the solution markers)."""
    nb = json.loads((ROOT / "solutions" / f"{stem}.ipynb").read_text())
    for c in nb["cells"]:
        src = c["source"] if isinstance(c["source"], str) else "".join(c["source"])
        if c["cell_type"] == "code" and marker in src and "### BEGIN SOLUTION" in src:
            return re.sub(r"(?m)^\s*### (BEGIN|END) SOLUTION\s*$\n?", "", src)
    raise AssertionError(f"no task with {marker!r} in solutions/{stem}.ipynb")


@pytest.fixture(scope="module")
def lab():
    lab = Lab.from_env()
    # Every cell rendered (no windowing), so the test can reach cells far down a notebook.
    d = lab.state / "jupyter-settings" / "@jupyterlab" / "notebook-extension"
    d.mkdir(parents=True, exist_ok=True)
    (d / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    pid = jupyter.spawn(lab)
    jupyter.start(lab, pid)
    yield lab
    jupyter.stop(lab)


@pytest.fixture
def page(lab, request):
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (`make setup ALL=1` installs it as root)")
    from playwright.sync_api import sync_playwright

    shots = lab.state / "screenshots"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        context = browser.new_context(viewport={"width": 1400, "height": 900})  # a fresh profile
        context.set_default_timeout(30_000)
        pg = context.new_page()
        yield pg
        if request.node.rep_call.failed if hasattr(request.node, "rep_call") else False:
            shots.mkdir(parents=True, exist_ok=True)
            pg.screenshot(path=str(shots / f"{request.node.name}-{int(time.time())}.png"), full_page=True)
        browser.close()


def open_notebook(page, lab: Lab, path: str):
    # a workspace of its own per notebook: one notebook in view, nothing restored from before
    ws = re.sub(r"\W", "-", path)
    page.goto(f"http://127.0.0.1:{lab.jupyter_port}/lab/workspaces/{ws}/tree/{path}?reset&token={jupyter.token(lab)}")
    page.locator(".jp-NotebookPanel .jp-Cell").first.wait_for()
    page.locator(".jp-StatusBar-Widget").get_by_text(re.compile(r"\| Idle")).first.wait_for(timeout=60_000)


def cell(page, index: int):
    return page.locator(".jp-NotebookPanel:visible .jp-Notebook .jp-Cell").nth(index)


def run_cell(page, index: int, wait_text: str | None = None, timeout: float = 60_000):
    c = cell(page, index)
    for _ in range(3):  # a run requested while the kernel is still connecting can be dropped: ask again
        c.scroll_into_view_if_needed()
        c.locator(".jp-InputArea-editor").click()
        page.keyboard.press("Shift+Enter")
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and c.locator(".jp-InputPrompt").inner_text().strip() in ("[ ]:", ""):
            time.sleep(0.1)
        if c.locator(".jp-InputPrompt").inner_text().strip() not in ("[ ]:", ""):
            break
    if wait_text:
        c.locator(".jp-OutputArea").get_by_text(wait_text).first.wait_for(timeout=timeout)
    return c


def code_cells_with(page, text: str) -> int:
    """Index (among all cells) of the first code cell whose source contains ``text``."""
    cells = page.locator(".jp-NotebookPanel:visible .jp-Notebook .jp-Cell")
    for i in range(cells.count()):
        c = cells.nth(i)
        if "jp-CodeCell" in (c.get_attribute("class") or "") and text in c.locator(".jp-InputArea").inner_text():
            return i
    raise AssertionError(f"no code cell contains {text!r}")


def test_a_learner_meets_the_lab_in_a_browser(lab, page):
    t0 = time.monotonic()
    open_notebook(page, lab, "notebooks/00_environment-check.ipynb")
    setup = code_cells_with(page, "cloudlab.connect()")
    run_cell(page, setup, wait_text="Connected to the local cloud")
    # the check runs every tool's --version and asks the engines: seconds alone, over a minute while make test's
    # seven shards keep both cores busy (it timed out at 60 s there once)
    table = run_cell(page, code_cells_with(page, "environment_check()"), wait_text="OK", timeout=180_000)
    out = table.locator(".jp-OutputArea").inner_text()
    assert "[OK]" in out and "LocalStack" in out, out[:500]

    # the lesson 01 exercise: a blank task's check is a red box with a hint
    stem = "01_cloud-mindset"
    open_notebook(page, lab, f"exercises/{stem}.exercises.ipynb")
    run_cell(page, code_cells_with(page, "cloudlab.connect()"), wait_text="Connected to the local cloud")
    check = code_cells_with(page, "check_config()")
    box = run_cell(page, check, wait_text="Hint 1/")
    text = box.locator(".jp-OutputArea").inner_text()
    assert "CheckFailed" in text and "not yet" in text and "Traceback" not in text, text[:600]
    assert box.locator(".jp-RenderedText[data-mime-type='application/vnd.jupyter.stderr']").count() >= 1

    # the learner types an answer in the browser: the same check passes, green
    task = code_cells_with(page, "def load_config")
    editor = cell(page, task).locator(".jp-InputArea-editor .cm-content")
    editor.click()
    page.keyboard.press("Control+a")
    page.keyboard.insert_text(solution_of(stem, "def load_config"))
    run_cell(page, task)
    ok = run_cell(page, check, wait_text="PASS 01.1")
    assert "[missing]" not in ok.locator(".jp-OutputArea").inner_text()

    # the emulator stops: a plain boto3 call ends in one short message with the fix, not a traceback wall
    emulators.stop_one(lab, "localstack")
    try:
        editor = cell(page, task).locator(".jp-InputArea-editor .cm-content")
        editor.click()
        page.keyboard.press("Control+a")
        page.keyboard.insert_text("import boto3\nboto3.client('s3').list_buckets()")
        t1 = time.monotonic()
        down = run_cell(page, task, wait_text="local cloud is not answering")
        took = time.monotonic() - t1
        text = down.locator(".jp-OutputArea").inner_text()
        assert "make lab" in text and "Traceback" not in text and len(text.splitlines()) < 8, text[:800]
        assert took < 8, f"the message took {took:.1f} s (the browser adds its own latency)"
    finally:
        cli.up(lab)  # the rest of the test run needs the emulator back
    print(f"browser test took {time.monotonic() - t0:.1f} s")

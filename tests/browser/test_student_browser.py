"""The student's path in a real browser: JupyterLab 4 on loopback, Debian's headless Chromium
driven by Selenium (through Debian's chromedriver; nothing is downloaded).

In a temporary copy of the release (built from the current source, tests/colab/student_release.py):

1. 01_layers: run the first cell and the setup cell, run the affine_forward check on the stub
   and read its message from the page; write the reference affine_forward into nnkit/layers.py
   on disk; run the check again and read "affine_forward: OK" (%autoreload).
2. 02_two_layer_net (its solution cells filled in, DATASET = "embedded"): the explorer's Train
   button on the stubbed TwoLayerNet shows the error in the widget; with the reference modules
   on disk, the training cell shows its progress bar (still readable once the notebook is saved
   and opened again), and the explorer responds to a slider (epochs 5 -> 2, Train, "epoch 2/2"
   and a plot).

Screenshots of each step go to build/browser-screenshots/<test>/ when a step fails (every
step with NNKIT_BROWSER_SCREENSHOTS=always). Skipped, saying what to install, when chromium,
chromedriver, selenium or jupyterlab are missing (`make browser-tool` installs the first two as root).
"""
from __future__ import annotations

import importlib.util
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("student_release", HERE.parent / "colab" / "student_release.py")
kit = sys.modules.setdefault("student_release", importlib.util.module_from_spec(_spec))
_spec.loader.exec_module(kit)

REPO = kit.REPO
# Chromium, chromedriver and their flags: one definition, in this folder's conftest.py.
_spec = importlib.util.spec_from_file_location("browser_conftest", HERE / "conftest.py")
chrome = sys.modules.setdefault("browser_conftest", importlib.util.module_from_spec(_spec))
_spec.loader.exec_module(chrome)
SHOTS, CHROMIUM, CHROMEDRIVER, CHROME_FLAGS = chrome.SHOTS, chrome.CHROMIUM, chrome.CHROMEDRIVER, chrome.CHROME_FLAGS


def _missing() -> str | None:
    if importlib.util.find_spec("jupyterlab") is None:
        return "jupyterlab is not importable: install the instructor extra (pip install '.[instructor]')"
    return chrome.browser_missing()


pytestmark = pytest.mark.skipif(_missing() is not None, reason=_missing() or "")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Lab:
    """A JupyterLab server on loopback, serving `root`, and a headless Chromium looking at it."""

    def __init__(self, root: Path, tmp: Path, name: str):
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        self.root, self.port, self.token = root, _free_port(), secrets.token_hex(16)
        self.base = f"http://127.0.0.1:{self.port}"
        self.shots = SHOTS / name
        shutil.rmtree(self.shots, ignore_errors=True)
        self.always = os.environ.get("NNKIT_BROWSER_SCREENSHOTS") == "always"
        self.step = 0
        env = {k: v for k, v in os.environ.items()
               if k not in ("NNKIT_DATASET", "NNKIT_DATA_DIR", "NBGRADER_EXECUTION", "PYTHONPATH", "MPLBACKEND")}
        env.update(OPENBLAS_NUM_THREADS="1", JUPYTER_CONFIG_DIR=str(tmp / "jupyter-config"),
                   JUPYTER_RUNTIME_DIR=str(tmp / "jupyter-runtime"), IPYTHONDIR=str(tmp / "ipython"))
        # Every cell in the page (JupyterLab 4 otherwise detaches the cells out of view), no news prompt.
        settings = tmp / "lab-settings"
        for plugin, values in (("@jupyterlab/notebook-extension/tracker", {"windowingMode": "none"}),
                               ("@jupyterlab/apputils-extension/notification", {"fetchNews": "false"})):
            (settings / f"{plugin}.jupyterlab-settings").parent.mkdir(parents=True, exist_ok=True)
            (settings / f"{plugin}.jupyterlab-settings").write_text(json.dumps(values))
        self.server_log = open(tmp / "jupyterlab.log", "w")
        self.server = subprocess.Popen(
            [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
             f"--ServerApp.port={self.port}", f"--IdentityProvider.token={self.token}",
             f"--ServerApp.root_dir={root}", "--LabApp.expose_app_in_browser=True",
             f"--LabApp.user_settings_dir={tmp / 'lab-settings'}", f"--LabApp.workspaces_dir={tmp / 'lab-workspaces'}",
             "--ServerApp.open_browser=False", *(["--allow-root"] if os.geteuid() == 0 else [])],
            cwd=root, env=env, stdout=self.server_log, stderr=subprocess.STDOUT)
        self._wait_for_server()
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in CHROME_FLAGS + [f"--user-data-dir={tmp / 'chromium-profile'}"]:
            options.add_argument(flag)
        os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must not try to download a driver
        self.driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        self.driver.set_script_timeout(300)

    def _wait_for_server(self, timeout=90):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.server.poll() is not None:
                raise RuntimeError(f"jupyterlab exited: {Path(self.server_log.name).read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{self.base}/api/status?token={self.token}", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.3)
        raise RuntimeError("jupyterlab did not answer on loopback in 90 s")

    # ---------------------------------------------------------------- helpers
    def shot(self, label: str, force: bool = False, show: str | None = None):
        if show is not None:  # the output of that cell in view
            self.driver.execute_script(
                "const w = window.jupyterapp.shell.currentWidget.content.widgets.find(w => w.model.id === arguments[0]);"
                "if (w && w.outputArea) w.outputArea.node.scrollIntoView({block: 'center'});", show)
        if self.always or force:
            self.shots.mkdir(parents=True, exist_ok=True)
            self.step += 1
            self.driver.save_screenshot(str(self.shots / f"{self.step:02d}-{label}.png"))

    def js(self, script: str, *args):
        """Run `script` (an async function body; `args` are its arguments) in the page; returns its value."""
        wrapped = ("const done = arguments[arguments.length - 1]; const args = Array.from(arguments).slice(0, -1);"
                   "(async () => {" + script + "})().then(v => done({ok: v}), e => done({error: String(e && e.stack || e)}));")
        result = self.driver.execute_async_script(wrapped, *args)
        if "error" in result:
            raise AssertionError(f"in the page: {result['error']}")
        return result["ok"]

    def open(self, notebook: str):
        self.driver.get(f"{self.base}/lab/tree/{notebook}?token={self.token}")
        self.wait_for(lambda: self.driver.execute_script(
            "const a = window.jupyterapp; const w = a && a.shell.currentWidget;"
            "return !!(w && w.context && w.context.path && w.context.path.endsWith(arguments[0]) && w.content.widgets.length);",
            notebook), 120, f"JupyterLab did not open {notebook}")
        self.js("const p = window.jupyterapp.shell.currentWidget; await p.context.ready; await p.sessionContext.ready;"
                "for (let i = 0; i < 600; i++) { const k = p.sessionContext.session && p.sessionContext.session.kernel;"
                " if (k && k.status === 'idle') return true; await new Promise(r => setTimeout(r, 100)); }"
                "throw new Error('the kernel did not become idle');")
        self.shot(f"open-{notebook}")

    def run_cell(self, cell_id: str):
        """Select the cell with this id and run it as Shift+Enter's command does; wait for the result."""
        self.js("const app = window.jupyterapp; const nb = app.shell.currentWidget.content;"
                "const i = nb.widgets.findIndex(w => w.model.id === args[0]);"
                "if (i < 0) throw new Error('no cell ' + args[0]);"
                "nb.activeCellIndex = i; nb.deselectAll(); nb.widgets[i].node.scrollIntoView();"
                "await app.commands.execute('notebook:run-cell'); return true;", cell_id)
        self.shot(f"ran-{cell_id}", show=cell_id)

    def output_text(self, cell_id: str) -> str:
        """What the page shows under the cell (the output area's text)."""
        return self.driver.execute_script(
            "const nb = window.jupyterapp.shell.currentWidget.content;"
            "const w = nb.widgets.find(w => w.model.id === arguments[0]);"
            "if (!w || !w.outputArea) return null; w.node.scrollIntoView();"
            "return w.outputArea.node.innerText;", cell_id)

    def output_element(self, cell_id: str):
        return self.driver.execute_script(
            "const nb = window.jupyterapp.shell.currentWidget.content;"
            "const w = nb.widgets.find(w => w.model.id === arguments[0]); return w.outputArea.node;", cell_id)

    def wait_for(self, condition, timeout: float, what: str):
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                if condition():
                    return
            except Exception:  # the page is still building
                pass
            time.sleep(0.2)
        raise AssertionError(what)

    def close(self):
        try:
            self.driver.quit()
        finally:
            self.server.terminate()
            try:
                self.server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.server.kill()
            self.server_log.close()


@pytest.fixture
def lab(request, tmp_path):
    folder = kit.release_copy(tmp_path / "fcnets")
    kit.fill_in(folder, names={"02_two_layer_net.ipynb"})
    kit.set_first_cell(folder / "02_two_layer_net.ipynb", DATASET="embedded")
    lab = Lab(folder, tmp_path, request.node.name)
    try:
        yield lab
    finally:
        lab.close()


def test_student_path_in_jupyterlab(lab):
    folder = lab.root
    try:
        # ------------------------------------------------------------ 01: a check on the stub, then the fix
        lab.open("01_layers.ipynb")
        lab.run_cell("colab_config")
        lab.run_cell("setup")
        setup = lab.output_text("setup")
        assert "dataset 'cifar10' (chosen in the cell above)" in setup, setup
        assert "CIFAR-10 is not downloaded yet" in setup and "!python datasets/fetch.py cifar10" in setup, setup
        lab.run_cell("test_affine_forward")
        message = lab.output_text("test_affine_forward")
        assert "NotImplementedError" in message and "affine_forward: not implemented yet" in message, message

        layers = folder / "nnkit" / "layers.py"
        fixed = kit.with_function(layers.read_text(), "affine_forward",
                                  kit.function_of(kit.reference_text("layers.py"), "affine_forward"))
        layers.write_text(fixed)
        st = layers.stat()
        os.utime(layers, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))
        lab.run_cell("test_affine_forward")
        message = lab.output_text("test_affine_forward")
        assert "affine_forward: OK" in message and "Error" not in message, message

        # ------------------------------------------------------------ 02: the explorer's errors, progress, sliders
        lab.open("02_two_layer_net.ipynb")
        for cid in ("colab_config", "setup", "load_data", "explorer"):
            lab.run_cell(cid)
        assert "dataset 'embedded' (chosen in the cell above)" in lab.output_text("setup")
        area = lab.output_element("explorer")
        from selenium.webdriver.common.by import By

        lab.wait_for(lambda: area.find_elements(By.CSS_SELECTOR, ".widget-slider"), 60, "the explorer's sliders")
        train = next(b for b in area.find_elements(By.CSS_SELECTOR, "button") if b.text.strip() == "Train")
        train.click()
        lab.wait_for(lambda: "training failed: NotImplementedError" in lab.output_text("explorer"), 60,
                     "the explorer did not show the error of the stubbed TwoLayerNet")
        lab.wait_for(lambda: "Traceback" in lab.output_text("explorer") or "NotImplementedError" in
                     lab.output_text("explorer").split("training failed", 1)[1], 30, "no traceback in the widget")
        lab.shot("explorer-error", show="explorer")

        kit.use_reference(folder, kit.STUDENT_MODULES)
        seen_widget = []

        def watch_progress():
            # The bar is a widget while the cell runs; it becomes its text line at the end.
            lab.js("const nb = window.jupyterapp.shell.currentWidget.content;"
                   "const w = nb.widgets.find(w => w.model.id === 'train_two_layer');"
                   "window._nnkitSawBar = false;"
                   "const o = new MutationObserver(() => { if (w.outputArea.node.querySelector("
                   "'.widget-progress, .progress, progress')) window._nnkitSawBar = true; });"
                   "o.observe(w.outputArea.node, {childList: true, subtree: true}); window._nnkitObserver = o;"
                   "return true;")

        watch_progress()
        lab.run_cell("train_two_layer")
        trained = lab.output_text("train_two_layer")
        seen_widget.append(lab.driver.execute_script("return window._nnkitSawBar"))
        assert "Training: 100%" in trained and "validation accuracy" in trained, trained
        assert "Error displaying widget" not in trained, trained
        lab.shot("trained", show="train_two_layer")

        # Saved, and opened again in a new page: the training cell still reads well (the widget bar
        # was replaced by its text line; a saved widget would say "model not found").
        lab.js("await window.jupyterapp.commands.execute('docmanager:save'); return true;")
        lab.driver.refresh()
        lab.open("02_two_layer_net.ipynb")
        reopened = lab.output_text("train_two_layer")
        assert "Training: 100%" in reopened and "Error displaying widget" not in reopened, reopened
        lab.shot("reopened", show="train_two_layer")

        # The explorer responds to a slider: epochs 5 -> 2, Train.
        lab.run_cell("explorer")  # a fresh explorer (the classes were reloaded)
        area = lab.output_element("explorer")
        lab.wait_for(lambda: area.find_elements(By.CSS_SELECTOR, ".widget-slider"), 60, "the explorer's sliders")
        epochs = next(s for s in area.find_elements(By.CSS_SELECTOR, ".widget-slider")
                      if s.find_element(By.CSS_SELECTOR, ".widget-label").text.strip() == "epochs")
        readout = epochs.find_element(By.CSS_SELECTOR, ".widget-readout")
        assert readout.text.strip() == "5"
        handle = epochs.find_element(By.CSS_SELECTOR, ".noUi-handle")
        handle.click()
        from selenium.webdriver.common.keys import Keys

        for _ in range(3):
            handle.send_keys(Keys.ARROW_LEFT)
        lab.wait_for(lambda: readout.text.strip() == "2", 10, f"the epochs slider did not move (readout {readout.text!r})")
        train = next(b for b in area.find_elements(By.CSS_SELECTOR, "button") if b.text.strip() == "Train")
        train.click()
        lab.wait_for(lambda: "done: 2 epochs" in lab.output_text("explorer"), 120,
                     "the explorer did not finish 2 epochs")
        text = lab.output_text("explorer")
        assert "epoch 2/2" in text and "epoch 3/" not in text, text
        assert area.find_elements(By.CSS_SELECTOR, "img"), "no curves in the explorer"
        lab.shot("explorer-2-epochs", show="explorer")
        print(f"progress widget seen while training: {seen_widget[0]}")
    except Exception:
        lab.shot("failure", force=True)
        print(f"screenshots of the steps: {lab.shots}; the server's log: {lab.server_log.name}")
        raise

"""A TA grades a written answer in nbgrader's formgrader, in a real browser.

The toy assignment (tests/grading/fixtures/toy_repo) is graded into a temporary OUT with
`autograder.grading.coordinator.grade` (once per module); `python -m autograder formgrader` serves OUT on a
free loopback port in a subprocess.

- Over HTTP (no browser needed): ann's submission page carries her answer without the script
  and event handler she put in it, and the routes that would run code on the host (kernels,
  autograde, feedback, release, writing or deleting files, another course's config) are refused.
- In headless Chromium (Debian's, through Debian's chromedriver, see conftest.py): open the
  printed URL, go Manual Grading > toy > 01_toy, reveal ann's name, open her submission, read
  her written answer and an autograded cell, type a manual score and a comment; the gradebook
  (nbgrader.api.Gradebook) must then hold both, and the page must show the score after a
  reload. Her answer's script must not have run. Screenshots on failure go to
  build/browser-screenshots/<test>/.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import replace
from pathlib import Path

import pytest

from autograder.grading import coordinator as G
from autograder.grading.settings import Settings
from autograder import nbgrader_course as nc
from autograder.sandbox import bwrap as sandbox
from autograder.grading.formgrader import free_port
from tests.grading.conftest import STUB_OPS, TOY_MANIFEST, TOY_REPO, make_submission

REPO = Path(__file__).resolve().parents[2]
SETTINGS = replace(Settings(), cell_timeout=20, notebook_timeout=90, sandbox=sandbox.available())
ANSWER = "Because twice is nice."
HOSTILE = (ANSWER + ' <img src=x onerror="window.__nnkit_pwned=\'img\'">'
           "<script>window.__nnkit_pwned='script'</script>")
COMMENT = "Right idea; say why doubling is linear."


def toy_release(root: Path) -> Path:
    cfg = nc.build_config(root, assignment="toy", exclude_overwriting=["nnkit/ops.py"])
    api = nc.make_api(cfg)
    src = nc.put_source(cfg, "toy", TOY_REPO / "source" / "toy", ["01_toy.ipynb"])
    nc.copy_tree(TOY_REPO / "assignments" / "toy", src)
    return nc.generate_assignment(api, "toy")


def step(text: str) -> None:
    print(f"[formgrader test {time.strftime('%H:%M:%S')}] {text}", flush=True)


class Server:
    """`python -m autograder formgrader` in a subprocess; the URL it prints."""

    def __init__(self, out: Path, log: Path):
        self.port, self.token = free_port(), secrets.token_hex(16)
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = log
        self.log = open(log, "w")
        env = {**os.environ, "NNKIT_FORMGRADER_TOKEN": self.token}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "autograder", "formgrader", str(TOY_MANIFEST), "--out", str(out),
             "--port", str(self.port)], cwd=REPO, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        self.url = self._wait()

    def _wait(self, timeout: float = 60) -> str:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"the formgrader exited ({self.proc.returncode}):\n{self.log_path.read_text()}")
            found = re.search(r"formgrader: open (\S+)", self.log_path.read_text())
            if found:
                try:
                    self.request("GET", "/api/status")
                    return found.group(1)
                except OSError:
                    pass
            time.sleep(0.3)
        raise AssertionError(f"the formgrader did not answer in {timeout} s:\n{self.log_path.read_text()}")

    def request(self, method: str, path: str, body: dict | None = None) -> tuple[int, str]:
        req = urllib.request.Request(self.base + path, method=method,
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"Authorization": f"token {self.token}"})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The toy class graded into OUT (ann's answer hostile, ben's package the stub) and the
    formgrader verb serving OUT: (server, out, results by student)."""
    tmp = tmp_path_factory.mktemp("formgrader")
    t0 = time.time()
    release = toy_release(tmp / "course")
    subs, out = tmp / "subs", tmp / "out"
    make_submission(release, subs / "ann", answer=HOSTILE)
    make_submission(release, subs / "ben", ops=STUB_OPS, double=None)
    results = {r["student_id"]: r for r in G.grade(TOY_MANIFEST, subs, out, settings=SETTINGS)}
    step(f"graded in {time.time() - t0:.1f} s (sandbox={SETTINGS.sandbox}): "
         + ", ".join(f"{s} {r['score']:g}/{r['max_score']:g} {r['status']}" for s, r in results.items()))
    assert (out / "autograded" / "ann" / "toy" / "01_toy.ipynb").is_file()
    server = Server(out, tmp / "formgrader.log")
    step(f"server printed: {server.url}")
    try:
        yield server, out, results
    finally:
        server.stop()
        log = (tmp / "formgrader.log").read_text()
        assert "Traceback" not in log, log


def test_without_a_gradebook_the_verb_says_what_to_run(tmp_path, capsys):
    from autograder.grading.formgrader import formgrader_command

    assert formgrader_command(str(TOY_MANIFEST), str(tmp_path)) == 2
    err = capsys.readouterr().err
    assert "no gradebook" in err and "python -m autograder grade toy" in err


def test_the_formgrader_renders_no_student_markup_and_refuses_what_would_run_code(served):
    server, out, _ = served
    assert server.url.startswith(f"http://127.0.0.1:{server.port}/formgrader/?token={server.token}")
    code, listing = server.request("GET", "/formgrader/api/submitted_notebooks/toy/01_toy")
    ids = {row["student"]: row["id"] for row in json.loads(listing)}
    assert code == 200 and set(ids) == {"ann", "ben"}
    code, page = server.request("GET", f"/formgrader/submissions/{ids['ann']}/")
    answer = page[page.index(ANSWER) - 200: page.index(ANSWER) + 400]
    assert code == 200 and "__nnkit_pwned" not in page and "onerror" not in answer, answer
    step(f"ann's submission page: {len(page)} bytes, her answer without its script and handler")
    refused = {
        "start a kernel": server.request("POST", "/api/kernels", {"name": "python3"}),
        "autograde": server.request("POST", "/formgrader/api/submission/toy/ann/autograde", {}),
        "generate feedback": server.request("POST", "/formgrader/api/assignment/toy/generate_feedback", {}),
        "release": server.request("POST", "/formgrader/api/assignment/toy/release", {}),
        "write a file": server.request("PUT", "/api/contents/nbgrader_config.py",
                                       {"type": "file", "format": "text", "content": "x"}),
        "delete a file": server.request("DELETE", "/api/contents/grades.csv"),
        "another course's config": server.request("GET", "/formgrader/?path=/tmp"),
    }
    step("refused: " + ", ".join(f"{k} {code}" for k, (code, _) in refused.items()))
    assert all(code == 403 for code, _ in refused.values()), refused
    assert "python -m autograder grade" in refused["autograde"][1]
    assert not (out / "nbgrader_config.py").exists() and (out / "grades.csv").is_file()
    assert json.loads(server.request("GET", "/api/kernelspecs")[1])["kernelspecs"] == {}
    assert server.request("GET", "/api/terminals")[0] == 404


def test_a_ta_sets_a_manual_score_and_a_comment_in_the_formgrader(chromium, served):
    from nbgrader.api import Gradebook
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    server, out, results = served
    t0 = time.time()
    db = f"sqlite:///{out / 'gradebook.db'}"
    with Gradebook(db, "nnkit") as gb:
        assert gb.find_grade("answer_why", "01_toy", "toy", "ann").manual_score is None
    driver = chromium()
    wait = WebDriverWait(driver, 30)

    # Manage Assignments lists the graded assignment.
    driver.get(server.url)
    wait.until(EC.url_contains("/formgrader/manage_assignments"))
    wait.until(EC.text_to_be_present_in_element((By.TAG_NAME, "body"), "toy"))
    step(f"opened {driver.current_url.split('?')[0]}: title {driver.title!r}")

    # Manual Grading > toy > 01_toy: the submissions of the notebook.
    driver.find_element(By.LINK_TEXT, "Manual Grading").click()
    wait.until(EC.element_to_be_clickable((By.LINK_TEXT, "toy"))).click()
    wait.until(EC.element_to_be_clickable((By.LINK_TEXT, "01_toy"))).click()
    wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "a.name-shown")))
    names = {a.get_attribute("textContent"): a for a in driver.find_elements(By.CSS_SELECTOR, "a.name-shown")}
    step(f"submissions of 01_toy: {sorted(names)}")
    assert set(names) == {"ann", "ben"}
    row = names["ann"].find_element(By.XPATH, "./ancestor::tr")
    row.find_element(By.CSS_SELECTOR, ".reveal .name-hidden").click()  # show the name
    wait.until(EC.element_to_be_clickable(names["ann"])).click()

    # ann's submission: her written answer and the autograded cells, rendered.
    score_box = wait.until(EC.element_to_be_clickable((By.ID, "answer_why")))
    body = driver.find_element(By.TAG_NAME, "body").text
    step(f"opened {driver.current_url.split('?')[0]}: {driver.title!r}")
    assert ANSWER in body and "test_add" in body and "Student's answer" in body
    assert driver.execute_script("return window.__nnkit_pwned === undefined"), "a student's script ran"
    assert not driver.find_elements(By.CSS_SELECTOR, "#notebook [onerror], #notebook script")
    step("written answer shown, its <script> and onerror handler gone")

    score_box.clear()
    score_box.send_keys("0.5")
    comment = driver.find_element(By.ID, "answer_why-comment")
    comment.click()  # leaving the score box saves it
    comment.send_keys(COMMENT)
    answer = score_box.find_element(By.XPATH, "./ancestor::div[contains(@class, 'nbgrader_cell')]")
    answer.find_element(By.CSS_SELECTOR, ".text_cell_render").click()  # leaving the comment saves it

    deadline, got = time.time() + 20, (None, None)
    while time.time() < deadline:
        with Gradebook(db, "nnkit") as gb:
            grade = gb.find_grade("answer_why", "01_toy", "toy", "ann")
            comment_row = gb.find_comment("answer_why", "01_toy", "toy", "ann")
            got = (grade.manual_score, comment_row.manual_comment)
            total = gb.find_submission("toy", "ann").score
        if got == (0.5, COMMENT):
            break
        time.sleep(0.3)
    step(f"gradebook: answer_why manual_score={got[0]!r}, comment={got[1]!r}, ann's total {total:g}")
    assert got == (0.5, COMMENT)
    assert total == pytest.approx(results["ann"]["score"] + 0.5)

    driver.refresh()
    box = wait.until(EC.presence_of_element_located((By.ID, "answer_why")))
    wait.until(lambda d: box.get_attribute("value") == "0.5")
    step(f"after a reload the page shows {box.get_attribute('value')} / 1")
    step(f"done in {time.time() - t0:.1f} s")

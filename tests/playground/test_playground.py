"""The playground page in a real headless Chromium (Debian's chromium + chromium-driver) driven by
Selenium: it loads behind the API key, lists the model, streams a chat reply, shows token counts
and speed, and builds a curl command that works. A screenshot is saved as a test artifact
(build/test-artifacts/playground.png, or $KINFER_ARTIFACTS_DIR)."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "api"))
from conftest import CHATML, REPO, STORIES, Server  # noqa: E402

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

KEY = "playground-test-key-0123"
ARTIFACTS = Path(os.environ.get("KINFER_ARTIFACTS_DIR") or REPO / "build" / "test-artifacts")


@pytest.fixture(scope="module")
def server():
    s = Server(STORIES, "--served-model-name", "stories", "--chat-template", str(CHATML),
               "--kv-cache-memory", "64MiB", "--api-key", KEY)
    yield s
    assert s.stop() == 0, s.output()


@pytest.fixture(scope="module")
def browser():
    profile = tempfile.mkdtemp(prefix="kinfer-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    # What Chromium needs on these machines: no sandbox as root, no GPU, and none of its own
    # network traffic (the machine's network is closed).
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                 f"--user-data-dir={profile}", "--window-size=1280,900"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=shutil.which("chromedriver") or "/usr/bin/chromedriver")
    driver = webdriver.Chrome(options=opts, service=service)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def test_page_needs_the_key_and_is_self_contained(server):
    r = requests.get(server.url + "/")
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"].startswith("Basic")
    r = requests.get(server.url + "/", auth=("anyone", KEY))
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/html")
    assert "script-src 'self'" in r.headers["Content-Security-Policy"]
    assert 'data-auth="on"' in r.text
    for path in ("/playground/app.js", "/playground/style.css"):
        a = requests.get(server.url + path, auth=("anyone", KEY))
        assert a.status_code == 200, path
        # Nothing from a CDN: every URL the page names is relative to this server.
        assert "http://" not in a.text.replace("http://user:key@", "") and "https://" not in a.text
    assert "http" not in r.text
    assert requests.get(server.url + "/playground/nope.js", auth=("a", KEY)).status_code == 404


def test_chat_streams_a_reply_with_counts_and_a_working_curl(server, browser):
    host = server.url.split("://", 1)[1]
    browser.get(f"http://user:{KEY}@{host}/")
    wait = WebDriverWait(browser, 60)
    wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "true")
    options = [o.get_attribute("value") for o in browser.find_elements(By.CSS_SELECTOR, "#model option")]
    assert options == ["stories"]

    for field, value in (("temperature", "0"), ("max_tokens", "48")):
        el = browser.find_element(By.ID, field)
        el.clear()
        el.send_keys(value)
    # A streamed reply shows part of its text before it is done. (Counting the observer's calls
    # instead was flaky: the browser hands a fast server's events over in a few reads, and the
    # count of calls follows the reads, 4 in one CI run.)
    browser.execute_script("""
      window.__partial = false;
      new MutationObserver(() => {
        const li = document.querySelector('#messages li.assistant:last-child');
        const content = li && li.querySelector('.content');
        if (content && content.textContent.length > 0 && li.dataset.done !== 'true') {
          window.__partial = true;
        }
      }).observe(document.getElementById('messages'),
                 {subtree: true, characterData: true, childList: true});""")
    prompt = browser.find_element(By.ID, "prompt")
    prompt.send_keys("Once upon a time")
    prompt.send_keys(Keys.ENTER)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#messages li[data-done=true]"))
    reply = browser.find_element(By.CSS_SELECTOR, "#messages li[data-done=true]")
    assert reply.get_attribute("class") == "assistant", reply.text
    text = reply.find_element(By.CLASS_NAME, "content").get_attribute("textContent")
    assert len(text) > 20, text
    assert browser.execute_script("return window.__partial") is True, "the reply appeared all at once"

    completion = int(browser.find_element(By.ID, "stat-completion").text)
    prompt_tokens = int(browser.find_element(By.ID, "stat-prompt").text)
    assert 0 < completion <= 48 and prompt_tokens > 4
    assert browser.find_element(By.ID, "stat-speed").text.endswith("tokens/s")
    assert browser.find_element(By.ID, "stat-ttft").text.endswith(" s")
    assert browser.find_element(By.ID, "stat-finish").text in ("stop", "length")

    # The same answer over the API: the page sent what it shows (greedy decoding).
    api = requests.post(server.url + "/v1/chat/completions", auth=("x", KEY), json={
        "model": "stories", "messages": [{"role": "user", "content": "Once upon a time"}],
        "temperature": 0, "max_tokens": 48, "top_p": 1}).json()
    assert api["choices"][0]["message"]["content"] == text
    assert api["usage"]["completion_tokens"] == completion

    # Copy as curl: the command names this server and the key variable, and it works.
    browser.find_element(By.ID, "prompt").send_keys("Tell me more")
    browser.find_element(By.ID, "copy-curl").click()
    curl = browser.find_element(By.ID, "curl").text
    assert f"{server.url}/v1/chat/completions" in curl
    assert 'Authorization: Bearer $KINFER_API_KEY' in curl
    assert "Tell me more" in curl
    assert browser.find_element(By.ID, "status").text.startswith("curl command")
    out = subprocess.run(["bash", "-c", curl.replace("curl -N", "curl -sS -N --max-time 60", 1)],
                         capture_output=True, text=True, timeout=90,
                         env={**os.environ, "KINFER_API_KEY": KEY})
    assert out.returncode == 0, out.stderr
    events = [json.loads(l[6:]) for l in out.stdout.splitlines()
              if l.startswith("data: ") and l != "data: [DONE]"]
    assert any(e["choices"] and e["choices"][0]["delta"].get("content") for e in events)
    assert events[-1]["usage"]["completion_tokens"] > 0

    # Everything the page loaded came from this server; no script errors.
    origins = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => new URL(e.name).origin)")
    assert set(origins) <= {server.url}, origins
    severe = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not severe, severe

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "playground.png"
    assert browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000
    print(f"screenshot: {shot}")


def test_errors_show_in_the_page(server, browser):
    """A request the server refuses shows its message, not a silent failure."""
    host = server.url.split("://", 1)[1]
    browser.get(f"http://user:{KEY}@{host}/")
    wait = WebDriverWait(browser, 60)
    wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "true")
    el = browser.find_element(By.ID, "max_tokens")
    el.clear()
    el.send_keys("999999")
    prompt = browser.find_element(By.ID, "prompt")
    prompt.send_keys("Hi")
    prompt.send_keys(Keys.ENTER)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#messages li.error"))
    msg = browser.find_element(By.CSS_SELECTOR, "#messages li.error").text
    assert "400" in msg and "context length" in msg, msg


def test_playground_can_be_turned_off():
    s = Server(STORIES, "--kv-cache-memory", "16MiB", "--no-playground")
    try:
        assert requests.get(s.url + "/").status_code == 404
        assert requests.get(s.url + "/playground/app.js").status_code == 404
        assert requests.get(s.url + "/v1/models").status_code == 200
    finally:
        assert s.stop() == 0, s.output()

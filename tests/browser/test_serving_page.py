"""Browser test of the live recommender's page (``GET /``) in headless Chromium.

Starts the service on a free 127.0.0.1 port (a small MiniClips tiny model, hand-made audio
and visual features), opens the page, checks the recommendations with their covers and
score parts, plays a clip, uploads a clip through the form and finds it among the similar
clips. Skipped when Chromium or ChromeDriver is not installed.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")

pytestmark = pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER),
                                reason="headless Chromium and ChromeDriver are not installed")


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    import uvicorn

    from mmrec_lib.datasets.miniclips import load_miniclips
    from mmrec_lib.serving import HOST, create_app, train_or_load

    dataset = load_miniclips(size="tiny", seed=0)
    folder = tmp_path_factory.mktemp("serving-page")
    model = train_or_load(folder / "model", dataset, modalities=("audio", "visual"),
                          audio="handcrafted", epochs=2)
    app = create_app(model, dataset, upload_dir=folder / "uploads")
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host=HOST, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started
    yield f"http://{HOST}:{port}", dataset
    server.should_exit = True
    thread.join(10)


def wait_for(browser, script: str, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = browser.execute_script(script)
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for: {script}")


def test_page_recommends_plays_and_ingests(service, browser):
    from selenium.webdriver.common.by import By

    url, dataset = service
    browser.get(url + "/")
    count = wait_for(browser, "return document.querySelectorAll('#recs .card').length")
    assert count == 8
    # covers decode, every card shows its score parts
    wait_for(browser, "return Array.from(document.querySelectorAll('#recs img'))"
                      ".every(img => img.complete && img.naturalWidth > 0)")
    assert "audio" in browser.find_element(By.CSS_SELECTOR, "#recs .card .parts").text
    assert "exact" in browser.find_element(By.ID, "parts-note").text
    # a click plays the clip and lists similar clips
    browser.find_element(By.CSS_SELECTOR, "#recs .card img").click()
    wait_for(browser, "return document.querySelectorAll('#similar .card').length")
    assert "/clip" in browser.find_element(By.ID, "player").get_attribute("src")
    # upload through the form: the new clip is played, its similar clips are listed
    form = browser.find_element(By.ID, "upload")
    form.find_element(By.NAME, "file").send_keys(str(dataset.clip_path("i0007")))
    form.find_element(By.NAME, "title").send_keys("Uploaded from the browser")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    status = wait_for(browser, "const t = document.getElementById('upload-status')"
                               ".textContent; return t.startsWith('added') ? t : ''", 60)
    new_id = status.split()[1]
    assert new_id.startswith("live")
    assert new_id in browser.find_element(By.ID, "now-title").text
    similar = wait_for(browser, "return Array.from(document.querySelectorAll("
                                "'#similar .card .muted')).map(e => e.textContent).join(' ')")
    assert "i0007" in similar  # its twin in the catalogue is its nearest neighbour
    errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert not errors, errors
    shot = os.environ.get("MMREC_SERVING_SCREENSHOT")
    if shot:
        assert browser.save_screenshot(shot)

#!/usr/bin/env python3
"""The phone UI in a real browser: Debian's headless Chromium driven by Selenium.

Starts robotd with the simulator (a 40 ft container hiding a Cs-137 source, simulator 10x
real time) and the command server on a free loopback port, then at a phone-sized viewport:
logs in, takes control, homes the lift, walks the robot, raises the lift, measures, plans
and starts a demo scan, watches it to its verdict, presses E-STOP and sees the robot stop.
Checks what the page shows against the API's own state. Screenshots go to
test-output/browser/. Exits non-zero on the first failure.

Usage: scripts/browser_test.py [path/to/bin]   (default: `swift build --show-bin-path`)
"""
import os
import shutil
import sys
import tempfile
import time

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from campaign import ROOT, add_user, bin_dir, call, check, free_port, log_in, start_robotd, stop, summary

OUT = os.path.join(ROOT, "test-output", "browser")
PASSWORD = "browser test password"


def wait(predicate, seconds, step=0.1):
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            if predicate():
                return True
        except Exception:
            pass
        time.sleep(step)
    return False


def api_state(port, token):
    return call(port, "GET", "/api/v1/state", token=token, timeout=5)[1]


def api_login(port):
    return log_in(port, "officer", PASSWORD)[1]["token"]


def main():
    bins = bin_dir(sys.argv[1] if len(sys.argv) > 1 else None)
    os.makedirs(OUT, exist_ok=True)
    work = tempfile.mkdtemp(prefix="browser-test-")
    store = os.path.join(work, "scans.sqlite")
    add_user(bins, store, "officer", "supervisor", PASSWORD)
    port = free_port()
    daemon = start_robotd(bins, ["--sim", "--scenario", "hil/scenarios/cs137-40ft.yaml", "--sim-time-scale", "10",
                                 "--store", store, "--port", str(port)], os.path.join(OUT, "robotd.log"))
    if not check(daemon is not None, "robotd started with the command server"):
        return summary("browser")
    driver = None
    try:
        options = Options()
        options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
        for argument in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=390,844",
                         "--lang=en-US"]:
            options.add_argument(argument)
        # Phone-sized: a 390 x 844 CSS pixel viewport at device scale 2, touch enabled.
        options.add_experimental_option("mobileEmulation", {"deviceMetrics": {"width": 390, "height": 844, "pixelRatio": 2.0, "touch": True},
                                                            "userAgent": "Mozilla/5.0 (Linux; Android 14; Pixel 8) Mobile"})
        driver = webdriver.Chrome(service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"), options=options)
        driver.set_page_load_timeout(20)
        by_id = lambda i: driver.find_element(By.ID, i)
        text = lambda i: by_id(i).text
        shot = lambda name: driver.save_screenshot(os.path.join(OUT, f"{name}.png"))
        def tab(name):
            element = driver.find_element(By.CSS_SELECTOR, f"[data-tab={name}]")
            driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", element)
            element.click()

        def click(i):
            element = by_id(i)
            driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", element)
            element.click()

        driver.get(f"http://127.0.0.1:{port}/")
        check(by_id("estop").is_displayed(), "the e-stop button is visible before log-in")
        shot("01-login")
        by_id("login-name").send_keys("officer")
        by_id("login-password").send_keys("wrong password!")
        click("login-button")
        check(wait(lambda: "wrong password" in text("login-error"), 5), "a wrong password is refused with a message")
        by_id("login-password").clear()
        by_id("login-password").send_keys(PASSWORD)
        click("login-button")
        check(wait(lambda: by_id("app").is_displayed(), 5), "logged in")
        check(wait(lambda: text("link-status") == "live", 5), "telemetry is live over the WebSocket")
        check(wait(lambda: "μSv/h" in text("dose"), 5), "the dose rate is shown with its uncertainty")
        token = api_login(port)

        click("take-control")
        check(wait(lambda: text("lease-status") == "IN CONTROL", 5), "took control (the motion lease)")
        click("home-lift")
        check(wait(lambda: api_state(port, token)["lift"]["homed"], 30), "homed the lift from the UI")
        x0 = api_state(port, token)["pose"]["xMetres"]
        click("walk-plus")
        check(wait(lambda: abs(api_state(port, token)["pose"]["xMetres"] - (x0 + 0.5)) < 0.01
                   and not api_state(port, token)["pose"]["moving"], 20), "walked 0.5 m from the UI")
        check(wait(lambda: text("pose").startswith(f"{x0 + 0.5:.2f}"), 5), "the page shows the new position")
        target = by_id("lift-target")
        target.clear()
        target.send_keys("1.5")
        click("lift-go")
        check(wait(lambda: abs(api_state(port, token)["lift"]["heightMetres"] - 1.5) < 0.005, 30), "raised the lift to 1.5 m from the UI")
        check(wait(lambda: text("lift-height").startswith("1.50"), 5), "the page shows the lift height")
        shot("02-drive")

        tab("measure")
        seconds = by_id("measure-seconds")
        seconds.clear()
        seconds.send_keys("2")
        click("measure-button")
        check(wait(lambda: "counts" in text("measure-result"), 20), f"measured: {text('measure-result')}")
        shot("03-measure")

        tab("scan")
        by_id("scan-number").send_keys("MSKU9070323")
        click("scan-plan")
        check(wait(lambda: "points" in text("scan-info") and by_id("scan-start").is_enabled(), 10), f"planned: {text('scan-info')}")
        click("scan-start")
        check(wait(lambda: "points" in text("scan-progress"), 10), "the scan runs and shows its progress")
        time.sleep(3)
        shot("04-scan-progress")
        check(wait(lambda: "EXCEEDS" in text("verdict"), 240, 0.5), f"the verdict is shown: {text('verdict')}")
        check(len(driver.find_elements(By.CSS_SELECTOR, "#heatmaps svg")) == 2, "a heat map per face")
        check(len(driver.find_elements(By.CSS_SELECTOR, "#heatmaps rect[stroke='#fff']")) >= 1, "exceeding points are marked")
        check(wait(lambda: (by_id("report-html").get_attribute("href") or "").startswith("blob:"), 10),
              "the report link is shown, fetched with the token in a header (no token in the URL)")
        check(by_id("report-html").get_attribute("data-path").endswith("/report.html"), "the report link is the scan's HTML report")
        driver.execute_script("document.getElementById('verdict').scrollIntoView({block: 'center'});")
        shot("05-verdict")

        # E-stop during a walk: the robot stops and the page says so.
        tab("drive")
        click("walk-plus-2")
        wait(lambda: api_state(port, token)["pose"]["moving"], 5)
        click("estop")
        check(wait(lambda: api_state(port, token)["safety"]["cause"] == "softwareEstop", 2), "E-STOP stops the robot (software e-stop latched)")
        check(wait(lambda: not api_state(port, token)["safety"]["motionPowerOn"], 2), "drive power is off")
        check(wait(lambda: "STOPPED" in text("safety"), 3), "the page shows the robot stopped")
        check(wait(lambda: "LATCHED" in text("banner"), 3), "the page confirms the e-stop latched (server answer or telemetry)")
        shot("06-estop")

        # Chinese.
        click("lang")
        check(wait(lambda: text("estop") == "急停", 3), "the UI switches to Chinese")
        shot("07-zh")
        # The link going away shows at once.
        daemon.terminate()
        daemon.wait(timeout=60)
        check(wait(lambda: "LINK LOST" in text("banner") or "连接中断" in text("banner"), 5), "a lost link is shown")
        shot("08-link-lost")
    finally:
        if driver:
            driver.quit()
        stop(daemon)
        shutil.rmtree(work, ignore_errors=True)
    print(f"screenshots in {OUT}")
    return summary("browser")


if __name__ == "__main__":
    sys.exit(main())

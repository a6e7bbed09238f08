"""Headless Debian Chromium driven by Selenium, for the storefront's browser tests and `make screenshots`.

The browser and its driver are the system's (`make setup` installs the `chromium` and `chromium-driver`
packages); the driver path is given explicitly, so Selenium Manager never looks for or downloads one.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
WAIT_SECONDS = 20
# (test, step, seconds) of every timed step of the browser tests (tests/e2e/conftest.py prints them).
TIMINGS: list[tuple[str, str, float]] = []


def missing() -> str | None:
    """Why no browser can be started here, or None."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not path.exists() and shutil.which(path.name) is None:
            return f"{path} missing: run `make setup` (Debian packages chromium and chromium-driver)"
    return None


def start(width: int = 1280, height: int = 900) -> WebDriver:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root, where Chromium's sandbox refuses to start
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--no-first-run",
        "--disable-extensions",
        "--disable-background-networking",
        "--disable-component-update",
        f"--window-size={width},{height}",
    ):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)


class Page:
    """The storefront as a person uses it: by labels, buttons and the text on the screen."""

    def __init__(self, driver: WebDriver, url: str) -> None:
        self.driver, self.url = driver, url.rstrip("/") + "/"
        self.wait = WebDriverWait(driver, WAIT_SECONDS)

    def open(self, route: str = "") -> None:
        """Load the page and wait for its first view (the module has run and routed). A page already at
        that address is reloaded: a navigation that changes nothing but the same fragment would not."""
        target = self.url + (f"#{route}" if route else "")
        if self.driver.current_url == target:
            self.driver.refresh()
        else:
            self.driver.get(target)
        self.find("main h1")

    def go(self, route: str) -> None:
        self.driver.execute_script("location.hash = arguments[0]", route)

    def find(self, css: str) -> WebElement:
        return self.wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, css)))

    def all(self, css: str) -> list[WebElement]:
        self.find(css)
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def by_label(self, text: str) -> WebElement:
        label = self.wait.until(
            ec.visibility_of_element_located((By.XPATH, f"//label[normalize-space()={_xpath_text(text)}]"))
        )
        return self.driver.find_element(By.ID, label.get_attribute("for") or "")

    def button(self, text: str, within: WebElement | None = None) -> WebElement:
        xpath = f".//button[normalize-space()={_xpath_text(text)} or @aria-label={_xpath_text(text)}]"
        scope = within or self.driver.find_element(By.TAG_NAME, "body")
        self.wait.until(lambda _: scope.find_elements(By.XPATH, xpath))
        return scope.find_element(By.XPATH, xpath)

    def message(self, contains: str) -> str:
        self.wait.until(ec.text_to_be_present_in_element((By.ID, "messages"), contains))
        return self.driver.find_element(By.ID, "messages").text

    def text_of(self, css: str, contains: str, timeout: float = WAIT_SECONDS) -> str:
        WebDriverWait(self.driver, timeout).until(ec.text_to_be_present_in_element((By.CSS_SELECTOR, css), contains))
        return self.find(css).text

    def sign_in(self, username: str, password: str) -> None:
        self.go("/signin")
        user, secret = self.by_label("User name"), self.by_label("Password")
        user.clear()
        user.send_keys(username)
        secret.clear()
        secret.send_keys(password)
        self.button("Sign in", self.find("#signin-form")).click()

    def set_field(self, element: WebElement, value: str) -> None:
        element.clear()
        element.send_keys(value)

    def screenshot(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.driver.save_screenshot(str(path))


def _xpath_text(text: str) -> str:
    return f'"{text}"' if '"' not in text else f"'{text}'"

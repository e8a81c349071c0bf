"""Drives portprobe's page in a real headless Chromium, as a help desk would
read it: at a desktop's 1280 px it opens URL, types the host, chooses the
product and submits the form, reads the page while the probe still runs,
then the report; at a phone's 390 px (mobile emulation, so the page's
viewport tag counts) it opens the report's own link. At each width it
measures whether anything is wider than the window or cut off by an
element's overflow, saves a screenshot of the whole page in DIR, and
prints what it read as one JSON document. Used by tests/serve_lab.rs
inside the lab's client namespace.

usage: page.py URL HOST PRODUCT DIR
"""

import base64
import json
import os
import sys
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

# What the page shows, read in the page: texts, and every element whose
# own overflow cuts off what it holds, or that reaches past the window.
READ = """
// The width the page may use: the window's, less a vertical scroll bar.
const vw = document.documentElement.clientWidth;
const text = (sel) => [...document.querySelectorAll(sel)].map((e) => e.innerText.trim());
const fits = (e) => e.scrollWidth <= e.clientWidth;
const inside = (e) => {
  const r = e.getBoundingClientRect();
  return r.left >= 0 && r.right <= vw + 0.5;
};
const cut = [];
const wide = [];
for (const e of document.querySelectorAll('body *')) {
  if (['INPUT', 'SELECT', 'OPTION', 'TEXTAREA'].includes(e.tagName)) continue;
  const cs = getComputedStyle(e);
  if (cs.display === 'none' || e.getClientRects().length === 0) continue;
  const name = e.tagName + (e.id ? '#' + e.id : '') + (e.className ? '.' + e.className : '');
  if (cs.overflowX !== 'visible' && e.scrollWidth > e.clientWidth + 1) {
    cut.push(name + ' ' + e.scrollWidth + '>' + e.clientWidth);
  }
  if (!inside(e)) wide.push(name + ' right=' + e.getBoundingClientRect().right);
}
const probing = document.getElementById('probing');
const link = document.getElementById('permalink');
const rest = document.getElementById('rest');
return {
  innerWidth: window.innerWidth,
  clientWidth: vw,
  scrollWidth: document.documentElement.scrollWidth,
  cut: cut,
  wide: wide,
  title: document.title,
  verdict: text('#verdict'),
  meta: text('.verdict .meta'),
  services: text('.services li'),
  blocked: [...document.querySelectorAll('.blocked li')].map((li) => {
    const reason = li.querySelector('.reason');
    return {
      port: li.querySelector('.port').innerText.trim(),
      reason: reason.innerText.trim(),
      reason_fits: fits(reason) && inside(reason),
      where: (li.querySelector('.where') || {innerText: ''}).innerText.trim(),
      advice: li.querySelector('.advice').innerText.trim(),
    };
  }),
  rest_summary: rest ? rest.querySelector('summary').innerText.trim() : null,
  rest_open: rest ? rest.open : null,
  rest_rows: text('#rest tbody tr'),
  link: link ? link.href : null,
  probing_shown: probing ? probing.getClientRects().length > 0 : null,
  recent: text('#recent tbody tr'),
};
"""


def screenshot(driver, path):
    """The whole page, not only what the window shows."""
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}
    )
    with open(path, "wb") as f:
        f.write(base64.b64decode(shot["data"]))


def emulate(driver, width, mobile):
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {
            "width": width,
            "height": 844 if mobile else 900,
            "deviceScaleFactor": 1,
            "mobile": mobile,
        },
    )


def loaded(driver):
    WebDriverWait(driver, 90, poll_frequency=0.1).until(
        lambda d: d.execute_script("return document.readyState") == "complete"
        and d.find_elements(By.ID, "last")
    )


def main():
    url, host, product, out = sys.argv[1:5]
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu"):
        options.add_argument(arg)
    # Return from a navigation at once: the page arrives in parts.
    options.page_load_strategy = "none"
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    result = {}
    try:
        emulate(driver, 1280, False)
        driver.get(url)
        WebDriverWait(driver, 30).until(lambda d: d.find_elements(By.ID, "run"))
        loaded(driver)
        driver.find_element(By.ID, "target").send_keys(host)
        Select(driver.find_element(By.ID, "product")).select_by_visible_text(product)
        started = time.monotonic()
        driver.find_element(By.ID, "run").click()
        # While the probe runs: the first part of the page, without the
        # report.
        early = WebDriverWait(driver, 30, poll_frequency=0.05).until(
            lambda d: d.execute_script(
                "const p = document.getElementById('probing');"
                "return p && {text: p.innerText.trim(), shown: p.getClientRects().length > 0,"
                " report: document.getElementById('report') !== null,"
                " form: document.getElementById('run') !== null};"
            )
        )
        early["after_s"] = round(time.monotonic() - started, 3)
        screenshot(driver, os.path.join(out, "page-probing-1280.png"))
        result["early"] = early
        loaded(driver)
        result["done_after_s"] = round(time.monotonic() - started, 3)
        result["1280"] = driver.execute_script(READ)
        screenshot(driver, os.path.join(out, "page-1280.png"))

        # A phone opens the link the help desk was sent.
        link = result["1280"]["link"]
        emulate(driver, 390, True)
        driver.get(link)
        loaded(driver)
        result["390"] = driver.execute_script(READ)
        result["390"]["url"] = driver.current_url
        screenshot(driver, os.path.join(out, "page-390.png"))
    finally:
        driver.quit()
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()

"""Drives portprobe's page in a real headless Chromium: opens URL, types the
host, chooses the product, submits the form, waits for the report and
prints it. Used by tests/serve_lab.rs inside the lab's client namespace.

usage: page.py URL HOST PRODUCT
"""

import sys

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait


def main():
    url, host, product = sys.argv[1:4]
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        driver.get(url)
        driver.find_element(By.ID, "target").send_keys(host)
        Select(driver.find_element(By.ID, "product")).select_by_visible_text(product)
        driver.find_element(By.ID, "run").click()
        report = WebDriverWait(driver, 60).until(lambda d: d.find_element(By.ID, "report"))
        print(report.text)
        print("--- last probes ---")
        print(driver.find_element(By.ID, "recent").text)
    finally:
        driver.quit()


if __name__ == "__main__":
    main()

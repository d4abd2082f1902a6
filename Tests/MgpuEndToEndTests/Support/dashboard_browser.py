"""Drives the dashboard in a real browser (Chromium through chromedriver, Debian's chromium-driver and
python3-selenium) as a person would, and prints what it saw as one JSON object; the Swift test judges it.

usage: dashboard_browser.py BASE_URL TOKEN OWN_JOB OTHERS_JOB LINK ARTIFACTS_DIR ADMIN_TOKEN NODE LINK2
  TOKEN belongs to a user who is not an admin; OWN_JOB is theirs and running, OTHERS_JOB someone else's and running;
  LINK is a one-time sign-in link from `mgpu dashboard` for the same user; then an admin drains and resumes NODE, and
  is asked before LINK2 (another link for the first user) switches the browser to that user.
"""
import json
import os
import shutil
import sqlite3
import sys
import tempfile
import traceback

from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException, StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

base, token, own, others, link, artifacts, admin, node, link2 = sys.argv[1:10]
seen = {}


def failed(kind, value, trace):
    """The test reads standard output only: a failure is printed there, with the step (the traceback) and all seen so far."""
    traceback.print_exception(kind, value, trace, file=sys.stdout)
    print("seen before the failure: " + json.dumps(seen), flush=True)


sys.excepthook = failed


def browser(profile):
    options = webdriver.ChromeOptions()
    for arg in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,900",
                "--user-data-dir=" + profile]:
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"), options=options)


def texts(d, selector, attribute=None):
    """Every match's text (or attribute), read in the page in one step: the page redraws itself as data comes, and an
    element found in one WebDriver command may be gone by the next."""
    return d.execute_script("return [...document.querySelectorAll(arguments[0])].map(e => arguments[1] ? e.getAttribute(arguments[1]) "
                            ": e.innerText)", selector, attribute)


def text(d, selector):
    found = texts(d, selector)
    return found[0] if found else None


def visible(d, element_id):
    return d.find_element(By.ID, element_id).is_displayed()


def live(d):
    return int(d.find_element(By.TAG_NAME, "body").get_attribute("data-live") or 0) > 0


def history_urls(profile):
    """Every address the profile's history holds (Chromium writes it to its History database)."""
    path = os.path.join(profile, "Default", "History")
    if not os.path.exists(path):
        return []
    copy = path + ".copy"
    shutil.copy(path, copy)
    with sqlite3.connect(copy) as db:
        return [row[0] for row in db.execute("SELECT url FROM urls")]


def fresh():
    """A browser with a profile of its own (nothing stored), its waiter, and the profile's folder."""
    profile = tempfile.mkdtemp(prefix="mgpu-browser-")
    d = browser(profile)
    # A redraw between finding an element and reading it is not a failure; the next poll reads the new one.
    return d, WebDriverWait(d, 20, ignored_exceptions=(StaleElementReferenceException, NoAlertPresentException)), profile


def click(wait, selector):
    """Clicks the element once it is there; one redrawn between being found and being clicked is found again."""
    def clicked(d):
        d.find_element(By.CSS_SELECTOR, selector).click()
        return True
    wait.until(clicked)


def alert(wait):
    """The page's confirm or prompt, once it is up: it may come after a request the page makes, not at once."""
    return wait.until(expected_conditions.alert_is_present())


def signed_out_page(d, wait, url):
    d.get(url)
    wait.until(lambda d: visible(d, "signin"))


d, wait, profile = fresh()
try:
    # A page opened without a token shows the sign-in form, not "waiting for data" forever.
    signed_out_page(d, wait, base + "/")
    seen["formShown"] = True
    seen["formHelp"] = text(d, "#signin")
    field = d.find_element(By.NAME, "token")
    field.send_keys("0" * 64)
    d.find_element(By.CSS_SELECTOR, "#signin button").click()
    wait.until(lambda d: text(d, "#signin-error"))
    seen["refusedMessage"] = text(d, "#signin-error")
    field.clear()
    field.send_keys(token)
    d.find_element(By.CSS_SELECTOR, "#signin button").click()
    wait.until(live)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, f'tr[data-mine="{own}"]'))
    seen["who"] = text(d, "#who")
    seen["mineRows"] = texts(d, "#mine tr[data-mine]", "data-mine")
    seen["cancelButtons"] = sorted(set(texts(d, "button[data-cancel]", "data-cancel")))
    seen["drainButtons"] = len(texts(d, "button[data-drain-node]"))
    d.save_screenshot(os.path.join(artifacts, "dashboard-signed-in.png"))
    # Cancel one's own job from the page: a confirmation, then the API.
    click(wait, f'#mine button[data-cancel="{own}"]')
    confirm = alert(wait)
    seen["confirmText"] = confirm.text
    confirm.accept()
    wait.until(lambda d: text(d, "#notice"))
    seen["cancelNotice"] = text(d, "#notice")
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, f'tr[data-mine="{own}"] td.st-CANCELLED'))
    seen["ownEnded"] = True
    # Someone else's job: no button, and the same request made by hand is refused by the master.
    seen["othersOutcome"] = d.execute_async_script("cancelJob(arguments[0]).then(arguments[1], e => arguments[1](String(e)))", others)
    seen["othersNotice"] = text(d, "#notice")
    # A job page follows the job (here: ended) and offers no cancel button for an ended job.
    d.get(base + "/jobs/" + own)
    wait.until(lambda d: "CANCELLED" in (text(d, "#state") or ""))
    seen["jobPageState"] = text(d, "#state")
    d.get(base + "/")
    wait.until(live)
    seen["addresses"] = [d.current_url]
    seen["tokenInStorage"] = d.execute_script("return localStorage.getItem('mgpu-token')") == token
    # Sign out forgets the token.
    click(wait, "#signout")
    wait.until(lambda d: visible(d, "signin"))
    seen["afterSignOut"] = d.execute_script("return localStorage.getItem('mgpu-token')")
    # The one-time link signs in and leaves the address bar clean.
    d.get(link)
    wait.until(live)
    seen["linkWho"] = text(d, "#who")
    seen["addresses"].append(d.current_url)
finally:
    d.quit()
seen["history"] = history_urls(profile)
shutil.rmtree(profile, ignore_errors=True)

# The same link in another browser: it worked once, it does not work again.
d, wait, profile = fresh()
try:
    signed_out_page(d, wait, link)
    wait.until(lambda d: text(d, "#signin-error"))
    seen["linkAgain"] = text(d, "#signin-error")
finally:
    d.quit()
    shutil.rmtree(profile, ignore_errors=True)
# An admin: a cancel button on everyone's jobs, and drain/resume on the node cards.
d, wait, profile = fresh()
try:
    signed_out_page(d, wait, base + "/")
    d.find_element(By.NAME, "token").send_keys(admin)
    d.find_element(By.CSS_SELECTOR, "#signin button").click()
    wait.until(live)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, f'button[data-cancel="{others}"]'))
    seen["adminCancelButtons"] = sorted(set(texts(d, "button[data-cancel]", "data-cancel")))
    click(wait, f'button[data-drain-node="{node}"]')
    prompt = alert(wait)
    prompt.send_keys("swap GPU 1")
    prompt.accept()
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, f'[data-node="{node}"] [data-drain]'))
    # The badge comes with the next snapshot, which may arrive before the page has read the drain's own answer.
    wait.until(lambda d: text(d, "#notice"))
    seen["drainNotice"] = text(d, "#notice")
    seen["drainBadge"] = text(d, f'[data-node="{node}"] [data-drain]')
    d.save_screenshot(os.path.join(artifacts, "dashboard-admin.png"))
    click(wait, f'button[data-resume="{node}"]')
    alert(wait).accept()
    wait.until(lambda d: not d.find_elements(By.CSS_SELECTOR, f'[data-node="{node}"] [data-drain]'))
    seen["resumed"] = True
    # A link someone sends does not quietly sign this browser in as someone else: it asks, and "no" keeps the admin.
    d.get(link2)
    question = alert(wait)
    seen["switchQuestion"] = question.text
    question.dismiss()
    wait.until(live)
    seen["afterDecline"] = text(d, "#who")
finally:
    d.quit()
    shutil.rmtree(profile, ignore_errors=True)
print(json.dumps(seen))

"""Accessibility checks in the browser tests: axe-core's WCAG 2.1 A and AA rules (axe-playwright-python, which
ships axe-core; no network), and the keyboard reaching every control."""

from __future__ import annotations

WCAG = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}}

CONTROLS = """() => [...document.querySelectorAll('a[href], button, input, select, textarea, [tabindex]')]
  .filter(e => !e.disabled && e.tabIndex >= 0 && e.offsetParent !== null)
  .map(e => e.id || e.getAttribute('aria-label') || e.name || e.textContent.trim().slice(0, 40))"""
FOCUSED = """() => { const e = document.activeElement;
  return e ? (e.id || e.getAttribute('aria-label') || e.name || e.textContent.trim().slice(0, 40)) : null; }"""


def no_violations(page, what: str) -> None:
    """axe-core finds no WCAG 2.1 A/AA violation on ``page`` as it is now."""
    from axe_playwright_python.sync_playwright import Axe

    found = Axe().run(page, options=WCAG).response["violations"]
    assert not found, f"{what}: " + "; ".join(
        f"{v['id']} ({v['impact']}) at {[n['target'] for n in v['nodes']][:3]}" for v in found)


def keyboard_reaches_every_control(page, what: str) -> None:
    """Tabbing from the top of the page focuses every visible, enabled control."""
    controls = page.evaluate(CONTROLS)
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    reached = set()
    for _ in range(len(controls) + 5):
        page.keyboard.press("Tab")
        reached.add(page.evaluate(FOCUSED))
    missing = [c for c in controls if c not in reached]
    assert not missing, f"{what}: not reachable by Tab: {missing}"

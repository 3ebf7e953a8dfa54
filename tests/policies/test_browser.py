"""In Chromium: inline rule editing swaps the form in place, shows errors in place, then saves."""
import pytest
from django.urls import reverse

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def browser_page(page, live_server, client, policy_admin):
    """pytest-playwright's page, logged in as the policy admin through a session cookie."""
    client.force_login(policy_admin)
    page.context.clear_cookies()
    page.context.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}])
    return page


def test_inline_rule_edit_in_the_browser(browser_page, live_server, draft):
    page = browser_page
    rule = draft.rules.get(position=2)
    page.goto(live_server.url + reverse("policies:version_detail", args=[draft.pk]))
    page.click("#rule-2 >> text=Edit")
    form_row = page.locator(f"#rules-form-{rule.pk}")
    form_row.wait_for()
    assert page.url.endswith(reverse("policies:version_detail", args=[draft.pk]))
    form_row.locator("textarea[name=settings]").fill('{"strategy": "maybe"}')
    form_row.locator("button[type=submit]").click()
    page.locator(f"#rules-form-{rule.pk} [role=alert]").wait_for()
    assert "rules[2].settings.strategy: must be one of win, gain, redistribute, fill, lose; got 'maybe'." in page.locator(f"#rules-form-{rule.pk}").inner_text()
    rule.refresh_from_db()
    assert rule.settings == {"strategy": "fill"}
    page.locator(f"#rules-form-{rule.pk} textarea[name=settings]").fill('{"strategy": "lose"}')
    page.locator(f"#rules-form-{rule.pk} button[type=submit]").click()
    page.locator(f"#rules-form-{rule.pk}").wait_for(state="detached")
    assert '"lose"' in page.locator("#rule-2").inner_text()
    rule.refresh_from_db()
    assert rule.settings == {"strategy": "lose"}

import pytest
from django.contrib.auth.models import Group

from config import roles


@pytest.mark.django_db
def test_migrate_creates_every_role_group():
    assert set(Group.objects.values_list("name", flat=True)) >= set(roles.ALL_ROLES)


def test_login_page_serves_and_home_requires_login(client, db):
    assert client.get("/login/").status_code == 200
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_static_css_and_htmx_served_by_the_app(client, db):
    assert client.get("/static/css/app.css").status_code == 200
    assert client.get("/static/django_htmx/htmx-2.min.js").status_code == 200

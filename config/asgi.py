import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# A served process runs allocation runs on its background thread when there is no broker.
os.environ.setdefault("ALLOT_INPROCESS_BACKGROUND", "true")
application = get_asgi_application()

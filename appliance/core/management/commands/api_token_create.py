from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from appliance.core.api_tokens import api_token_create
from appliance.core.audit import Actor


class Command(BaseCommand):
    help = ("Create a REST API token for a user and print its key. The key is shown only now: "
            "the appliance keeps a hash of it. Use it as `Authorization: Token <key>`.")

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default="", help="what the token is for, shown in the admin")

    def handle(self, *args, username: str, name: str, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"no user named {username!r}")
        _, key = api_token_create(user=user, name=name, actor=Actor(name="manage.py"))
        self.stdout.write(key)

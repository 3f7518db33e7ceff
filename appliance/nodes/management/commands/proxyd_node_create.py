from django.core.management.base import BaseCommand, CommandError

from appliance.core.audit import Actor
from appliance.core.exceptions import ApplicationError
from appliance.nodes.services import node_create_or_set_token


class Command(BaseCommand):
    help = "Create a proxyd node (or replace its token) and print the token proxyd must use."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--token", help="use this token instead of generating one (quick start)")

    def handle(self, *args, name: str, token: str | None, **options):
        try:
            _, token = node_create_or_set_token(name=name, token=token, actor=Actor(name="manage.py"))
        except ApplicationError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(token)

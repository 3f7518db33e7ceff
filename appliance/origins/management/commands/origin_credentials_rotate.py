from django.core.management.base import BaseCommand, CommandError

from appliance.origins.credentials import CredentialsKeyError
from appliance.origins.services import origin_credentials_rotate


class Command(BaseCommand):
    help = ("Re-encrypt every origin password under the first key of APPLIANCE_ORIGIN_CREDENTIALS_KEYS "
            "(after putting a new key first; the old key can be dropped afterwards).")

    def handle(self, *args, **options):
        try:
            count = origin_credentials_rotate()
        except CredentialsKeyError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"re-encrypted {count} origin password(s) under the current key")

from django.core.management.base import BaseCommand

from billing.ledger import journals_replay


class Command(BaseCommand):
    help = (
        "Write the usage rows that stopped server or worker processes queued but never wrote "
        "(their journal files). Safe to run any time: live processes' journals are skipped and "
        "rows already in the ledger are not counted twice."
    )

    def handle(self, *args, **options):
        count = journals_replay()
        self.stdout.write(f"{count} usage row(s) replayed.")

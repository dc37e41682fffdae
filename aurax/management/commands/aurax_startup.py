from django.core.management import call_command
from django.core.management.base import BaseCommand

# Run in order at every start, after migrations and before any server process starts:
# provider credentials from the environment, usage rows a killed process queued but never
# wrote, then answers left "streaming" by a dead process are marked interrupted with the text
# saved so far.
STARTUP_COMMANDS = [
    ("providers", ["sync-env"]),
    ("usage_journal_replay", []),
    ("chat_mark_interrupted", ["--all"]),
]


class Command(BaseCommand):
    help = (
        "Start-up work after migrations: sync provider credentials from the environment, "
        "recover interrupted chats."
    )

    def handle(self, *args, **options):
        for name, arguments in STARTUP_COMMANDS:
            call_command(name, *arguments, stdout=self.stdout, stderr=self.stderr)

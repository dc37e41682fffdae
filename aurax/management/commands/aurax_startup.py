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

    def add_arguments(self, parser):
        parser.add_argument(
            "--servers-running",
            action="store_true",
            help="other server processes may be streaming answers now (a rolling deploy): mark "
            "interrupted only the answers whose process stopped its heartbeat, not every one",
        )

    def handle(self, *args, servers_running: bool = False, **options):
        for name, arguments in STARTUP_COMMANDS:
            if servers_running and name == "chat_mark_interrupted":
                arguments = [a for a in arguments if a != "--all"]
            call_command(name, *arguments, stdout=self.stdout, stderr=self.stderr)

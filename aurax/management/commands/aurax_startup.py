from django.core.management import call_command, get_commands
from django.core.management.base import BaseCommand

# Run in order at every start, after migrations: each app's start-up command, when present.
STARTUP_COMMANDS = [
    ("providers", ["sync-env"]),
    ("chat_recover", []),
]


class Command(BaseCommand):
    help = "Start-up work after migrations: sync provider credentials from the environment, recover interrupted chats."

    def handle(self, *args, **options):
        available = get_commands()
        for name, arguments in STARTUP_COMMANDS:
            if name in available:
                call_command(name, *arguments, stdout=self.stdout, stderr=self.stderr)

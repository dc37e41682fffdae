from django.core.management.base import BaseCommand, CommandError

from accounts.models import User
from api.models import ApiKey
from api.services import api_key_create
from workspaces.models import Membership


class Command(BaseCommand):
    help = "Create an API key and print it (it cannot be shown again)."

    def add_arguments(self, parser):
        parser.add_argument("--user", required=True, help="email of the key's user")
        parser.add_argument(
            "--workspace", help="workspace slug (default: the user's personal workspace)"
        )
        parser.add_argument("--name", default="script")
        parser.add_argument(
            "--workspace-owned", action="store_true", help="a workspace key (admins only)"
        )

    def handle(self, *args, user, workspace, name, workspace_owned, **options):
        account = User.objects.filter(email__iexact=user).first()
        if account is None:
            raise CommandError(f"No user with email {user}.")
        memberships = Membership.objects.select_related("workspace").filter(user=account)
        membership = (
            memberships.filter(workspace__slug=workspace).first()
            if workspace
            else memberships.filter(workspace__is_personal=True).first()
        )
        if membership is None:
            raise CommandError(f"{user} is not a member of workspace {workspace!r}.")
        owner = ApiKey.Owner.WORKSPACE if workspace_owned else ApiKey.Owner.PERSONAL
        _key, raw = api_key_create(membership=membership, name=name, owner=owner)
        self.stdout.write(raw)

"""Apps above accounts (workspaces, providers, chat) cannot be called from here; they listen."""

from django.dispatch import Signal

# Sent to learn which models a user may pick as their default, in the workspace they are
# working in: request= (the session names that workspace). Each receiver returns a list of
# {"value", "label"}; the preferences form offers them as the user's default model.
user_models_requested = Signal()

# Sent to learn what else is deleted with some users, for the admin's delete confirmation page:
# user_ids=. Each receiver returns a list of model instances deleted with them (with whatever
# those take along).
user_deletion_requested = Signal()

# Sent with it, for the same page: user_ids=. Each receiver returns a list of the users' rows
# that Django would delete with them but that pass to someone else instead (a conversation
# shared with a workspace that stays passes to its owner); the page leaves them out of what
# goes, with what hangs on them, and says so.
user_deletion_spared = Signal()

# Sent inside the deleting transaction, before users' rows are collected for deletion (by
# `User.delete()` or a queryset's `delete()`, so the admin's single and bulk deletes and the
# shell alike): users=. Receivers settle what the users leave behind while it can still be
# kept (a workspace's new owner, conversations handed over).
user_deleting = Signal()

# Sent when a user's saved language changed (`accounts.services.user_update_preferences`), once
# the change commits: user=, language= (the new one; "" follows the browser). Open pages of the
# user (the chat's sockets) follow it.
user_language_changed = Signal()

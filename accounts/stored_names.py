"""Names the product gives to rows it makes itself, shown in the reader's language.

The offline demo's provider key and its model are stored as "Offline demo": lookups, the admin
site and other rows go by that stored name, so it stays English in the database and is
translated only where it is shown. A name someone typed is shown as typed.
"""

from django.utils.translation import pgettext_lazy

_STORED = {
    "Offline demo": pgettext_lazy("a name stored by the product", "Offline demo"),
}


def stored_name_display(value):
    """`value` in the reader's language when it is a name the product stored, else unchanged."""
    if isinstance(value, str) and value in _STORED:
        return str(_STORED[value])
    return value

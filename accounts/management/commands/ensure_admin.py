import os

from django.core.management.base import BaseCommand

from accounts.models import User


class Command(BaseCommand):
    help = "Create or update the administrator from AURAX_ADMIN_EMAIL / AURAX_ADMIN_PASSWORD."

    def handle(self, *args, **options):
        email = os.environ.get("AURAX_ADMIN_EMAIL", "").strip().lower()
        password = os.environ.get("AURAX_ADMIN_PASSWORD", "")
        if not email or not password:
            self.stdout.write("No AURAX_ADMIN_EMAIL/AURAX_ADMIN_PASSWORD given; no admin created.")
            return
        user = User.objects.filter(email=email).first()
        if user is None:
            User.objects.create_superuser(email=email, password=password)
            self.stdout.write(f"Administrator {email} created.")
        else:
            user.is_staff = user.is_superuser = True
            # A new hash (a fresh salt) would end every session of the administrator on
            # each start: set the password only when it changed.
            if not user.check_password(password):
                user.set_password(password)
            user.save()
            self.stdout.write(f"Administrator {email} updated.")
        from allauth.account.models import EmailAddress

        EmailAddress.objects.update_or_create(
            user=User.objects.get(email=email),
            email=email,
            defaults={"verified": True, "primary": True},
        )

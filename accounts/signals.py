"""What accounts tells the other apps, which listen without accounts importing them."""

from django.dispatch import Signal

# user=: staff deactivated the account (its keys and sessions already stopped).
account_deactivated = Signal()

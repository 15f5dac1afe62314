import stripe
from celery import shared_task
from django.conf import settings

from accounts.models import User
from billing import stripe_gateway
from flixly_site.mail import mail_user


@shared_task
def send_low_balance_email(user_id: int, balance: int) -> None:
    user = User.objects.filter(pk=user_id).first()
    if user is None:
        return
    context = {
        "balance": balance,
        "threshold": settings.FLIXLY_LOW_BALANCE_THRESHOLD,
        "site_url": settings.SITE_URL,
        "payments_enabled": stripe_gateway.payments_enabled(),  # as on the billing page the e-mail points to
        "support_email": settings.FLIXLY_SUPPORT_EMAIL,
    }
    mail_user(
        to=user.email,
        subject=f"Your credit balance is low ({balance} left)",
        template="emails/low_balance.txt",
        context=context,
    )


# Stripe unreachable, failing or busy: worth another try later (a refused request is not).
STRIPE_TRANSIENT_ERRORS = (stripe.APIConnectionError, stripe.APIError, stripe.RateLimitError)


@shared_task(autoretry_for=STRIPE_TRANSIENT_ERRORS, retry_backoff=30, retry_backoff_max=3600, max_retries=10)
def stripe_customer_email_sync(user_id: int) -> None:
    """After a change of the account's address; a retry sends the address the account has then."""
    user = User.objects.filter(pk=user_id).first()
    if user is not None and stripe_gateway.payments_enabled():
        stripe_gateway.customer_email_update(user)


@shared_task
def send_payment_failed_email(user_id: int, credits: int) -> None:
    user = User.objects.filter(pk=user_id).first()
    if user is None:
        return
    mail_user(
        to=user.email,
        subject=f"Your payment for {credits} credits did not go through",
        template="emails/payment_failed.txt",
        context={"credits": credits, "site_url": settings.SITE_URL},
    )

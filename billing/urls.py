from django.urls import path

from billing import views

urlpatterns = [
    path("billing/", views.billing, name="billing"),
    path("billing/packs/<int:pack_id>/buy/", views.buy_pack, name="billing-buy-pack"),
    path("billing/plans/<slug:slug>/subscribe/", views.subscribe, name="billing-subscribe"),
    path("billing/portal/", views.portal, name="billing-portal"),
    path("billing/success/", views.checkout_success, name="billing-success"),
    path("billing/stripe/webhook/", views.stripe_webhook, name="stripe-webhook"),
]

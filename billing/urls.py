from django.urls import path

from . import plan_views, views

urlpatterns = [
    path("usage/", views.usage_page, name="usage"),
    path("usage/export.csv", views.usage_export, name="usage_export"),
    path("usage/budget/", views.budget_edit, name="budget_edit"),
    path("usage/all/", views.staff_usage, name="usage_staff"),
    path("usage/plan/", plan_views.plan_page, name="billing_plan"),
    path("usage/plan/<slug:slug>/checkout/", plan_views.plan_checkout, name="billing_checkout"),
    path("usage/invoices/", plan_views.invoice_list, name="billing_invoices"),
    path("usage/invoices/<str:number>/", plan_views.invoice_detail, name="billing_invoice"),
    path("billing/stripe/webhook/", plan_views.stripe_webhook, name="billing_stripe_webhook"),
]

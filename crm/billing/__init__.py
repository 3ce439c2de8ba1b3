"""Stripe billing: subscriptions, checkout, webhook intake, subscription state → tenant status."""

"""Checkout: the saga's task Lambdas (reserve, charge, quote, ship, refund, release, mark) and the human
approval of large orders. Owns the payment and approval items of an order."""

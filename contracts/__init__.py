"""The one contract of the storefront: what an order is, which events exist, what they carry, which
errors have names, and what the HTTP API accepts and answers.

Everything that crosses a boundary is defined here once and imported (or generated) everywhere else:
the orders API and approvals Lambdas, every consumer, the checkout tasks, the EC2 backend and web tiers,
the API Gateway request models, the SNS filter policies, the Step Functions Retry/Catch error names and
`docs/openapi.json`, and who a customer is (the Cognito ID token, `identity`). The package depends on
pydantic and PyJWT only, so it ships unchanged in the Lambda code asset and in the EC2 service bundle.
"""

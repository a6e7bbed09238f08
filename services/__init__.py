"""EC2 tier services: `services.web` (storefront, sessions + cart in Redis) and `services.backend`
(order intake: validate, publish `OrderPlaced`, answer 202). Each runs as `python -m services.<tier>`;
contract in docs/design.md, section "EC2 tier services"."""

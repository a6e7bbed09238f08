"""The picture worker: `python -m services.pictures` on the worker Auto Scaling group. Long-polls the
picture-jobs queue (S3 event notifications of staff uploads), renders the storefront's sizes into the
assets bucket and deletes a message only after the write. No load balancer: it answers nothing but
its own `/health` on SERVICE_PORT."""

"""Notifications: domain events become email (SendGrid), SMS and WhatsApp (Twilio) and in-app
messages, each sent at most once per (event, template, channel, recipient) and never lost.

- `rules`: which events notify whom, with which template and kind (transactional/marketing);
- `templates`: our own Jinja2 templates (email HTML and text, SMS, WhatsApp, in-app);
- `cloudcart.core.ports.channels`: the provider ports; `sendgrid_adapter`, `twilio_adapter` and
  `capture` adapt them;
- `store` and `service`: the notification record (written before the send) and the send;
- `feed`: the in-app feed; `webhooks`: delivery statuses and inbound keywords;
- `verification`: email and phone verification codes.
"""

"""The Slack app (slack-bolt): `/integration-health`, playbook task messages with
Claim / Done / Snooze 7d, reminders and the daily digest.

- `app`: the Bolt app and its thin listeners (ack, then domain code; one error path)
- `http`: ``POST /slack/events`` (contract 5: `slack_router`), `signals bot` HTTP mode
- `views`: what the command answers (resolution, channel scope, segment lists)
- `blocks`: pure Block Kit builders from view models, within Slack's limits
- `tasks`: posting tasks once, reminders, digest (contract 5, for the scheduler)
- `client`: the Web API client from settings (``SLACK_API_URL``)
"""

"""The web dashboard served by `signals serve`: pages over the same store and view models
as the CLI and Slack, behind sign-in (see README, section Web dashboard)."""

"""The Slack app: its Web API client and its interactions (signed button presses) mapped to principals."""

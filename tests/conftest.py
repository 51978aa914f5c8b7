"""Every test run loads the one plugin of the test kit: smimages.testing.plugin."""

pytest_plugins = ["smimages.testing.plugin"]

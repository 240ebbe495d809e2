"""Reusable segments: the service (`service`), LaunchDarkly semantic-patch instructions (`patch`), JSON Patch
(`jsonpatch`) and the LaunchDarkly wire shapes of the segments API (`wire`)."""

# Sourced by .ci/run after the tests: further checks, one `extra NAME COMMAND...` each.

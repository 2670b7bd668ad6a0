"""Operations: build the Lambda zip, deploy and tear down a prefixed stack, run the built zip
(locally, or on Lambda) and the deployed schedule, and the `jobcontroller` command line.

The local Lambda runner and schedule driver live here rather than in `embedded`: they run the
zip this room builds against the functions and schedules this room deploys, on either backend.
"""

"""The course's helpers: set-up, displays, races, counter-examples, exercises, dashboards and
the labs of notebooks 05-07. Nothing outside this subpackage imports it."""

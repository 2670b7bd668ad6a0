"""The course's helpers: set-up, displays, races, counter-examples, exercises and their checkers
(the gate's cases, the lock), what a call sent (`sent`), dashboards and the labs of notebooks
06-08. Nothing outside this subpackage imports it."""

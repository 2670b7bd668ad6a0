"""AWS on this machine: moto served over loopback HTTP, one request at a time, behind a guard
that refuses any request bound for real AWS (`server`); and Amazon's own DynamoDB Local,
installed, started and stopped by the package (`dynamodb_local`). It imports the Lambda root
and nothing else of ours, so every other room (ops, course) may use it."""

"""Warm-pool sizing from a service-level objective.

`model` computes the smallest pool that meets a claim SLO (an Erlang loss system),
`simulation` checks it by discrete-event simulation, `proof` runs the check over a
grid, `autoscaling` derives autoscaler bounds and targets. docs/sizing.md explains
the model and its assumptions.
"""

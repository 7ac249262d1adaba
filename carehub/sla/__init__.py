"""SLA policies (first-response and resolution targets per team and priority, in business minutes) and the timers
the worker keeps on every active ticket: due times, a warning before a target is missed, and the breach."""

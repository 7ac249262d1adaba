"""The satisfaction survey: one question after a ticket is resolved, answered by link or by replying a digit."""

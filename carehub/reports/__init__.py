"""Supervisor reports: the queue now, waiting times, SLA attainment, workload and satisfaction, and CSV exports."""

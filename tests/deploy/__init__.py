"""Tests of the container and deployment files: Dockerfile, compose.yaml, .env.example."""

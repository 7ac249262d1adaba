"""Live events (chat frames, agent notifications) across hub replicas: Redis pub/sub, or in process."""

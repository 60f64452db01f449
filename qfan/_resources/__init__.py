"""Handles on what lives in AWS: queues, priority queues, topics, subscriptions; declaring and planning
them."""

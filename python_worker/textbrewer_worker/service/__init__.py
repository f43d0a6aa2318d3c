"""The teacher as a service: its process, its clients, their wire format."""

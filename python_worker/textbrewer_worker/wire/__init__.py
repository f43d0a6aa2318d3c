"""The link to TypeScript: messages, codec, server, the op registry, rank links."""

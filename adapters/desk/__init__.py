"""Parts of the live-agent desk (``adapters.providers.agent_desk``): its settings, how agents
sign in, and how repeated failed sign-ins are slowed down."""

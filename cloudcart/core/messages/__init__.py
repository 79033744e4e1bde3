"""The messages port (`port`), its topology (`topology`), the embedded SQLite broker
(`embedded`) and the Azure Service Bus adapter (`servicebus`)."""

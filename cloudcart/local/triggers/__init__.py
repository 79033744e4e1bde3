"""The parts of the local trigger host (`cloudcart.local.trigger_host`), one concern each.

- `config`: host.json (`HostConfig`) and `%NAME%` app-setting resolution.
- `bindings`: a function's trigger read once into a `FunctionPlan`, and the `azure.functions`
  objects user functions receive (`LocalContext`, `to_service_bus_message`).
- `runtime`: calling user functions (`Invoker`) and the base of the runners.
- `servicebus`: Service Bus topic and queue triggers (`ServiceBusRunner`).
- `dead_letters`: the alert raised for every dead letter (`DeadLetterAlert`).
- `changefeed`: Cosmos DB change-feed triggers (`ChangeFeedRunner`).
- `timers`: NCRONTAB and TimeSpan timer triggers (`TimerRunner`).

`cloudcart.local.trigger_host.TriggerHost` owns one runner per trigger kind; import the
public names from there.
"""

import logging

# Every part logs under the host module's name, as it did when the host was one module, so
# logging configuration and handlers attached to that logger keep seeing all of its records.
logger = logging.getLogger("cloudcart.local.trigger_host")

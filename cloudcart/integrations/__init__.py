"""Partner integrations: payment gateways and, later, inventory, fulfilment, CRM, accounting."""

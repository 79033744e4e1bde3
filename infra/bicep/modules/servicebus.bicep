// Service Bus (Standard): the topics, subscriptions and queues of the code's topology
// (cloudcart/core/messages/topology.py; tests/infra checks the lists below against it).
// Keys are disabled: the app sends and receives with its identity.
param name string
param location string
param tags object

// Duplicate detection drops an event relayed twice from the outbox (same message id)
// within the window; it can only be chosen when an entity is created.
var topics = [
  {
    name: 'events'
    requiresDuplicateDetection: true
    duplicateDetectionHistoryTimeWindow: 'PT10M'
    defaultMessageTimeToLive: 'P14D'
  }
  {
    name: 'ops'
    requiresDuplicateDetection: true
    duplicateDetectionHistoryTimeWindow: 'PT10M'
    defaultMessageTimeToLive: 'P7D'
  }
]

// One entry per subscription: { topic, name, sqlFilter, maxDeliveryCount, lockDuration }.
// sqlFilter is `Subscription.sql_filter()` of the topology, resubmit routing included.
var subscriptions = [
  { topic: 'events', name: 'search-indexer', sqlFilter: '((sys.Label IN (\'product.created\', \'product.updated\', \'product.archived\', \'inventory.changed\')) AND user.cloudcart_resubmit_to IS NULL) OR user.cloudcart_resubmit_to = \'search-indexer\'', maxDeliveryCount: 10, lockDuration: 'PT1M' }
  { topic: 'events', name: 'fulfilment', sqlFilter: '((sys.Label IN (\'order.paid\', \'order.status_changed\', \'order.cancelled\')) AND user.cloudcart_resubmit_to IS NULL) OR user.cloudcart_resubmit_to = \'fulfilment\'', maxDeliveryCount: 10, lockDuration: 'PT15S' }
  { topic: 'events', name: 'inventory-sync', sqlFilter: '((sys.Label IN (\'inventory.changed\')) AND user.cloudcart_resubmit_to IS NULL) OR user.cloudcart_resubmit_to = \'inventory-sync\'', maxDeliveryCount: 10, lockDuration: 'PT15S' }
  { topic: 'events', name: 'ledger', sqlFilter: '((sys.Label IN (\'order.paid\', \'refund.issued\')) AND user.cloudcart_resubmit_to IS NULL) OR user.cloudcart_resubmit_to = \'ledger\'', maxDeliveryCount: 10, lockDuration: 'PT1M' }
  { topic: 'events', name: 'accounting', sqlFilter: '((sys.Label IN (\'ledger.posted\')) AND user.cloudcart_resubmit_to IS NULL) OR user.cloudcart_resubmit_to = \'accounting\'', maxDeliveryCount: 10, lockDuration: 'PT15S' }
  { topic: 'events', name: 'crm', sqlFilter: '((sys.Label IN (\'customer.created\', \'customer.updated\', \'customer.erased\', \'order.paid\', \'order.status_changed\', \'refund.issued\')) AND user.cloudcart_resubmit_to IS NULL) OR user.cloudcart_resubmit_to = \'crm\'', maxDeliveryCount: 10, lockDuration: 'PT15S' }
  { topic: 'events', name: 'notifications', sqlFilter: '((sys.Label IN (\'customer.created\', \'order.placed\', \'order.paid\', \'order.payment_failed\', \'shipment.dispatched\', \'shipment.delivered\', \'shipment.delivery_failed\', \'order.cancelled\', \'return.received\', \'refund.issued\')) AND user.cloudcart_resubmit_to IS NULL) OR user.cloudcart_resubmit_to = \'notifications\'', maxDeliveryCount: 10, lockDuration: 'PT30S' }
  { topic: 'events', name: 'insights-history', sqlFilter: '((sys.Label IN (\'storefront.events_recorded\')) AND user.cloudcart_resubmit_to IS NULL) OR user.cloudcart_resubmit_to = \'insights-history\'', maxDeliveryCount: 10, lockDuration: 'PT1M' }
  { topic: 'events', name: 'insights-recommendations', sqlFilter: '((sys.Label IN (\'order.paid\', \'order.imported\', \'product.created\', \'product.updated\', \'product.archived\', \'inventory.changed\', \'storefront.events_recorded\')) AND user.cloudcart_resubmit_to IS NULL) OR user.cloudcart_resubmit_to = \'insights-recommendations\'', maxDeliveryCount: 10, lockDuration: 'PT1M' }
  { topic: 'events', name: 'marketing', sqlFilter: '((sys.Label IN (\'cart.updated\', \'order.placed\', \'inventory.changed\', \'product.updated\', \'storefront.events_recorded\')) AND user.cloudcart_resubmit_to IS NULL) OR user.cloudcart_resubmit_to = \'marketing\'', maxDeliveryCount: 10, lockDuration: 'PT1M' }
  { topic: 'events', name: 'analytics', sqlFilter: '((sys.Label IN (\'storefront.events_recorded\', \'order.placed\', \'order.paid\', \'order.cancelled\', \'order.imported\', \'refund.issued\', \'return.received\', \'shipment.dispatched\', \'shipment.delivered\', \'inventory.changed\', \'notification.status_changed\')) AND user.cloudcart_resubmit_to IS NULL) OR user.cloudcart_resubmit_to = \'analytics\'', maxDeliveryCount: 10, lockDuration: 'PT1M' }
  { topic: 'events', name: 'media-thumbnails', sqlFilter: '((sys.Label IN (\'media.uploaded\')) AND user.cloudcart_resubmit_to IS NULL) OR user.cloudcart_resubmit_to = \'media-thumbnails\'', maxDeliveryCount: 10, lockDuration: 'PT1M' }
  { topic: 'events', name: 'diagnostics', sqlFilter: '((sys.Label IN (\'diagnostics.pinged\')) AND user.cloudcart_resubmit_to IS NULL) OR user.cloudcart_resubmit_to = \'diagnostics\'', maxDeliveryCount: 3, lockDuration: 'PT5S' }
  { topic: 'ops', name: 'alerts', sqlFilter: '((sys.Label LIKE \'ops.%\') AND user.cloudcart_resubmit_to IS NULL) OR user.cloudcart_resubmit_to = \'alerts\'', maxDeliveryCount: 10, lockDuration: 'PT1M' }
  { topic: 'ops', name: 'notifications', sqlFilter: '((sys.Label IN (\'ops.dead_lettered\', \'ops.stock_shortfall\')) AND user.cloudcart_resubmit_to IS NULL) OR user.cloudcart_resubmit_to = \'notifications\'', maxDeliveryCount: 10, lockDuration: 'PT30S' }
]

// One entry per queue: { name, maxDeliveryCount, lockDuration, requiresDuplicateDetection,
// duplicateDetectionHistoryTimeWindow, defaultMessageTimeToLive }.
var queues = [
  { name: 'fulfilment-updates', maxDeliveryCount: 10, lockDuration: 'PT15S', requiresDuplicateDetection: true, duplicateDetectionHistoryTimeWindow: 'PT10M', defaultMessageTimeToLive: 'P14D' }
  { name: 'inventory-updates', maxDeliveryCount: 10, lockDuration: 'PT15S', requiresDuplicateDetection: true, duplicateDetectionHistoryTimeWindow: 'PT10M', defaultMessageTimeToLive: 'P14D' }
  { name: 'marketing-reminders', maxDeliveryCount: 10, lockDuration: 'PT1M', requiresDuplicateDetection: true, duplicateDetectionHistoryTimeWindow: 'PT10M', defaultMessageTimeToLive: 'P14D' }
]

resource namespace 'Microsoft.ServiceBus/namespaces@2022-10-01-preview' = {
  name: name
  location: location
  tags: tags
  sku: { name: 'Standard', tier: 'Standard' }
  properties: {
    disableLocalAuth: true
    minimumTlsVersion: '1.2'
    publicNetworkAccess: 'Enabled'
  }
}

resource topicResources 'Microsoft.ServiceBus/namespaces/topics@2022-10-01-preview' = [
  for t in topics: {
    parent: namespace
    name: t.name
    properties: {
      requiresDuplicateDetection: t.requiresDuplicateDetection
      duplicateDetectionHistoryTimeWindow: t.duplicateDetectionHistoryTimeWindow
      defaultMessageTimeToLive: t.defaultMessageTimeToLive
      enableBatchedOperations: true
    }
  }
]

resource subscriptionResources 'Microsoft.ServiceBus/namespaces/topics/subscriptions@2022-10-01-preview' = [
  for s in subscriptions: {
    name: '${namespace.name}/${s.topic}/${s.name}'
    dependsOn: [topicResources]
    properties: {
      maxDeliveryCount: s.maxDeliveryCount
      lockDuration: s.lockDuration
      // Nothing is silently dropped: expired messages and broken filters dead-letter too.
      deadLetteringOnMessageExpiration: true
      deadLetteringOnFilterEvaluationExceptions: true
      enableBatchedOperations: true
    }
  }
]

// Named `$Default` to replace the match-everything rule Service Bus gives a new subscription;
// a second rule would be OR-ed with it and the subscription would get every message.
resource subscriptionRules 'Microsoft.ServiceBus/namespaces/topics/subscriptions/rules@2022-10-01-preview' = [
  for (s, i) in subscriptions: {
    name: '${namespace.name}/${s.topic}/${s.name}/$Default'
    dependsOn: [subscriptionResources[i]]
    properties: {
      filterType: 'SqlFilter'
      sqlFilter: { sqlExpression: s.sqlFilter }
    }
  }
]

resource queueResources 'Microsoft.ServiceBus/namespaces/queues@2022-10-01-preview' = [
  for q in queues: {
    parent: namespace
    name: q.name
    properties: {
      maxDeliveryCount: q.maxDeliveryCount
      lockDuration: q.lockDuration
      requiresDuplicateDetection: q.requiresDuplicateDetection
      duplicateDetectionHistoryTimeWindow: q.duplicateDetectionHistoryTimeWindow
      defaultMessageTimeToLive: q.defaultMessageTimeToLive
      deadLetteringOnMessageExpiration: true
      enableBatchedOperations: true
    }
  }
]

output id string = namespace.id
output name string = namespace.name
// The host name from the namespace's own endpoint (`https://sb-x.servicebus.windows.net:443/`),
// so sovereign clouds get their DNS suffix; `environment().suffixes` has none for Service Bus.
output fullyQualifiedNamespace string = split(split(replace(namespace.properties.serviceBusEndpoint, 'https://', ''), '/')[0], ':')[0]
